"""The AOT compiler: correctness against wasmtime, determinism, partitions, the cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ewasm
from ewasm.compiler import lower
from ewasm.compiler.cache import ObjectCache
from ewasm.compiler.codegen import unpack_objects
from ewasm.compiler.driver import compile_module
from ewasm.compiler.pipeline import OPTIMIZED
from ewasm.compiler.target import TargetSpec
from ewasm.compiler.workers import WorkerPool

wasmtime = pytest.importorskip("wasmtime", reason="wasmtime (a test dependency) is needed")

I32_BIN = ["add", "sub", "mul", "and", "or", "xor", "shl", "shr_s", "shr_u", "rotl", "rotr",
           "eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"]
I32_UN = ["clz", "ctz", "popcnt", "eqz", "extend8_s", "extend16_s"]
I32_TRAP = ["div_s", "div_u", "rem_s", "rem_u"]


def _expr(draw, depth: int, ty: str) -> str:
    leaf = depth == 0 or draw(st.integers(0, 3)) == 0
    if leaf:
        if draw(st.booleans()):
            return f"(local.get {0 if ty == 'i32' else 1})"
        bits = 32 if ty == "i32" else 64
        return f"({ty}.const {draw(st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))})"
    kind = draw(st.integers(0, 5))
    if kind == 0:
        op = draw(st.sampled_from(I32_UN if ty == "i32" else ["clz", "ctz", "popcnt",
                                                              "extend8_s", "extend32_s"]))
        if op == "eqz" and ty == "i64":
            op = "popcnt"
        return f"({ty}.{op} {_expr(draw, depth - 1, ty)})"
    if kind == 1 and ty == "i32":
        return f"(i32.wrap_i64 {_expr(draw, depth - 1, 'i64')})"
    if kind == 1 and ty == "i64":
        how = draw(st.sampled_from(["extend_i32_s", "extend_i32_u"]))
        return f"(i64.{how} {_expr(draw, depth - 1, 'i32')})"
    if kind == 2:
        op = draw(st.sampled_from(I32_TRAP))
        return f"({ty}.{op} {_expr(draw, depth - 1, ty)} {_expr(draw, depth - 1, ty)})"
    if kind == 3:
        cond = _expr(draw, depth - 1, "i32")
        return (f"(select {_expr(draw, depth - 1, ty)} {_expr(draw, depth - 1, ty)} {cond})")
    op = draw(st.sampled_from(I32_BIN))
    res = f"({ty}.{op} {_expr(draw, depth - 1, ty)} {_expr(draw, depth - 1, ty)})"
    if op in I32_BIN[11:] and ty == "i64":  # comparisons give i32
        return f"(i64.extend_i32_u {res})"
    return res


@st.composite
def programs(draw):
    ty = draw(st.sampled_from(["i32", "i64"]))
    body = _expr(draw, 4, ty)
    return (f'(module (func (export "f") (param i32 i64) (result {ty}) {body}))',
            draw(st.integers(-(2**31), 2**31 - 1)), draw(st.integers(-(2**63), 2**63 - 1)))


def _wasmtime_call(wasm: bytes, args):
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    inst = wasmtime.Instance(store, wasmtime.Module(engine, wasm), [])
    try:
        return ("ok", inst.exports(store)["f"](store, *args))
    except wasmtime.Trap as trap:
        return ("trap", str(trap))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_integer_semantics_match_wasmtime(wat, prog):
    text, a, b = prog
    wasm = wat(text)
    want = _wasmtime_call(wasm, (a, b))
    inst = ewasm.instantiate(wasm, cache=False)
    try:
        got = ("ok", inst.invoke("f", a, b)[0])
    except ewasm.Trap as trap:
        got = ("trap", trap.kind)
    if want[0] == "trap":
        assert got[0] == "trap", (text, a, b, want, got)
        kind = got[1]
        if "divide by zero" in want[1]:
            assert kind is ewasm.TrapKind.INTEGER_DIVIDE_BY_ZERO
        else:
            assert kind is ewasm.TrapKind.INTEGER_OVERFLOW
    else:
        assert got == want, (text, a, b)


def test_kernels_match_expected(shared):
    kdir = shared("fixtures", "bench", "kernels")
    expected = json.loads((kdir / "expected.json").read_text())
    inst = ewasm.instantiate((kdir / "kernels.wasm").read_bytes())
    for n in ("0", "1", "10", "25"):
        assert inst.invoke("fib", int(n)) == [expected["fib"][n]]
    inst.invoke("fill", 1 << 20, 12345)
    mem = inst.exports["memory"]
    buf = inst.invoke("buf_ptr")[0]
    assert mem.read(buf, 16).hex() == expected["fill_first16_hex"]
    out = inst.invoke("out_ptr")[0]
    for algo in ("sha256", "keccak256"):
        for n in ("0", "55", "64", "137", "65536"):
            assert inst.invoke(algo, int(n))[0] & 0xFFFFFFFF == expected[algo][n]["return_u32"]
            assert mem.read(out, 32).hex() == expected[algo][n]["digest"]
    naive = ewasm.instantiate((kdir / "fib_naive.wasm").read_bytes())
    assert naive.invoke("fib", 20) == [expected["fib"]["20"]]


@pytest.mark.parametrize("tier", ["optimized", "baseline"])
def test_compile_is_deterministic_across_processes(shared, tmp_path, tier):
    kernels = shared("fixtures", "bench", "kernels", "kernels.wasm")
    outs = []
    for k in range(2):
        out = tmp_path / f"k{k}.art"
        subprocess.run([sys.executable, "-m", "apps.cli", "compile", str(kernels), "-o",
                        str(out), "--no-cache", "--tier", tier], check=True, capture_output=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert ewasm.CompiledModule.deserialize(outs[0]).tier.value == tier
    assert len(outs[0]) > 1000


def test_partitioned_compile_is_deterministic_and_correct(shared, monkeypatch):
    kdir = shared("fixtures", "bench", "kernels")
    wasm = (kdir / "kernels.wasm").read_bytes()
    module = ewasm.validate(wasm)
    monkeypatch.setattr(lower, "PARTITION_INSTRUCTIONS", 300)
    assert lower.partition_count(module) == 4
    serial = WorkerPool(1, TargetSpec.portable())
    try:
        payload = compile_module(module, OPTIMIZED, pool=serial)
    finally:
        serial.close()
    assert len(unpack_objects(payload)) == 4
    assert compile_module(module, OPTIMIZED) == payload  # in parallel: the same bytes
    compiled = ewasm.CompiledModule(wasm, module, payload, b"k" * 32, ewasm.Features())
    inst = ewasm.instantiate(compiled)
    inst.invoke("fill", 4096, 12345)
    expected = json.loads((kdir / "expected.json").read_text())
    assert inst.invoke("sha256", 4096)[0] & 0xFFFFFFFF == expected["sha256"]["4096"]["return_u32"]
    assert inst.invoke("fib", 25) == [expected["fib"]["25"]]


def test_cache_key_covers_target_and_features():
    wasm = b"\0asm\1\0\0\0"
    base = ewasm.compiled.cache_key(wasm, ewasm.Features(), TargetSpec.portable())
    other_cpu = TargetSpec("x86_64-unknown-linux-gnu", "znver3")
    assert ewasm.compiled.cache_key(wasm, ewasm.Features(), other_cpu) != base
    assert ewasm.compiled.cache_key(wasm, ewasm.Features(bulk_memory=False),
                               TargetSpec.portable()) != base
    assert ewasm.compiled.cache_key(wasm + b"\0", ewasm.Features(), TargetSpec.portable()) != base


CACHE_WAT = '(module (func (export "f") (result i32) (i32.const 7)))'


def test_cache_hit_and_corrupt_entries_are_recompiled(wat, tmp_path):
    wasm = wat(CACHE_WAT)
    cache = ObjectCache(tmp_path)
    first = ewasm.compile(wasm, cache=cache)
    path = cache.path(first.cache_key)
    assert path.exists()
    hit = ewasm.compile(wasm, cache=cache)
    assert hit.object_code == first.object_code
    assert ewasm.instantiate(hit).invoke("f") == [7]
    blob = path.read_bytes()
    for damaged in (blob[: len(blob) // 2], blob[:-1] + bytes([blob[-1] ^ 0xFF]), b""):
        path.write_bytes(damaged)
        again = ewasm.compile(wasm, cache=cache)
        assert again.object_code == first.object_code
        assert ewasm.instantiate(again).invoke("f") == [7]
        assert path.read_bytes() == blob  # the entry was rewritten whole


def test_cache_dir_comes_from_environment(wat, tmp_path, monkeypatch):
    monkeypatch.setenv("EWASM_CACHE_DIR", str(tmp_path / "c"))
    compiled = ewasm.compile(wat(CACHE_WAT))
    assert ObjectCache().path(compiled.cache_key).is_file()
    assert str(ObjectCache().directory).startswith(str(tmp_path))


def test_artefact_round_trip(wat):
    compiled = ewasm.compile(wat(CACHE_WAT), cache=False)
    data = compiled.serialize()
    again = ewasm.CompiledModule.deserialize(data)
    assert ewasm.instantiate(again).invoke("f") == [7]
    with pytest.raises(ewasm.DecodeError):
        ewasm.CompiledModule.deserialize(data[:-3])


def test_lowering_is_pure_text(wat):
    module = ewasm.validate(wat(CACHE_WAT))
    assert lower.lower_module(module) == lower.lower_module(module)
    assert Path(lower.__file__).name == "lower.py"


# --- objects the JIT can place anywhere --------------------------------------------------
# x86-64 relocation types of 64-bit reach; a 32-bit one between sections (PC32, PLT32,
# GOTPCREL, 32S...) asserts in RuntimeDyld, in the host, once the JIT's sections of one
# object land more than 2 GiB apart in a long-running process.
_WIDE_RELOCATIONS = {1: "R_X86_64_64", 25: "R_X86_64_GOTOFF64", 27: "R_X86_64_GOT64",
                     29: "R_X86_64_GOTPC64"}


def _relocation_types(obj: bytes) -> set[int]:
    import struct

    shoff, = struct.unpack_from("<Q", obj, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
    types = set()
    for i in range(shnum):
        sh = shoff + i * shentsize
        sh_type, = struct.unpack_from("<I", obj, sh + 4)
        if sh_type != 4:  # SHT_RELA
            continue
        offset, size = struct.unpack_from("<QQ", obj, sh + 0x18)
        for r in range(offset, offset + size, 24):
            info, = struct.unpack_from("<Q", obj, r + 8)
            types.add(info & 0xFFFFFFFF)
    return types


@pytest.mark.skipif(__import__("platform").machine() != "x86_64",
                    reason="the relocation check reads x86-64 relocation types")
@pytest.mark.parametrize("tier", ["baseline", "optimized"])
def test_objects_use_only_64_bit_relocations(wat, tier, tmp_path, monkeypatch):
    from ewasm.compiler.codegen import unpack_objects

    monkeypatch.setenv("EWASM_CACHE_DIR", str(tmp_path))
    module = wat("""
      (module
        (import "env" "f" (func $f (param i32) (result i32)))
        (memory 1) (table 2 funcref) (elem (i32.const 0) $a $b)
        (global $g (mut i32) (i32.const 3))
        (data (i32.const 8) "rodata")
        (func $a (result i32) (i32.const 1))
        (func $b (result i32) (i32.const 2))
        (func (export "run") (param $x i32) (result i32)
          (block $d (block $c (block $b0 (block $a0
            (br_table $a0 $b0 $c $d (local.get $x)))
            (return (call_indirect (result i32) (i32.const 0))))
            (return (i32.div_s (i32.const 7) (local.get $x))))
            (return (call $f (i32.load (local.get $x)))))
          (global.get $g)))""")
    compiled = ewasm.compile(module, tier=tier, cache=False)
    found = set()
    for obj in unpack_objects(compiled.object_code):
        found |= _relocation_types(obj)
    assert found and found <= _WIDE_RELOCATIONS.keys(), sorted(found)
