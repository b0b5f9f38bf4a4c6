"""MemoryBackend: accounts in a dict, an undo log for snapshots."""

from __future__ import annotations

from collections.abc import Mapping

from eth_hash.auto import keccak

from .backend import (
    EMPTY_CODE_HASH,
    UINT256_LIMIT,
    ZERO32,
    Account,
    StateBackend,
    check_address,
    check_word,
)

# Undo-log entry kinds.
_ACCOUNT = 0  # (kind, address, previous Account object or None)
_FIELD = 1    # (kind, address, field name, previous value)
_SLOT = 2     # (kind, address, key, previous value or None)
_TOUCH = 3    # (kind, address)


class MemoryBackend(StateBackend):
    def __init__(self) -> None:
        self._accounts: dict[bytes, Account] = {}
        self._code_hash: dict[bytes, bytes] = {}
        self._touched: set[bytes] = set()
        self._journal: list[tuple] = []
        self._snapshots: list[int] = []  # journal length at each live snapshot

    @classmethod
    def from_accounts(cls, accounts: Mapping[bytes, Account]) -> MemoryBackend:
        b = cls()
        for address, acc in accounts.items():
            b._accounts[check_address(address)] = acc.copy()
        return b

    # --- reads ---------------------------------------------------------------------------
    def exists(self, address: bytes) -> bool:
        return address in self._accounts

    def is_empty(self, address: bytes) -> bool:
        acc = self._accounts.get(address)
        return acc is None or acc.is_empty()

    def get_balance(self, address: bytes) -> int:
        acc = self._accounts.get(address)
        return acc.balance if acc else 0

    def get_nonce(self, address: bytes) -> int:
        acc = self._accounts.get(address)
        return acc.nonce if acc else 0

    def get_code(self, address: bytes) -> bytes:
        acc = self._accounts.get(address)
        return acc.code if acc else b""

    def get_code_hash(self, address: bytes) -> bytes:
        acc = self._accounts.get(address)
        if acc is None:
            return ZERO32
        if not acc.code:
            return EMPTY_CODE_HASH
        h = self._code_hash.get(acc.code)
        if h is None:
            h = self._code_hash[acc.code] = keccak(acc.code)
        return h

    def get_storage(self, address: bytes, key: bytes) -> bytes:
        acc = self._accounts.get(address)
        if acc is None:
            return ZERO32
        return acc.storage.get(bytes(key), ZERO32)

    def addresses(self) -> list[bytes]:
        return sorted(self._accounts)

    def get_account(self, address: bytes) -> Account | None:
        acc = self._accounts.get(address)
        return acc.copy() if acc else None

    # --- writes --------------------------------------------------------------------------
    def _account(self, address: bytes) -> Account:
        acc = self._accounts.get(address)
        if acc is None:
            address = check_address(address)
            acc = self._accounts[address] = Account()
            self._journal.append((_ACCOUNT, address, None))
        return acc

    def _set_field(self, address: bytes, name: str, value: object) -> None:
        acc = self._account(address)
        self._journal.append((_FIELD, bytes(address), name, getattr(acc, name)))
        setattr(acc, name, value)

    def set_balance(self, address: bytes, value: int) -> None:
        if not 0 <= value < UINT256_LIMIT:
            raise ValueError(f"balance {value} out of range")
        self._set_field(address, "balance", value)

    def set_nonce(self, address: bytes, value: int) -> None:
        if not 0 <= value < 1 << 64:
            raise ValueError(f"nonce {value} out of range")
        self._set_field(address, "nonce", value)

    def set_code(self, address: bytes, code: bytes) -> None:
        self._set_field(address, "code", bytes(code))

    def set_storage(self, address: bytes, key: bytes, value: bytes) -> None:
        key = check_word(key, "key")
        value = check_word(value, "value")
        acc = self._account(address)
        self._journal.append((_SLOT, bytes(address), key, acc.storage.get(key)))
        if value == ZERO32:
            acc.storage.pop(key, None)
        else:
            acc.storage[key] = value

    def create_account(self, address: bytes) -> None:
        address = check_address(address)
        old = self._accounts.get(address)
        self._journal.append((_ACCOUNT, address, old))
        self._accounts[address] = Account(balance=old.balance if old else 0)

    def delete_account(self, address: bytes) -> None:
        old = self._accounts.pop(bytes(address), None)
        if old is not None:
            self._journal.append((_ACCOUNT, bytes(address), old))

    def touch(self, address: bytes) -> None:
        address = check_address(address)
        if address not in self._touched:
            self._touched.add(address)
            self._journal.append((_TOUCH, address))

    def touched(self) -> frozenset[bytes]:
        return frozenset(self._touched)

    # --- journal -------------------------------------------------------------------------
    def snapshot(self) -> int:
        self._snapshots.append(len(self._journal))
        return len(self._snapshots) - 1

    def _check_snapshot(self, snapshot: int) -> None:
        if not 0 <= snapshot < len(self._snapshots):
            raise ValueError(f"snapshot {snapshot} is not live")

    def revert(self, snapshot: int) -> None:
        self._check_snapshot(snapshot)
        mark = self._snapshots[snapshot]
        del self._snapshots[snapshot:]
        journal, accounts = self._journal, self._accounts
        while len(journal) > mark:
            entry = journal.pop()
            kind, address = entry[0], entry[1]
            if kind == _ACCOUNT:
                if entry[2] is None:
                    accounts.pop(address, None)
                else:
                    accounts[address] = entry[2]
            elif kind == _FIELD:
                setattr(accounts[address], entry[2], entry[3])
            elif kind == _SLOT:
                storage = accounts[address].storage
                if entry[3] is None:
                    storage.pop(entry[2], None)
                else:
                    storage[entry[2]] = entry[3]
            else:
                self._touched.discard(address)

    def commit(self, snapshot: int) -> None:
        self._check_snapshot(snapshot)
        del self._snapshots[snapshot:]
        if not self._snapshots:
            self._journal.clear()  # nothing can revert past here any more
