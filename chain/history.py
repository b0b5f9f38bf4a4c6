"""State the chain reads without writing: read views for simulations and queries, at the
latest state or at any older block, and the write recorder behind evm_snapshot/evm_revert.

A `StateView` is a StateBackend over one read session (chain.store.BlockReader): the
committed state as that session sees it, with a pending overlay of its own for whatever a
simulation writes, thrown away with the view. The latest state is read from the flat
tables; the state after an older block from the trie nodes under that block's state root
(the node store never prunes, so every committed root stays whole). A view never touches
the writer's connection or lock: simulations run beside mining, not after it.

`WriteRecorder` forwards to the chain's backend and records every account and slot
written, so that evm_revert can restore exactly those from the snapshot's state root.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from state.backend import EMPTY_CODE_HASH, ZERO_BYTES32, StateBackend
from state.overlay import PendingOverlay, Record
from state.trie_store import Trie, TrieNodeMissing, TrieNodeStore, keccak, rlp_decode

from .errors import ChainError


class HistoryUnavailable(ChainError):
    """The store cannot answer for that block's state."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("historical state not available" + (f": {detail}" if detail else ""))


class StateView(PendingOverlay):
    """The committed state as one read session sees it: the flat tables (root None) or the
    tries under `root`, with a pending overlay of its own. Never committed."""

    def __init__(self, db: sqlite3.Connection, root: bytes | None = None) -> None:
        PendingOverlay.__init__(self)
        self._db = db
        self.root = root
        self._accounts: dict[bytes, Record | None] = {}
        self._slots: dict[tuple[bytes, bytes], bytes] = {}
        self._codes: dict[bytes, bytes] = {}
        self._nodes: Mapping[bytes, bytes] | None = None
        self._trie: Trie | None = None
        if root is not None:
            self._nodes = TrieNodeStore(db).pending()
            self._trie = Trie(self._nodes, root)  # type: ignore[arg-type]
            try:
                self._trie.get(bytes(32))  # the root is there, or this block is not
            except TrieNodeMissing:
                raise HistoryUnavailable(f"the store has no state root 0x{root.hex()}") from None

    @classmethod
    def from_accounts(cls, accounts: Mapping[bytes, Any]) -> StateView:
        raise NotImplementedError("a state view is made over a read session")

    # --- the committed state ----------------------------------------------------------------
    def _committed(self, address: bytes) -> Record | None:
        try:
            return self._accounts[address]
        except KeyError:
            pass
        acc = None
        if self._trie is None:
            row = self._db.execute("SELECT nonce, balance, code_hash, storage_root FROM "
                                   "accounts WHERE address = ?", (address,)).fetchone()
            if row is not None:
                nonce, balance, code_hash, sroot = row
                acc = Record(int.from_bytes(nonce, "big"), int.from_bytes(balance, "big"),
                             self._code(code_hash), code_hash, {}, False, sroot)
        else:
            encoded = self._read(self._trie, keccak(address))
            if encoded:
                nonce, balance, sroot, code_hash = rlp_decode(encoded)
                acc = Record(int.from_bytes(nonce, "big"), int.from_bytes(balance, "big"),
                             self._code(code_hash), code_hash, {}, False, sroot)
        self._accounts[address] = acc
        return acc

    def _committed_slot(self, address: bytes, key: bytes) -> bytes:
        value = self._slots.get((address, key))
        if value is not None:
            return value
        if self._trie is None:
            row = self._db.execute("SELECT value FROM storage WHERE address = ? AND key = ?",
                                   (address, key)).fetchone()
            value = ZERO_BYTES32 if row is None else row[0]
        else:
            acc = self._committed(address)
            assert acc is not None  # the overlay asks only for existing accounts' slots
            encoded = self._read(Trie(self._nodes, acc.storage_root),  # type: ignore[arg-type]
                                 keccak(key))
            word = rlp_decode(encoded) if encoded else b""
            value = bytes(word).rjust(32, b"\0")  # type: ignore[arg-type]
        self._slots[(address, key)] = value
        return value

    def _committed_addresses(self) -> Iterable[bytes]:
        if self._trie is not None:
            raise HistoryUnavailable("the accounts of an older block are not listed")
        return [row[0] for row in self._db.execute("SELECT address FROM accounts")]

    def _committed_storage(self, address: bytes) -> Iterable[tuple[bytes, bytes]]:
        if self._trie is not None:
            raise HistoryUnavailable("the storage of an older block is not listed")
        return self._db.execute("SELECT key, value FROM storage WHERE address = ?",
                                (address,)).fetchall()

    def _code(self, code_hash: bytes) -> bytes:
        if code_hash == EMPTY_CODE_HASH:
            return b""
        code = self._codes.get(code_hash)
        if code is None:
            row = self._db.execute("SELECT code FROM code WHERE hash = ?",
                                   (code_hash,)).fetchone()
            if row is None:
                raise HistoryUnavailable(f"code 0x{code_hash.hex()} is missing")
            code = self._codes[code_hash] = row[0]
        return code

    @staticmethod
    def _read(trie: Trie, key: bytes) -> bytes:
        try:
            return trie.get(key)
        except TrieNodeMissing as exc:
            raise HistoryUnavailable(f"trie node 0x{exc.args[0].hex()} is missing") from None


class WriteRecorder:
    """A StateBackend that forwards everything to `inner` and records the accounts and
    slots written: an account created or deleted records every slot it had, since those
    go with it. Reads and the journal go straight through."""

    def __init__(self, inner: StateBackend) -> None:
        self.inner = inner
        self.accounts: set[bytes] = set()
        self.slots: set[tuple[bytes, bytes]] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def set_balance(self, address: bytes, value: int) -> None:
        self.accounts.add(bytes(address))
        self.inner.set_balance(address, value)

    def add_balance(self, address: bytes, delta: int) -> None:
        self.accounts.add(bytes(address))
        self.inner.add_balance(address, delta)

    def set_nonce(self, address: bytes, value: int) -> None:
        self.accounts.add(bytes(address))
        self.inner.set_nonce(address, value)

    def set_code(self, address: bytes, code: bytes) -> None:
        self.accounts.add(bytes(address))
        self.inner.set_code(address, code)

    def set_storage(self, address: bytes, key: bytes, value: bytes) -> None:
        self.accounts.add(bytes(address))
        self.slots.add((bytes(address), bytes(key)))
        self.inner.set_storage(address, key, value)

    def create_account(self, address: bytes) -> None:
        self._with_every_slot(address)
        self.inner.create_account(address)

    def delete_account(self, address: bytes) -> None:
        self._with_every_slot(address)
        self.inner.delete_account(address)

    def _with_every_slot(self, address: bytes) -> None:
        address = bytes(address)
        self.accounts.add(address)
        acc = self.inner.get_account(address)
        if acc is not None:
            self.slots.update((address, key) for key in acc.storage)


def restore(backend: StateBackend, target: StateBackend, recorder: WriteRecorder) -> None:
    """Write into backend (pending) the recorded accounts and slots as target has them."""
    for address in sorted(recorder.accounts):
        if not target.exists(address):
            backend.delete_account(address)
            continue
        if not backend.exists(address):
            backend.create_account(address)
        backend.set_nonce(address, target.get_nonce(address))
        backend.set_balance(address, target.get_balance(address))
        backend.set_code(address, target.get_code(address))
    for address, key in sorted(recorder.slots):
        if target.exists(address):
            backend.set_storage(address, key, target.get_storage(address, key))


__all__ = ["HistoryUnavailable", "StateView", "WriteRecorder", "restore"]
