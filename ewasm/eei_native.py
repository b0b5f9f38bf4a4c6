"""The EEI functions whose work is a gas charge, a bounds check and a copy, in native code.

getCallDataSize, callDataCopy, getCodeSize, codeCopy, getReturnDataSize, returnDataCopy,
getCaller, getAddress, getCallValue, getGasLeft, finish, revert and the getters of the
transaction's context touch only the message, the transaction, the frame's buffers and
the contract's memory. Calling them through Python would box every
argument and take ~10 us a call; here they are LLVM IR that this engine writes and
compiles once per process (through the same compile workers as contracts), called by
compiled code through the ordinary wrapper ABI (abi.py):

    i32 fn(ptr native_frame, ptr caller_ctx, ptr values)

`native_frame` is a NativeFrame, one per instance, filled from the message before each
run. Where they cannot be built, eei.py's functions serve (USE_NATIVE_EEI in execute.py). The charge, the order of the checks and the numbers are Hera's, as eei.py has them
(eei.md §2-4): the differential test runs every function on both implementations.

A function that ends the run (finish, revert, out of gas, a bad range) records why in the
frame and returns STATUS_EXIT; compiled code passes any non-zero status straight out, and
`exit_of` turns the record into the same Stop or Abort that eei.py would have raised.
"""

from __future__ import annotations

import ctypes

from evmc_bridge import Result, StatusCode, TxContext
from evmc_bridge.constants import GAS_BASE, GAS_COPY_WORD, GAS_VERYLOW, U128_LIMIT
from evmc_bridge.errors import BadMessageError

from .compiler import abi
from .contract import EEI_SIGNATURES
from .errors import CompileError
from .runtime.instance import STATUS_EXIT
from .runtime.support import load_support

# end kinds
_FINISH, _REVERT, _OUT_OF_GAS, _RANGE, _VALUE_RANGE = 1, 2, 3, 4, 5
# what a bad range was (end_a of _RANGE)
_WRITE, _READ, _CALL_DATA, _CODE, _RETURN_DATA = 0, 1, 2, 3, 4
_SOURCE_NAMES = {_CALL_DATA: "call data", _CODE: "code", _RETURN_DATA: "return data"}


class NativeFrame(ctypes.Structure):
    """What the native functions read of the running message, and why one ended it."""

    _fields_ = [
        ("call_data", ctypes.c_char_p),  # +0: points into the message's bytes (kept alive)
        ("call_data_len", ctypes.c_int64),  # +8
        ("code", ctypes.c_char_p),  # +16: the code as sent (codeCopy, getCodeSize)
        ("code_len", ctypes.c_int64),  # +24
        ("return_data", ctypes.c_char_p),  # +32
        ("return_data_len", ctypes.c_int64),  # +40
        ("end_kind", ctypes.c_int64),  # +48
        ("end_a", ctypes.c_int64),  # +56
        ("end_b", ctypes.c_int64),  # +64
        ("end_c", ctypes.c_int64),  # +72
        ("end_d", ctypes.c_int64),  # +80
        ("caller", ctypes.c_char * 20),  # +88
        ("address", ctypes.c_char * 20),  # +108
        ("value", ctypes.c_char * 16),  # +128: little-endian, as getCallValue stores it
        ("value_ok", ctypes.c_int64),  # +144: 0 when the value does not fit in 128 bits
        # The transaction's context, for contracts that import its getters (fill_tx):
        ("tx_origin", ctypes.c_char * 20),  # +152
        ("coinbase", ctypes.c_char * 20),  # +172
        ("gas_price", ctypes.c_char * 16),  # +192: little-endian
        ("gas_price_ok", ctypes.c_int64),  # +208
        ("difficulty", ctypes.c_char * 32),  # +216: little-endian (prev_randao)
        ("block_gas_limit", ctypes.c_uint64),  # +248
        ("block_number", ctypes.c_uint64),  # +256
        ("block_timestamp", ctypes.c_uint64),  # +264
    ]

    def __init__(self) -> None:
        super().__init__()
        # What fill() last wrote (Python attributes, not fields).
        self.last_call_data = self.last_code = self.last_sender = self.last_recipient = None
        self.last_value = -1
        self.last_tx = None


_OFF = {name: getattr(NativeFrame, name).offset for name, _ in NativeFrame._fields_}
assert ctypes.sizeof(NativeFrame) == 272
_CALLER, _ADDRESS, _VALUE = _OFF["caller"], _OFF["address"], _OFF["value"]
_ORIGIN, _COINBASE, _GAS_PRICE, _DIFFICULTY = (_OFF["tx_origin"], _OFF["coinbase"],
                                               _OFF["gas_price"], _OFF["difficulty"])
_memmove = ctypes.memmove


def _ir() -> str:
    o = _OFF
    g = abi.CTX_GAS
    out = [f"""
declare void @llvm.memmove.p0.p0.i64(ptr, ptr, i64, i1)

define internal void @end4(ptr %nf, i64 %kind, i64 %a, i64 %b, i64 %c, i64 %d) {{
  %pk = getelementptr inbounds i8, ptr %nf, i64 {o['end_kind']}
  store i64 %kind, ptr %pk
  %pa = getelementptr inbounds i8, ptr %nf, i64 {o['end_a']}
  store i64 %a, ptr %pa
  %pb = getelementptr inbounds i8, ptr %nf, i64 {o['end_b']}
  store i64 %b, ptr %pb
  %pc = getelementptr inbounds i8, ptr %nf, i64 {o['end_c']}
  store i64 %c, ptr %pc
  %pd = getelementptr inbounds i8, ptr %nf, i64 {o['end_d']}
  store i64 %d, ptr %pd
  ret void
}}

; Hera's takeInterfaceGas: out of gas when the charge exceeds what is left.
define internal i1 @charge(ptr %nf, ptr %cc, i64 %amount) alwaysinline {{
  %gp = getelementptr inbounds i8, ptr %cc, i64 {g}
  %left = load i64, ptr %gp
  %oog = icmp sgt i64 %amount, %left
  br i1 %oog, label %fail, label %ok
ok:
  %rest = sub i64 %left, %amount
  store i64 %rest, ptr %gp
  ret i1 1
fail:
  call void @end4(ptr %nf, i64 {_OUT_OF_GAS}, i64 %amount, i64 %left, i64 0, i64 0)
  ret i1 0
}}

; The contract memory's [off, off + len), or null (recorded) when it is out of bounds.
define internal ptr @span(ptr %nf, ptr %cc, i64 %off, i64 %len, i64 %what) alwaysinline {{
  %mp = getelementptr inbounds i8, ptr %cc, i64 {abi.CTX_MEMORY}
  %md = load ptr, ptr %mp
  %none = icmp eq ptr %md, null
  br i1 %none, label %fail0, label %has
has:
  %sp = getelementptr inbounds i8, ptr %md, i64 {abi.MEM_SIZE}
  %size = load i64, ptr %sp
  %end = add i64 %off, %len
  %bad = icmp ugt i64 %end, %size
  br i1 %bad, label %fail, label %ok
ok:
  %base = load ptr, ptr %md
  %p = getelementptr inbounds i8, ptr %base, i64 %off
  ret ptr %p
fail0:
  call void @end4(ptr %nf, i64 {_RANGE}, i64 %what, i64 %off, i64 %len, i64 0)
  ret ptr null
fail:
  call void @end4(ptr %nf, i64 {_RANGE}, i64 %what, i64 %off, i64 %len, i64 %size)
  ret ptr null
}}

define internal i64 @arg(ptr %vals, i64 %k) alwaysinline {{
  %p = getelementptr inbounds i64, ptr %vals, i64 %k
  %v = load i64, ptr %p
  %u = and i64 %v, 4294967295
  ret i64 %u
}}
"""]

    def size_getter(name: str, field: str) -> None:
        out.append(f"""
define i32 @{name}(ptr %nf, ptr %cc, ptr %vals) {{
  %ok = call i1 @charge(ptr %nf, ptr %cc, i64 {GAS_BASE})
  br i1 %ok, label %go, label %stop
go:
  %p = getelementptr inbounds i8, ptr %nf, i64 {o[field]}
  %n = load i64, ptr %p
  store i64 %n, ptr %vals
  ret i32 0
stop:
  ret i32 {STATUS_EXIT}
}}""")

    def copier(name: str, field: str, what: int) -> None:
        # Charge, then the source range (strict: no zero fill, checked even for length 0),
        # then the destination, then the copy (eei._copy_out).
        out.append(f"""
define i32 @{name}(ptr %nf, ptr %cc, ptr %vals) {{
  %r = call i64 @arg(ptr %vals, i64 0)
  %d = call i64 @arg(ptr %vals, i64 1)
  %len = call i64 @arg(ptr %vals, i64 2)
  %w0 = add i64 %len, 31
  %w = lshr i64 %w0, 5
  %wc = mul i64 %w, {GAS_COPY_WORD}
  %cost = add i64 %wc, {GAS_VERYLOW}
  %ok = call i1 @charge(ptr %nf, ptr %cc, i64 %cost)
  br i1 %ok, label %src, label %stop
src:
  %lp = getelementptr inbounds i8, ptr %nf, i64 {o[field + '_len']}
  %have = load i64, ptr %lp
  %end = add i64 %d, %len
  %past = icmp ugt i64 %end, %have
  br i1 %past, label %bad, label %dst
bad:
  call void @end4(ptr %nf, i64 {_RANGE}, i64 {what}, i64 %d, i64 %len, i64 %have)
  br label %stop
dst:
  %to = call ptr @span(ptr %nf, ptr %cc, i64 %r, i64 %len, i64 {_WRITE})
  %oob = icmp eq ptr %to, null
  br i1 %oob, label %stop, label %copy
copy:
  %empty = icmp eq i64 %len, 0
  br i1 %empty, label %done, label %move
move:
  %bp = getelementptr inbounds i8, ptr %nf, i64 {o[field]}
  %b = load ptr, ptr %bp
  %from = getelementptr inbounds i8, ptr %b, i64 %d
  call void @llvm.memmove.p0.p0.i64(ptr %to, ptr %from, i64 %len, i1 false)
  br label %done
done:
  ret i32 0
stop:
  ret i32 {STATUS_EXIT}
}}""")

    def fixed_store(name: str, field: str, size: int, check: str | None = None,
                    which: int = 0) -> None:
        """Charge, then (check: the field saying the value fits) the range, then store
        `size` bytes of `field` at the address argument."""
        if check:
            check = f"""
  %vp = getelementptr inbounds i8, ptr %nf, i64 {o[check]}
  %vok = load i64, ptr %vp
  %fits = icmp ne i64 %vok, 0
  br i1 %fits, label %store, label %toobig
toobig:
  call void @end4(ptr %nf, i64 {_VALUE_RANGE}, i64 {which}, i64 0, i64 0, i64 0)
  br label %stop"""
        else:
            check = "\n  br label %store"
        out.append(f"""
define i32 @{name}(ptr %nf, ptr %cc, ptr %vals) {{
  %ok = call i1 @charge(ptr %nf, ptr %cc, i64 {GAS_BASE})
  br i1 %ok, label %go, label %stop
go:{check}
store:
  %r = call i64 @arg(ptr %vals, i64 0)
  %to = call ptr @span(ptr %nf, ptr %cc, i64 %r, i64 {size}, i64 {_WRITE})
  %oob = icmp eq ptr %to, null
  br i1 %oob, label %stop, label %copy
copy:
  %from = getelementptr inbounds i8, ptr %nf, i64 {o[field]}
  call void @llvm.memmove.p0.p0.i64(ptr %to, ptr %from, i64 {size}, i1 false)
  ret i32 0
stop:
  ret i32 {STATUS_EXIT}
}}""")

    def ender(name: str, kind: int) -> None:
        out.append(f"""
define i32 @{name}(ptr %nf, ptr %cc, ptr %vals) {{
  %d = call i64 @arg(ptr %vals, i64 0)
  %len = call i64 @arg(ptr %vals, i64 1)
  %p = call ptr @span(ptr %nf, ptr %cc, i64 %d, i64 %len, i64 {_READ})
  %oob = icmp eq ptr %p, null
  br i1 %oob, label %stop, label %end
end:
  call void @end4(ptr %nf, i64 {kind}, i64 %d, i64 %len, i64 0, i64 0)
  br label %stop
stop:
  ret i32 {STATUS_EXIT}
}}""")

    size_getter("getCallDataSize", "call_data_len")
    size_getter("getCodeSize", "code_len")
    size_getter("getReturnDataSize", "return_data_len")
    copier("callDataCopy", "call_data", _CALL_DATA)
    copier("codeCopy", "code", _CODE)
    copier("returnDataCopy", "return_data", _RETURN_DATA)
    fixed_store("getCaller", "caller", 20)
    fixed_store("getAddress", "address", 20)
    fixed_store("getCallValue", "value", 16, check="value_ok")
    fixed_store("getTxOrigin", "tx_origin", 20)
    fixed_store("getBlockCoinbase", "coinbase", 20)
    fixed_store("getTxGasPrice", "gas_price", 16, check="gas_price_ok", which=1)
    fixed_store("getBlockDifficulty", "difficulty", 32)
    size_getter("getBlockGasLimit", "block_gas_limit")
    size_getter("getBlockNumber", "block_number")
    size_getter("getBlockTimestamp", "block_timestamp")
    out.append(f"""
define i32 @getGasLeft(ptr %nf, ptr %cc, ptr %vals) {{
  %ok = call i1 @charge(ptr %nf, ptr %cc, i64 {GAS_BASE})
  br i1 %ok, label %go, label %stop
go:
  %gp = getelementptr inbounds i8, ptr %cc, i64 {g}
  %left = load i64, ptr %gp
  store i64 %left, ptr %vals
  ret i32 0
stop:
  ret i32 {STATUS_EXIT}
}}""")
    ender("finish", _FINISH)
    ender("revert", _REVERT)
    table = ", ".join(f"ptr @{n}" for n in NATIVE_NAMES)
    out.append(f"\n@{_TABLE_SYMBOL} = constant [{len(NATIVE_NAMES)} x ptr] [{table}]\n")
    return "\n".join(out)


# The getters of the transaction's context: a frame of a contract that imports one fills
# the context in (fill_tx) before it runs.
TX_GETTERS = ("getTxOrigin", "getBlockCoinbase", "getTxGasPrice", "getBlockDifficulty",
              "getBlockGasLimit", "getBlockNumber", "getBlockTimestamp")
NATIVE_NAMES = ("getCallDataSize", "getCodeSize", "getReturnDataSize", "callDataCopy",
                "codeCopy", "returnDataCopy", "getCaller", "getAddress", "getCallValue",
                "getGasLeft", "finish", "revert", *TX_GETTERS)
_TABLE_SYMBOL = "ewasm_eei_natives"
assert all(n in EEI_SIGNATURES for n in NATIVE_NAMES)


_addresses: dict[str, int] | None = None
_failed: str | None = None


def native_addresses() -> dict[str, int] | None:
    """The native functions' addresses by EEI name, built on first use (runtime.support:
    compiled once, cached on disk like contract code); None when they cannot be built
    here, and eei.py's functions serve instead."""
    global _addresses, _failed
    if _addresses is None and _failed is None:
        try:
            table = load_support("eei-native", _ir(), _TABLE_SYMBOL)
        except CompileError as exc:
            _failed = str(exc)
            return None
        ptrs = (ctypes.c_void_p * len(NATIVE_NAMES)).from_address(table)
        _addresses = {n: ptrs[i] for i, n in enumerate(NATIVE_NAMES)}
    return _addresses


def fill(nf: NativeFrame, call_data: bytes, code: bytes, sender: bytes, recipient: bytes,
         value: int) -> None:
    """Set up a frame for one message. A pooled instance's frame often serves the same
    code, addresses and value again: what is unchanged is not written (the frame holds
    the objects it last pointed at, so an identity match cannot be a reused address)."""
    if nf.last_call_data is not call_data:
        nf.call_data = call_data  # the field keeps the bytes alive; no copy
        nf.call_data_len = len(call_data)
        nf.last_call_data = call_data
    if nf.last_code is not code:
        nf.code = code
        nf.code_len = len(code)
        nf.last_code = code
    if nf.return_data_len:
        nf.return_data_len = 0
    if sender != nf.last_sender or recipient != nf.last_recipient or value != nf.last_value:
        if len(sender) != 20 or len(recipient) != 20:
            raise BadMessageError("a message's sender and recipient are 20-byte addresses")
        # Byte copies: assigning bytes to a c_char array field stops at the first zero.
        base = ctypes.addressof(nf)
        _memmove(base + _CALLER, sender, 20)
        _memmove(base + _ADDRESS, recipient, 20)
        if 0 <= value < U128_LIMIT:
            _memmove(base + _VALUE, value.to_bytes(16, "little"), 16)
            nf.value_ok = 1
        else:
            nf.value_ok = 0
        nf.last_sender, nf.last_recipient, nf.last_value = sender, recipient, value


_U64 = (1 << 64) - 1
_U256_LIMIT = 1 << 256


def fill_tx(nf: NativeFrame, tx: TxContext) -> None:
    """The transaction's context for its native getters (unchanged: not written again).
    Numbers are stored as eei.py's getters give them: the i64 getters' results as their
    64-bit patterns, the gas price little-endian in 128 bits (or marked too big), the
    difficulty (prev_randao) little-endian in 256 bits."""
    if tx is nf.last_tx:
        return
    base = ctypes.addressof(nf)
    _memmove(base + _ORIGIN, tx.tx_origin, 20)
    _memmove(base + _COINBASE, tx.block_coinbase, 20)
    price = tx.tx_gas_price
    if 0 <= price < U128_LIMIT:
        _memmove(base + _GAS_PRICE, price.to_bytes(16, "little"), 16)
        nf.gas_price_ok = 1
    else:
        nf.gas_price_ok = 0
    randao = tx.block_prev_randao
    if not 0 <= randao < _U256_LIMIT:
        raise BadMessageError("block_prev_randao does not fit in 256 bits")
    _memmove(base + _DIFFICULTY, randao.to_bytes(32, "little"), 32)
    nf.block_gas_limit = tx.block_gas_limit & _U64
    nf.block_number = tx.block_number & _U64
    nf.block_timestamp = tx.block_timestamp & _U64
    nf.last_tx = tx


def output_out_of_gas(cost: int, left: int) -> str:
    return f"out of gas: the output needs {cost}, {left} left"


def result_of(nf: NativeFrame, memory, gas_left: int, output_word_gas: int = 0) -> Result:
    """The Result of a run that a native function ended: what eei.py's Stop or Abort for
    the same event gives (status, gas, output, message). output_word_gas: the revision's
    charge per word of finish/revert output, taken before the output is copied."""
    kind, a, b, c, d = nf.end_kind, nf.end_a, nf.end_b, nf.end_c, nf.end_d
    if kind == _FINISH or kind == _REVERT:
        cost = output_word_gas * ((b + 31) >> 5)
        if cost > gas_left:
            return Result.make(StatusCode.OUT_OF_GAS, message=output_out_of_gas(cost, gas_left))
        output = memory._mm[a:a + b] if b else b""
        return Result.make(StatusCode.SUCCESS if kind == _FINISH else StatusCode.REVERT,
                           gas_left - cost, output)
    if kind == _OUT_OF_GAS:
        return Result.make(StatusCode.OUT_OF_GAS, message=f"out of gas: needs {a}, {b} left")
    if kind == _VALUE_RANGE:
        return Result.make(StatusCode.ARGUMENT_OUT_OF_RANGE,
                           message=f"{'gas price' if a else 'call value'} does not fit in "
                                   "128 bits")
    if kind == _RANGE:
        if a == _WRITE:
            message = f"memory write [{b}, +{c}) out of bounds"
        elif a == _READ:
            message = f"memory read [{b}, +{c}) out of bounds"
        else:
            message = f"{_SOURCE_NAMES[a]} [{b}, +{c}) past its end ({d} bytes)"
        return Result.make(StatusCode.INVALID_MEMORY_ACCESS, message=message)
    return Result.make(StatusCode.INTERNAL_ERROR,
                       message=f"native EEI exit of unknown kind {kind}")


__all__ = ["NATIVE_NAMES", "TX_GETTERS", "NativeFrame", "result_of", "fill", "native_addresses"]
