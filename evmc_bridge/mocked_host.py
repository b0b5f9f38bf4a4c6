"""A Python EVMC host for tests, modelled on EVMC's C++ `evmc::MockedHost`.

State is plain dicts the test fills in; everything the engine asks of the host is
recorded so that a test can check what was called, logged or destroyed. Unlike EVMC's
version, block hashes are per number (absent numbers hash to zero, which the EEI reads
as "unknown block"), and `call` can be answered per message through `call_handler`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eth_hash.auto import keccak

from .types import (
    ZERO_BYTES32,
    AccessStatus,
    Message,
    Result,
    StatusCode,
    StorageStatus,
    TxContext,
)

# EVMC's MockedHost treats the Byzantium precompiles as always warm (EIP-2929).
_PRECOMPILES = frozenset(i.to_bytes(20, "big") for i in range(1, 10))


@dataclass
class MockedAccount:
    nonce: int = 0
    balance: int = 0
    code: bytes = b""
    storage: dict[bytes, bytes] = field(default_factory=dict)


@dataclass
class MockedHost:
    """An in-memory EVMC host that records every effect an execution has on it."""

    accounts: dict[bytes, MockedAccount] = field(default_factory=dict)
    tx_context: TxContext = field(default_factory=TxContext)
    block_hashes: dict[int, bytes] = field(default_factory=dict)
    # Answer to `call`: the handler wins; without either the callee returns all its gas.
    call_result: Result | None = None
    call_handler: Callable[[Message], Result] | None = None

    recorded_calls: list[Message] = field(default_factory=list)
    recorded_logs: list[tuple[bytes, bytes, tuple[bytes, ...]]] = field(default_factory=list)
    recorded_selfdestructs: list[tuple[bytes, bytes]] = field(default_factory=list)
    recorded_block_hashes: list[int] = field(default_factory=list)
    recorded_account_accesses: list[bytes] = field(default_factory=list)
    warm_storage: set[tuple[bytes, bytes]] = field(default_factory=set)

    def _access(self, address: bytes) -> MockedAccount | None:
        self.recorded_account_accesses.append(address)
        return self.accounts.get(address)

    def account_exists(self, address: bytes) -> bool:
        return self._access(address) is not None

    def get_storage(self, address: bytes, key: bytes) -> bytes:
        account = self._access(address)
        return account.storage.get(key, ZERO_BYTES32) if account else ZERO_BYTES32

    def set_storage(self, address: bytes, key: bytes, value: bytes) -> StorageStatus:
        self.recorded_account_accesses.append(address)
        # Writing creates the account, as storage of a missing account would in a client.
        storage = self.accounts.setdefault(address, MockedAccount()).storage
        current = storage.get(key, ZERO_BYTES32)
        storage[key] = value
        if current == value:
            return StorageStatus.ASSIGNED
        if current == ZERO_BYTES32:
            return StorageStatus.ADDED
        if value == ZERO_BYTES32:
            return StorageStatus.DELETED
        return StorageStatus.MODIFIED

    def get_balance(self, address: bytes) -> int:
        account = self._access(address)
        return account.balance if account else 0

    def get_code_size(self, address: bytes) -> int:
        account = self._access(address)
        return len(account.code) if account else 0

    def get_code_hash(self, address: bytes) -> bytes:
        account = self._access(address)
        return keccak(account.code) if account else ZERO_BYTES32

    def copy_code(self, address: bytes, offset: int, size: int) -> bytes:
        account = self._access(address)
        return account.code[offset:offset + size] if account else b""

    def selfdestruct(self, address: bytes, beneficiary: bytes) -> bool:
        self.recorded_account_accesses.append(address)
        first = all(a != address for a, _ in self.recorded_selfdestructs)
        self.recorded_selfdestructs.append((address, beneficiary))
        return first

    def call(self, message: Message) -> Result:
        self.recorded_account_accesses.append(message.recipient)
        self.recorded_calls.append(message)
        if self.call_handler is not None:
            return self.call_handler(message)
        if self.call_result is not None:
            return self.call_result
        return Result.make(StatusCode.SUCCESS, message.gas)

    def get_tx_context(self) -> TxContext:
        return self.tx_context

    def get_block_hash(self, number: int) -> bytes:
        self.recorded_block_hashes.append(number)
        return self.block_hashes.get(number, ZERO_BYTES32)

    def emit_log(self, address: bytes, data: bytes, topics: Sequence[bytes]) -> None:
        self.recorded_logs.append((address, bytes(data), tuple(topics)))

    def access_account(self, address: bytes) -> AccessStatus:
        seen = address in self.recorded_account_accesses
        self.recorded_account_accesses.append(address)
        return AccessStatus.WARM if seen or address in _PRECOMPILES else AccessStatus.COLD

    def access_storage(self, address: bytes, key: bytes) -> AccessStatus:
        if (address, key) in self.warm_storage:
            return AccessStatus.WARM
        self.warm_storage.add((address, key))
        return AccessStatus.COLD


__all__ = ["MockedAccount", "MockedHost"]
