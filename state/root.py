"""State root, storage root and logs hash (Yellow Paper appendix D and section 4.3).

The tries are state.trie_store's Trie over a throw-away dict (py-trie's roots, at a
fraction of its cost); "secure" means every key is keccak256'd first, as Ethereum does for
both the state and the storage tries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import rlp
from rlp.sedes import Binary, CountableList, List, big_endian_int

from .backend import EMPTY_TRIE_ROOT, ZERO_BYTES32, Log, StateBackend, check_word
from .errors import InvalidStateValue
from .trie_store import Trie, keccak, rlp_bytes, rlp_int, rlp_list

_HASH = Binary.fixed_length(32)
_ACCOUNT = List([big_endian_int, big_endian_int, _HASH, _HASH])
# A log's RLP, [address, [topic, ...], data]: the one definition for every encoding that
# holds logs (the logs hash here, receipts).
LOG_SEDES = List([Binary.fixed_length(20), CountableList(_HASH), Binary()])
_LOGS = CountableList(LOG_SEDES)


def slot_rlp(value: bytes) -> bytes:
    """A storage trie leaf: rlp(the 32-byte value as a minimal big-endian integer)."""
    return rlp_bytes(value.lstrip(b"\0"))


def storage_root(storage: Mapping[bytes, bytes]) -> bytes:
    """Root of the secure trie keccak256(key) -> rlp(value as a minimal big-endian integer).

    Keys and values are 32 bytes; zero values are skipped (an unset slot and a zero slot
    are the same state). No non-zero slot gives EMPTY_TRIE_ROOT.
    """
    t = Trie({})
    for key, value in storage.items():
        key, value = check_word(key, "key"), check_word(value, "value")
        if value != ZERO_BYTES32:
            t[keccak(key)] = slot_rlp(value)
    return t.root_hash


def account_rlp(nonce: int, balance: int, storage_root: bytes, code_hash: bytes) -> bytes:
    """rlp([nonce, balance, storageRoot, codeHash]), integers minimal big-endian."""
    if (type(nonce) is not int or type(balance) is not int or nonce < 0 or balance < 0
            or not isinstance(storage_root, bytes) or len(storage_root) != 32
            or not isinstance(code_hash, bytes) or len(code_hash) != 32):
        try:  # the checked encoding, for its message
            return rlp.encode([nonce, balance, storage_root, code_hash], _ACCOUNT)
        except rlp.SerializationError as e:
            raise InvalidStateValue(f"cannot encode account: {e}") from e
    return rlp_list((rlp_int(nonce), rlp_int(balance), b"\xa0" + storage_root,
                     b"\xa0" + code_hash))


def state_root(backend: StateBackend) -> bytes:
    """Root of the secure trie keccak256(address) -> account_rlp, over every existing
    account, empty ones included (EIP-161 clean-up is the caller's business)."""
    t = Trie({})
    for address in backend.addresses():
        acc = backend.get_account(address)
        assert acc is not None  # addresses() lists only existing accounts
        t[keccak(address)] = account_rlp(acc.nonce, acc.balance, storage_root(acc.storage),
                                         backend.get_code_hash(address))
    return t.root_hash


def logs_hash(logs: Iterable[Log]) -> bytes:
    """keccak256(rlp([[address, [topic, ...], data], ...])) in emission order; no logs
    gives keccak256(0xc0)."""
    try:
        encoded = rlp.encode([[log.address, list(log.topics), log.data] for log in logs], _LOGS)
    except rlp.SerializationError as e:
        raise InvalidStateValue(f"cannot encode logs (address 20 bytes, topics 32 bytes): {e}") from e
    return keccak(encoded)


__all__ = ["EMPTY_TRIE_ROOT", "LOG_SEDES", "account_rlp", "logs_hash", "slot_rlp", "state_root",
           "storage_root"]
