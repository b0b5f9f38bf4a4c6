"""The pending overlay: a StateBackend whose changes since the last commit are held in
memory over a committed state it only reads, with MemoryBackend's undo log for snapshots.

It holds one pending record per account written, with only the slots written; everything
else reads through to the committed state, which a subclass provides (SqliteBackend reads
it from its database). What a commit writes, and when, is the subclass's business.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable

from eth_hash.auto import keccak

from .backend import EMPTY_CODE_HASH, EMPTY_TRIE_ROOT, ZERO_BYTES32, Account
from .journal import ACCOUNT as _ACCOUNT
from .journal import FIELD as _FIELD
from .journal import SLOT as _SLOT
from .journal import JournaledBackend
from .journal import addr as _addr
from .journal import word as _word

# Undo-log entries of the overlay (journal.py owns the kinds and touches):
#   (ACCOUNT, address, the pending entry it replaced: Record, None or MISSING)
#   (FIELD, address, field name, previous value)
#   (SLOT, address, key, previous pending value or MISSING)

MISSING = object()  # no pending entry: the committed state shows through


class Record:
    """An account's fields. Committed ones are never mutated; a pending one holds only the
    slots written since the last commit, and `fresh` says the committed storage is hidden
    (the account was created, or deleted and written again)."""

    __slots__ = ("nonce", "balance", "code", "code_hash", "storage", "fresh", "storage_root")

    def __init__(self, nonce: int, balance: int, code: bytes, code_hash: bytes | None,
                 storage: dict[bytes, bytes], fresh: bool,
                 storage_root: bytes = EMPTY_TRIE_ROOT) -> None:
        self.nonce = nonce
        self.balance = balance
        self.code = code
        self.code_hash = code_hash  # None: not computed since the code changed
        # Pending: key -> value written (ZERO_BYTES32 for a cleared slot). Committed: empty.
        self.storage = storage
        self.fresh = fresh
        self.storage_root = storage_root  # meaningful on committed records only


class PendingOverlay(JournaledBackend):
    """StateBackend's reads and writes over pending records and a committed state.

    `_pending` maps an address to its pending Record, or to None for an account deleted
    since the last commit. `_version` changes with every change to the overlay, so that
    what a subclass derives from it (a state root) can be reused while it stands.
    """

    def __init__(self) -> None:
        JournaledBackend.__init__(self)
        self._pending: dict[bytes, Record | None] = {}
        self._version = 0

    # --- the committed state, the subclass's ----------------------------------------------
    @abstractmethod
    def _committed(self, address: bytes) -> Record | None:
        """The committed record of a checked address (never mutated); None if absent."""

    @abstractmethod
    def _committed_slot(self, address: bytes, key: bytes) -> bytes:
        """The committed value of a slot of an existing account; ZERO_BYTES32 if unset."""

    @abstractmethod
    def _committed_addresses(self) -> Iterable[bytes]:
        """Every committed address, in any order."""

    @abstractmethod
    def _committed_storage(self, address: bytes) -> Iterable[tuple[bytes, bytes]]:
        """Every non-zero committed slot of the address, as (key, value)."""

    def _drop_pending(self) -> None:
        """Forget every pending record, snapshot and touch."""
        self._pending.clear()
        self._clear_journal()
        self._version += 1

    def _view(self, address: bytes) -> Record | None:
        """The account as it stands now (pending or committed); do not mutate it."""
        acc = self._pending.get(address, MISSING)
        if acc is MISSING:
            return self._committed(address)
        return acc  # type: ignore[return-value]

    # --- reads ----------------------------------------------------------------------------
    def exists(self, address: bytes) -> bool:
        return self._view(_addr(address)) is not None

    def is_empty(self, address: bytes) -> bool:
        acc = self._view(_addr(address))
        return acc is None or (acc.nonce == 0 and acc.balance == 0 and not acc.code)

    def get_balance(self, address: bytes) -> int:
        acc = self._view(_addr(address))
        return 0 if acc is None else acc.balance

    def get_nonce(self, address: bytes) -> int:
        acc = self._view(_addr(address))
        return 0 if acc is None else acc.nonce

    def get_code(self, address: bytes) -> bytes:
        acc = self._view(_addr(address))
        return b"" if acc is None else acc.code

    def get_code_hash(self, address: bytes) -> bytes:
        acc = self._view(_addr(address))
        if acc is None:
            return ZERO_BYTES32
        if acc.code_hash is None:
            # Only pending records lack it; set_code and a revert of it reset it.
            acc.code_hash = keccak(acc.code) if acc.code else EMPTY_CODE_HASH
        return acc.code_hash

    def get_storage(self, address: bytes, key: bytes) -> bytes:
        address = _addr(address)
        key = _word(key, "key")
        acc = self._pending.get(address, MISSING)
        if acc is MISSING:
            if self._committed(address) is None:
                return ZERO_BYTES32
            return self._committed_slot(address, key)
        if acc is None:
            return ZERO_BYTES32
        value = acc.storage.get(key)  # type: ignore[union-attr]
        if value is not None:
            return value
        if acc.fresh:  # type: ignore[union-attr]
            return ZERO_BYTES32
        return self._committed_slot(address, key)

    def has_storage(self, address: bytes) -> bool:
        address = _addr(address)
        acc = self._view(address)
        if acc is None:
            return False
        written = acc.storage  # pending writes; empty on a committed record
        if any(v != ZERO_BYTES32 for v in written.values()):
            return True
        if address in self._pending and acc.fresh:
            return False
        committed = self._committed(address)
        if committed is None or committed.storage_root == EMPTY_TRIE_ROOT:
            return False
        # A slot not cleared since the commit (the scan stops at the first one).
        return any(written.get(k, v) != ZERO_BYTES32
                   for k, v in self._committed_storage(address))

    def addresses(self) -> list[bytes]:
        out = set(self._committed_addresses())
        for address, acc in self._pending.items():
            if acc is None:
                out.discard(address)
            else:
                out.add(address)
        return sorted(out)

    def get_account(self, address: bytes) -> Account | None:
        address = _addr(address)
        acc = self._view(address)
        if acc is None:
            return None
        storage: dict[bytes, bytes] = {}
        if not acc.fresh:
            storage.update(self._committed_storage(address))
        for key, value in acc.storage.items():
            if value == ZERO_BYTES32:
                storage.pop(key, None)
            else:
                storage[key] = value
        return Account(acc.nonce, acc.balance, acc.code, storage)

    # --- writes ---------------------------------------------------------------------------
    def _live(self, address: bytes) -> Record:
        """The pending record of a checked address, made (and logged) if there is none."""
        self._version += 1
        old = self._pending.get(address, MISSING)
        if old is not MISSING and old is not None:
            return old  # type: ignore[return-value]
        base = None if old is None else self._committed(address)
        if base is None:
            acc = Record(0, 0, b"", EMPTY_CODE_HASH, {}, True)
        else:
            acc = Record(base.nonce, base.balance, base.code, base.code_hash, {}, False)
        self._pending[address] = acc
        if self._snap_marks:
            self._journal.append((_ACCOUNT, address, old))
        return acc

    def _code_changed(self, address: bytes) -> None:
        self._pending[address].code_hash = None  # type: ignore[union-attr]

    def set_storage(self, address: bytes, key: bytes, value: bytes) -> None:
        address = _addr(address)
        key = _word(key, "key")
        value = _word(value, "value")
        storage = self._live(address).storage
        if self._snap_marks:
            self._journal.append((_SLOT, address, key, storage.get(key, MISSING)))
        storage[key] = value

    def create_account(self, address: bytes) -> None:
        address = _addr(address)
        self._version += 1
        old = self._pending.get(address, MISSING)
        current = self._committed(address) if old is MISSING else old
        balance = 0 if current is None else current.balance  # type: ignore[union-attr]
        if self._snap_marks:
            # The replaced record is never mutated again, so logging it is enough.
            self._journal.append((_ACCOUNT, address, old))
        self._pending[address] = Record(0, balance, b"", EMPTY_CODE_HASH, {}, True)

    def delete_account(self, address: bytes) -> None:
        address = _addr(address)
        old = self._pending.get(address, MISSING)
        if (self._committed(address) if old is MISSING else old) is None:
            return
        self._version += 1
        if self._snap_marks:
            self._journal.append((_ACCOUNT, address, old))
        self._pending[address] = None

    def revert(self, snapshot: int) -> None:
        self._version += 1
        super().revert(snapshot)

    def _undo(self, entry: tuple) -> None:
        kind, address = entry[0], entry[1]
        pending = self._pending
        if kind == _SLOT:
            storage = pending[address].storage  # type: ignore[union-attr]
            if entry[3] is MISSING:
                del storage[entry[2]]
            else:
                storage[entry[2]] = entry[3]
        elif kind == _FIELD:
            acc = pending[address]
            setattr(acc, entry[2], entry[3])
            if entry[2] == "code":
                acc.code_hash = None  # type: ignore[union-attr]
        elif entry[2] is MISSING:
            del pending[address]
        else:
            pending[address] = entry[2]


__all__ = ["MISSING", "PendingOverlay", "Record"]
