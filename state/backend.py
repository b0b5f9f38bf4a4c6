"""The state backend interface: accounts, balances, nonces, code and storage with
journaled snapshots. Everything above it (StateHost, transactions, the state-test runner)
speaks only this interface, so the in-memory backend and a persistent one are
interchangeable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import rlp
from eth_hash.auto import keccak

EMPTY_CODE_HASH = keccak(b"")  # c5d24601...5d85a470
BLANK_ROOT = keccak(rlp.encode(b""))  # 56e81f17...5e363b421, the root of an empty trie
ZERO32 = bytes(32)
UINT256_LIMIT = 1 << 256
# EIP-2681 caps the nonce at 2**64 - 1; a larger one could not be RLP-decoded by clients.
NONCE_LIMIT = 1 << 64


@dataclass
class Account:
    nonce: int = 0
    balance: int = 0
    code: bytes = b""
    # 32-byte key -> 32-byte value; zero values are never stored, so equality of two
    # accounts is equality of their states.
    storage: dict[bytes, bytes] = field(default_factory=dict)

    def is_empty(self) -> bool:
        """EIP-161: no nonce, no balance, no code (storage does not count)."""
        return self.nonce == 0 and self.balance == 0 and not self.code

    def copy(self) -> Account:
        """A copy whose storage dict can be changed without touching this one."""
        return Account(self.nonce, self.balance, self.code, dict(self.storage))


class Log(NamedTuple):
    address: bytes  # 20 bytes
    topics: tuple[bytes, ...]  # 32 bytes each
    data: bytes


def check_address(address: bytes) -> bytes:
    """The address as bytes, or ValueError unless it is 20 bytes (bytes or bytearray)."""
    if not isinstance(address, bytes | bytearray) or len(address) != 20:
        raise ValueError(f"an address is 20 bytes (bytes or bytearray), got {address!r}")
    return bytes(address)


def check_hash(value: bytes, what: str) -> bytes:
    """The 32-byte value (a hash, a topic, a storage word) as bytes, or ValueError naming
    it as `what`."""
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise ValueError(f"{what} is 32 bytes (bytes or bytearray), got {value!r}")
    return bytes(value)


def check_word(word: bytes, what: str) -> bytes:
    """The storage key or value as bytes, or ValueError unless it is 32 bytes."""
    return check_hash(word, f"a storage {what}")


def check_bytes(value: bytes, what: str) -> bytes:
    """The value as bytes, or ValueError unless it is bytes or a bytearray."""
    if not isinstance(value, bytes | bytearray):
        raise ValueError(f"{what} must be bytes, got {type(value).__name__}")
    return bytes(value)


def check_uint(value: int, what: str, limit: int) -> int:
    """The value, or ValueError unless it is an int (not a bool) in [0, limit)."""
    if type(value) is not int or not 0 <= value < limit:
        raise ValueError(f"{what} must be an int in [0, {limit:#x}), got {value!r}")
    return value


def check_account(account: Account) -> Account:
    """A validated, normalised copy: bytes everywhere, ranges checked, zero slots dropped."""
    if not isinstance(account, Account):
        raise ValueError(f"expected an Account, got {type(account).__name__}")
    if not 0 <= account.nonce < NONCE_LIMIT:
        raise ValueError(f"nonce {account.nonce} out of range [0, 2**64)")
    if not 0 <= account.balance < UINT256_LIMIT:
        raise ValueError(f"balance {account.balance} out of range [0, 2**256)")
    code = check_bytes(account.code, "code")
    storage = {}
    for key, value in account.storage.items():
        key, value = check_word(key, "key"), check_word(value, "value")
        if value != ZERO32:
            storage[key] = value
    return Account(account.nonce, account.balance, code, storage)


class StateBackend(ABC):
    """Accounts, balances, nonces, code, storage, with journaled snapshots.

    An absent account reads as empty (balance 0, nonce 0, no code, zero storage). Every
    write creates the account if absent and is journaled, so `revert` undoes it.
    Addresses are 20 bytes and storage keys and values 32 bytes (bytes or bytearray);
    anything else, and a snapshot id that is not live, raises ValueError.
    """

    # --- reads ---------------------------------------------------------------------------
    @abstractmethod
    def exists(self, address: bytes) -> bool:
        """Present in the state, even if empty."""

    def is_empty(self, address: bytes) -> bool:
        """EIP-161 emptiness; an absent account is empty."""
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
    def get_storage(self, address: bytes, key: bytes) -> bytes:
        """32 bytes; ZERO32 when unset."""

    @abstractmethod
    def addresses(self) -> list[bytes]:
        """Every existing address, sorted."""

    @abstractmethod
    def get_account(self, address: bytes) -> Account | None:
        """A copy (its storage dict too), None if absent."""

    # --- writes --------------------------------------------------------------------------
    @abstractmethod
    def set_balance(self, address: bytes, value: int) -> None:
        """ValueError unless value is an int (not a bool or float) in [0, 2**256)."""

    def add_balance(self, address: bytes, delta: int) -> None:
        """delta may be negative; a result out of range raises and changes nothing."""
        if type(delta) is not int:
            raise ValueError(f"balance delta {delta!r} is not an int")
        new = self.get_balance(address) + delta
        if new < 0:
            raise ValueError(f"balance of 0x{bytes(address).hex()} would go negative "
                             f"({new - delta} + {delta})")
        self.set_balance(address, new)

    @abstractmethod
    def set_nonce(self, address: bytes, value: int) -> None:
        """ValueError unless value is an int (not a bool or float) in [0, 2**64)."""

    @abstractmethod
    def set_code(self, address: bytes, code: bytes) -> None: ...

    @abstractmethod
    def set_storage(self, address: bytes, key: bytes, value: bytes) -> None:
        """An all-zero value deletes the slot."""

    @abstractmethod
    def create_account(self, address: bytes) -> None:
        """Make it exist with no nonce, code or storage; a balance already there stays
        (CREATE onto a pre-funded address)."""

    @abstractmethod
    def delete_account(self, address: bytes) -> None:
        """Remove it entirely (self-destruct, EIP-161 clean-up); absent is a no-op."""

    @abstractmethod
    def touch(self, address: bytes) -> None:
        """Record the address as touched (EIP-161) without creating it."""

    @abstractmethod
    def touched(self) -> frozenset[bytes]: ...

    @abstractmethod
    def clear_touched(self) -> None:
        """Forget the touched set (between the transactions of a block or chain).

        Allowed while snapshots are live: the touches are forgotten for good, and a later
        revert does not bring back those made before the call."""

    # --- journal -------------------------------------------------------------------------
    @abstractmethod
    def snapshot(self) -> int:
        """An id for the current state; snapshots nest."""

    @abstractmethod
    def revert(self, snapshot: int) -> None:
        """Undo everything since the snapshot (touches, creations and deletions too);
        it and later snapshots become invalid."""

    @abstractmethod
    def commit(self, snapshot: int) -> None:
        """Keep the changes and forget the snapshot and later ones; an enclosing
        snapshot can still undo them."""

    # --- bulk ----------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def from_accounts(cls, accounts: Mapping[bytes, Account]) -> StateBackend:
        """A backend holding copies of the accounts; nothing journaled or touched."""

    def to_accounts(self) -> dict[bytes, Account]:
        """Copies of every account, by address in sorted order."""
        out = {}
        for address in self.addresses():
            acc = self.get_account(address)
            assert acc is not None  # addresses() lists only existing accounts
            out[address] = acc
        return out


class PersistentBackend(StateBackend):
    """A StateBackend over a committed state: every change is pending until
    `commit_state` makes the pending changes the committed state, or `discard` drops them.

    Beside the state it keeps named values (`set_meta`), pending and committed with it, for
    whatever the application must keep consistent with the state (its configuration, say).
    """

    @abstractmethod
    def commit_state(self) -> None:
        """Make the pending changes (state and meta values) the committed state, all or
        nothing, and clear the touched set.

        ValueError, with nothing committed, if a snapshot is live. If writing fails,
        nothing is committed and the changes stay pending: retry, or discard()."""

    @abstractmethod
    def discard(self) -> None:
        """Drop every pending change (state and meta values), end every live snapshot and
        clear the touched set."""

    @abstractmethod
    def state_root(self) -> bytes:
        """The state root of the state as it stands (pending changes included); equal to
        state.root.state_root(self)."""

    @abstractmethod
    def set_meta(self, key: str, value: bytes) -> None:
        """Set a named value: pending, as the state changes are (get_meta sees it at once).
        ValueError unless key is a str and value bytes."""

    @abstractmethod
    def get_meta(self, key: str) -> bytes | None:
        """The named value (pending one first); None if unset. ValueError unless key is a
        str."""

    @abstractmethod
    def close(self) -> None:
        """Release the backend; pending changes are dropped."""
