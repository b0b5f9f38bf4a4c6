"""The undo log both backends share: snapshots as marks in a list of undo entries, the
touched set, and the validated field writes.

A snapshot is only a mark in the log, so taking one costs nothing and reverting costs what
changed since, never a copy of the state. Writes made while no snapshot is live are not
logged at all: nothing could revert them. A backend says how to make a field write
(`_set_field`) and how to undo its own entries (`_undo`); touches are undone here.
"""

from __future__ import annotations

from abc import abstractmethod
from bisect import bisect_left
from typing import Any

from .backend import (
    NONCE_LIMIT,
    UINT256_LIMIT,
    StateBackend,
    check_address,
    check_bytes,
    check_word,
)
from .errors import InvalidStateValue

# Undo-log entry kinds; an entry's second item is always the address. The backend decides
# what the rest of an _ACCOUNT, _FIELD or _SLOT entry holds.
ACCOUNT = 0
FIELD = 1
SLOT = 2
TOUCH = 3  # (kind, address)


def addr(address: bytes) -> bytes:
    # Every read and write goes through here: the common case is one type test and a len.
    if type(address) is bytes and len(address) == 20:
        return address
    return check_address(address)


def word(value: bytes, what: str) -> bytes:
    if type(value) is bytes and len(value) == 32:
        return value
    return check_word(value, what)


class JournaledBackend(StateBackend):
    """StateBackend's journal, touched set and field writes over an undo log."""

    def __init__(self) -> None:
        self._touched: set[bytes] = set()
        self._journal: list[tuple] = []
        # Live snapshots, innermost last: their ids (increasing, never reused, so a stale
        # id is caught) and the journal length when each was taken.
        self._snap_ids: list[int] = []
        self._snap_marks: list[int] = []
        self._next_snapshot = 0

    @abstractmethod
    def _live(self, address: bytes) -> Any:
        """The mutable record of a checked address (with nonce, balance and code
        attributes), created and logged if there is none."""

    @abstractmethod
    def _undo(self, entry: tuple) -> None:
        """Undo one ACCOUNT, FIELD or SLOT entry of this backend's."""

    def _code_changed(self, address: bytes) -> None:
        """Forget whatever the backend derived from the code of address (its hash)."""

    # --- field writes ---------------------------------------------------------------------
    def _set_field(self, address: bytes, name: str, value: object) -> None:
        acc = self._live(address)
        if self._snap_marks:
            self._journal.append((FIELD, address, name, getattr(acc, name)))
        setattr(acc, name, value)

    def set_code(self, address: bytes, code: bytes) -> None:
        address = addr(address)
        self._set_field(address, "code", check_bytes(code, "code"))
        self._code_changed(address)

    def set_balance(self, address: bytes, value: int) -> None:
        address = addr(address)
        if type(value) is not int or not 0 <= value < UINT256_LIMIT:
            raise InvalidStateValue(f"balance {value!r} is not an int in [0, 2**256)")
        self._set_field(address, "balance", value)

    def add_balance(self, address: bytes, delta: int) -> None:
        address = addr(address)
        if type(delta) is not int:
            raise InvalidStateValue(f"balance delta {delta!r} is not an int")
        old = self.get_balance(address)
        new = old + delta
        if not 0 <= new < UINT256_LIMIT:
            raise InvalidStateValue(f"balance of 0x{address.hex()} would leave [0, 2**256): "
                             f"{old} + {delta}")
        self._set_field(address, "balance", new)

    def set_nonce(self, address: bytes, value: int) -> None:
        address = addr(address)
        if type(value) is not int or not 0 <= value < NONCE_LIMIT:
            raise InvalidStateValue(f"nonce {value!r} is not an int in [0, 2**64)")
        self._set_field(address, "nonce", value)

    # --- touches --------------------------------------------------------------------------
    def touch(self, address: bytes) -> None:
        address = addr(address)
        if address not in self._touched:
            self._touched.add(address)
            if self._snap_marks:
                self._journal.append((TOUCH, address))

    def touched(self) -> frozenset[bytes]:
        return frozenset(self._touched)

    def clear_touched(self) -> None:
        # Journaled touches stay in the log: undoing one later only discards an address
        # that is no longer there.
        self._touched.clear()

    # --- snapshots ------------------------------------------------------------------------
    def snapshot(self) -> int:
        sid = self._next_snapshot
        self._next_snapshot += 1
        self._snap_ids.append(sid)
        self._snap_marks.append(len(self._journal))
        return sid

    def _find(self, snapshot: int) -> int:
        """Position of a live snapshot in the stack, or ValueError."""
        ids = self._snap_ids
        if type(snapshot) is int:
            if ids and ids[-1] == snapshot:
                return len(ids) - 1  # the usual case: the innermost one
            i = bisect_left(ids, snapshot)
            if i < len(ids) and ids[i] == snapshot:
                return i
        raise InvalidStateValue(f"snapshot {snapshot!r} is not live (never taken, or already "
                         f"reverted or committed, directly or through an outer one)")

    def revert(self, snapshot: int) -> None:
        i = self._find(snapshot)
        mark = self._snap_marks[i]
        del self._snap_ids[i:]
        del self._snap_marks[i:]
        journal, undo = self._journal, self._undo
        while len(journal) > mark:
            entry = journal.pop()
            if entry[0] == TOUCH:
                self._touched.discard(entry[1])
            else:
                undo(entry)

    def commit(self, snapshot: int) -> None:
        i = self._find(snapshot)
        del self._snap_ids[i:]
        del self._snap_marks[i:]
        if not self._snap_marks:
            self._journal.clear()  # nothing can revert past here any more

    def _clear_journal(self) -> None:
        """End every snapshot and forget the log and the touched set."""
        self._journal.clear()
        self._snap_ids.clear()
        self._snap_marks.clear()
        self._touched.clear()
