"""State root and logs hash: the Yellow Paper's secure Merkle-Patricia trie (py-trie)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import rlp
from eth_hash.auto import keccak
from rlp.sedes import Binary, CountableList, big_endian_int, binary
from trie import HexaryTrie

from .backend import BLANK_ROOT, ZERO32, Log, StateBackend

_ACCOUNT = rlp.sedes.List([big_endian_int, big_endian_int, binary, binary])
_LOG = rlp.sedes.List([Binary.fixed_length(20), CountableList(Binary.fixed_length(32)), binary])


def storage_root(storage: Mapping[bytes, bytes]) -> bytes:
    """Root of keccak(key) -> rlp(value as a minimal big-endian integer), zeros skipped."""
    if not storage:
        return BLANK_ROOT
    t = HexaryTrie({})
    for key, value in storage.items():
        if value != ZERO32:
            t[keccak(key)] = rlp.encode(value.lstrip(b"\0"))
    return t.root_hash


def account_rlp(nonce: int, balance: int, storage_root: bytes, code_hash: bytes) -> bytes:
    return rlp.encode([nonce, balance, storage_root, code_hash], _ACCOUNT)


def state_root(backend: StateBackend) -> bytes:
    """Root of keccak(address) -> rlp([nonce, balance, storageRoot, codeHash])."""
    t = HexaryTrie({})
    for address in backend.addresses():
        acc = backend.get_account(address)
        t[keccak(address)] = account_rlp(acc.nonce, acc.balance, storage_root(acc.storage),
                                         keccak(acc.code))
    return t.root_hash


def logs_hash(logs: Iterable[Log]) -> bytes:
    """keccak256(rlp([[address, [topics...], data], ...]))."""
    return keccak(rlp.encode([[log.address, list(log.topics), log.data] for log in logs],
                             CountableList(_LOG)))


__all__ = ["BLANK_ROOT", "account_rlp", "logs_hash", "state_root", "storage_root"]
