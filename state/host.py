"""StateHost: the EVMC Host of one transaction over a StateBackend.

Nested calls and creates re-enter the VM it was given (by default the engine,
`ewasm.execute`); every frame runs under
a snapshot of the backend and of the transaction's substate (logs, refund counter,
self-destructed accounts), committed on success and reverted otherwise. Message
convention: EVMC 10+ (`recipient` = the account acted on, `code_address` = whose code
runs), which is what the engine sends for CALLCODE and DELEGATECALL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import rlp
from eth_hash.auto import keccak

import ewasm
from evmc_bridge import (
    AccessStatus,
    CallKind,
    Message,
    Result,
    Revision,
    StatusCode,
    StorageStatus,
    TxContext,
)
from evmc_bridge.abc import VM, CodeLoader
from evmc_bridge.constants import ZERO_BYTES32
from evmc_bridge.forks import rules

from .backend import Log, StateBackend


def create_address(sender: bytes, nonce: int) -> bytes:
    """CREATE's address: keccak256(rlp([sender, nonce]))[12:]."""
    return keccak(rlp.encode([sender, nonce]))[12:]


class StateHost:
    """Implements evmc_bridge.Host for one transaction.

    vm: runs every frame (default: the engine, `ewasm.execute`; any EVMC VM loaded with
    `evmc_bridge.load_vm` fits); engine_options are passed to it as keywords.
    max_code_size: the largest code a CREATE may deploy ("fork": the revision's EIP-170
    limit; None: none)."""

    def __init__(self, backend: StateBackend, tx_context: TxContext, revision: Revision, *,
                 block_hash: Callable[[int], bytes] | None = None,
                 engine_options: dict[str, Any] | None = None,
                 loader: CodeLoader | None = None, vm: VM | None = None,
                 max_code_size: int | None | str = "fork") -> None:
        self.backend = backend
        # The largest code a CREATE may deploy: the fork's (EIP-170 from Spurious Dragon),
        # None for no limit (as the Ewasm testnet), or a number of bytes (a chain option).
        self.max_code_size = rules(revision).max_code_size if max_code_size == "fork" \
            else max_code_size
        self.loader = loader
        self.vm: VM = ewasm.execute if vm is None else vm
        self.tx_context = tx_context
        self.revision = revision
        self.rules = rules(revision)
        self._block_hash = block_hash
        self.engine_options = dict(engine_options or {})
        self.logs: list[Log] = []
        self.refund = 0
        self.selfdestructs: list[bytes] = []  # in order, distinct
        self._accessed: set[bytes] = set()
        self._accessed_slots: set[tuple[bytes, bytes]] = set()

    # --- substate journal ---------------------------------------------------------------
    def _snapshot(self) -> tuple[int, int, int, int]:
        return self.backend.snapshot(), len(self.logs), self.refund, len(self.selfdestructs)

    def _revert(self, snap: tuple[int, int, int, int]) -> None:
        self.backend.revert(snap[0])
        del self.logs[snap[1]:]
        self.refund = snap[2]
        del self.selfdestructs[snap[3]:]

    def _commit(self, snap: tuple[int, int, int, int]) -> None:
        self.backend.commit(snap[0])

    # --- Host: accounts and storage -------------------------------------------------------
    def account_exists(self, address: bytes) -> bool:
        if self.rules.eip161:
            return not self.backend.is_empty(address)  # empty = non-existent
        return self.backend.exists(address)

    def get_storage(self, address: bytes, key: bytes) -> bytes:
        return self.backend.get_storage(address, key)

    def set_storage(self, address: bytes, key: bytes, value: bytes) -> StorageStatus:
        current = self.backend.get_storage(address, key)
        if current == value:
            return StorageStatus.ASSIGNED
        self.backend.set_storage(address, key, value)
        if value == ZERO_BYTES32:
            self.refund += self.rules.sstore_clear_refund  # no net metering (EIP-1283/2200)
            return StorageStatus.DELETED
        return StorageStatus.ADDED if current == ZERO_BYTES32 else StorageStatus.MODIFIED

    def get_balance(self, address: bytes) -> int:
        return self.backend.get_balance(address)

    def get_code_size(self, address: bytes) -> int:
        return len(self.backend.get_code(address))

    def get_code_hash(self, address: bytes) -> bytes:
        if not self.account_exists(address):
            return ZERO_BYTES32
        return self.backend.get_code_hash(address)

    def copy_code(self, address: bytes, offset: int, size: int) -> bytes:
        return self.backend.get_code(address)[offset:offset + size]

    def selfdestruct(self, address: bytes, beneficiary: bytes) -> bool:
        balance = self.backend.get_balance(address)
        self.backend.set_balance(address, 0)
        self.backend.add_balance(beneficiary, balance)
        self.backend.touch(beneficiary)
        if address in self.selfdestructs:
            return False
        self.selfdestructs.append(address)
        return True

    def get_tx_context(self) -> TxContext:
        return self.tx_context

    def get_block_hash(self, number: int) -> bytes:
        return self._block_hash(number) if self._block_hash else ZERO_BYTES32

    def emit_log(self, address: bytes, data: bytes, topics: Sequence[bytes]) -> None:
        self.logs.append(Log(bytes(address), tuple(bytes(t) for t in topics), bytes(data)))

    def access_account(self, address: bytes) -> AccessStatus:
        if address in self._accessed:
            return AccessStatus.WARM
        self._accessed.add(address)
        return AccessStatus.COLD

    def access_storage(self, address: bytes, key: bytes) -> AccessStatus:
        if (address, key) in self._accessed_slots:
            return AccessStatus.WARM
        self._accessed_slots.add((address, key))
        return AccessStatus.COLD

    # --- Host: calls ----------------------------------------------------------------------
    def call(self, message: Message) -> Result:
        if message.kind in (CallKind.CREATE, CallKind.CREATE2):
            if message.kind == CallKind.CREATE2:
                return Result.make(StatusCode.REJECTED, message="CREATE2 is not supported")
            # A contract's CREATE: the creator's nonce moves before the child's snapshot,
            # so it stays bumped when the child fails.
            nonce = self.backend.get_nonce(message.sender)
            self.backend.set_nonce(message.sender, nonce + 1)
            return self.create(message, create_address(message.sender, nonce))
        return self.message_call(message)

    def _execute(self, message: Message, code: bytes, sent: bytes | None = None) -> Result:
        if sent is None or sent is code:
            return self.vm(self, self.revision, message, code, **self.engine_options)
        return self.vm(self, self.revision, message, code, sent_code=sent,
                       **self.engine_options)

    def message_call(self, message: Message) -> Result:
        backend = self.backend
        snap = self._snapshot()
        if message.kind == CallKind.CALL or message.kind == CallKind.CALLCODE:
            if message.value:
                if backend.get_balance(message.sender) < message.value:
                    self._revert(snap)
                    return Result.make(StatusCode.INSUFFICIENT_BALANCE)
                backend.add_balance(message.sender, -message.value)
                backend.add_balance(message.recipient, message.value)
            backend.touch(message.recipient)
        code = backend.get_code(message.code_address)
        if not code:
            self._commit(snap)
            return Result.make(StatusCode.SUCCESS, message.gas)
        result = self._execute(message, code)
        if result.status == StatusCode.SUCCESS:
            self._commit(snap)
        else:
            self._revert(snap)
        return result

    def create(self, message: Message, address: bytes) -> Result:
        """Deploy at `address` (the caller derived it and moved the sender's nonce)."""
        backend = self.backend
        snap = self._snapshot()
        if backend.get_code(address) or backend.get_nonce(address):
            self._revert(snap)
            return Result.make(StatusCode.FAILURE, message="address collision")
        backend.create_account(address)
        if self.rules.eip161:
            backend.set_nonce(address, 1)
        backend.touch(address)
        if message.value:
            if backend.get_balance(message.sender) < message.value:
                self._revert(snap)
                return Result.make(StatusCode.INSUFFICIENT_BALANCE)
            backend.add_balance(message.sender, -message.value)
            backend.add_balance(address, message.value)
        child = Message(kind=message.kind, flags=message.flags, depth=message.depth,
                        gas=message.gas, recipient=address, sender=message.sender,
                        input=b"", value=message.value, code_address=address)
        if not message.input:
            # No init code: nothing runs, the account is created with no code (as an EVM).
            self._commit(snap)
            return Result.make(StatusCode.SUCCESS, message.gas, create_address=address)
        init = message.input
        if self.loader is not None:
            try:
                init = self.loader.init_code(init)
            except ewasm.WasmError as exc:
                self._revert(snap)
                return Result.make(StatusCode.CONTRACT_VALIDATION_FAILURE,
                                   message=f"init code: {type(exc).__name__}: {exc}")
        result = self._execute(child, init, message.input)
        if result.status != StatusCode.SUCCESS:
            self._revert(snap)
            return Result.make(result.status, result.gas_left, result.output,
                               message=result.message)
        code = result.output
        if self.loader is not None:
            try:
                code = self.loader.deployed_code(code)
            except ewasm.WasmError as exc:
                self._revert(snap)
                return Result.make(StatusCode.CONTRACT_VALIDATION_FAILURE,
                                   message=f"deployed code: {type(exc).__name__}: {exc}")
        deposit = self.rules.code_deposit_gas * len(code)
        limit = self.max_code_size
        if limit is not None and len(code) > limit:
            self._revert(snap)
            return Result.make(StatusCode.FAILURE, message=f"code of {len(code)} bytes exceeds "
                                                           f"the limit of {limit}")
        if result.gas_left < deposit:
            self._revert(snap)
            return Result.make(StatusCode.OUT_OF_GAS, message="not enough gas for code deposit")
        backend.set_code(address, code)
        self._commit(snap)
        return Result.make(StatusCode.SUCCESS, result.gas_left - deposit,
                           create_address=address)
