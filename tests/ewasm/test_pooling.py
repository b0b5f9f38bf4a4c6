"""Pooled instances stay isolated: an instance reused for the next message starts as a
new one would, whatever the last message did to its memory, globals, table, gas counter
or trap state."""

from __future__ import annotations

import ctypes

import pytest

import ewasm
import gasmeter
from evmc_bridge import Message, Revision, StatusCode
from evmc_bridge.mocked_host import MockedHost
from ewasm.compiler import abi
from ewasm.execute import POOL_PER_CONTRACT, prepare_contract

# Call data byte 0: 0 probe (report the state), 1 dirty then trap, 2 dirty then finish,
# 3 spin until out of gas after dirtying. The probe finishes with memory [100, 332):
# the data segment "seed", memory.size, the global, memory at 200, a table element's
# result through call_indirect, and the gas left.
CONTRACT = r"""
(module
  (import "ethereum" "callDataCopy" (func $cdc (param i32 i32 i32)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (import "ethereum" "getGasLeft" (func $gas (result i64)))
  (type $t (func (result i32)))
  (memory 1)
  (export "memory" (memory 0))
  (global $g (mut i64) (i64.const 7))
  (table 2 funcref)
  (elem (i32.const 0) $eleven)
  (data (i32.const 100) "seed")
  (func $eleven (type $t) (i32.const 11))
  (func $twelve (type $t) (i32.const 12))
  (func $dirty
    (i32.store (i32.const 100) (i32.const 0x41414141))
    (i64.store (i32.const 200) (i64.const -1))
    (global.set $g (i64.const 99))
    (drop (memory.grow (i32.const 3)))
    (i32.store (i32.const 70000) (i32.const 5)))
  (func (export "main")
    (local $mode i32)
    (call $cdc (i32.const 0) (i32.const 0) (i32.const 1))
    (local.set $mode (i32.load8_u (i32.const 0)))
    (if (local.get $mode) (then (call $dirty)))
    (if (i32.eq (local.get $mode) (i32.const 1)) (then unreachable))
    (if (i32.eq (local.get $mode) (i32.const 3))
      (then (loop $spin (br $spin))))
    (if (i32.eq (local.get $mode) (i32.const 2))
      (then (call $finish (i32.const 0) (i32.const 0))))
    (i32.store (i32.const 300) (memory.size))
    (i64.store (i32.const 304) (global.get $g))
    (i64.store (i32.const 312) (i64.load (i32.const 200)))
    (i32.store (i32.const 320) (call_indirect (type $t) (i32.const 0)))
    (i64.store (i32.const 324) (call $gas))
    (call $finish (i32.const 100) (i32.const 232))))
"""
GAS = 1_000_000


@pytest.fixture
def code(wat, monkeypatch, tmp_path):
    monkeypatch.setenv("EWASM_CACHE_DIR", str(tmp_path))
    return gasmeter.MeteringPolicy().meter(wat(CONTRACT))  # the spin must run out of gas


def run(code: bytes, mode: int, gas: int = GAS):
    msg = Message(gas=gas, input=bytes([mode]))
    return ewasm.execute(MockedHost(), Revision.BYZANTIUM, msg, code)


def test_a_reused_instance_starts_as_a_new_one(code):
    fresh = run(code, 0)
    assert fresh.status == StatusCode.SUCCESS, fresh.message
    out = fresh.output
    assert out[:4] == b"seed" and out[200:204] == (1).to_bytes(4, "little")
    assert out[204:212] == (7).to_bytes(8, "little") and out[212:220] == bytes(8)
    assert out[220:224] == (11).to_bytes(4, "little")
    pool = prepare_contract(code).pool
    assert len(pool) == 1
    reused = pool[0]
    for mode, status in ((1, StatusCode.FAILURE), (2, StatusCode.SUCCESS),
                         (3, StatusCode.OUT_OF_GAS)):
        dirty = run(code, mode, gas=GAS if mode != 3 else 50_000)
        assert dirty.status == status, (mode, dirty.message)
        again = run(code, 0)
        assert (again.status, again.gas_left, again.output) == \
            (fresh.status, fresh.gas_left, fresh.output), mode
    assert pool == [reused]  # the same instance served every message


def test_nested_use_takes_more_instances_and_the_pool_is_bounded(code):
    prepared = prepare_contract(code)
    held = [prepared.acquire(GAS) for _ in range(POOL_PER_CONTRACT + 2)]
    assert len({id(i) for i in held}) == len(held)
    # Instances after the first are built from the template's images: as new as it.
    assert prepared.compiled.load().template.fast_init is not None
    for instance in held:
        assert instance.memory.read(100, 4) == b"seed"
        assert instance.table.get(0)() == [11] and instance.table.get(1) is None
        assert instance._global(0).value == 7
    for instance in held:
        prepared.release(instance)
    assert len(prepared.pool) == POOL_PER_CONTRACT
    assert run(code, 0).status == StatusCode.SUCCESS


def test_the_table_is_reset_too(code):
    prepared = prepare_contract(code)
    instance = prepared.acquire(GAS)
    # Scribble over the element the probe calls, as table.set/copy in a run would.
    ctypes.memset(instance.table.desc.elems, 0, abi.ELEM_SIZE)
    prepared.release(instance)
    r = run(code, 0)
    assert r.status == StatusCode.SUCCESS and r.output[220:224] == (11).to_bytes(4, "little")


# No table: reset takes the planned path (constant-offset data segments copied again).
DATA_ONLY = r"""
(module
  (import "ethereum" "callDataCopy" (func $cdc (param i32 i32 i32)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 100) "seed")
  (data (i32.const 4000) "more")
  (func (export "main")
    (call $cdc (i32.const 0) (i32.const 0) (i32.const 1))
    (if (i32.load8_u (i32.const 0))
      (then
        (i32.store (i32.const 100) (i32.const 0x41414141))
        (i32.store (i32.const 4000) (i32.const 0x42424242))
        (i32.store (i32.const 2000) (i32.const 0x43434343))
        (call $finish (i32.const 0) (i32.const 0))))
    (call $finish (i32.const 100) (i32.const 3904))))
"""


def test_data_segments_are_copied_again_on_reuse(wat, monkeypatch, tmp_path):
    monkeypatch.setenv("EWASM_CACHE_DIR", str(tmp_path))
    code = wat(DATA_ONLY)
    fresh = run(code, 0)
    assert fresh.status == StatusCode.SUCCESS, fresh.message
    assert fresh.output[:4] == b"seed" and fresh.output[3900:] == b"more"
    assert fresh.output[4:3900] == bytes(3896)
    (instance,) = prepare_contract(code).pool
    fast = instance._template.fast_init  # the copied (not mapped) fast reset is tested
    assert fast is not None and fast.image is None
    assert run(code, 1).status == StatusCode.SUCCESS
    again = run(code, 0)
    assert again.output == fresh.output and again.gas_left == fresh.gas_left
    assert prepare_contract(code).pool == [instance]


def _many_segments_wat(n: int) -> str:
    # One byte per 4 KiB page, each its own segment; main finishes the bytes it names.
    datas = "\n".join(f'  (data (i32.const {4096 * i + i % 7}) "\\{i % 251 + 1:02x}")'
                      for i in range(n))
    return f"""
(module
  (import "ethereum" "callDataCopy" (func $cdc (param i32 i32 i32)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (memory {-(-n * 4096 // 65536)})
  (export "memory" (memory 0))
{datas}
  (func (export "main") (local $i i32)
    (call $cdc (i32.const 0) (i32.const 0) (i32.const 1))
    (if (i32.load8_u (i32.const 0))
      (then
        (loop $dirty  ;; overwrite every segment's byte and the bytes beside it
          (i64.store (i32.mul (local.get $i) (i32.const 4096)) (i64.const -1))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $dirty (i32.lt_u (local.get $i) (i32.const {n}))))
        (call $finish (i32.const 0) (i32.const 0))))
    ;; gather byte i * 4096 + i % 7 of every page into [0, n) after restoring byte 0
    (loop $gather
      (i32.store8 (i32.add (i32.const {n * 4096}) (local.get $i))
        (i32.load8_u (i32.add (i32.mul (local.get $i) (i32.const 4096))
                              (i32.rem_u (local.get $i) (i32.const 7)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $gather (i32.lt_u (local.get $i) (i32.const {n}))))
    (call $finish (i32.const {n * 4096}) (i32.const {n}))))
"""


def test_a_mapped_memory_image_restores_every_segment(wat, monkeypatch, tmp_path):
    monkeypatch.setenv("EWASM_CACHE_DIR", str(tmp_path))
    n = 300
    code = wat(_many_segments_wat(n))
    expected = bytes(i % 251 + 1 for i in range(n))
    # mode 0 right after mode 0 may not touch the probe byte at page 0's offset 0 (i = 0):
    # the first byte read is call data copied over it, so compare from segment 1 on.
    first = run(code, 0)
    assert first.status == StatusCode.SUCCESS, first.message
    assert first.output[1:] == expected[1:]
    (instance,) = prepare_contract(code).pool
    assert instance._template.fast_init.image is not None  # the mapped path is tested
    for _ in range(3):
        assert run(code, 1).status == StatusCode.SUCCESS  # every page dirtied
        again = run(code, 0)
        assert (again.status, again.gas_left, again.output) == \
            (first.status, first.gas_left, first.output)
    # A second instance at once (nested use) maps the same image.
    prepared = prepare_contract(code)
    a, b = prepared.acquire(GAS), prepared.acquire(GAS)
    assert a is not b
    for inst in (a, b):
        got = bytes(inst.memory.read(4096 * i + i % 7, 1)[0] for i in range(n))
        assert got == expected
        prepared.release(inst)
