"""The state backend interface: accounts, balances, nonces, code and storage with
journaled snapshots. Everything above it (StateHost, transactions, the chain) speaks only
this interface, so the in-memory backend and a persistent one are interchangeable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import rlp
from eth_hash.auto import keccak

EMPTY_CODE_HASH = keccak(b"")
BLANK_ROOT = keccak(rlp.encode(b""))
ZERO32 = bytes(32)
UINT256_LIMIT = 1 << 256


@dataclass
class Account:
    nonce: int = 0
    balance: int = 0
    code: bytes = b""
    # 32-byte key -> 32-byte value; zero values are never stored.
    storage: dict[bytes, bytes] = field(default_factory=dict)

    def is_empty(self) -> bool:
        """EIP-161: no nonce, no balance, no code."""
        return self.nonce == 0 and self.balance == 0 and not self.code

    def copy(self) -> Account:
        return Account(self.nonce, self.balance, self.code, dict(self.storage))


class Log(NamedTuple):
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes


def check_address(address: bytes) -> bytes:
    if not isinstance(address, bytes | bytearray) or len(address) != 20:
        raise ValueError(f"an address is 20 bytes, got {address!r}")
    return bytes(address)


def check_word(word: bytes, what: str) -> bytes:
    if not isinstance(word, bytes | bytearray) or len(word) != 32:
        raise ValueError(f"a storage {what} is 32 bytes, got {word!r}")
    return bytes(word)


class StateBackend(ABC):
    """Accounts with journaled snapshots. An absent account reads as empty."""

    # --- reads ---------------------------------------------------------------------------
    @abstractmethod
    def exists(self, address: bytes) -> bool: ...

    def is_empty(self, address: bytes) -> bool:
        acc = self.get_account(address)
        return acc is None or acc.is_empty()

    @abstractmethod
    def get_balance(self, address: bytes) -> int: ...

    @abstractmethod
    def get_nonce(self, address: bytes) -> int: ...

    @abstractmethod
    def get_code(self, address: bytes) -> bytes: ...

    def get_code_hash(self, address: bytes) -> bytes:
        """keccak256 of the code; EMPTY_CODE_HASH without code; ZERO32 if absent."""
        if not self.exists(address):
            return ZERO32
        return keccak(self.get_code(address))

    @abstractmethod
    def get_storage(self, address: bytes, key: bytes) -> bytes: ...

    @abstractmethod
    def addresses(self) -> list[bytes]: ...

    @abstractmethod
    def get_account(self, address: bytes) -> Account | None: ...

    # --- writes (journaled; each creates the account if absent) ---------------------------
    @abstractmethod
    def set_balance(self, address: bytes, value: int) -> None: ...

    def add_balance(self, address: bytes, delta: int) -> None:
        new = self.get_balance(address) + delta
        if new < 0:
            raise ValueError(f"balance of 0x{bytes(address).hex()} would go negative")
        self.set_balance(address, new)

    @abstractmethod
    def set_nonce(self, address: bytes, value: int) -> None: ...

    @abstractmethod
    def set_code(self, address: bytes, code: bytes) -> None: ...

    @abstractmethod
    def set_storage(self, address: bytes, key: bytes, value: bytes) -> None: ...

    @abstractmethod
    def create_account(self, address: bytes) -> None:
        """Make it exist with no nonce, code or storage; a balance already there stays."""

    @abstractmethod
    def delete_account(self, address: bytes) -> None: ...

    @abstractmethod
    def touch(self, address: bytes) -> None:
        """Record the address as touched (EIP-161) without creating it."""

    @abstractmethod
    def touched(self) -> frozenset[bytes]: ...

    # --- journal -------------------------------------------------------------------------
    @abstractmethod
    def snapshot(self) -> int: ...

    @abstractmethod
    def revert(self, snapshot: int) -> None:
        """Undo everything since the snapshot; it and later snapshots become invalid."""

    @abstractmethod
    def commit(self, snapshot: int) -> None:
        """Keep the changes; an enclosing snapshot can still undo them."""

    # --- bulk ----------------------------------------------------------------------------
    def to_accounts(self) -> dict[bytes, Account]:
        return {a: self.get_account(a) for a in self.addresses()}

    @classmethod
    @abstractmethod
    def from_accounts(cls, accounts: Mapping[bytes, Account]) -> StateBackend: ...
