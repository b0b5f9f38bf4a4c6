"""MemoryBackend: accounts in a dict, snapshots through the shared undo log
(state/journal.py)."""

from __future__ import annotations

from collections.abc import Mapping

from eth_hash.auto import keccak

from .backend import EMPTY_CODE_HASH, ZERO_BYTES32, Account, check_account, check_address
from .journal import ACCOUNT as _ACCOUNT
from .journal import FIELD as _FIELD
from .journal import SLOT as _SLOT
from .journal import JournaledBackend
from .journal import addr as _addr
from .journal import word as _word

# Undo-log entries of this backend (journal.py owns the kinds and touches):
#   (_ACCOUNT, address, Account object it replaced, or None if it was absent)
#   (_FIELD, address, field name, previous value)
#   (_SLOT, address, key, previous value, or None if the slot was unset)


class MemoryBackend(JournaledBackend):
    """The whole state in memory: a dict address -> Account, and an undo log."""

    def __init__(self) -> None:
        super().__init__()
        self._accounts: dict[bytes, Account] = {}
        # address -> (the code object hashed, its hash). Checking identity with the
        # account's current code keeps it right across set_code and revert without
        # having to log the cache itself.
        self._code_hashes: dict[bytes, tuple[bytes, bytes]] = {}

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
            return ZERO_BYTES32
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
            return ZERO_BYTES32
        return acc.storage.get(key, ZERO_BYTES32)

    def has_storage(self, address: bytes) -> bool:
        acc = self._accounts.get(_addr(address))
        return acc is not None and bool(acc.storage)

    def addresses(self) -> list[bytes]:
        return sorted(self._accounts)

    def get_account(self, address: bytes) -> Account | None:
        acc = self._accounts.get(_addr(address))
        return None if acc is None else acc.copy()

    # --- writes --------------------------------------------------------------------------
    def _live(self, address: bytes) -> Account:
        """The live account (address already checked), created and logged if absent."""
        acc = self._accounts.get(address)
        if acc is None:
            acc = self._accounts[address] = Account()
            if self._snap_marks:
                self._journal.append((_ACCOUNT, address, None))
        return acc

    def _code_changed(self, address: bytes) -> None:
        self._code_hashes.pop(address, None)

    def set_storage(self, address: bytes, key: bytes, value: bytes) -> None:
        address = _addr(address)
        key = _word(key, "key")
        value = _word(value, "value")
        storage = self._live(address).storage
        old = storage.get(key)
        if self._snap_marks:
            self._journal.append((_SLOT, address, key, old))
        if value == ZERO_BYTES32:
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

    def _undo(self, entry: tuple) -> None:
        kind, address = entry[0], entry[1]
        if kind == _SLOT:
            storage = self._accounts[address].storage
            if entry[3] is None:
                storage.pop(entry[2], None)
            else:
                storage[entry[2]] = entry[3]
        elif kind == _FIELD:
            setattr(self._accounts[address], entry[2], entry[3])
        elif entry[2] is None:
            self._accounts.pop(address, None)
        else:
            self._accounts[address] = entry[2]
