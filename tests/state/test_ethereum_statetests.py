"""Ethereum's own GeneralStateTests for EVM code (../shared/fixtures/ethereum-state-tests,
legacytests' Constantinople folder) through the project's runner, at Byzantium: every
one of the 4,802 cases is a test, run on the EVM of state.evm behind StateHost.

All pass. `stRevertTest/RevertInCreateInInit` (an account with storage but no code and no
nonce, where a creation lands) passes by EIP-7610's rule that such an address collides,
which clients apply at every fork; py-evm without it fails the case.

The whole set takes ~140 s of one core here; the 25 slowest files (loops of 50,000 calls
in stQuadraticComplexityTest, stStaticCall and stTimeConsuming) are ~90 % of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from state.statetest.runner import revision_of
from tests.state.suites import case_params, check_case, needs

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SUITE = SHARED / "fixtures" / "ethereum-state-tests" / "Constantinople" / "GeneralStateTests"
FORK = "byzantium"
BYZANTIUM_CASES = 4802
KNOWN_FAILURES: dict[str, str] = {}

needs_suite = needs(SUITE, "Ethereum's state tests")


def _cases() -> list:
    if not SUITE.is_dir():
        return []
    return case_params(SUITE, FORK, lambda f: f.parent.name, KNOWN_FAILURES)


CASES = _cases()


@needs_suite
def test_the_byzantium_set_is_complete():
    assert len(CASES) == BYZANTIUM_CASES


@needs_suite
@pytest.mark.parametrize("path,name,fork,index", CASES)
def test_byzantium_case(path, name, fork, index):
    check_case(path, name, fork, index)


def test_the_legacy_fork_names_are_mapped():
    from evmc_bridge import Revision

    assert revision_of("EIP150") == Revision.TANGERINE_WHISTLE
    assert revision_of("EIP158") == Revision.SPURIOUS_DRAGON
    assert revision_of("ConstantinopleFix") == Revision.PETERSBURG
    assert revision_of("Byzantium") == revision_of("byzantium") == Revision.BYZANTIUM
    assert revision_of("Frontier") == Revision.FRONTIER
