"""Instances, calls, traps, host functions and linking through the public API."""

from __future__ import annotations

import threading

import pytest

import ewasm
from ewasm.types import FUNCREF, I32, I64, FuncType, GlobalType, Limits, MemoryType, TableType

ARITH = """
(module
  (import "env" "twice" (func $twice (param i32) (result i32)))
  (memory (export "mem") 1 3)
  (global $g (export "g") (mut i64) (i64.const -7))
  (table 4 funcref) (elem (i32.const 0) $add $sub)
  (type $bin (func (param i32 i32) (result i32)))
  (func $add (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func $sub (param i32 i32) (result i32) (i32.sub (local.get 0) (local.get 1)))
  (func (export "ind") (param i32 i32 i32) (result i32)
    (call_indirect (type $bin) (local.get 0) (local.get 1) (local.get 2)))
  (func (export "div_s") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "rem_s") (param i32 i32) (result i32) (i32.rem_s (local.get 0) (local.get 1)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "size") (result i32) (memory.size))
  (func (export "host") (param i32) (result i32) (call $twice (local.get 0)))
  (func (export "unreachable") unreachable)
  (func (export "pair") (param i32) (result i32 i64) (local.get 0) (i64.const -5))
  (func (export "bump") (result i64)
    (global.set $g (i64.add (global.get $g) (i64.const 1))) (global.get $g))
)
"""


@pytest.fixture
def inst(wat):
    return ewasm.instantiate(wat(ARITH), {"env": {"twice": lambda x: x * 2}})


def test_results_are_signed_python_ints(inst):
    assert inst.invoke("pair", -1) == [-1, -5]
    assert inst.invoke("pair", 0xFFFFFFFF) == [-1, -5]  # unsigned input accepted
    assert inst.invoke("host", 21) == [42]


def test_call_indirect_and_its_traps(inst):
    assert inst.invoke("ind", 5, 3, 0) == [8]
    assert inst.invoke("ind", 5, 3, 1) == [2]
    with pytest.raises(ewasm.Trap) as e:
        inst.invoke("ind", 5, 3, 2)
    assert e.value.kind is ewasm.TrapKind.UNINITIALIZED_ELEMENT
    with pytest.raises(ewasm.Trap) as e:
        inst.invoke("ind", 5, 3, 4)
    assert e.value.kind is ewasm.TrapKind.UNDEFINED_ELEMENT


def test_integer_traps_and_edge_cases(inst):
    with pytest.raises(ewasm.Trap) as e:
        inst.invoke("div_s", 1, 0)
    assert e.value.kind is ewasm.TrapKind.INTEGER_DIVIDE_BY_ZERO
    assert e.value.func_index == 4 and e.value.offset is not None
    with pytest.raises(ewasm.Trap) as e:
        inst.invoke("div_s", -(2**31), -1)
    assert e.value.kind is ewasm.TrapKind.INTEGER_OVERFLOW
    assert inst.invoke("rem_s", -(2**31), -1) == [0]
    assert inst.invoke("div_s", -7, 2) == [-3]
    with pytest.raises(ewasm.Trap) as e:
        inst.invoke("unreachable")
    assert e.value.kind is ewasm.TrapKind.UNREACHABLE


def test_memory_bounds_and_grow(inst):
    inst.invoke("store", 65532, 0x01020304)
    assert inst.invoke("load", 65532) == [0x01020304]
    assert inst.exports["mem"].read(65532, 4) == bytes([4, 3, 2, 1])  # little-endian
    for addr in (65533, 65536, 0xFFFFFFFF):
        with pytest.raises(ewasm.Trap) as e:
            inst.invoke("load", addr)
        assert e.value.kind is ewasm.TrapKind.MEMORY_OUT_OF_BOUNDS
    assert inst.invoke("grow", 1) == [1]
    assert inst.invoke("size") == [2]
    assert inst.invoke("load", 65536) == [0]  # new pages read as zero
    assert inst.invoke("grow", 2) == [-1]  # over the declared maximum of 3
    assert inst.invoke("grow", 1) == [2]
    assert inst.invoke("size") == [3]


def test_engine_page_cap_refuses_growth(wat):
    inst = ewasm.instantiate(wat("""(module (memory 1)
        (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"""),
        max_memory_pages=4)
    assert inst.invoke("grow", 3) == [1]
    assert inst.invoke("grow", 1) == [-1]


def test_globals_are_shared_cells(inst):
    g = inst.exports["g"]
    assert g.value == -7
    assert inst.invoke("bump") == [-6]
    g.value = 100
    assert inst.invoke("bump") == [101]


def test_host_exception_propagates_unchanged(wat):
    def boom(x):
        raise ValueError(f"boom {x}")

    inst = ewasm.instantiate(wat(ARITH), {"env": {"twice": boom}})
    with pytest.raises(ValueError, match="boom 3"):
        inst.invoke("host", 3)
    # The instance stays usable after a host failure.
    assert inst.invoke("ind", 1, 2, 0) == [3]


def test_host_wrong_result_count_is_an_error(wat):
    inst = ewasm.instantiate(wat(ARITH), {"env": {"twice": lambda x: (x, x)}})
    with pytest.raises(TypeError, match="returned 2 values"):
        inst.invoke("host", 1)


def test_link_errors(wat):
    wasm = wat(ARITH)
    with pytest.raises(ewasm.LinkError, match="unknown import env.twice"):
        ewasm.instantiate(wasm, {})
    wrong = ewasm.HostFunc(FuncType((I64,), (I32,)), lambda x: 0)
    with pytest.raises(ewasm.LinkError, match="incompatible import type"):
        ewasm.instantiate(wasm, {"env": {"twice": wrong}})
    with pytest.raises(ewasm.LinkError):
        ewasm.instantiate(wasm, {"env": {"twice": ewasm.Global(GlobalType(I32, False), 1)}})


def test_cross_instance_imports_share_memory_table_and_functions(wat):
    provider = ewasm.instantiate(wat("""(module
        (memory (export "mem") 1)
        (table (export "tab") 2 funcref) (elem (i32.const 0) $sq)
        (func $sq (export "sq") (param i32) (result i32) (i32.mul (local.get 0) (local.get 0)))
        (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0))))"""))
    user = ewasm.instantiate(wat("""(module
        (import "p" "mem" (memory 1))
        (import "p" "tab" (table 2 funcref))
        (import "p" "sq" (func $sq (param i32) (result i32)))
        (type $t (func (param i32) (result i32)))
        (func (export "go") (param i32) (result i32)
          (i32.store8 (i32.const 7) (i32.const 99))
          (i32.add (call $sq (local.get 0))
                   (call_indirect (type $t) (local.get 0) (i32.const 0)))))"""),
        {"p": provider.exports})
    assert user.invoke("go", 5) == [50]
    assert provider.invoke("peek", 7) == [99]


def test_table_and_memory_objects_from_python(wat):
    mem = ewasm.Memory(MemoryType(Limits(1, 2)))
    table = ewasm.Table(TableType(FUNCREF, Limits(3, 3)))
    inst = ewasm.instantiate(wat("""(module
        (import "e" "m" (memory 1 2)) (import "e" "t" (table 3 3 funcref))
        (func $f (result i32) (i32.const 42)) (elem (i32.const 2) $f)
        (type $v (func (result i32)))
        (func (export "call2") (result i32) (call_indirect (type $v) (i32.const 2)))
        (data (i32.const 10) "hi"))"""), {"e": {"m": mem, "t": table}})
    assert mem.read(10, 2) == b"hi"
    assert inst.invoke("call2") == [42]
    assert table.get(2) is not None and table.get(0) is None


def test_start_function_trap_fails_instantiation(wat):
    with pytest.raises(ewasm.Trap) as e:
        ewasm.instantiate(wat("(module (func $s unreachable) (start $s))"))
    assert e.value.kind is ewasm.TrapKind.UNREACHABLE


def test_recursion_exhausts_deterministically(wat):
    inst = ewasm.instantiate(wat("""(module
        (func $r (export "r") (param i32) (result i32) (call $r (i32.add (local.get 0) (i32.const 1))))
        (func $a (export "a") (param i64) (result i64) (call $b (local.get 0)))
        (func $b (param i64) (result i64) (call $a (local.get 0))))"""))
    for name in ("r", "a"):
        for _ in range(2):
            with pytest.raises(ewasm.CallStackExhausted):
                inst.invoke(name, 0)
    # A trap does not poison the instance: the budget is reset for every call.
    with pytest.raises(ewasm.CallStackExhausted):
        inst.invoke("r", 0)


def test_deep_but_bounded_recursion_succeeds(wat):
    inst = ewasm.instantiate(wat("""(module
        (func $d (export "depth") (param i32) (result i32)
          (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
            (else (i32.add (i32.const 1) (call $d (i32.sub (local.get 0) (i32.const 1))))))))"""))
    assert inst.invoke("depth", 10000) == [10000]


def test_host_reentry_shares_the_depth_budget(wat):
    wasm = wat("""(module (import "h" "back" (func $back (param i32) (result i32)))
        (func (export "down") (param i32) (result i32) (call $back (local.get 0))))""")
    holder = {}

    def back(n):
        return holder["inst"].invoke("down", n + 1)[0]

    holder["inst"] = ewasm.instantiate(wasm, {"h": {"back": back}})
    # Endless Wasm -> Python -> Wasm recursion ends in an error, never a crash.
    with pytest.raises((ewasm.CallStackExhausted, RecursionError)):
        holder["inst"].invoke("down", 0)


def test_float_instruction_is_rejected_by_name(wat):
    with pytest.raises(ewasm.CompileError) as e:
        ewasm.compile(wat("(module (func (result f32) (f32.add (f32.const 1) (f32.const 2))))"))
    assert e.value.float_instruction == "f32.const"
    assert "f32.const" in str(e.value)


def test_concurrent_calls_from_threads(wat):
    inst = ewasm.instantiate(wat("""(module
        (func $fib (export "fib") (param i32) (result i32)
          (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))
            (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                           (call $fib (i32.sub (local.get 0) (i32.const 2))))))))"""))
    results, errors = [], []

    def work(n):
        try:
            for _ in range(20):
                results.append((n, inst.invoke("fib", n)[0]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in (15, 20, 22)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    expected = {15: 610, 20: 6765, 22: 17711}
    assert len(results) == 60 and all(v == expected[n] for n, v in results)


def test_a_host_function_gets_exactly_one_thunk_across_threads():
    from ewasm.runtime import instance as instance_module

    hf = ewasm.HostFunc(FuncType((), ()), lambda: None)
    barrier = threading.Barrier(8)
    refs = []

    def take():
        barrier.wait()
        refs.append(instance_module._host_funcref(hf))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.wrapper for r in refs}) == 1
