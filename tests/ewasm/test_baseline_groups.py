"""Groups of small functions on the baseline tier (ewasm/compiler/group.py): several
Wasm functions as one LLVM function behind a selector. Grouped code must give what the
optimising tier (which never groups) gives: results, traps with their function index and
byte offset, memory, globals, gas, and call-stack exhaustion at the same depth; and a
group's frame must stay within what the call-depth budget allows for."""

from __future__ import annotations

import collections
import importlib
import struct
import subprocess
import sys
import textwrap

import pytest

import ewasm
import gasmeter
from evmc_bridge import Message, Revision, StatusCode
from evmc_bridge.mocked_host import MockedHost
from ewasm.compiler import group, lower
from ewasm.compiler.function import ModuleLowering
from ewasm.compiler.pipeline import BASELINE
from ewasm.compiler.workers import foreground
from tests.ewasm import adversarial as A

N = 40  # functions per family


def _families(n: int = N) -> list[str]:
    """Three families of small functions, one signature each, calling down a chain:
    $a recurses through its family (a cycle), $b divides, loops, rotates and writes a
    global, $c traps (unreachable in member x, out of bounds in member x - n) or
    writes memory."""
    fs = []
    for k in range(n):
        fs.append(f"""
        (func $a{k} (param $x i32) (result i32)
          (i32.store (i32.const {4 * k}) (local.get $x))
          (if (result i32) (i32.eqz (local.get $x))
            (then (i32.const {k}))
            (else (i32.add (call $a{(k + 1) % n} (i32.sub (local.get $x) (i32.const 1)))
                           (i32.const {k})))))""")
    for k in range(n):
        nxt = f"(call $b{k + 1} (local.get $acc) (local.get $d))" if k + 1 < n else \
            "(local.get $acc)"
        fs.append(f"""
        (func $b{k} (param $v i64) (param $d i64) (result i64) (local $acc i64) (local $i i32)
          (local.set $acc (i64.div_s (local.get $v) (local.get $d)))
          (loop $l
            (local.set $acc (i64.rotl (i64.add (local.get $acc) (i64.const {k + 1}))
                                      (i64.const {k % 64})))
            (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                                (i32.const 3))))
          (global.set $g (i64.xor (global.get $g) (local.get $acc)))
          (block $out (result i64)
            (drop (br_if $out (i64.const -1) (i64.eq (local.get $d) (i64.const {k + 1000}))))
            {nxt}))""")
    for k in range(n):
        nxt = f"(call $c{k + 1} (local.get $x))" if k + 1 < n else ""
        fs.append(f"""
        (func $c{k} (param $x i32)
          (if (i32.eq (local.get $x) (i32.const {k})) (then unreachable))
          (if (i32.eq (local.get $x) (i32.const {n + k}))
            (then (drop (i32.load (i32.const 65536)))))
          (i32.store8 (i32.const {200 + k}) (i32.add (local.get $x) (i32.const {k})))
          {nxt})""")
    return fs


def _module_wat(n: int = N) -> str:
    # $a5 is in the table: it escapes, so it is not grouped, and the chain runs in and
    # out of groups through it.
    return f"""(module
      (type $ai (func (param i32) (result i32)))
      (memory (export "memory") 1)
      (global $g (export "g") (mut i64) (i64.const 0))
      (table 1 funcref) (elem (i32.const 0) $a5)
      {''.join(_families(n))}
      (func (export "a") (param i32) (result i32) (call $a0 (local.get 0)))
      (func (export "b") (param i64 i64) (result i64) (call $b0 (local.get 0) (local.get 1)))
      (func (export "c") (param i32) (call $c0 (local.get 0)))
      (func (export "ind") (param i32) (result i32)
        (call_indirect (type $ai) (local.get 0) (i32.const 0))))"""


def _index(wat_text: str, name: str) -> int:
    """The function index of $name in a module written as above (no imports)."""
    return [line.split()[1] for line in wat_text.splitlines()
            if line.strip().startswith("(func $")].index(f"${name}")


CALLS = [("a", 0), ("a", 5), ("a", 39), ("a", 200), ("a", 10**7),
         ("b", 1000, 7), ("b", -5, 3), ("b", 17, 1003), ("b", 1, 0), ("b", -(1 << 63), -1),
         ("c", 0), ("c", 17), ("c", N - 1), ("c", N + 3), ("c", 2 * N - 1), ("c", 10**6),
         ("ind", 3), ("ind", 0)]


def _outcomes(wasm: bytes, tier: str) -> list:
    out = []
    compiled = ewasm.compile(wasm, cache=False, tier=tier)
    for name, *args in CALLS:
        inst = ewasm.instantiate(compiled)
        try:
            result = ("ok", inst.invoke(name, *args))
        except ewasm.Trap as trap:
            result = ("trap", type(trap).__name__, trap.kind, trap.func_index, trap.offset)
        memory = inst.exports["memory"]
        out.append((name, args, result, memory.read(0, 4096), inst.exports["g"].value))
    return out


@pytest.fixture
def tiny_partitions(monkeypatch, tmp_path):
    """Partitions of a few functions each: groups in every partition, calls to members of
    groups in other partitions."""
    monkeypatch.setattr(lower, "BASELINE_PARTITION_INSTRUCTIONS", 64)
    monkeypatch.setenv("EWASM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(importlib.import_module("ewasm.execute"), "_cache",
                        collections.OrderedDict())


def _groups(module) -> tuple[ModuleLowering, list[list[int]], list[list]]:
    plan = lower.partition_plan(module, baseline=True)
    ml = ModuleLowering(module)
    return ml, group.plan_groups(ml, [[i for i, s in units if s is None] for units in plan]), plan


def test_small_functions_are_grouped(wat):
    text = _module_wat()
    module = ewasm.validate(wat(text))
    ml, groups, plan = _groups(module)
    texts = "\n".join(lower.lower_baseline(module))
    members = {idx for g in groups for idx in g}
    a1, a5, b3, c7 = (_index(text, f) for f in ("a1", "a5", "b3", "c7"))
    assert {a1, b3, c7} <= members and a5 not in members  # $a5 escapes (table)
    for g in groups:
        assert len(g) >= 2
        assert len({(ml.func_types[i].params, ml.func_types[i].results) for i in g}) == 1
        assert not ml.escaping.intersection(g)
        home = {p for p, units in enumerate(plan) for i, s in units if i in g}
        assert len(home) == 1  # a group never spans partitions
        assert f"{group.group_symbol(g[0])}(" in texts
    # A member is no LLVM function of its own; the functions outside groups are.
    assert f"@f{a1}(" not in texts and f" @f{a5}(" in texts
    assert len(groups) >= 3


@pytest.mark.parametrize("partitions", ["default", "tiny"])
def test_grouped_functions_agree_with_the_optimised_tier(wat, partitions, request):
    if partitions == "tiny":
        request.getfixturevalue("tiny_partitions")
    text = _module_wat()
    wasm = wat(text)
    module = ewasm.validate(wasm)
    _, groups, plan = _groups(module)
    assert groups and (partitions == "default" or len(plan) > 4)
    base, opt = _outcomes(wasm, "baseline"), _outcomes(wasm, "optimized")
    assert base == opt
    by_call = {(name, tuple(args)): result for name, args, result, _, _ in base}
    # What the reference gives, so that a fault common to both tiers shows too.
    assert by_call["a", (0,)] == ("ok", [0])
    assert by_call["a", (5,)] == ("ok", [sum(range(6))])
    assert by_call["ind", (3,)] == ("ok", [5 + 6 + 7 + 8])
    unreachable = by_call["c", (17,)]
    assert unreachable[:4] == ("trap", "Trap", ewasm.TrapKind.UNREACHABLE, _index(text, "c17"))
    oob = by_call["c", (N + 3,)]
    assert oob[2:4] == (ewasm.TrapKind.MEMORY_OUT_OF_BOUNDS, _index(text, "c3"))
    assert by_call["b", (1, 0)][2:4] == (ewasm.TrapKind.INTEGER_DIVIDE_BY_ZERO, _index(text, "b0"))
    assert by_call["b", (-(1 << 63), -1)][2] == ewasm.TrapKind.INTEGER_OVERFLOW
    deep = by_call["a", (10**7,)]
    assert deep[1] == "CallStackExhausted"  # at the same function and offset on both tiers
    assert by_call["b", (17, 1003)] == ("ok", [-1])  # a branch value out of member b3


def _contract(wat, n: int, main: str) -> bytes:
    """The families as an Ewasm contract (main, memory), metered as a chain stores it."""
    fs = "".join(_families(n))
    code = wat(f"""(module
      (memory (export "memory") 1)
      (global $g (mut i64) (i64.const 0))
      {fs}
      (func (export "main") {main}))""")
    return gasmeter.MeteringPolicy().meter(code)


@pytest.mark.parametrize("main", [
    "(drop (call $a0 (i32.const 100))) (drop (call $b0 (i64.const 99) (i64.const 3)))"
    " (call $c0 (i32.const 1000))",
    "(call $c0 (i32.const 23))",  # unreachable in $c23
    "(drop (call $a0 (i32.const 10000000)))",  # out of call depth
], ids=["runs", "traps", "exhausts"])
def test_grouped_contracts_use_the_same_gas_on_both_tiers(wat, main):
    code = _contract(wat, N, main)
    module = ewasm.validate(code)
    assert _groups(module)[1]  # metered code is grouped too
    results = []
    for tier in ("baseline", "optimized"):
        r = ewasm.execute(MockedHost(), Revision.BYZANTIUM, Message(gas=10**9), code, tier=tier)
        results.append((r.status, r.gas_left, r.output))
    assert results[0] == results[1]
    if main.startswith("(drop (call $a0 (i32.const 100)"):
        assert results[0][0] == StatusCode.SUCCESS and 0 < results[0][1] < 10**9
    else:
        assert results[0][0] == StatusCode.FAILURE


# --- the frame bound ---------------------------------------------------------------------
def _frames(obj: bytes) -> dict[str, int]:
    """Function symbol -> the stack its prologue reserves (x86-64 `sub rsp, imm`)."""
    shoff, = struct.unpack_from("<Q", obj, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", obj, shoff + i * shentsize) for i in range(shnum)]
    out = {}
    for _, sh_type, _, _, off, size, link, _, _, _ in secs:
        if sh_type != 2:  # SHT_SYMTAB
            continue
        strtab = secs[link][4]
        for s in range(off, off + size, 24):
            name, info, _, shndx, value, fsize = struct.unpack_from("<IBBHQQ", obj, s)
            if info & 0xF != 2:  # STT_FUNC
                continue
            sym = obj[strtab + name:obj.index(b"\0", strtab + name)].decode()
            start = secs[shndx][4] + value
            code = obj[start:start + min(fsize, 32)]
            k = code.find(b"\x48\x81\xec")
            if k >= 0:
                out[sym] = struct.unpack_from("<I", code, k + 3)[0]
            elif (k := code.find(b"\x48\x83\xec")) >= 0:
                out[sym] = code[k + 3]
    return out


def _chain(body_of, n: int = 200, types=None, func_types=None, main=None) -> bytes:
    bodies = [body_of(k, n) for k in range(n)]
    if main is not None:
        bodies = [main] + bodies
    return A.contract(bodies, types=types, func_types=func_types)


def _stack_divs(k: int, n: int) -> bytes:
    # 16 values pushed, then folded by divisions: each lives across the others' checks.
    code = bytes([A.LOCAL_GET, 0]) * 16 + bytes([0x6E]) * 15 + bytes([A.LOCAL_SET, 1])
    return A._body([(2, A.I32)], code + bytes([A.CALL]) + A.uleb((k + 1) % n))


def _loads(k: int, n: int) -> bytes:
    step = bytes([A.LOCAL_GET, 0, A.LOCAL_GET, 0, A.I32_LOAD, 2, 0, A.I32_ADD, A.LOCAL_SET, 1])
    return A._body([(2, A.I32)], step * 4 + bytes([A.CALL]) + A.uleb((k + 1) % n))


def _wide_calls(k: int, n: int) -> bytes:
    # 20 i64 parameters passed on: outgoing arguments on the stack.
    args = b"".join(bytes([A.LOCAL_GET]) + A.uleb(j) for j in range(20))
    return A._body([], args + bytes([A.CALL]) + A.uleb(1 + (k + 1) % n))


WIDE_TYPE = b"\x60" + A.uleb(20) + bytes([A.I64]) * 20 + b"\x00"
SHAPES = {
    "stack_divs": _chain(_stack_divs),
    "loads": _chain(_loads),
    "wide_calls": _chain(_wide_calls, types=[b"\x60\x00\x00", WIDE_TYPE],
                         func_types=[0] + [1] * 200,
                         main=A._body([], bytes([A.I64_CONST, 0]) * 20 + bytes([A.CALL, 1]))),
}


@pytest.mark.skipif(__import__("platform").machine() != "x86_64",
                    reason="reads x86-64 prologues")
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_group_frames_stay_within_their_bound(shape):
    module = ewasm.validate(SHAPES[shape])
    ml, groups, plan = _groups(module)
    assert groups
    frames: dict[str, int] = {}
    for obj in foreground().compile(list(lower.lower_baseline(module, bins=plan)), BASELINE):
        frames.update(_frames(obj))
    nimp = ml.num_imported
    for g in groups:
        fns = [(module.codes[i - nimp], ml.func_types[i]) for i in g]
        weight = sum(len(fn.body) + len(ft.params) + len(fn.locals) + group.MEMBER_WEIGHT
                     for fn, ft in fns)
        least = min(8 + len(ft.params) + len(fn.locals) + len(fn.body) // 8 for fn, ft in fns)
        frame = frames[group.group_symbol(g[0])[1:]]
        assert 0 < frame <= group.FRAME_BYTES_PER_WEIGHT * weight, (g[0], frame, weight)
        # What the budget allows a call of the cheapest member: 512 MiB per 2^20 units.
        assert frame <= 512 * least // 2


def test_recursion_through_a_group_exhausts_the_budget_before_the_stack(tmp_path):
    # One cheap member that recurses (its call charges the least budget there is) among
    # the heaviest members there are: every call of it takes the whole group's frame.
    heavy = A._body([(2, A.I32)], bytes([A.LOCAL_GET, 0]) * 16 + bytes([0x6E]) * 15
                    + bytes([A.LOCAL_SET, 1]))
    cheap = A._body([], bytes([A.CALL, 1]))
    code = A.contract([A._body([], bytes([A.CALL, 1])), cheap] + [heavy] * 120)
    module = ewasm.validate(code)
    groups = _groups(module)[1]
    mine = next(g for g in groups if 1 in g)
    # The cheap member shares its frame with heavy ones, as many as the bound lets it
    # (without the bound, the 40 of its partition: 2^20 / 8 calls of a ~5 KB frame
    # overflow the 512 MiB stack, a SIGSEGV).
    assert len(mine) >= 5
    path = tmp_path / "m.wasm"
    path.write_bytes(code)
    script = textwrap.dedent(f"""
        import ewasm
        inst = ewasm.instantiate(open({str(path)!r}, "rb").read(), cache=False,
                                 tier="baseline")
        try:
            inst.invoke("main")
        except ewasm.CallStackExhausted:
            print("exhausted")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, env={**__import__("os").environ,
                                           "EWASM_CACHE_DIR": str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "exhausted"


def test_grouping_is_deterministic(wat):
    module = ewasm.validate(wat(_module_wat()))
    assert list(lower.lower_baseline(module)) == list(lower.lower_baseline(module))
