"""eei_native against eei.py: the native EEI functions give the same result as the Python
ones (status, gas left, output, every byte of memory, the message) on argument values
drawn around every boundary: the memory's end, the source buffers' ends, u32 wrap-around,
the gas needed for the charge, call values of 128 bits and more.

The contract reads an operation and its arguments from its call data (through the
function under test when it is callDataCopy, as every contract does), calls one native
EEI function, then finishes its whole memory so that every byte it wrote is compared.
"""

from __future__ import annotations

import importlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ewasm
from evmc_bridge import CallKind, Message, Result, Revision, StatusCode, TxContext
from evmc_bridge.mocked_host import MockedHost
from ewasm import eei_native
from ewasm.runtime.externs import NativeFunc

# ewasm.execute is also the function's name: the module itself
execute_module = importlib.import_module("ewasm.execute")

SELF = bytes(range(0x10, 0x24))
CALLER = bytes(range(0x30, 0x44))
MEM = 65536

# operation index -> (name, its Wasm signature in the contract, how main calls it)
OPS = [
    ("getCallDataSize", "(result i32)", "(i32.store (i32.const 0) (call $getCallDataSize))"),
    ("getCodeSize", "(result i32)", "(i32.store (i32.const 0) (call $getCodeSize))"),
    ("getReturnDataSize", "(result i32)", "(i32.store (i32.const 0) (call $getReturnDataSize))"),
    ("callDataCopy", "(param i32 i32 i32)", "(call $callDataCopy (local.get 0) (local.get 1) (local.get 2))"),
    ("codeCopy", "(param i32 i32 i32)", "(call $codeCopy (local.get 0) (local.get 1) (local.get 2))"),
    ("returnDataCopy", "(param i32 i32 i32)", "(call $returnDataCopy (local.get 0) (local.get 1) (local.get 2))"),
    ("getCaller", "(param i32)", "(call $getCaller (local.get 0))"),
    ("getAddress", "(param i32)", "(call $getAddress (local.get 0))"),
    ("getCallValue", "(param i32)", "(call $getCallValue (local.get 0))"),
    ("getGasLeft", "(result i64)", "(i64.store (i32.const 0) (call $getGasLeft))"),
    ("finish", "(param i32 i32)", "(call $finish (local.get 0) (local.get 1))"),
    ("revert", "(param i32 i32)", "(call $revert (local.get 0) (local.get 1))"),
    ("getTxOrigin", "(param i32)", "(call $getTxOrigin (local.get 0))"),
    ("getBlockCoinbase", "(param i32)", "(call $getBlockCoinbase (local.get 0))"),
    ("getTxGasPrice", "(param i32)", "(call $getTxGasPrice (local.get 0))"),
    ("getBlockDifficulty", "(param i32)", "(call $getBlockDifficulty (local.get 0))"),
    ("getBlockGasLimit", "(result i64)", "(i64.store (i32.const 0) (call $getBlockGasLimit))"),
    ("getBlockNumber", "(result i64)", "(i64.store (i32.const 0) (call $getBlockNumber))"),
    ("getBlockTimestamp", "(result i64)",
     "(i64.store (i32.const 0) (call $getBlockTimestamp))"),
]
assert {name for name, _, _ in OPS} == set(eei_native.NATIVE_NAMES)


def contract_wat() -> str:
    imports = "\n".join(f'  (import "ethereum" "{n}" (func ${n} {sig}))' for n, sig, _ in OPS)
    n = len(OPS)
    # br_table into nested blocks: leaving block $c<k> runs operation k.
    opened = "".join(f"(block $c{k} " for k in reversed(range(n)))
    table = " ".join(f"$c{k}" for k in range(n))
    arms = "\n".join(f"      ) {call} (br $out)" for _, _, call in OPS)
    return f"""(module
{imports}
  (memory 1)
  (export "memory" (memory 0))
  (func (export "main") (local i32 i32 i32 i32)
    ;; call data: op, a, b, c (u32 each) at 0..16, read with callDataCopy
    (call $callDataCopy (i32.const 0) (i32.const 0) (i32.const 16))
    (local.set 3 (i32.load (i32.const 0)))
    (local.set 0 (i32.load (i32.const 4)))
    (local.set 1 (i32.load (i32.const 8)))
    (local.set 2 (i32.load (i32.const 12)))
    (i64.store (i32.const 0) (i64.const 0))
    (i64.store (i32.const 8) (i64.const 0))
    (block $out
      {opened}
        (br_table {table} $out (local.get 3))
{arms}
    )
    (call $finish (i32.const 0) (i32.const {MEM}))))
"""


@pytest.fixture(scope="module")
def contract(wat) -> bytes:
    return wat(contract_wat())


def _tx(price: int) -> TxContext:
    return TxContext(tx_gas_price=price, tx_origin=bytes(range(0x70, 0x84)),
                     block_coinbase=bytes(range(0x90, 0xA4)), block_number=2**64 + 0x0A0B0C,
                     block_timestamp=0x5F5E1000, block_gas_limit=0x0102030405060708,
                     block_prev_randao=int.from_bytes(bytes(range(1, 33)), "big"))


def _run(code: bytes, native: bool, data: bytes, gas: int, value: int,
         price: int = 0x0102030405) -> Result:
    old = execute_module.USE_NATIVE_EEI
    execute_module.USE_NATIVE_EEI = native
    execute_module._cache.clear()
    try:
        msg = Message(kind=CallKind.CALL, gas=gas, recipient=SELF, sender=CALLER, input=data,
                      value=value, code_address=SELF)
        return ewasm.execute(MockedHost(tx_context=_tx(price)), Revision.BYZANTIUM, msg, code)
    finally:
        execute_module.USE_NATIVE_EEI = old
        execute_module._cache.clear()


def _same(code: bytes, data: bytes, gas: int, value: int,
          price: int = 0x0102030405) -> Result:
    native = _run(code, True, data, gas, value, price)
    python = _run(code, False, data, gas, value, price)
    assert (native.status, native.gas_left, native.output, native.message) == \
        (python.status, python.gas_left, python.output, python.message)
    return native


def test_natives_are_built_here():
    assert eei_native.native_addresses() is not None, eei_native._failed


def test_the_python_run_really_uses_python(contract):
    # The switch must change what runs, or the differential test compares one thing.
    execute_module.USE_NATIVE_EEI = False
    execute_module._cache.clear()
    try:
        prepared = execute_module.prepare_contract(contract)
        assert not any(isinstance(e, NativeFunc) for e in prepared.externs)
    finally:
        execute_module.USE_NATIVE_EEI = True
        execute_module._cache.clear()
    prepared = execute_module.prepare_contract(contract)
    assert sum(isinstance(e, NativeFunc) for e in prepared.externs) == len(OPS)


def _near(*points: int) -> st.SearchStrategy[int]:
    return st.one_of(*[st.integers(p - 3, p + 3) for p in points],
                     st.integers(0, 0xFFFFFFFF)).map(lambda v: v & 0xFFFFFFFF)


ARG = _near(0, 16, 32, MEM - 20, MEM - 16, MEM, 0xFFFFFFFF)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(op=st.integers(0, len(OPS) - 1), a=ARG, b=ARG, c=st.one_of(ARG, st.integers(0, 64)),
       tail=st.binary(max_size=64), value=st.one_of(st.integers(0, 2**130), st.just(2**128 - 1)),
       gas_pad=st.integers(-8, 200),
       price=st.one_of(st.integers(0, 2**130), st.just(2**128)))
def test_native_and_python_agree(contract, op, a, b, c, tail, value, gas_pad, price):
    data = struct.pack("<4I", op, a, b, c) + tail
    # Gas around what the run needs up to the call, so the charge itself can fail.
    first = 3 + 3  # callDataCopy of 16 bytes
    _same(contract, data, first + gas_pad if gas_pad < 100 else 1_000_000, value, price)


@pytest.mark.parametrize("op", range(len(OPS)))
def test_each_function_succeeds_the_same_way(contract, op):
    name = OPS[op][0]
    # MockedHost's frame has no return data: returnDataCopy succeeds only empty (its
    # copies after a call are in test_eei.py, which runs on the native functions).
    a, b, c = {"finish": (0, 64, 0), "revert": (0, 64, 0), "returnDataCopy": (32, 0, 0)}.get(
        name, (32, 4, 8))
    result = _same(contract, struct.pack("<4I", op, a, b, c) + bytes(range(40)), 100_000, 7)
    expected = {"revert": StatusCode.REVERT}.get(name, StatusCode.SUCCESS)
    assert result.status == expected, result.message


def test_out_of_range_value_and_memory_are_the_same(contract):
    value_op = [n for n, _, _ in OPS].index("getCallValue")
    r = _same(contract, struct.pack("<4I", value_op, 0, 0, 0), 100_000, 2**128)
    assert r.status == StatusCode.ARGUMENT_OUT_OF_RANGE
    price_op = [n for n, _, _ in OPS].index("getTxGasPrice")
    r = _same(contract, struct.pack("<4I", price_op, 0, 0, 0), 100_000, 0, price=2**128)
    assert r.status == StatusCode.ARGUMENT_OUT_OF_RANGE and "gas price" in r.message
    copy_op = [n for n, _, _ in OPS].index("callDataCopy")
    r = _same(contract, struct.pack("<4I", copy_op, MEM - 4, 0, 8), 100_000, 0)
    assert r.status == StatusCode.INVALID_MEMORY_ACCESS
    r = _same(contract, struct.pack("<4I", copy_op, 0, 8, 100), 100_000, 0)
    assert r.status == StatusCode.INVALID_MEMORY_ACCESS and "call data" in r.message
