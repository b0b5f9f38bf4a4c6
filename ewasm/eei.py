"""The Ethereum Environment Interface: the `ethereum` (and `debug`) host functions.

Semantics, gas and the order of checks follow Hera 0.6.0 as written down in
../shared/docs/eei.md §2-4 (the Ewasm state tests were filled with it). Each function
charges first, then reads and checks memory, then talks to the EVMC host.

The host functions are created once per process: they act on the innermost running
`Frame`, kept on a per-thread stack, since a nested call always finishes before the
frame that made it resumes. They end execution (finish, revert, selfDestruct) or abort
it (out of gas, bad memory access, ...) by raising `Stop` / `Abort`; the runtime turns
an exception in a host function into a status return through the native frames, so
nothing unwinds through compiled code.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Callable

from evmc_bridge import CallKind, Flags, Host, Message, Result, StatusCode, TxContext
from evmc_bridge.constants import (  # Hera's GasSchedule (eei.md §2.7)
    GAS_BALANCE,
    GAS_BASE,
    GAS_BLOCKHASH,
    GAS_CALL,
    GAS_COPY_WORD,
    GAS_CREATE,
    GAS_CREATE2_WORD,
    GAS_EXTCODE,
    GAS_LOG,
    GAS_LOG_DATA,
    GAS_LOG_TOPIC,
    GAS_NEW_ACCOUNT,
    GAS_SELFDESTRUCT,
    GAS_STORAGE_CHANGE,
    GAS_STORAGE_CREATE_EXTRA,
    GAS_STORAGE_LOAD,
    GAS_VALUE_STIPEND,
    GAS_VALUE_TRANSFER,
    GAS_VERYLOW,
    MAX_CALL_DEPTH,
    U128_LIMIT,
    ZERO_ADDRESS,
    ZERO_BYTES32,
)
from evmc_bridge.forks import ForkRules

from .contract import DEBUG_SIGNATURES, EEI_SIGNATURES
from .errors import ExecutionEnded
from .runtime.externs import HostFunc, Memory
from .types import I32, FuncType

_U32 = 0xFFFFFFFF
_memmove = ctypes.memmove
_STATUS_NAMES = {s: s.name for s in StatusCode}


class Stop(ExecutionEnded):
    """finish / revert / selfDestruct: the contract ended normally."""

    def __init__(self, status: StatusCode, output: bytes = b"") -> None:
        self.status = status
        self.output = output
        super().__init__(_STATUS_NAMES[status])


class Abort(ExecutionEnded):
    """An EEI error that ends the frame with a failure status and no gas left."""

    def __init__(self, status: StatusCode, message: str) -> None:
        self.status = status
        super().__init__(message)


class Frame:
    """One execution of one contract: its message, memory, gas and return buffer."""

    __slots__ = ("host", "msg", "code", "memory", "ctx", "native", "_return_data", "debug",
                 "_tx", "rules", "table_pages")

    def __init__(self, host: Host, msg: Message, code: bytes, *, debug: bool = False,
                 rules: ForkRules | None = None) -> None:
        self.host = host
        self.rules = rules  # the revision's rules (None: Byzantium's, as Hera)
        self.msg = msg
        self.code = code  # what the host passed (codeCopy sees this, not metered code)
        self.memory: Memory | None = None
        self.ctx = None  # the instance's VMContext: its gas field is the gas counter
        self.native = None  # the instance's eei_native.NativeFrame, when it has one
        self.table_pages = 0  # what its table costs, in 64 KiB pages
        self._return_data = b""
        self.debug = debug
        self._tx: TxContext | None = None

    @property
    def pages(self) -> int:
        """The host memory this frame holds, in 64 KiB pages: its memory and table."""
        mem = self.memory
        return self.table_pages + (mem.desc.size >> 16 if mem is not None else 0)

    @property
    def return_data(self) -> bytes:
        return self._return_data

    @return_data.setter
    def return_data(self, data: bytes) -> None:
        self._return_data = data
        native = self.native
        if native is not None:  # returnDataCopy may run natively
            native.return_data = data
            native.return_data_len = len(data)

    # --- gas -----------------------------------------------------------------------------
    @property
    def gas_left(self) -> int:
        return self.ctx.gas

    def charge(self, amount: int) -> None:
        if amount > self.ctx.gas:
            raise Abort(StatusCode.OUT_OF_GAS, f"out of gas: needs {amount}, "
                                               f"{self.ctx.gas} left")
        self.ctx.gas -= amount

    @property
    def tx(self) -> TxContext:
        if self._tx is None:
            self._tx = self.host.get_tx_context()
        return self._tx

    # --- memory --------------------------------------------------------------------------
    def load(self, offset: int, length: int) -> bytes:
        offset &= _U32
        length &= _U32
        mem = self.memory
        if mem is None or offset + length > mem.desc.size:
            raise Abort(StatusCode.INVALID_MEMORY_ACCESS,
                        f"memory read [{offset}, +{length}) out of bounds")
        return mem._mm[offset:offset + length]

    def store(self, offset: int, data: bytes) -> None:
        offset &= _U32
        mem = self.memory
        if mem is None or offset + len(data) > mem.desc.size:
            raise Abort(StatusCode.INVALID_MEMORY_ACCESS,
                        f"memory write [{offset}, +{len(data)}) out of bounds")
        # A c_char array's slice assignment copies byte by byte (800 us for 24 KiB).
        _memmove(mem.desc.base + offset, data, len(data))

    def store_u128(self, offset: int, value: int, what: str) -> None:
        if not 0 <= value < U128_LIMIT:
            raise Abort(StatusCode.ARGUMENT_OUT_OF_RANGE, f"{what} does not fit in 128 bits")
        self.store(offset, value.to_bytes(16, "little"))

    def load_u128(self, offset: int) -> int:
        return int.from_bytes(self.load(offset, 16), "little")

    def require_not_static(self, what: str) -> None:
        if self.msg.flags & Flags.STATIC:
            raise Abort(StatusCode.STATIC_MODE_VIOLATION, f"{what} in a static call")


def words(n: int) -> int:
    return (n + 31) // 32


def copy_cost(length: int) -> int:
    return GAS_VERYLOW + GAS_COPY_WORD * words(length & _U32)


def _copy_out(f: Frame, result_offset: int, source: bytes, offset: int, length: int,
              what: str) -> None:
    # Strict source bounds (no zero fill, unlike the EVM), checked even for length 0.
    offset &= _U32
    length &= _U32
    if offset + length > len(source):
        raise Abort(StatusCode.INVALID_MEMORY_ACCESS,
                    f"{what} [{offset}, +{length}) past its end ({len(source)} bytes)")
    f.store(result_offset, source[offset:offset + length])


# --- the per-thread frame stack -------------------------------------------------------------
_tls = threading.local()


def frames() -> list[Frame]:
    stack = getattr(_tls, "frames", None)
    if stack is None:
        stack = _tls.frames = []
    return stack


# --- the functions ---------------------------------------------------------------------------
def use_gas(f: Frame, amount: int) -> None:
    if amount < 0:
        raise Abort(StatusCode.ARGUMENT_OUT_OF_RANGE, "useGas with a negative amount")
    f.charge(amount)


def get_gas_left(f: Frame) -> int:
    f.charge(GAS_BASE)
    return f.ctx.gas


def get_address(f: Frame, r: int) -> None:
    f.charge(GAS_BASE)
    f.store(r, f.msg.recipient)


def get_external_balance(f: Frame, a: int, r: int) -> None:
    f.charge(GAS_BALANCE)
    address = f.load(a, 20)
    f.store_u128(r, f.host.get_balance(address), "balance")


def get_block_hash(f: Frame, number: int, r: int) -> int:
    f.charge(GAS_BLOCKHASH)
    h = f.host.get_block_hash(number)
    if h == ZERO_BYTES32:
        return 1  # Hera: no bounds check of r on failure
    f.store(r, h)
    return 0


def get_call_data_size(f: Frame) -> int:
    f.charge(GAS_BASE)
    return len(f.msg.input)


def call_data_copy(f: Frame, r: int, d: int, length: int) -> None:
    f.charge(copy_cost(length))
    _copy_out(f, r, f.msg.input, d, length, "call data")


def get_caller(f: Frame, r: int) -> None:
    f.charge(GAS_BASE)
    f.store(r, f.msg.sender)


def get_call_value(f: Frame, r: int) -> None:
    f.charge(GAS_BASE)
    f.store_u128(r, f.msg.value, "call value")


def code_copy(f: Frame, r: int, c: int, length: int) -> None:
    f.charge(copy_cost(length))
    _copy_out(f, r, f.code, c, length, "code")


def get_code_size(f: Frame) -> int:
    f.charge(GAS_BASE)
    return len(f.code)


def external_code_copy(f: Frame, a: int, r: int, c: int, length: int) -> None:
    f.charge(GAS_EXTCODE + GAS_COPY_WORD * words(length & _U32))
    address = f.load(a, 20)
    length &= _U32
    code = f.host.copy_code(address, c & _U32, length)
    if len(code) < length:
        raise Abort(StatusCode.INVALID_MEMORY_ACCESS,
                    f"external code [{c & _U32}, +{length}) past its end")
    f.store(r, code)


def get_external_code_size(f: Frame, a: int) -> int:
    f.charge(GAS_EXTCODE)
    return f.host.get_code_size(f.load(a, 20))


def get_block_coinbase(f: Frame, r: int) -> None:
    f.charge(GAS_BASE)
    f.store(r, f.tx.block_coinbase)


def get_block_difficulty(f: Frame, r: int) -> None:
    f.charge(GAS_BASE)
    f.store(r, f.tx.block_prev_randao.to_bytes(32, "little"))


def get_block_gas_limit(f: Frame) -> int:
    f.charge(GAS_BASE)
    return f.tx.block_gas_limit


def get_block_number(f: Frame) -> int:
    f.charge(GAS_BASE)
    return f.tx.block_number


def get_block_timestamp(f: Frame) -> int:
    f.charge(GAS_BASE)
    return f.tx.block_timestamp


def get_tx_gas_price(f: Frame, r: int) -> None:
    f.charge(GAS_BASE)
    f.store_u128(r, f.tx.tx_gas_price, "gas price")


def get_tx_origin(f: Frame, r: int) -> None:
    f.charge(GAS_BASE)
    f.store(r, f.tx.tx_origin)


def log(f: Frame, d: int, length: int, n: int, t1: int, t2: int, t3: int, t4: int) -> None:
    n &= _U32
    length &= _U32
    f.charge(GAS_LOG + GAS_LOG_TOPIC * n + GAS_LOG_DATA * length)
    f.require_not_static("log")
    if n > 4:
        raise Abort(StatusCode.CONTRACT_VALIDATION_FAILURE, f"log with {n} topics (at most 4)")
    topics = [f.load(t, 32) for t in (t1, t2, t3, t4)[:n]]
    data = f.load(d, length)
    f.host.emit_log(f.msg.recipient, data, topics)


def storage_store(f: Frame, k: int, v: int) -> None:
    f.charge(GAS_STORAGE_CHANGE)
    f.require_not_static("storageStore")
    key = f.load(k, 32)
    value = f.load(v, 32)
    if value != ZERO_BYTES32 and f.host.get_storage(f.msg.recipient, key) == ZERO_BYTES32:
        f.charge(GAS_STORAGE_CREATE_EXTRA)
    f.host.set_storage(f.msg.recipient, key, value)


def storage_load(f: Frame, k: int, r: int) -> None:
    f.charge(GAS_STORAGE_LOAD)
    key = f.load(k, 32)
    f.store(r, f.host.get_storage(f.msg.recipient, key))


def finish(f: Frame, d: int, length: int) -> None:
    raise Stop(StatusCode.SUCCESS, f.load(d, length))


def revert(f: Frame, d: int, length: int) -> None:
    raise Stop(StatusCode.REVERT, f.load(d, length))


def get_return_data_size(f: Frame) -> int:
    f.charge(GAS_BASE)
    return len(f.return_data)


def return_data_copy(f: Frame, r: int, d: int, length: int) -> None:
    f.charge(copy_cost(length))
    _copy_out(f, r, f.return_data, d, length, "return data")


def self_destruct(f: Frame, a: int) -> None:
    f.charge(GAS_SELFDESTRUCT)
    f.require_not_static("selfDestruct")
    beneficiary = f.load(a, 20)
    if not f.host.account_exists(beneficiary):
        f.charge(GAS_NEW_ACCOUNT)  # Hera: even when no balance moves
    f.host.selfdestruct(f.msg.recipient, beneficiary)
    raise Stop(StatusCode.SUCCESS)


def _internal_error_ends_all(result: Result) -> None:
    """A nested frame that the host or engine could not run (EVMC_INTERNAL_ERROR: out of
    address space, a host bug) ends every frame above it the same way: the caller must
    never see it as a plain failure and go on, or the outcome would depend on the machine."""
    if result.status == StatusCode.INTERNAL_ERROR:
        raise Abort(StatusCode.INTERNAL_ERROR, f"nested frame: {result.message}")


def _status_code(result: Result) -> int:
    if result.status == StatusCode.SUCCESS:
        return 0
    return 2 if result.status == StatusCode.REVERT else 1


def _balance(f: Frame) -> int:
    balance = f.host.get_balance(f.msg.recipient)
    if balance >= U128_LIMIT:
        raise Abort(StatusCode.ARGUMENT_OUT_OF_RANGE, "balance does not fit in 128 bits")
    return balance


def _call(f: Frame, kind: str, gas: int, a: int, value_offset: int | None, d: int,
          length: int) -> int:
    if gas < 0:
        raise Abort(StatusCode.ARGUMENT_OUT_OF_RANGE, f"{kind} with negative gas")
    msg = f.msg
    target = f.load(a, 20)
    flags = msg.flags & Flags.STATIC
    # EVMC 10+ convention: recipient = whose storage and balance, code_address = whose code.
    if kind == "call":
        ckind, sender, recipient = CallKind.CALL, msg.recipient, target
        value = f.load_u128(value_offset)
        if value and flags:
            raise Abort(StatusCode.STATIC_MODE_VIOLATION, "call with value in a static call")
    elif kind == "callCode":
        ckind, sender, recipient = CallKind.CALLCODE, msg.recipient, msg.recipient
        value = f.load_u128(value_offset)
    elif kind == "callDelegate":
        ckind, sender, recipient, value = CallKind.DELEGATECALL, msg.sender, msg.recipient, msg.value
    else:  # callStatic
        ckind, sender, recipient, value = CallKind.CALL, msg.recipient, target, 0
        flags = Flags.STATIC
    data = f.load(d, length) if length & _U32 else b""  # zero-length input is not checked
    f.charge(GAS_CALL)
    if msg.depth >= MAX_CALL_DEPTH:
        return 1
    if value and kind in ("call", "callCode"):
        f.charge(GAS_VALUE_TRANSFER)
        if _balance(f) < value:
            return 1
        if kind == "call" and not f.host.account_exists(target):
            f.charge(GAS_NEW_ACCOUNT)
    left = f.ctx.gas
    gas = min(gas, left - left // 64)
    f.charge(gas)
    if value:
        gas += GAS_VALUE_STIPEND  # also for callDelegate's inherited value (Hera)
    result = f.host.call(Message(kind=ckind, flags=Flags(flags), depth=msg.depth + 1, gas=gas,
                                 recipient=recipient, sender=sender, input=data, value=value,
                                 code_address=target))
    _internal_error_ends_all(result)
    f.return_data = result.output
    f.ctx.gas += result.gas_left
    return _status_code(result)


def call(f: Frame, gas: int, a: int, v: int, d: int, length: int) -> int:
    return _call(f, "call", gas, a, v, d, length)


def call_code(f: Frame, gas: int, a: int, v: int, d: int, length: int) -> int:
    return _call(f, "callCode", gas, a, v, d, length)


def call_delegate(f: Frame, gas: int, a: int, d: int, length: int) -> int:
    return _call(f, "callDelegate", gas, a, None, d, length)


def call_static(f: Frame, gas: int, a: int, d: int, length: int) -> int:
    return _call(f, "callStatic", gas, a, None, d, length)


def create(f: Frame, v: int, d: int, length: int, r: int) -> int:
    # From after Byzantium, init code pays for its compile, and one over the size limit
    # ends the frame as out of gas (EIP-3860's rule for EVM), before anything is read.
    fork = f.rules
    if fork is not None and fork.initcode_byte_gas:
        n = length & _U32
        if fork.max_initcode_size is not None and n > fork.max_initcode_size:
            raise Abort(StatusCode.OUT_OF_GAS, f"init code of {n} bytes exceeds the limit "
                                               f"of {fork.max_initcode_size}")
        f.charge(GAS_CREATE + fork.initcode_byte_gas * n)
    else:
        f.charge(GAS_CREATE)
    f.require_not_static("create")
    msg = f.msg
    value = f.load_u128(v)
    if msg.depth >= MAX_CALL_DEPTH:
        return 1
    if _balance(f) < value:
        return 1
    return _create_frame(f, CallKind.CREATE, value, d, length, r, ZERO_BYTES32)


def _create_frame(f: Frame, kind: CallKind, value: int, d: int, length: int, r: int,
                  salt: bytes) -> int:
    """What create and create2 share once they have charged and checked: read the init
    code, forward all but 1/64 of the gas left, store the new address or keep the output."""
    msg = f.msg
    initcode = f.load(d, length) if length & _U32 else b""
    left = f.ctx.gas
    gas = left - left // 64
    f.charge(gas)
    result = f.host.call(Message(kind=kind, depth=msg.depth + 1, gas=gas,
                                 recipient=ZERO_ADDRESS, sender=msg.recipient, input=initcode,
                                 value=value, create2_salt=salt))
    _internal_error_ends_all(result)
    f.ctx.gas += result.gas_left
    if result.status == StatusCode.SUCCESS:
        f.store(r, result.create_address)
        f.return_data = b""
    else:
        f.return_data = result.output
    return _status_code(result)


# SSVM's create2 (eei.md §2.6): create's arguments and a salt. The salt is a u256 in memory,
# little-endian like every EEI number, so the 32 bytes at saltOffset are reversed into
# EVMC's big-endian create2_salt: the number s stored there is the salt s of the EVM's
# CREATE2, and the same sender, salt and init code give the same address from both VMs.
CREATE2_SIGNATURE = FuncType((I32, I32, I32, I32, I32), (I32,))


def create2(f: Frame, v: int, d: int, length: int, s: int, r: int) -> int:
    """EIP-1014 from Wasm: 32,000 gas, 6 a word of init code for its hash, and from after
    Byzantium the init code's per-byte charge and size limit (as create). Before
    Constantinople, which brought CREATE2 to the EVM, it is an undefined instruction."""
    fork = f.rules
    if fork is None or not fork.create2:
        raise Abort(StatusCode.UNDEFINED_INSTRUCTION, "create2 needs Constantinople's "
                                                      "rules (EIP-1014)")
    n = length & _U32
    if fork.max_initcode_size is not None and n > fork.max_initcode_size:
        raise Abort(StatusCode.OUT_OF_GAS, f"init code of {n} bytes exceeds the limit "
                                           f"of {fork.max_initcode_size}")
    f.charge(GAS_CREATE + GAS_CREATE2_WORD * words(n) + fork.initcode_byte_gas * n)
    f.require_not_static("create2")
    msg = f.msg
    value = f.load_u128(v)
    salt = f.load(s, 32)[::-1]  # u256 little-endian -> EVMC's big-endian bytes32
    if msg.depth >= MAX_CALL_DEPTH:
        return 1
    if _balance(f) < value:
        return 1
    return _create_frame(f, CallKind.CREATE2, value, d, length, r, salt)


# --- debug namespace (no gas) ---------------------------------------------------------------
def _debug_mem(f: Frame, offset: int, length: int) -> bytes:
    try:
        return f.load(offset, length)
    except Abort:
        # Hera asserts here: an engine error, not a memory-access status.
        raise Abort(StatusCode.INTERNAL_ERROR, "debug.printMem range out of bounds") from None


def print32(f: Frame, value: int) -> None:
    print(f"DEBUG print32: {value & _U32} {value & _U32:#x}", file=sys.stderr)


def print64(f: Frame, value: int) -> None:
    v = value & 0xFFFFFFFFFFFFFFFF
    print(f"DEBUG print64: {v} {v:#x}", file=sys.stderr)


def print_mem(f: Frame, offset: int, length: int) -> None:
    data = _debug_mem(f, offset, length)
    print(f"DEBUG printMem: {data.decode('latin-1')!r}", file=sys.stderr)


def print_mem_hex(f: Frame, offset: int, length: int) -> None:
    print(f"DEBUG printMemHex: {_debug_mem(f, offset, length).hex()}", file=sys.stderr)


def print_storage(f: Frame, k: int) -> None:
    value = f.host.get_storage(f.msg.recipient, f.load(k, 32))
    print(f"DEBUG printStorage: {value.decode('latin-1')!r}", file=sys.stderr)


def print_storage_hex(f: Frame, k: int) -> None:
    value = f.host.get_storage(f.msg.recipient, f.load(k, 32))
    print(f"DEBUG printStorageHex: {value.hex()}", file=sys.stderr)


def evm_trace(f: Frame, pc: int, opcode: int, cost: int, sp: int) -> None:
    print(f"DEBUG evmTrace: pc={pc} opcode={opcode} cost={cost} sp={sp} gas={f.gas_left}",
          file=sys.stderr)


IMPLEMENTATIONS: dict[str, Callable[..., int | None]] = {
    "useGas": use_gas, "getGasLeft": get_gas_left, "getAddress": get_address,
    "getExternalBalance": get_external_balance, "getBlockHash": get_block_hash,
    "call": call, "callCode": call_code, "callDelegate": call_delegate,
    "callStatic": call_static, "create": create, "callDataCopy": call_data_copy,
    "getCallDataSize": get_call_data_size, "codeCopy": code_copy, "getCodeSize": get_code_size,
    "externalCodeCopy": external_code_copy, "getExternalCodeSize": get_external_code_size,
    "getCaller": get_caller, "getCallValue": get_call_value,
    "getBlockCoinbase": get_block_coinbase, "getBlockDifficulty": get_block_difficulty,
    "getBlockGasLimit": get_block_gas_limit, "getBlockNumber": get_block_number,
    "getBlockTimestamp": get_block_timestamp, "getTxGasPrice": get_tx_gas_price,
    "getTxOrigin": get_tx_origin, "log": log, "storageStore": storage_store,
    "storageLoad": storage_load, "finish": finish, "revert": revert,
    "getReturnDataSize": get_return_data_size, "returnDataCopy": return_data_copy,
    "selfDestruct": self_destruct,
}
DEBUG_IMPLEMENTATIONS: dict[str, Callable[..., None]] = {
    "print32": print32, "print64": print64, "printMem": print_mem,
    "printMemHex": print_mem_hex, "printStorage": print_storage,
    "printStorageHex": print_storage_hex, "evmTrace": evm_trace,
}
# Functions beyond Hera's 33, with their signatures: a contract can import one only once
# the contract rules (ewasm.contract.EEI_SIGNATURES) list it.
EXTENSIONS: dict[str, tuple[FuncType, Callable[..., int | None]]] = {
    "create2": (CREATE2_SIGNATURE, create2),
}
assert IMPLEMENTATIONS.keys() | EXTENSIONS.keys() >= EEI_SIGNATURES.keys()
assert all(EEI_SIGNATURES.get(n, sig) == sig for n, (sig, _) in EXTENSIONS.items())
assert DEBUG_IMPLEMENTATIONS.keys() == DEBUG_SIGNATURES.keys()


def _bind(impl: Callable[..., int | None]) -> Callable[..., int | None]:
    def host_function(*args: int) -> int | None:
        return impl(_tls.frames[-1], *args)

    host_function.__name__ = impl.__name__
    return host_function


# One HostFunc per EEI function for the whole process (their native trampolines are
# built once); they act on the innermost frame of the calling thread.
# The EEI functions that run another frame (and so re-enter compiled code).
_REENTERING = frozenset({"call", "callCode", "callDelegate", "callStatic", "create",
                         "create2"})

HOST_FUNCS: dict[tuple[str, str], HostFunc] = {
    **{("ethereum", n): HostFunc(EEI_SIGNATURES[n], _bind(fn), reenters=n in _REENTERING)
       for n, fn in IMPLEMENTATIONS.items()},
    **{("ethereum", n): HostFunc(sig, _bind(fn), reenters=n in _REENTERING)
       for n, (sig, fn) in EXTENSIONS.items()},
    **{("debug", n): HostFunc(DEBUG_SIGNATURES[n], _bind(fn), reenters=False)
       for n, fn in DEBUG_IMPLEMENTATIONS.items()},
}
