"""The EVM: py-evm 0.12's interpreter as an EVMC VM (`execute_evm`) over any Host.

EVMC has no handoff from one VM to another, so the host dispatches every frame by its
code (state.host: `\\0asm` to the Wasm engine, anything else here), and everything a
frame does beyond its own stack and memory goes back through the Host interface, as
for the Wasm engine:

* the account reads of the interpreter (balance, code, storage, existence, code hash)
  are Host calls, through `_HostState`, the object py-evm's opcodes see as their state;
* SSTORE writes through `Host.set_storage`; a frame's refunds are its own gas meter's
  and come back as `Result.gas_refund` (the host adds them when the frame succeeds);
* CALL, CALLCODE, DELEGATECALL, STATICCALL, CREATE and CREATE2 become EVMC messages to
  `Host.call`, so a child may run on either VM; the host moves value, bumps the
  creator's nonce, derives the new address and checks for collisions (py-evm's CREATE
  would do those itself: here it does not);
* LOG writes through `Host.emit_log`, SELFDESTRUCT through `Host.selfdestruct` (which
  moves the balance and touches the beneficiary).

py-evm's own database, journal, message application and finaliser are never used: the
host's frame snapshot is the only journal, so nothing can disagree with it. Precompiles
are the host's too (a call to one is a message like any other).

`import eth` raises the process's recursion limit to 100,000 (py-evm and py_ecc do it at
import); the import here is lazy and puts the limit back. A frame that nests raises the
limit for as long as the outermost EVM frame runs, and restores it after.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from functools import cache
from typing import Any

from evmc_bridge import (
    AccessStatus,
    CallKind,
    Flags,
    Host,
    Message,
    Result,
    Revision,
    StatusCode,
)
from evmc_bridge.constants import MAX_CALL_DEPTH, ZERO_ADDRESS, ZERO_BYTES32
from evmc_bridge.forks import rules

# Python frames per nested EVM frame, measured (host.call -> ... -> opcode -> host.call
# is about 16), with room: 1,024 nested frames need ~20,000.
_RECURSION_FOR_NESTING = 200_000
_STATIC = int(Flags.STATIC)
_WASM_MAGIC = b"\0asm"

# The opcode that made a child message, read at pc - 1 after it ran (py-evm's child
# message does not say which call it is: STATICCALL and DELEGATECALL look alike).
_CALL, _CALLCODE, _DELEGATECALL, _STATICCALL = 0xF1, 0xF2, 0xF4, 0xFA
_KIND_OF_OPCODE = {_CALL: CallKind.CALL, _CALLCODE: CallKind.CALLCODE,
                   _DELEGATECALL: CallKind.DELEGATECALL, _STATICCALL: CallKind.CALL}

# py-evm's fork classes by revision (Muir Glacier, Arrow and Gray Glacier change only the
# difficulty bomb, so Istanbul's and London's are the same).
_FORK_MODULES = {
    Revision.FRONTIER: ("frontier", "FrontierComputation"),
    Revision.HOMESTEAD: ("homestead", "HomesteadComputation"),
    Revision.TANGERINE_WHISTLE: ("tangerine_whistle", "TangerineWhistleComputation"),
    Revision.SPURIOUS_DRAGON: ("spurious_dragon", "SpuriousDragonComputation"),
    Revision.BYZANTIUM: ("byzantium", "ByzantiumComputation"),
    Revision.CONSTANTINOPLE: ("constantinople", "ConstantinopleComputation"),
    Revision.PETERSBURG: ("petersburg", "PetersburgComputation"),
    Revision.ISTANBUL: ("istanbul", "IstanbulComputation"),
    Revision.BERLIN: ("berlin", "BerlinComputation"),
    Revision.LONDON: ("london", "LondonComputation"),
    Revision.PARIS: ("paris", "ParisComputation"),
    Revision.SHANGHAI: ("shanghai", "ShanghaiComputation"),
}
SUPPORTED_REVISIONS = frozenset(_FORK_MODULES)

_import_lock = threading.Lock()
_tls = threading.local()


def _eth() -> Any:
    """py-evm's modules, imported once, with the recursion limit they raise put back."""
    mod = _loaded.get("eth")
    if mod is not None:
        return mod
    with _import_lock:
        if "eth" not in _loaded:
            limit = sys.getrecursionlimit()
            try:
                import eth.exceptions as exceptions
                import eth.vm.message as message
                import eth.vm.transaction_context as tx_context
                from eth.constants import CREATE_CONTRACT_ADDRESS
            finally:
                sys.setrecursionlimit(limit)
            _loaded["exceptions"] = exceptions
            _loaded["message"] = message
            _loaded["tx_context"] = tx_context
            _loaded["create_address"] = CREATE_CONTRACT_ADDRESS
            _loaded["eth"] = sys.modules["eth"]
    return _loaded["eth"]


_loaded: dict[str, Any] = {}


# --- the state py-evm's opcodes see -----------------------------------------------------

class _HostState:
    """What py-evm's opcodes call on `computation.state`, answered by the Host.

    Writes other than storage never come here in a frame that this module runs: value
    transfers, nonces, code and deletions are the host's, through messages and
    `Host.selfdestruct`. py-evm's SELFDESTRUCT moves the balance through set_balance
    before it registers the account; those two calls are no-ops here because the
    registration (`_HostedMixin.register_account_for_deletion`) becomes
    `Host.selfdestruct`, which moves the balance itself."""

    __slots__ = ("host", "tx", "revision", "rules", "_code", "_original", "_nonce",
                 "_transient", "_write", "execution_context")

    def __init__(self, host: Host, revision: Revision) -> None:
        self.host = host
        self.tx = host.get_tx_context()
        self.revision = revision
        self.rules = rules(revision)
        self.execution_context = self  # CHAINID reads execution_context.chain_id
        # Optional host extensions (StateHost has them): the whole code in one call, the
        # value a slot had when the transaction began (EIP-1283/2200), the nonce, a
        # storage write without the host's own (Wasm frames') refund accounting.
        self._code = getattr(host, "get_code", None)
        self._write = getattr(host, "write_storage", None)
        self._original = getattr(host, "get_original_storage", None)
        self._nonce = getattr(host, "get_nonce", None)
        self._transient = getattr(host, "transient_storage", None)

    # --- block and transaction ----------------------------------------------------------
    @property
    def coinbase(self) -> bytes:
        return self.tx.block_coinbase

    @property
    def timestamp(self) -> int:
        return self.tx.block_timestamp

    @property
    def block_number(self) -> int:
        return self.tx.block_number

    @property
    def difficulty(self) -> int:
        return self.tx.block_prev_randao

    @property
    def mix_hash(self) -> bytes:
        return self.tx.block_prev_randao.to_bytes(32, "big")

    @property
    def gas_limit(self) -> int:
        return self.tx.block_gas_limit

    @property
    def base_fee(self) -> int:
        return self.tx.block_base_fee

    @property
    def blob_base_fee(self) -> int:
        return self.tx.blob_base_fee

    @property
    def chain_id(self) -> int:
        return self.tx.chain_id

    def get_ancestor_hash(self, block_number: int) -> bytes:
        # BLOCKHASH answers only for the 256 blocks below the current one (the VM's rule,
        # as evmone applies it before asking the host).
        current = self.tx.block_number
        if not current - 256 <= block_number < current or block_number < 0:
            return b""
        return self.host.get_block_hash(block_number)

    # --- accounts -----------------------------------------------------------------------
    def get_balance(self, address: bytes) -> int:
        return self.host.get_balance(address)

    def get_code(self, address: bytes) -> bytes:
        if self._code is not None:
            return self._code(address)
        host = self.host
        return host.copy_code(address, 0, host.get_code_size(address))

    def get_code_hash(self, address: bytes) -> bytes:
        return self.host.get_code_hash(address)

    def get_nonce(self, address: bytes) -> int:
        # Only CREATE's "nonce at its maximum" check asks; a host without the extension
        # refuses such a CREATE itself.
        return self._nonce(address) if self._nonce is not None else 0

    def account_exists(self, address: bytes) -> bool:
        return self.host.account_exists(address)

    def account_is_empty(self, address: bytes) -> bool:
        # Asked only under EIP-161 rules, where the host's "exists" is "not empty".
        return not self.host.account_exists(address)

    def has_code_or_nonce(self, address: bytes) -> bool:
        return False  # the host checks CREATE collisions (see _HostedCreate)

    def set_balance(self, address: bytes, balance: int) -> None:
        pass  # SELFDESTRUCT's transfer: Host.selfdestruct makes it (see the class doc)

    # --- storage ------------------------------------------------------------------------
    def get_storage(self, address: bytes, slot: int, from_journal: bool = True) -> int:
        key = slot.to_bytes(32, "big")
        if not from_journal and self._original is not None:
            return int.from_bytes(self._original(address, key), "big")
        return int.from_bytes(self.host.get_storage(address, key), "big")

    def set_storage(self, address: bytes, slot: int, value: int) -> None:
        key, word = slot.to_bytes(32, "big"), value.to_bytes(32, "big")
        if self._write is not None:
            self._write(address, key, word)
        else:  # EVMC's: the host may count refunds of its own (pre-EVMC-10 hosts do)
            self.host.set_storage(address, key, word)

    def get_transient_storage(self, address: bytes, slot: int) -> bytes:
        if self._transient is None:
            raise AttributeError("the host keeps no transient storage")
        return self._transient.get((address, slot), ZERO_BYTES32)

    def set_transient_storage(self, address: bytes, slot: int, value: bytes) -> None:
        if self._transient is None:
            raise AttributeError("the host keeps no transient storage")
        self._transient[address, slot] = value

    # --- EIP-2929 access sets: EVMC's access_* mark and return the previous status -------
    def is_address_warm(self, address: bytes) -> bool:
        return self.host.access_account(address) == AccessStatus.WARM

    def mark_address_warm(self, address: bytes) -> None:
        pass  # is_address_warm already marked it (py-evm always asks first)

    def is_storage_warm(self, address: bytes, slot: int) -> bool:
        return self.host.access_storage(address, slot.to_bytes(32, "big")) == \
            AccessStatus.WARM

    def mark_storage_warm(self, address: bytes, slot: int) -> None:
        pass

    # --- what a hosted frame must never do ----------------------------------------------
    def snapshot(self) -> Any:
        raise AssertionError("an EVM frame has no journal of its own: the host's frame "
                             "snapshot is the only one")

    revert = commit = snapshot


# --- the computation ----------------------------------------------------------------------

class _ChildResult:
    """A host Result in the shape py-evm's CALL and CREATE opcodes read a child in."""

    __slots__ = ("result", "is_error", "should_burn_gas", "should_erase_return_data",
                 "should_return_gas", "output", "msg")

    def __init__(self, result: Result, msg: Any) -> None:
        status = result.status
        self.result = result
        self.msg = msg
        self.is_error = status != StatusCode.SUCCESS
        self.should_burn_gas = self.is_error and status != StatusCode.REVERT
        self.should_erase_return_data = self.should_burn_gas
        self.should_return_gas = not self.should_burn_gas
        self.output = b"" if self.should_erase_return_data else result.output

    def get_gas_remaining(self) -> int:
        return 0 if self.should_burn_gas else self.result.gas_left


class _InternalError(Exception):
    """A nested frame ended EVMC_INTERNAL_ERROR: every frame above it ends the same way
    (never a plain failure that the caller could go on from; see ewasm.eei)."""


class _HostedMixin:
    """Overrides of py-evm's computation so that everything outside the frame goes to
    the Host (its `state` is a _HostState)."""

    host: Host
    evmc_message: Message

    def apply_child_computation(self, child_msg: Any) -> _ChildResult:
        op = self.code._raw_code_bytes[self.code.program_counter - 1]
        kind = _KIND_OF_OPCODE[op]
        flags = _STATIC if (op == _STATICCALL or self.msg.is_static) else 0
        msg = self.evmc_message
        if kind == CallKind.DELEGATECALL:
            # EVMC 10+: the caller's own account and value, the target's code.
            recipient, sender, value = msg.recipient, msg.sender, msg.value
        elif kind == CallKind.CALLCODE:
            recipient, sender, value = msg.recipient, msg.recipient, child_msg.value
        else:
            recipient, sender, value = child_msg.to, msg.recipient, child_msg.value
        result = self.host.call(Message(
            kind=kind, flags=Flags(flags), depth=msg.depth + 1, gas=child_msg.gas,
            recipient=recipient, sender=sender, input=bytes(child_msg.data), value=value,
            code_address=child_msg.code_address))
        if result.status == StatusCode.INTERNAL_ERROR:
            raise _InternalError(result.message)
        child = _ChildResult(result, child_msg)
        self.return_data = child.output
        return child

    def add_log_entry(self, account: bytes, topics: tuple[int, ...], data: bytes) -> None:
        self.host.emit_log(account, bytes(data), [t.to_bytes(32, "big") for t in topics])

    def register_account_for_deletion(self, beneficiary: bytes) -> None:
        self.host.selfdestruct(self.msg.storage_address, beneficiary)

    @classmethod
    def consume_initcode_gas_cost(cls, computation: Any) -> None:
        pass  # a creation transaction's init code is priced by its intrinsic gas


class _HostedCreate:
    """CREATE and CREATE2 as EVMC messages: py-evm's opcode prices them, checks balance
    and depth and forwards the gas; the host bumps the nonce, derives the address and
    checks for a collision (a collision consumes all the forwarded gas)."""

    def generate_contract_address(self, stack_data: Any, call_data: bytes,
                                  computation: Any) -> bytes:
        computation.create_salt = stack_data.salt
        return ZERO_ADDRESS  # a placeholder: the host derives the address

    def apply_create_message(self, computation: Any, child_msg: Any) -> None:
        salt = computation.create_salt
        msg = computation.evmc_message
        kind = CallKind.CREATE if salt is None else CallKind.CREATE2
        init = bytes(child_msg.code)
        gas = child_msg.gas
        fork = computation.fork_rules
        if init[:4] == _WASM_MAGIC and fork.initcode_byte_gas:
            # Wasm init code pays for its compile wherever it comes from (the EEI's create
            # and a creation transaction charge the same), out of the gas it is given; over
            # the size limit, the CREATE fails before anything is compiled.
            charge = fork.initcode_byte_gas * len(init)
            too_big = fork.max_initcode_size is not None and len(init) > fork.max_initcode_size
            if too_big or charge > gas:
                computation.return_data = b""
                computation.stack_push_int(0)
                return  # the forwarded gas is spent, as by a failed child
            gas -= charge
        result = computation.host.call(Message(
            kind=kind, depth=msg.depth + 1, gas=gas, recipient=ZERO_ADDRESS,
            sender=msg.recipient, input=init, value=child_msg.value,
            create2_salt=ZERO_BYTES32 if salt is None else salt.to_bytes(32, "big")))
        if result.status == StatusCode.INTERNAL_ERROR:
            raise _InternalError(result.message)
        if result.status == StatusCode.SUCCESS:
            computation.return_data = b""
            computation.stack_push_bytes(result.create_address)
        else:
            # A reverted init code's output is the caller's return data; a failed one
            # leaves none (py-evm's add_child_computation).
            computation.return_data = result.output if result.status == StatusCode.REVERT \
                else b""
            computation.stack_push_int(0)
        computation.return_gas(result.gas_left)  # 0 unless SUCCESS or REVERT (EVMC)


@cache
def _computation_class(revision: Revision) -> type:
    """py-evm's computation of `revision`, hosted: no precompiles (the host's), CREATE
    and CREATE2 through the host."""
    _eth()
    package, name = _FORK_MODULES[revision]
    limit = sys.getrecursionlimit()
    try:
        module = __import__(f"eth.vm.forks.{package}.computation", fromlist=[name])
    finally:
        sys.setrecursionlimit(limit)
    base = getattr(module, name)
    opcodes = dict(base.opcodes)
    for value in (0xF0, 0xF5):  # CREATE, CREATE2 (from Constantinople)
        op = opcodes.get(value)
        if op is not None:
            hosted = type(f"Hosted{type(op).__name__}", (_HostedCreate, type(op)), {})
            opcodes[value] = hosted()
    return type(f"Hosted{name}", (_HostedMixin, base),
                {"_precompiles": {}, "opcodes": opcodes})


def _status_of(error: Exception) -> StatusCode:
    x = _loaded["exceptions"]
    for cls, status in ((x.Revert, StatusCode.REVERT), (x.OutOfGas, StatusCode.OUT_OF_GAS),
                        (x.InsufficientStack, StatusCode.STACK_UNDERFLOW),
                        (x.FullStack, StatusCode.STACK_OVERFLOW),
                        (x.InvalidJumpDestination, StatusCode.BAD_JUMP_DESTINATION),
                        (x.InvalidInstruction, StatusCode.UNDEFINED_INSTRUCTION),
                        (x.WriteProtection, StatusCode.STATIC_MODE_VIOLATION),
                        (x.StackDepthLimit, StatusCode.CALL_DEPTH_EXCEEDED),
                        (x.OutOfBoundsRead, StatusCode.INVALID_MEMORY_ACCESS)):
        if isinstance(error, cls):
            return status
    return StatusCode.FAILURE


def execute_evm(host: Host, revision: Revision, message: Message, code: bytes,
                **options: Any) -> Result:
    """Run EVM `code` for `message` against `host` (an EVMC VM: evmc_bridge.abc.VM).

    Never raises: a failure of the code is a Result with EVMC's status and gas, and a
    bug (in py-evm, the host or here) is INTERNAL_ERROR. Options are accepted and
    ignored (the Wasm engine's: debug, sent_code, tier, ...)."""
    try:
        if revision not in SUPPORTED_REVISIONS:
            return Result.make(StatusCode.INTERNAL_ERROR,
                               message=f"revision {getattr(revision, 'name', revision)} is "
                                       "not supported by the EVM")
        if message.depth > MAX_CALL_DEPTH:
            return Result.make(StatusCode.CALL_DEPTH_EXCEEDED)
        outermost = not getattr(_tls, "active", 0)
        if outermost:
            limit = sys.getrecursionlimit()
            if limit < _RECURSION_FOR_NESTING:
                sys.setrecursionlimit(_RECURSION_FOR_NESTING)
        _tls.active = getattr(_tls, "active", 0) + 1
        try:
            return _run(host, Revision(revision), message, code)
        finally:
            _tls.active -= 1
            if outermost and limit < _RECURSION_FOR_NESTING:
                sys.setrecursionlimit(limit)
    except _InternalError as exc:
        return Result.make(StatusCode.INTERNAL_ERROR, message=f"nested frame: {exc}")
    except Exception as exc:  # a bug, never an exception to the caller
        return Result.make(StatusCode.INTERNAL_ERROR,
                           message=f"internal error in the EVM: {type(exc).__name__}: {exc}")


def _run(host: Host, revision: Revision, message: Message, code: bytes) -> Result:
    cls = _computation_class(revision)
    state = _HostState(host, revision)
    tx = state.tx
    m = _loaded["message"]
    create = message.kind in (CallKind.CREATE, CallKind.CREATE2)
    if create:
        msg = m.Message(gas=message.gas, to=_loaded["create_address"], sender=message.sender,
                        value=message.value, data=b"", code=code, depth=message.depth,
                        create_address=message.recipient, should_transfer_value=False,
                        is_static=False)
    else:
        msg = m.Message(gas=message.gas, to=message.recipient, sender=message.sender,
                        value=message.value, data=message.input, code=code,
                        depth=message.depth, code_address=message.code_address,
                        should_transfer_value=False,
                        is_static=bool(int(message.flags) & _STATIC))
    tx_context = _loaded["tx_context"].BaseTransactionContext(
        gas_price=tx.tx_gas_price, origin=tx.tx_origin)
    computation = cls(state, msg, tx_context)
    # JUMPDEST analysis (which positions are code, not PUSH data) is a function of the
    # code alone: frames of the same code share it instead of redoing it each frame.
    stream = computation.code
    stream.invalid_positions, stream.valid_positions = _jump_analysis(code)
    computation.host = host
    computation.fork_rules = state.rules
    computation.evmc_message = message
    computation.create_salt = None
    computation = _apply(cls, computation)
    error = computation._error
    if error is None:
        return Result.make(StatusCode.SUCCESS, computation.get_gas_remaining(),
                           computation.output,
                           gas_refund=computation._gas_meter.gas_refunded)
    if isinstance(error, _InternalError):
        raise error
    status = _status_of(error)
    if status == StatusCode.REVERT:
        return Result.make(status, computation.get_gas_remaining(), computation.output)
    return Result.make(status, message=f"{type(error).__name__}: {error}")


_ANALYSES: dict[bytes, tuple[set[int], set[int]]] = {}
_ANALYSES_MAX = 1024  # codes whose analysis is kept (at most ~2 x 24 KB positions each)


def _jump_analysis(code: bytes) -> tuple[set[int], set[int]]:
    """The (invalid, valid) position sets py-evm's CodeStream fills lazily, one pair per
    code for the process: positions are added as frames find them, and a position's
    verdict depends only on the code."""
    hit = _ANALYSES.get(code)
    if hit is None:
        with _import_lock:  # threads may evict at once
            if len(_ANALYSES) >= _ANALYSES_MAX:
                _ANALYSES.pop(next(iter(_ANALYSES)))  # the oldest: insertion order
            hit = _ANALYSES.setdefault(code, (set(), set()))
    return hit


def _apply(cls: type, computation: Any) -> Any:
    """py-evm's opcode loop (BaseComputation.apply_computation) on an existing
    computation, without its precompile and origin checks (the host has done those),
    and with the constant gas of its plain opcodes charged inline: the same checks in
    the same order as py-evm's _FastOpcode and GasMeter, three Python calls fewer an
    opcode. PUSH, DUP, SWAP, POP and JUMPDEST (half of what contracts run) are done here
    on the stack's list, as py-evm's own functions do them, with the same errors."""
    x = _loaded["exceptions"]
    halt, vm_error, out_of_gas = x.Halt, x.VMError, x.OutOfGas
    full_stack, insufficient = x.FullStack, x.InsufficientStack
    bad_jump, bad_instruction = x.InvalidJumpDestination, x.InvalidInstruction
    fast, slow = _dispatch(cls)
    meter = computation._gas_meter
    stream = computation.code
    raw = stream._raw_code_bytes
    end = len(raw)
    values = computation._stack.values
    append = values.append
    try:
        while True:
            pc = stream.program_counter
            if pc < end:
                opcode = raw[pc]
                stream.program_counter = pc + 1
            else:
                opcode = 0  # past the end: STOP (CodeStream's)
            entry = fast.get(opcode)
            try:
                if entry is not None:
                    cost, logic, kind, arg = entry
                    if cost > meter.gas_remaining:
                        raise out_of_gas(f"Out of gas: Needed {cost} - Remaining "
                                         f"{meter.gas_remaining} - Reason: opcode {opcode:#x}")
                    meter.gas_remaining -= cost
                    if kind == _PUSH:
                        if len(values) > 1023:
                            raise full_stack("Stack limit reached")
                        pc += 1
                        value = raw[pc:pc + arg]
                        append(value if len(value) == arg else value.ljust(arg, b"\0"))
                        stream.program_counter = pc + arg
                    elif kind == _DUP:
                        if len(values) > 1023:
                            raise full_stack("Stack limit reached")
                        if len(values) < arg:
                            raise insufficient(f"Insufficient stack items for DUP{arg}")
                        append(values[-arg])
                    elif kind == _SWAP:
                        if len(values) <= arg:
                            raise insufficient(f"Insufficient stack items for SWAP{arg}")
                        values[-1], values[-arg - 1] = values[-arg - 1], values[-1]
                    elif kind == _BINARY:
                        if len(values) < 2:
                            raise insufficient(f"Wanted 2 stack items, only had {len(values)}")
                        left = values.pop()
                        right = values[-1]
                        if type(left) is bytes:
                            left = int.from_bytes(left, "big")
                        if type(right) is bytes:
                            right = int.from_bytes(right, "big")
                        values[-1] = arg(left, right)
                    elif kind == _UNARY:
                        if not values:
                            raise insufficient("Wanted 1 stack item, had none")
                        value = values[-1]
                        values[-1] = arg(int.from_bytes(value, "big")
                                         if type(value) is bytes else value)
                    elif kind == _JUMP or kind == _JUMPI:
                        if kind == _JUMP:
                            if not values:
                                raise insufficient("Wanted 1 stack item, had none")
                            dest, go = values.pop(), True
                        else:
                            if len(values) < 2:
                                raise insufficient(
                                    f"Wanted 2 stack items, only had {len(values)}")
                            dest, go = values.pop(), values.pop()
                            if type(go) is bytes:
                                go = int.from_bytes(go, "big")
                        if go:
                            if type(dest) is bytes:
                                dest = int.from_bytes(dest, "big")
                            stream.program_counter = dest
                            if dest >= end or raw[dest] != 0x5B:
                                raise bad_jump("Invalid Jump Destination")
                            if not stream.is_valid_opcode(dest):
                                raise bad_instruction("Jump resulted in invalid instruction")
                    elif kind == _MSTORE:
                        if len(values) < 2:
                            raise insufficient(f"Wanted 2 stack items, only had {len(values)}")
                        start, value = values.pop(), values.pop()
                        if type(start) is bytes:
                            start = int.from_bytes(start, "big")
                        value = value.to_bytes(32, "big") if type(value) is int \
                            else value.rjust(32, b"\0")[-32:]
                        computation.extend_memory(start, 32)
                        computation._memory.write(start, 32, value)
                    elif kind == _MLOAD:
                        if not values:
                            raise insufficient("Wanted 1 stack item, had none")
                        start = values[-1]
                        if type(start) is bytes:
                            start = int.from_bytes(start, "big")
                        computation.extend_memory(start, 32)
                        values[-1] = computation._memory.read_bytes(start, 32)
                    elif kind == _POP:
                        if not values:
                            raise insufficient("Wanted 1 stack item, had none")
                        values.pop()
                    elif kind != _NOP:
                        logic(computation)
                else:
                    fn = slow.get(opcode)
                    if fn is None:
                        fn = _invalid_opcode(opcode)
                    fn(computation=computation)
            except halt:
                break
    except _InternalError:
        raise
    except vm_error as error:
        computation._error = error
        if computation.should_burn_gas:
            computation.consume_gas(computation._gas_meter.gas_remaining, reason="VM error")
        if computation.should_erase_return_data:
            computation.return_data = b""
    return computation


# How _apply runs a plain opcode: by its logic function, or inline (py-evm's function
# recognised by name, so a fork that changes one falls back to calling it).
_CALL_LOGIC, _PUSH, _DUP, _SWAP, _POP, _NOP, _BINARY, _UNARY, _JUMP, _JUMPI, _MSTORE, \
    _MLOAD = range(12)
_NAMED = {("flow", "jump"): _JUMP, ("flow", "jumpi"): _JUMPI,
          ("memory", "mstore"): _MSTORE, ("memory", "mload"): _MLOAD}
_M = (1 << 256) - 1
# py-evm's arithmetic on (top, second) as it pops them, the result in [0, 2**256).
_BINARIES: dict[tuple[str, str], Callable[[int, int], int]] = {
    ("arithmetic", "add"): lambda a, b: (a + b) & _M,
    ("arithmetic", "sub"): lambda a, b: (a - b) & _M,
    ("arithmetic", "mul"): lambda a, b: (a * b) & _M,
    ("arithmetic", "shl"): lambda shift, v: (v << shift) & _M if shift < 256 else 0,
    ("arithmetic", "shr"): lambda shift, v: v >> shift if shift < 256 else 0,
    ("comparison", "lt"): lambda a, b: 1 if a < b else 0,
    ("comparison", "gt"): lambda a, b: 1 if a > b else 0,
    ("comparison", "eq"): lambda a, b: 1 if a == b else 0,
    ("comparison", "and_op"): lambda a, b: a & b,
    ("comparison", "or_op"): lambda a, b: a | b,
    ("comparison", "xor"): lambda a, b: a ^ b,
}
_UNARIES: dict[tuple[str, str], Callable[[int], int]] = {
    ("comparison", "iszero"): lambda v: 1 if v == 0 else 0,
    ("comparison", "not_op"): lambda v: _M - v,
}


def _inline_kind(opcode: int, logic: Callable) -> tuple[int, Any]:
    module, name = getattr(logic, "__module__", ""), getattr(logic, "__name__", "")
    key = (module.rpartition(".")[2], name)
    if module.startswith("eth.vm.logic."):
        if key in _BINARIES:
            return _BINARY, _BINARIES[key]
        if key in _UNARIES:
            return _UNARY, _UNARIES[key]
        if key in _NAMED:
            return _NAMED[key], 0
    if module == "eth.vm.logic.stack":
        if name == f"push{opcode - 0x5F}" and 0x5F <= opcode <= 0x7F:
            return _PUSH, opcode - 0x5F
        if name == "pop" and opcode == 0x50:
            return _POP, 0
    if module == "eth.vm.logic.duplication" and 0x80 <= opcode <= 0x8F \
            and name == f"dup{opcode - 0x7F}":
        return _DUP, opcode - 0x7F
    if module == "eth.vm.logic.swap" and 0x90 <= opcode <= 0x9F \
            and name == f"swap{opcode - 0x8F}":
        return _SWAP, opcode - 0x8F
    if module == "eth.vm.logic.flow" and name == "jumpdest" and opcode == 0x5B:
        return _NOP, 0
    return _CALL_LOGIC, 0


@cache
def _dispatch(cls: type) -> tuple[dict[int, tuple[int, Callable, int, Any]], dict[int, Any]]:
    """The computation's opcodes split into py-evm's plain ones (a constant gas and a
    logic function: _FastOpcode, with how _apply runs it) and the rest (classes with
    their own __call__)."""
    from eth.vm.opcode import _FastOpcode

    fast, slow = {}, {}
    for value, op in cls.opcodes.items():
        if type(op) is _FastOpcode and type(op.gas_cost) is int and op.gas_cost >= 0:
            fast[value] = (op.gas_cost, op.logic_fn, *_inline_kind(value, op.logic_fn))
        else:
            slow[value] = op
    return fast, slow


@cache
def _invalid_opcode(opcode: int) -> Any:
    from eth.vm.logic.invalid import InvalidOpcode

    return InvalidOpcode(opcode)


def warm_up(revision: Revision = Revision.BYZANTIUM) -> None:
    """Import py-evm and build the hosted computation of `revision` now (~1.5 s the
    first time in a process) rather than in the first EVM frame."""
    _computation_class(Revision(revision))
