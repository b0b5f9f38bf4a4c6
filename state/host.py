"""StateHost: the EVMC Host of one transaction over a StateBackend.

One host, two VMs. EVMC has no handoff from one VM to another, so the host chooses the
VM of every frame by its code, before any VM sees it (both py-evm and revm run
`\\0asm...` as STOP, so code given to the wrong VM would "succeed"): code that starts
with `\\0asm` goes to the Wasm VM (by default the engine, `ewasm.execute`), anything
else to the EVM (by default py-evm through `state.evm.execute_evm`; `evm=None` turns it
off, and the Wasm VM then refuses EVM code as before). The rule is geth's Ewasm fork's
4-byte prefix, not Hera's 8-byte preamble: a 4-7 byte `\\0asm` blob is broken Wasm (the
engine fails it), not EVM code starting with STOP. Nested calls of either VM come back
here, so Wasm -> EVM -> Wasm nests like any call. The precompiles (state.precompiles,
by revision) are the host's, for frames of both VMs.

Every frame runs under a snapshot of the backend and of the transaction's substate
(logs, refund counter, self-destructed accounts), committed on success and reverted
otherwise: the only journal (the EVM keeps none of its own). Message convention: EVMC
10+ (`recipient` = the account acted on, `code_address` = whose code runs), which is
what both VMs send for CALLCODE and DELEGATECALL.

Refunds: a Wasm frame's are counted here when it clears a slot (Hera reports none; the
aleth host that filled the Ewasm state tests counted them the same way); an EVM frame's
are its own, EVMC's `Result.gas_refund`, added when the frame succeeds.
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
from evmc_bridge.constants import NONCE_LIMIT, ZERO_BYTES32
from evmc_bridge.forks import rules
from ewasm.contract import WASM_MAGIC

from . import precompiles as _precompiles
from .backend import Log, StateBackend

_RIPEMD160 = (3).to_bytes(20, "big")


def create_address(sender: bytes, nonce: int) -> bytes:
    """CREATE's address: keccak256(rlp([sender, nonce]))[12:]."""
    return keccak(rlp.encode([sender, nonce]))[12:]


def create2_address(sender: bytes, salt: bytes, init_code: bytes) -> bytes:
    """CREATE2's address (EIP-1014): keccak256(0xff ++ sender ++ salt ++
    keccak256(init_code))[12:], salt as 32 big-endian bytes (EVMC's create2_salt), the
    init code as its sender sent it (before any metering)."""
    return keccak(b"\xff" + bytes(sender) + bytes(salt) + keccak(bytes(init_code)))[12:]


def is_wasm(code: bytes) -> bool:
    """The dispatch rule: Wasm code starts with `\\0asm` (geth's Ewasm fork)."""
    return code[:4] == WASM_MAGIC


def _default_evm() -> VM:
    from .evm import execute_evm

    return execute_evm


class StateHost:
    """Implements evmc_bridge.Host for one transaction.

    vm: runs the Wasm frames (default: the engine, `ewasm.execute`; any EVMC VM loaded
    with `evmc_bridge.load_vm` fits); engine_options are passed to it as keywords.
    evm: runs the frames whose code is not Wasm ("default": py-evm through
    `state.evm.execute_evm`; None: none, the Wasm VM runs every frame and refuses EVM
    code, as before the EVM; or any EVMC VM). loader: prepares the Wasm code of a CREATE
    (with the EVM off, all code, as before). max_code_size: the largest code a CREATE may
    deploy ("fork": the revision's EIP-170 limit; None: none)."""

    def __init__(self, backend: StateBackend, tx_context: TxContext, revision: Revision, *,
                 block_hash: Callable[[int], bytes] | None = None,
                 engine_options: dict[str, Any] | None = None,
                 loader: CodeLoader | None = None, vm: VM | None = None,
                 evm: VM | None | str = "default",
                 max_code_size: int | None | str = "fork") -> None:
        self.backend = backend
        # The largest code a CREATE may deploy: the fork's (EIP-170 from Spurious Dragon),
        # None for no limit (as the Ewasm testnet), or a number of bytes (a chain option).
        self.max_code_size = rules(revision).max_code_size if max_code_size == "fork" \
            else max_code_size
        self.loader = loader
        self.vm: VM = ewasm.execute if vm is None else vm
        self.evm: VM | None = _default_evm() if evm == "default" else evm
        self.tx_context = tx_context
        self.revision = revision
        self.rules = rules(revision)
        self.precompiles = _precompiles.precompiles(revision)
        self._block_hash = block_hash
        self.engine_options = dict(engine_options or {})
        self.logs: list[Log] = []
        self.refund = 0
        self.selfdestructs: list[bytes] = []  # in order, distinct
        # EIP-2929's accessed addresses and slots. Journaled like the state: a frame that
        # reverts forgets what it warmed (the log holds each addition, the snapshot its
        # length). Only EVM frames read them: Wasm frames pay Hera's gas at every revision.
        self._accessed: set[bytes] = set()
        self._accessed_slots: set[tuple[bytes, bytes]] = set()
        self._access_log: list = []
        # Each written slot's value when the transaction began (EIP-1283/2200 need it):
        # taken before its first write, which no revert can precede, so never journaled.
        self._original: dict[tuple[bytes, bytes], bytes] = {}
        # EIP-716: once RIPEMD-160 (0x03) is touched, the touch survives any revert
        # (a 2016 consensus quirk that every client keeps).
        self._sticky_touch = False
        self.transient_storage: dict = {}  # EIP-1153, for EVM frames that have it

    # --- substate journal ---------------------------------------------------------------
    def _snapshot(self) -> tuple[int, int, int, int, int]:
        return (self.backend.snapshot(), len(self.logs), self.refund,
                len(self.selfdestructs), len(self._access_log))

    def _revert(self, snap: tuple[int, int, int, int, int]) -> None:
        self.backend.revert(snap[0])
        del self.logs[snap[1]:]
        self.refund = snap[2]
        del self.selfdestructs[snap[3]:]
        log = self._access_log
        if len(log) > snap[4]:
            for entry in log[snap[4]:]:
                if type(entry) is tuple:
                    self._accessed_slots.discard(entry)
                else:
                    self._accessed.discard(entry)
            del log[snap[4]:]
        if self._sticky_touch:
            self.backend.touch(_RIPEMD160)

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
        self._original.setdefault((bytes(address), bytes(key)), current)
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
        # The beneficiary is paid first, then the balance zeroed: a contract that names
        # itself burns its balance (geth, aleth, py-evm).
        balance = self.backend.get_balance(address)
        self.backend.add_balance(beneficiary, balance)
        self.backend.set_balance(address, 0)
        self.backend.touch(beneficiary)
        if beneficiary == _RIPEMD160 and self.rules.eip161:
            self._sticky_touch = True
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
        address = bytes(address)
        self._accessed.add(address)
        self._access_log.append(address)
        return AccessStatus.COLD

    def access_storage(self, address: bytes, key: bytes) -> AccessStatus:
        slot = (bytes(address), bytes(key))
        if slot in self._accessed_slots:
            return AccessStatus.WARM
        self._accessed_slots.add(slot)
        self._access_log.append(slot)
        return AccessStatus.COLD

    def warm_transaction(self, sender: bytes, target: bytes,
                         access_list: Sequence[tuple[bytes, Sequence[bytes]]] = ()) -> None:
        """EIP-2929's and EIP-2930's warm start of a transaction (from Berlin): the sender,
        the recipient or the new contract, the precompiles and the access list."""
        if not self.rules.access_lists:
            return
        self.access_account(sender)
        self.access_account(target)
        for address in self.precompiles:
            self.access_account(address)
        for address, keys in access_list:
            self.access_account(address)
            for key in keys:
                self.access_storage(address, key)

    # --- extensions the EVM uses when its host has them (state.evm._HostState) -----------
    def get_code(self, address: bytes) -> bytes:
        """The whole code of an account in one call."""
        return self.backend.get_code(address)

    def get_nonce(self, address: bytes) -> int:
        return self.backend.get_nonce(address)

    def get_original_storage(self, address: bytes, key: bytes) -> bytes:
        """The slot's value when the transaction began."""
        original = self._original.get((bytes(address), bytes(key)))
        return self.backend.get_storage(address, key) if original is None else original

    def write_storage(self, address: bytes, key: bytes, value: bytes) -> None:
        """An EVM frame's SSTORE: the write alone (the EVM prices it and counts its
        refunds itself)."""
        backend = self.backend
        current = backend.get_storage(address, key)
        if current != value:
            self._original.setdefault((bytes(address), bytes(key)), current)
            backend.set_storage(address, key, value)

    # --- Host: calls ----------------------------------------------------------------------
    def call(self, message: Message) -> Result:
        kind = message.kind
        if kind == CallKind.CREATE or kind == CallKind.CREATE2:
            # A contract's CREATE: the creator's nonce moves before the child's snapshot,
            # so it stays bumped when the child fails.
            sender = message.sender
            nonce = self.backend.get_nonce(sender)
            if nonce >= NONCE_LIMIT - 1:  # EIP-2681: a nonce never reaches 2**64 - 1
                return Result.make(StatusCode.FAILURE, message="creator's nonce at its "
                                                               "maximum")
            self.backend.set_nonce(sender, nonce + 1)
            if kind == CallKind.CREATE2:
                address = create2_address(sender, message.create2_salt, message.input)
            else:
                address = create_address(sender, nonce)
            if self.rules.access_lists:
                # EIP-2929: warm before the child's snapshot, so it stays warm when the
                # creation fails (geth's evm.create).
                self.access_account(address)
            return self.create(message, address)
        return self.message_call(message)

    def _execute(self, message: Message, code: bytes, sent: bytes | None = None) -> Result:
        evm = self.evm
        if evm is not None and code[:4] != WASM_MAGIC:
            result = evm(self, self.revision, message, code)
            if result.gas_refund and result.status == StatusCode.SUCCESS:
                self.refund += result.gas_refund
            return result
        if sent is None or sent is code:
            return self.vm(self, self.revision, message, code, **self.engine_options)
        return self.vm(self, self.revision, message, code, sent_code=sent,
                       **self.engine_options)

    def _prepare(self, code: bytes, deployed: bool) -> bytes:
        """The loader's form of code (Wasm only when the EVM is on: EVM code has nothing
        to meter or compile)."""
        loader = self.loader
        if loader is None or (self.evm is not None and code[:4] != WASM_MAGIC):
            return code
        return loader.deployed_code(code) if deployed else loader.init_code(code)

    def _prepare_or_fail(self, code: bytes, deployed: bool, snap: tuple) -> bytes | Result:
        """_prepare's code, or (the frame's changes undone) the failure that refuses it."""
        try:
            return self._prepare(code, deployed)
        except ewasm.WasmError as exc:
            self._revert(snap)
            what = "deployed code" if deployed else "init code"
            return Result.make(StatusCode.CONTRACT_VALIDATION_FAILURE,
                               message=f"{what}: {type(exc).__name__}: {exc}")

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
        # Every call touches the account it acts on (EIP-161), STATICCALL's too (geth and
        # py-evm: a zero-value transfer).
        backend.touch(message.recipient)
        if message.recipient == _RIPEMD160 and self.rules.eip161:
            self._sticky_touch = True
        precompile = self.precompiles.get(message.code_address)
        if precompile is not None:
            result = _precompiles.run(precompile, message.input, message.gas)
        else:
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
        # EIP-684, and EIP-7610's storage rule (every client applies it at every fork).
        if backend.get_code(address) or backend.get_nonce(address) or \
                backend.has_storage(address):
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
                        input=b"", value=message.value, create2_salt=message.create2_salt,
                        code_address=address)
        if not message.input:
            # No init code: nothing runs, the account is created with no code (as an EVM).
            self._commit(snap)
            return Result.make(StatusCode.SUCCESS, message.gas, create_address=address)
        init = self._prepare_or_fail(message.input, False, snap)
        if isinstance(init, Result):
            return init
        result = self._execute(child, init, message.input)
        if result.status != StatusCode.SUCCESS:
            self._revert(snap)
            return Result.make(result.status, result.gas_left, result.output,
                               message=result.message)
        code = self._prepare_or_fail(result.output, True, snap)
        if isinstance(code, Result):
            return code
        deposit = self.rules.code_deposit_gas * len(code)
        limit = self.max_code_size
        if limit is not None and len(code) > limit:
            self._revert(snap)
            return Result.make(StatusCode.FAILURE, message=f"code of {len(code)} bytes exceeds "
                                                           f"the limit of {limit}")
        if self.rules.eip3541 and code[:1] == b"\xef":
            self._revert(snap)
            return Result.make(StatusCode.FAILURE, message="new code starts with 0xEF "
                                                           "(EIP-3541)")
        if result.gas_left < deposit:
            self._revert(snap)
            return Result.make(StatusCode.OUT_OF_GAS, message="not enough gas for code deposit")
        backend.set_code(address, code)
        self._commit(snap)
        return Result.make(StatusCode.SUCCESS, result.gas_left - deposit,
                           create_address=address)
