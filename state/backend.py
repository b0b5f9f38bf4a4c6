"""The state backend: the interface (evmc_bridge.abc's Account, Log, StateBackend,
PersistentBackend, re-exported here) and the validators every backend applies to what it
is given. Everything above it (StateHost, transactions, the state-test runner) speaks only
the interface, so the in-memory backend and a persistent one are interchangeable.
"""

from __future__ import annotations

from evmc_bridge.abc import Account, Log, PersistentBackend, StateBackend
from evmc_bridge.constants import (
    EMPTY_CODE_HASH,
    EMPTY_TRIE_ROOT,
    NONCE_LIMIT,
    UINT256_LIMIT,
    ZERO_BYTES32,
)

from .errors import InvalidStateValue

__all__ = ["EMPTY_CODE_HASH", "EMPTY_TRIE_ROOT", "NONCE_LIMIT", "UINT256_LIMIT",
           "ZERO_BYTES32", "Account", "Log", "PersistentBackend", "StateBackend",
           "check_account", "check_address", "check_bytes", "check_hash", "check_uint",
           "check_word"]


def check_address(address: bytes) -> bytes:
    """The address as bytes, or InvalidStateValue unless it is 20 bytes (bytes or bytearray)."""
    if not isinstance(address, bytes | bytearray) or len(address) != 20:
        raise InvalidStateValue(f"an address is 20 bytes (bytes or bytearray), got {address!r}")
    return bytes(address)


def check_hash(value: bytes, what: str) -> bytes:
    """The 32-byte value (a hash, a topic, a storage word) as bytes, or ValueError naming
    it as `what`."""
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise InvalidStateValue(f"{what} is 32 bytes (bytes or bytearray), got {value!r}")
    return bytes(value)


def check_word(word: bytes, what: str) -> bytes:
    """The storage key or value as bytes, or InvalidStateValue unless it is 32 bytes."""
    return check_hash(word, f"a storage {what}")


def check_bytes(value: bytes, what: str) -> bytes:
    """The value as bytes, or InvalidStateValue unless it is bytes or a bytearray."""
    if not isinstance(value, bytes | bytearray):
        raise InvalidStateValue(f"{what} must be bytes, got {type(value).__name__}")
    return bytes(value)


def check_uint(value: int, what: str, limit: int) -> int:
    """The value, or InvalidStateValue unless it is an int (not a bool) in [0, limit)."""
    if type(value) is not int or not 0 <= value < limit:
        raise InvalidStateValue(f"{what} must be an int in [0, {limit:#x}), got {value!r}")
    return value


def check_account(account: Account) -> Account:
    """A validated, normalised copy: bytes everywhere, ranges checked, zero slots dropped."""
    if not isinstance(account, Account):
        raise InvalidStateValue(f"expected an Account, got {type(account).__name__}")
    if not 0 <= account.nonce < NONCE_LIMIT:
        raise InvalidStateValue(f"nonce {account.nonce} out of range [0, 2**64)")
    if not 0 <= account.balance < UINT256_LIMIT:
        raise InvalidStateValue(f"balance {account.balance} out of range [0, 2**256)")
    code = check_bytes(account.code, "code")
    storage = {}
    for key, value in account.storage.items():
        key, value = check_word(key, "key"), check_word(value, "value")
        if value != ZERO_BYTES32:
            storage[key] = value
    return Account(account.nonce, account.balance, code, storage)
