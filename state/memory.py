"""MemoryBackend: accounts in a dict, an undo log for snapshots.

A snapshot is only a mark in the undo log, so taking one costs nothing and reverting
costs what was changed since, never a copy of the state. Writes made while no snapshot is
live are not logged at all: nothing could revert them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping

from eth_hash.auto import keccak

from .backend import (
    EMPTY_CODE_HASH,
    NONCE_LIMIT,
    UINT256_LIMIT,
    ZERO32,
    Account,
    StateBackend,
    check_account,
    check_address,
    check_word,
)

# Undo-log entries; the second item is always the address.
_ACCOUNT = 0  # (kind, address, Account object it replaced, or None if it was absent)
_FIELD = 1  # (kind, address, field name, previous value)
_SLOT = 2  # (kind, address, key, previous value, or None if the slot was unset)
_TOUCH = 3  # (kind, address)


def _addr(address: bytes) -> bytes:
    # Every read and write goes through here: the common case is one type test and a len.
    if type(address) is bytes and len(address) == 20:
        return address
    return check_address(address)


def _word(word: bytes, what: str) -> bytes:
    if type(word) is bytes and len(word) == 32:
        return word
    return check_word(word, what)


class MemoryBackend(StateBackend):
    """The whole state in memory: a dict address -> Account, and an undo log."""

    def __init__(self) -> None:
        self._accounts: dict[bytes, Account] = {}
        # address -> (the code object hashed, its hash). Checking identity with the
        # account's current code keeps it right across set_code and revert without
        # having to log the cache itself.
        self._code_hashes: dict[bytes, tuple[bytes, bytes]] = {}
        self._touched: set[bytes] = set()
        self._journal: list[tuple] = []
        # Live snapshots, innermost last: their ids (increasing, never reused, so a stale
        # id is caught) and the journal length when each was taken.
        self._snap_ids: list[int] = []
        self._snap_marks: list[int] = []
        self._next_snapshot = 0

    @classmethod
    def from_accounts(cls, accounts: Mapping[bytes, Account]) -> MemoryBackend:
        backend = cls()
        for address, acc in accounts.items():
            backend._accounts[check_address(address)] = check_account(acc)
        return backend

    def to_accounts(self) -> dict[bytes, Account]:
        return {a: self._accounts[a].copy() for a in sorted(self._accounts)}

    # --- reads ---------------------------------------------------------------------------
    def exists(self, address: bytes) -> bool:
        return _addr(address) in self._accounts

    def is_empty(self, address: bytes) -> bool:
        acc = self._accounts.get(_addr(address))
        return acc is None or acc.is_empty()

    def get_balance(self, address: bytes) -> int:
        acc = self._accounts.get(_addr(address))
        return 0 if acc is None else acc.balance

    def get_nonce(self, address: bytes) -> int:
        acc = self._accounts.get(_addr(address))
        return 0 if acc is None else acc.nonce

    def get_code(self, address: bytes) -> bytes:
        acc = self._accounts.get(_addr(address))
        return b"" if acc is None else acc.code

    def get_code_hash(self, address: bytes) -> bytes:
        address = _addr(address)
        acc = self._accounts.get(address)
        if acc is None:
            return ZERO32
        code = acc.code
        if not code:
            return EMPTY_CODE_HASH
        cached = self._code_hashes.get(address)
        if cached is not None and cached[0] is code:
            return cached[1]
        h = keccak(code)
        self._code_hashes[address] = (code, h)
        return h

    def get_storage(self, address: bytes, key: bytes) -> bytes:
        acc = self._accounts.get(_addr(address))
        key = _word(key, "key")
        if acc is None:
            return ZERO32
        return acc.storage.get(key, ZERO32)

    def addresses(self) -> list[bytes]:
        return sorted(self._accounts)

    def get_account(self, address: bytes) -> Account | None:
        acc = self._accounts.get(_addr(address))
        return None if acc is None else acc.copy()

    # --- writes --------------------------------------------------------------------------
    def _account(self, address: bytes) -> Account:
        """The live account (address already checked), created and logged if absent."""
        acc = self._accounts.get(address)
        if acc is None:
            acc = self._accounts[address] = Account()
            if self._snap_marks:
                self._journal.append((_ACCOUNT, address, None))
        return acc

    def _set_field(self, address: bytes, name: str, value: object) -> None:
        acc = self._account(address)
        if self._snap_marks:
            self._journal.append((_FIELD, address, name, getattr(acc, name)))
        setattr(acc, name, value)

    def set_balance(self, address: bytes, value: int) -> None:
        address = _addr(address)
        if type(value) is not int or not 0 <= value < UINT256_LIMIT:
            raise ValueError(f"balance {value!r} is not an int in [0, 2**256)")
        self._set_field(address, "balance", value)

    def add_balance(self, address: bytes, delta: int) -> None:
        address = _addr(address)
        acc = self._accounts.get(address)
        old = 0 if acc is None else acc.balance
        if type(delta) is not int:
            raise ValueError(f"balance delta {delta!r} is not an int")
        new = old + delta
        if not 0 <= new < UINT256_LIMIT:
            raise ValueError(f"balance of 0x{address.hex()} would leave [0, 2**256): "
                             f"{old} + {delta}")
        self._set_field(address, "balance", new)

    def set_nonce(self, address: bytes, value: int) -> None:
        address = _addr(address)
        if type(value) is not int or not 0 <= value < NONCE_LIMIT:
            raise ValueError(f"nonce {value!r} is not an int in [0, 2**64)")
        self._set_field(address, "nonce", value)

    def set_code(self, address: bytes, code: bytes) -> None:
        address = _addr(address)
        if not isinstance(code, bytes | bytearray):
            raise ValueError(f"code must be bytes, got {type(code).__name__}")
        self._code_hashes.pop(address, None)
        self._set_field(address, "code", bytes(code))

    def set_storage(self, address: bytes, key: bytes, value: bytes) -> None:
        address = _addr(address)
        key = _word(key, "key")
        value = _word(value, "value")
        storage = self._account(address).storage
        old = storage.get(key)
        if self._snap_marks:
            self._journal.append((_SLOT, address, key, old))
        if value == ZERO32:
            if old is not None:
                del storage[key]
        else:
            storage[key] = value

    def create_account(self, address: bytes) -> None:
        address = _addr(address)
        old = self._accounts.get(address)
        if self._snap_marks:
            # The old object is replaced, never mutated again, so logging it is enough.
            self._journal.append((_ACCOUNT, address, old))
        self._accounts[address] = Account(balance=0 if old is None else old.balance)
        self._code_hashes.pop(address, None)

    def delete_account(self, address: bytes) -> None:
        address = _addr(address)
        old = self._accounts.pop(address, None)
        if old is None:
            return
        if self._snap_marks:
            self._journal.append((_ACCOUNT, address, old))
        self._code_hashes.pop(address, None)

    def touch(self, address: bytes) -> None:
        address = _addr(address)
        if address not in self._touched:
            self._touched.add(address)
            if self._snap_marks:
                self._journal.append((_TOUCH, address))

    def touched(self) -> frozenset[bytes]:
        return frozenset(self._touched)

    def clear_touched(self) -> None:
        # Journaled touches stay in the log: undoing one later only discards an address
        # that is no longer there.
        self._touched.clear()

    # --- journal -------------------------------------------------------------------------
    def snapshot(self) -> int:
        sid = self._next_snapshot
        self._next_snapshot += 1
        self._snap_ids.append(sid)
        self._snap_marks.append(len(self._journal))
        return sid

    def _find(self, snapshot: int) -> int:
        """Position of a live snapshot in the stack, or ValueError."""
        ids = self._snap_ids
        if ids and ids[-1] == snapshot and type(snapshot) is int:
            return len(ids) - 1  # the usual case: the innermost one
        if type(snapshot) is int:
            i = bisect_left(ids, snapshot)
            if i < len(ids) and ids[i] == snapshot:
                return i
        raise ValueError(f"snapshot {snapshot!r} is not live (never taken, or already "
                         f"reverted or committed, directly or through an outer one)")

    def revert(self, snapshot: int) -> None:
        i = self._find(snapshot)
        mark = self._snap_marks[i]
        del self._snap_ids[i:]
        del self._snap_marks[i:]
        journal, accounts = self._journal, self._accounts
        while len(journal) > mark:
            entry = journal.pop()
            kind, address = entry[0], entry[1]
            if kind == _SLOT:
                storage = accounts[address].storage
                if entry[3] is None:
                    storage.pop(entry[2], None)
                else:
                    storage[entry[2]] = entry[3]
            elif kind == _FIELD:
                setattr(accounts[address], entry[2], entry[3])
            elif kind == _ACCOUNT:
                if entry[2] is None:
                    accounts.pop(address, None)
                else:
                    accounts[address] = entry[2]
            else:
                self._touched.discard(address)

    def commit(self, snapshot: int) -> None:
        i = self._find(snapshot)
        del self._snap_ids[i:]
        del self._snap_marks[i:]
        if not self._snap_marks:
            self._journal.clear()  # nothing can revert past here any more
