"""Ethereum's GeneralStateTests at London (ethereum/legacytests' Cancun/GeneralStateTests,
18,200 London cases) through the project's runner: EVM frames on state.evm behind
StateHost, with EIP-2929's journaled warm sets, EIP-2930 access lists, EIP-1559 fees,
EIP-3529 refunds, EIP-3541 and EIP-3607.

The suite is 112 MiB and not in ../shared: fetch github.com/ethereum/legacytests and set
EWASM_LONDON_TESTS to its Cancun/GeneralStateTests folder. Without it these tests skip,
saying so. The set takes ~5 minutes of two cores here (loopMul aside, see SLOW); CI does not run it.

Every case is a test; the known failures (KNOWN_FAILURES, each with its reason, also
named in the README) are strict xfails, so a case that starts passing says so."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.state.suites import case_params, check_case

ENV = "EWASM_LONDON_TESTS"
SUITE = Path(os.environ.get(ENV, "")) if os.environ.get(ENV) else None
FORK = "london"
LONDON_CASES = 18200
BAR = 0.99  # the issue's: at least 99 % pass
# Case id ("folder/test[dDgGvV]") -> why it fails, from a full run (README, "State tests").
KNOWN_FAILURES: dict[str, str] = {}
# Files whose cases run minutes each on a Python interpreter (loops of 10 million
# iterations written for native EVMs): run only with EWASM_LONDON_SLOW=1.
SLOW = {"VMTests/vmPerformance/loopMul": "10 million loop iterations a case: minutes of "
                                         "py-evm each (EWASM_LONDON_SLOW=1 runs them)"}
RUN_SLOW = os.environ.get("EWASM_LONDON_SLOW") == "1"

needs_suite = pytest.mark.skipif(
    SUITE is None or not SUITE.is_dir(),
    reason=f"the London suite is not here: set {ENV} to legacytests' "
           "Cancun/GeneralStateTests (git clone https://github.com/ethereum/legacytests)")


def _cases() -> list:
    if SUITE is None or not SUITE.is_dir():
        return []
    return case_params(SUITE, FORK, lambda f: f.parent.relative_to(SUITE).as_posix(),
                       KNOWN_FAILURES, lambda stem: [pytest.mark.skip(reason=SLOW[stem])]
                       if stem in SLOW and not RUN_SLOW else [])


CASES = _cases()


@needs_suite
def test_the_london_set_is_complete():
    assert len(CASES) == LONDON_CASES


@needs_suite
def test_the_known_failures_are_within_the_bar():
    failing = len(KNOWN_FAILURES)
    assert failing <= (1 - BAR) * LONDON_CASES, f"{failing} known failures"
    ids = {c.id for c in CASES}
    assert set(KNOWN_FAILURES) <= ids, "a known failure names no case"


@needs_suite
@pytest.mark.parametrize("path,name,fork,index", CASES)
def test_london_case(path, name, fork, index):
    check_case(path, name, fork, index)
