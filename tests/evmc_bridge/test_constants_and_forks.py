"""The shared constants are what they say, and each revision's rules switch on where
the EIPs did."""

from __future__ import annotations

import pytest
import rlp
from eth_hash.auto import keccak

from evmc_bridge import Revision, constants
from evmc_bridge.forks import rules


def test_empty_hashes_and_roots_are_their_keccaks():
    assert constants.EMPTY_CODE_HASH == keccak(b"")
    assert constants.EMPTY_TRIE_ROOT == keccak(rlp.encode(b""))
    assert constants.EMPTY_OMMERS_HASH == keccak(rlp.encode([]))
    assert constants.ZERO_ADDRESS == bytes(20) and constants.ZERO_BYTES32 == bytes(32)


# revision -> the first revision of each switch
SWITCHES = {
    "ewasm": Revision.BYZANTIUM,
    "access_lists": Revision.BERLIN,
    "eip161": Revision.SPURIOUS_DRAGON,
    "eip1559": Revision.LONDON,
}


@pytest.mark.parametrize("revision", list(Revision))
def test_rules_switch_on_at_their_forks(revision):
    fork = rules(revision)
    assert fork.revision == revision and rules(int(revision)) is fork
    for name, first in SWITCHES.items():
        assert getattr(fork, name) == (revision >= first), name
    assert fork.tx_create_gas == (32000 if revision >= Revision.HOMESTEAD else 0)
    assert fork.tx_data_nonzero_gas == (16 if revision >= Revision.ISTANBUL else 68)
    assert fork.max_code_size == (24576 if revision >= Revision.SPURIOUS_DRAGON else None)
    london = revision >= Revision.LONDON
    assert (fork.refund_quotient, fork.selfdestruct_refund) == ((5, 0) if london
                                                                 else (2, 24000))
    assert (fork.tx_gas, fork.tx_data_zero_gas, fork.code_deposit_gas) == (21000, 4, 200)
