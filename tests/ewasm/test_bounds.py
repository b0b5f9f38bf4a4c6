"""Bounds-check elimination by versioning (ewasm/compiler/bounds.py): which ranges are
versioned, that the fast version really drops the covered checks, and that a program
sees exactly the traps, memory, results and gas of unversioned code: the baseline tier
(which never versions) and wasmtime are the oracles."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings

import ewasm
import gasmeter
from ewasm.compiler.bounds import MAX_RANGE, MIN_COVERED_IN_RUN, loop_ivs, plan_ranges
from ewasm.compiler.lower import lower_partitions
from ewasm.errors import Trap, TrapKind
from ewasm.opcodes import OPS
from tests.conftest import wat2wasm

_OP = {info.name: code for code, info in OPS.items()}
PAGE = 65536


def _body(*names):
    return [(_OP[n], 0, k) for k, n in enumerate(names)]


def test_a_straight_run_with_enough_accesses_is_a_range():
    load = ["local.get", "i32.load", "drop"]
    body = _body(*load * MIN_COVERED_IN_RUN, "end")
    assert plan_ranges(body, None) == {0: (3 * MIN_COVERED_IN_RUN, False)}
    assert plan_ranges(_body(*load * (MIN_COVERED_IN_RUN - 1), "end"), None) == {}


def test_a_call_ends_a_run_but_the_inline_gas_charge_does_not():
    half = [(_OP["local.get"], 0, 0), (_OP["i32.load"], (2, 0), 0), (_OP["drop"], 0, 0)]
    half *= MIN_COVERED_IN_RUN - 1
    body = half + [(_OP["i64.const"], 5, 0), (_OP["call"], 7, 0)] + half
    assert plan_ranges(body, gas_import=7) == {0: (len(body), False)}
    # Any other call may grow memory: each side has too few accesses for a run.
    assert plan_ranges(body, gas_import=None) == {}


def test_a_loop_without_calls_is_one_range_and_a_loop_with_one_is_not():
    inner = ["local.get", "i32.load", "drop", "local.get", "br_if", "end"]
    assert plan_ranges(_body("loop", *inner), None) == {0: (7, True)}
    run = [(_OP["local.get"], 0, 0), (_OP["i32.load"], 0, 0), (_OP["drop"], 0, 0)]
    run *= MIN_COVERED_IN_RUN
    calling = [(_OP["loop"], 0, 0), *run, (_OP["call"], 0, 0), (_OP["end"], 0, 0)]
    # The run before the call is a range of its own.
    assert plan_ranges(calling, None) == {1: (1 + len(run), False)}


def test_a_run_longer_than_the_cap_is_cut():
    body = _body(*(["local.get", "i32.load", "drop"] * (MAX_RANGE // 2)))
    ranges = plan_ranges(body, None)
    assert len(ranges) == 2 and all(end - start <= MAX_RANGE for start, (end, _) in
                                    ranges.items())


STRAIGHT = """(module (memory 1 1)
  (func (export "run") (param $p i32) (result i32)
    (i32.store offset=0 (local.get $p) (i32.const 1))
    (i32.store offset=8 (local.get $p) (i32.const 2))
    (i32.store offset=16 (local.get $p) (i32.const 3))
    (i32.add (i32.load offset=4 (local.get $p)) (i32.load offset=12 (local.get $p)))))"""


def test_the_fast_version_has_one_check_for_five_accesses():
    module = ewasm.validate(wat2wasm(STRAIGHT))
    (text,) = lower_partitions(module)
    fn = text[text.index("define internal"):]
    fast = fn[fn.index("\nfast"):fn.index("\njoin")]
    assert "icmp ugt" not in fast  # no per-access check on the fast path
    assert fn.count("icmp ule") == 1  # one check for the largest access, p + 20
    assert "add nuw i64" in fn and ", 20\n" in fn
    exact = fn[fn.index("\nexact"):fn.index("\nfast")]
    assert exact.count("icmp ugt") == 5  # the exact version checks every access


@pytest.mark.parametrize("p", [0, PAGE - 20, PAGE - 19, PAGE - 12, PAGE - 11, PAGE - 4,
                               PAGE - 3, PAGE])
def test_the_trap_and_the_stores_before_it_are_exact(p):
    wasm = wat2wasm(STRAIGHT.replace("(result i32)", "(result i32)").replace(
        "(memory 1 1)", '(memory (export "mem") 1 1)'))
    base, opt = (_run(wasm, tier, (p,)) for tier in ("baseline", "optimized"))
    assert opt == base
    result, memory, _ = opt
    stored = [k for k in range(3) if p + 8 * k + 4 <= PAGE]  # the stores that fit
    if len(stored) == 3:
        assert result == ("ok", (0,))
    else:
        # The first store that does not fit traps, at its own offset; the ones before it
        # landed (the fast version's single check failed, the exact one ran).
        assert result[:2] == ("trap", TrapKind.MEMORY_OUT_OF_BOUNDS)
    for k in stored:
        assert memory[p + 8 * k:p + 8 * k + 4] == (k + 1).to_bytes(4, "little")
    assert memory.count(0) == PAGE - 4 * len(stored) + sum(
        (k + 1).to_bytes(4, "little").count(0) for k in stored)


# --- differential: random ranges against the baseline tier and wasmtime ----------------

_STORES = [("i64.store", 8), ("i64.store32", 4), ("i64.store16", 2), ("i64.store8", 1)]
_LOADS = [("i64.load", 8), ("i64.load32_u", 4), ("i64.load16_s", 2), ("i64.load8_u", 1)]


@st.composite
def _item(draw, metered: bool):
    kind = draw(st.sampled_from(["store", "load", "const", "div", "bump"]
                                + (["gas"] if metered else [])))
    off = draw(st.integers(0, 40))
    if kind == "store":
        op, _ = draw(st.sampled_from(_STORES))
        v = draw(st.integers(0, 2**63))
        return f"({op} offset={off} (local.get $p) (i64.const {v}))"
    if kind == "load":
        op, _ = draw(st.sampled_from(_LOADS))
        return (f"(local.set $acc (i64.add (i64.rotl (local.get $acc) (i64.const 7)) "
                f"({op} offset={off} (local.get $p))))")
    if kind == "const":
        a = draw(st.sampled_from([0, 100, PAGE - 8, PAGE - 4, PAGE - 1, PAGE]))
        return f"(i32.store8 offset={off % 4} (i32.const {a}) (i32.const 7))"
    if kind == "div":
        return ("(local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u "
                "(i32.div_u (i32.const 1000) (local.get $q)))))")
    if kind == "bump":  # writes the base: its accesses are then no longer covered
        return "(local.set $p (i32.add (local.get $p) (i32.const 8)))"
    return f"(call $gas (i64.const {draw(st.integers(0, 50))}))"


def _module(items: list[str], loop: bool, metered: bool) -> str:
    body = "\n    ".join(items)
    if loop:
        body = (f"(block $out (loop $l {body}\n"
                "      (br_if $l (i32.gt_s (local.tee $n (i32.sub (local.get $n) "
                "(i32.const 1))) (i32.const 0)))))")
    gas = '(import "ethereum" "useGas" (func $gas (param i64)))' if metered else ""
    return f"""(module {gas} (memory (export "mem") 1 1)
  (func (export "run") (param $p i32) (param $q i32) (param $n i32) (result i64)
    (local $acc i64)
    {body}
    (local.get $acc)))"""


def _run(wasm: bytes, tier: str, args: tuple, gas: int | None = None):
    if gas is None:
        inst = ewasm.instantiate(ewasm.compile(wasm, cache=False, tier=tier))
    else:
        inst = ewasm.instantiate(wasm, cache=False, tier=tier, gas_limit=gas)
    try:
        result = ("ok", tuple(inst.invoke("run", *args)))
    except Trap as t:
        result = ("trap", t.kind, t.func_index, t.offset)
    memory = bytes(inst.exports["mem"].read(0, PAGE))
    return result, memory, inst.gas_left if gas is not None else None


def _wasmtime(wasm: bytes, args: tuple):
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    inst = wasmtime.Instance(store, wasmtime.Module(engine, wasm), [])
    try:
        result = ("ok", inst.exports(store)["run"](store, *args) & (2**64 - 1))
    except wasmtime.Trap:
        result = ("trap",)
    mem = inst.exports(store)["mem"]
    return result, bytes(mem.read(store, 0, PAGE))


_BASES = st.one_of(st.integers(0, 64), st.integers(PAGE - 64, PAGE + 8))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(_item(False), min_size=2, max_size=12), loop=st.booleans(),
       p=_BASES, q=st.sampled_from([0, 3]), n=st.integers(1, 4))
def test_versioned_code_matches_the_baseline_tier_and_wasmtime(items, loop, p, q, n):
    wasm = wat2wasm(_module(items, loop, metered=False))
    args = (p, q, n)
    base = _run(wasm, "baseline", args)
    opt = _run(wasm, "optimized", args)
    assert opt == base
    want, memory = _wasmtime(wasm, args)
    got = opt[0]
    assert (got[0], *((got[1][0] & (2**64 - 1),) if got[0] == "ok" else ())) == want
    assert opt[1] == memory


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(_item(True), min_size=2, max_size=12), loop=st.booleans(),
       p=_BASES, q=st.sampled_from([0, 3]), n=st.integers(1, 4), gas=st.integers(0, 200))
def test_versioned_metered_code_traps_and_charges_as_the_baseline_tier(items, loop, p, q, n,
                                                                        gas):
    wasm = wat2wasm(_module(items, loop, metered=True))
    args = (p, q, n)
    assert _run(wasm, "optimized", args, gas) == _run(wasm, "baseline", args, gas)


# --- deferred gas charges (gas.py): merged runs, carried into the arms of an if --------

DEFERRED = """(module (import "ethereum" "useGas" (func $g (param i64)))
  (global $seen (mut i32) (i32.const 0))
  (func $fib (export "fib") (param $n i32) (result i32)
    (call $g (i64.const 258))
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (call $g (i64.const 301)) (local.get $n))
      (else (call $g (i64.const 648))
        (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                 (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "noelse") (param $n i32) (result i32)
    (call $g (i64.const 5))
    (local.set $n (i32.add (local.get $n) (i32.const 1)))
    (call $g (i64.const 7))
    (if (i32.gt_u (local.get $n) (i32.const 3))
      (then (call $g (i64.const 11)) (global.set $seen (i32.const 1))
            (call $g (i64.const 13))))
    (call $g (i64.const 17))
    (global.get $seen)))"""


def _run_gas(wasm: bytes, tier: str, name: str, arg: int, gas: int):
    inst = ewasm.instantiate(wasm, cache=False, tier=tier, gas_limit=gas)
    try:
        result = ("ok", tuple(inst.invoke(name, arg)))
    except Trap as t:
        result = ("trap", t.kind, t.func_index, t.offset)
    return result, inst.gas_left, inst.exports["seen"].value if "seen" in inst.exports else None


def test_the_deferred_charges_are_made_in_one_sub():
    module = ewasm.validate(wat2wasm(DEFERRED))
    (text,) = lower_partitions(module, gas_import=0)
    fib = text[text.index("@f1("):text.index("@f2(")]
    # 258 waits past the condition into both arms: one charge per arm, none at the entry.
    assert "i64 559)" in fib and "i64 906)" in fib and "i64 258)" not in fib
    noelse = text[text.index("@f2("):]
    # 5 and 7 wait into both ways of the `if`: with 11 in its arm (23), alone on the
    # way round it (12); a global.set is an effect, so 13 is charged after it, apart.
    assert "i64 23)" in noelse and "i64 12)" in noelse
    assert "i64 13)" in noelse and "i64 17)" in noelse and "i64 5)" not in noelse


@pytest.mark.parametrize("name,arg", [("fib", 0), ("fib", 1), ("fib", 2), ("fib", 4),
                                      ("noelse", 0), ("noelse", 5)])
def test_deferred_charges_run_out_where_the_segments_say(name, arg):
    wasm = wat2wasm(DEFERRED)
    # Every charge boundary of the run, and either side of it.
    limits = sorted({g + d for g in range(0, 12000, 97) for d in (0,)} | {
        b + d for b in (5, 12, 23, 36, 53, 258, 559, 906, 1164, 1465, 1812, 2070, 2371, 2718)
        for d in (-1, 0, 1)})
    for gas in limits:
        want = _run_gas(wasm, "baseline", name, arg, gas)
        assert _run_gas(wasm, "optimized", name, arg, gas) == want, gas


def _nested_ifs(depth: int) -> bytes:
    body = "".join("(call $g (i64.const 3)) (if (local.get 0) (then " for _ in range(depth))
    body += "(call $g (i64.const 5))" + "))" * depth
    return wat2wasm(f"""(module (import "ethereum" "useGas" (func $g (param i64)))
      (func (export "f") (param i32) {body}))""")


def test_charges_carried_into_nested_ifs_give_ir_linear_in_the_depth():
    # Each level carries the waiting charges into both of its ways; the cap on a run keeps
    # the failure paths from growing with the depth.
    sizes = []
    for depth in (200, 400):
        (text,) = lower_partitions(ewasm.validate(_nested_ifs(depth)), gas_import=0)
        sizes.append(text.count("\n"))
    assert sizes[1] < 2.2 * sizes[0]


def test_planning_deeply_nested_loops_visits_each_instruction_a_bounded_number_of_times():
    # 1,500 loops nested inside 4,096 instructions, a call in the innermost: none
    # qualifies, and each must not be answered by scanning its body.
    depth = 1500
    body = ([(_OP["loop"], 0, 0)] * depth + [(_OP["local.get"], 0, 0), (_OP["i32.load"], 0, 0),
            (_OP["drop"], 0, 0), (_OP["call"], 0, 0)] + [(_OP["end"], 0, 0)] * depth)

    class Counting(list):
        reads = 0

        def __iter__(self):
            Counting.reads += len(self)
            return super().__iter__()

        def __getitem__(self, i):
            if isinstance(i, slice):
                Counting.reads += len(range(*i.indices(len(self))))
            else:
                Counting.reads += 1
            return super().__getitem__(i)

    assert plan_ranges(Counting(body), None) == {}
    assert Counting.reads < 10 * len(body)


# --- address formulas: constants added, induction variables ----------------------------

def _ivs(wat_body: str, locals_: str = "(local $i i32) (local $n i32) (local $q i32)"):
    module = ewasm.validate(wat2wasm(f"""(module (memory 1)
      (func (param $b i32) {locals_} {wat_body}))"""))
    body = module.codes[0].body
    start = next(k for k, (op, _, _) in enumerate(body) if op == _OP["loop"])
    ends = [k for k, (op, _, _) in enumerate(body) if op == _OP["end"]]
    return loop_ivs(body, start, ends[-2])


def test_a_counter_stepping_to_a_bound_is_an_induction_variable():
    ivs = _ivs("""(loop $l (i64.store (i32.add (local.get $b) (local.get $i)) (i64.const 1))
      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 8)))
                        (i32.const 64))))""")
    assert ivs is not None and ivs.counter == 1 and ivs.test == "ne" and ivs.bound == 64
    assert ivs.steps[1][0] == 8


def test_a_countdown_drives_a_pointer_stepping_beside_it():
    ivs = _ivs("""(loop $l (i32.store8 (local.get $q) (i32.const 0))
      (local.set $q (i32.add (local.get $q) (i32.const 1)))
      (br_if $l (local.tee $n (i32.add (local.get $n) (i32.const -1)))))""")
    assert ivs is not None and ivs.counter == 2 and (ivs.test, ivs.bound) == ("ne", 0)
    assert ivs.steps[2][0] == -1 and ivs.steps[3][0] == 1


@pytest.mark.parametrize("body", [
    # another way back to the head: iterations are not counted by the back edge
    """(loop $l (block (br_if $l (local.get $b)))
       (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 8))) (i32.const 64))))""",
    # the counter written twice
    """(loop $l (local.set $i (i32.const 0))
       (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 8))) (i32.const 64))))""",
    # the counter written inside a block: not once per iteration
    """(loop $l (block (local.set $i (i32.add (local.get $i) (i32.const 8))))
       (br_if $l (i32.ne (local.get $i) (i32.const 64))))""",
    # a step computed, not constant
    """(loop $l (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (local.get $b)))
                                  (i32.const 64))))""",
    # lt_u counting down
    """(loop $l (br_if $l (i32.lt_u (local.tee $i (i32.sub (local.get $i) (i32.const 1)))
                                    (i32.const 64))))""",
])
def test_loops_that_are_not_counted(body):
    assert _ivs(body) is None


_IV_LOOPS = {
    # the counter is the index, stepping to a bound (ecpairing's Montgomery loop)
    "ne": ("", "(br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const {s}))) "
           "(i32.const {c})))"),
    # a countdown beside it (a byte loop: memset)
    "count": ("(local.set $i (i32.add (local.get $i) (i32.const {s})))",
              "(br_if $l (local.tee $n (i32.add (local.get $n) (i32.const -1))))"),
    "lt_u": ("(local.set $i (i32.add (local.get $i) (i32.const {s})))",
             "(br_if $l (i32.lt_u (local.get $i) (i32.const {c})))"),
}
_IV_ADDRESSES = ["(i32.add (local.get $b) (local.get $i))",
                 "(i32.add (local.get $b) (i32.shl (local.get $i) (i32.const 3)))",
                 "(i32.add (i32.add (local.get $i) (i32.const -16)) (local.get $b))",
                 "(local.tee $t (i32.add (local.get $b) (local.get $i)))",
                 "(i32.sub (i32.add (local.get $i) (local.get $b)) (i32.const 4))"]


@st.composite
def _iv_module(draw, metered: bool):
    shape = draw(st.sampled_from(sorted(_IV_LOOPS)))
    step = draw(st.sampled_from([1, 4, 8, 3] + ([] if shape == "lt_u" else [-1, -8])))
    bound = draw(st.sampled_from([0, 64, 65, PAGE - 8, PAGE]))
    write, tail = (t.format(s=step, c=bound) for t in _IV_LOOPS[shape])
    items = []
    for _ in range(draw(st.integers(1, 4))):
        addr = draw(st.sampled_from(_IV_ADDRESSES))
        off = draw(st.sampled_from([0, 4, 24]))
        access = draw(st.sampled_from([
            f"(i64.store offset={off} {addr} (i64.extend_i32_u (local.get $i)))",
            f"(local.set $acc (i64.add (local.get $acc) (i64.load32_u offset={off} {addr})))",
            f"(i32.store8 offset={off} {addr} (i32.const 9))"]))
        if draw(st.booleans()):
            access = f"(if (i32.and (local.get $i) (i32.const 1)) (then {access}))"
        items.append(access)
    if metered:
        items.insert(draw(st.integers(0, len(items))), "(call $gas (i64.const 3))")
    items.insert(draw(st.integers(0, len(items))), write)
    # An exit on a guard keeps a loop that would run 2^32 times short; it leaves the loop
    # early, as the program may.
    guard = "(br_if $out (i32.gt_u (local.tee $g (i32.add (local.get $g) (i32.const 1))) (i32.const 300)))"
    gas = '(import "ethereum" "useGas" (func $gas (param i64)))' if metered else ""
    return f"""(module {gas} (memory (export "mem") 1 1)
  (func (export "run") (param $b i32) (param $i i32) (param $n i32) (result i64)
    (local $acc i64) (local $t i32) (local $g i32)
    (block $out (loop $l {guard} {" ".join(items)} {tail}))
    (i64.add (local.get $acc) (i64.extend_i32_u (local.get $i)))))"""


_IV_BASES = st.one_of(st.integers(0, 64), st.integers(PAGE - 600, PAGE + 8),
                      st.just(2**32 - 8))
_IV_STARTS = st.one_of(st.integers(0, 80), st.integers(PAGE - 80, PAGE + 8),
                       st.integers(2**32 - 40, 2**32 - 1))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wat=_iv_module(False), b=_IV_BASES, i=_IV_STARTS, n=st.integers(0, 70))
def test_induction_variable_loops_match_the_baseline_tier_and_wasmtime(wat, b, i, n):
    wasm = wat2wasm(wat)
    args = (b, i, n)
    opt = _run(wasm, "optimized", args)
    assert opt == _run(wasm, "baseline", args)
    want, memory = _wasmtime(wasm, args)
    got = opt[0]
    assert (got[0], *((got[1][0] & (2**64 - 1),) if got[0] == "ok" else ())) == want
    assert opt[1] == memory


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wat=_iv_module(True), b=_IV_BASES, i=_IV_STARTS, n=st.integers(0, 70),
       gas=st.integers(0, 1500))
def test_metered_induction_variable_loops_charge_as_the_baseline_tier(wat, b, i, n, gas):
    wasm = wat2wasm(wat)
    args = (b, i, n)
    assert _run(wasm, "optimized", args, gas) == _run(wasm, "baseline", args, gas)


MONTGOMERY = """(module (memory (export "mem") 1 1)
  (func (export "run") (param $b i32) (param $i i32) (param $n i32) (result i64)
    (local $t i32) (local $acc i64)
    (loop $l
      (i64.store (local.tee $t (i32.add (local.get $b) (local.get $i)))
                 (i64.add (i64.load (local.get $t)) (i64.const 1)))
      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 8)))
                        (i32.const 64))))
    (local.get $acc)))"""


def test_the_fast_version_of_a_counted_loop_checks_nothing_inside_it():
    (text,) = lower_partitions(ewasm.validate(wat2wasm(MONTGOMERY)))
    fn = text[text.index("define internal"):]
    fast = fn[fn.index("\nfast"):fn.index("\njoin")]
    exact = fn[fn.index("\nexact"):fn.index("\nfast")]
    assert "icmp ugt" not in fast and exact.count("icmp ugt") == 2
    # The trip count, from the counter's entry value: (64 - i) mod 2^32, divided by 8.
    check = fn[:fn.index("\nexact")]
    assert "udiv i64" in check and "urem i64" in check


@pytest.mark.parametrize("b,i", [(0, 0), (PAGE - 64, 0), (PAGE - 63, 0), (PAGE - 8, 56),
                                 (PAGE - 7, 56), (PAGE - 56, 8), (0, 60), (0, 64),
                                 (2**32 - 8, 8), (PAGE, 0)])
def test_a_counted_loop_traps_where_it_always_did(b, i):
    # Past the end by one byte, an unaligned start (60: never reaches 64, wraps and runs
    # out of bounds), a start at the bound (64: 2^29 steps to come round), an address that
    # wraps: the fast version's check fails, and the exact one traps where it must.
    wasm = wat2wasm(MONTGOMERY)
    opt = _run(wasm, "optimized", (b, i, 0))
    assert opt == _run(wasm, "baseline", (b, i, 0))
    want, memory = _wasmtime(wasm, (b, i, 0))
    assert opt[0][0] == want[0] and opt[1] == memory


def _edge(wat: str, args: tuple) -> None:
    wasm = wat2wasm(f"""(module (memory (export "mem") 1 1)
      (func (export "run") (param $b i32) (param $i i32) (param $n i32) (result i64)
        (local $t i32) (local $acc i64) {wat} (local.get $acc)))""")
    opt = _run(wasm, "optimized", args)
    assert opt == _run(wasm, "baseline", args)
    want, memory = _wasmtime(wasm, args)
    assert opt[0][0] == want[0] and opt[1] == memory


@pytest.mark.parametrize("n", [1, 2, 7])
@pytest.mark.parametrize("last", [PAGE - 8, PAGE - 7])
def test_an_access_after_the_step_sees_the_stepped_value(n, last):
    # The store after $i's write reaches b + i0 + 8n in the last iteration: in bounds
    # at PAGE - 8, one byte past the end at PAGE - 7.
    _edge("""(loop $l (local.set $i (i32.add (local.get $i) (i32.const 8)))
      (i64.store (i32.add (local.get $b) (local.get $i)) (i64.const -1))
      (br_if $l (local.tee $n (i32.add (local.get $n) (i32.const -1)))))""",
          (last - 16 - 8 * n, 16, n))


@pytest.mark.parametrize("i", [0, 8, 16, 24])
def test_an_address_below_zero_traps_where_it_always_did(i):
    # i - 16 is negative for a start below 16: the first access wraps to the top of
    # the address space.
    _edge("""(loop $l
      (i64.store (i32.add (local.get $i) (i32.const -16)) (i64.const 5))
      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 8)))
                        (i32.const 64))))""", (0, i, 0))


@pytest.mark.parametrize("b", [0, PAGE - 600, PAGE - 64])
@pytest.mark.parametrize("i,bound", [(60, 4), (72, 64), (8, 0), (0, 64), (64, 64)])
def test_a_counter_past_its_bound_comes_round_through_the_whole_range(b, i, bound):
    # Starting past the bound, the counter wraps through 2^32 before it meets it: far
    # more iterations than bound - start, and the accesses leave the memory.
    _edge(f"""(loop $l
      (i64.store (i32.add (local.get $b) (local.get $i)) (i64.const 5))
      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 8)))
                        (i32.const {bound}))))""", (b, i, 0))


@pytest.mark.parametrize("i", [0, 1, PAGE // 3, 2**31])
def test_a_local_rewritten_with_an_unknown_value_is_checked_again(i):
    # $t is written twice: first with b, then with i * 3, which no formula describes.
    _edge("""(local.set $t (local.get $b))
      (i64.store (local.get $t) (i64.const 1)) (i64.store offset=8 (local.get $t) (i64.const 2))
      (local.set $t (i32.mul (local.get $i) (i32.const 3)))
      (i64.store (local.get $t) (i64.const 3)) (i64.store offset=8 (local.get $t) (i64.const 4))
      (i64.store offset=16 (local.get $t) (i64.const 5))""", (0, i, 0))


def test_a_metered_loop_is_still_counted():
    # gasmeter charges the loop's exit segment after its back edge.
    metered = ewasm.validate(gasmeter.inject(wat2wasm(MONTGOMERY)))
    body = metered.codes[0].body
    start = next(k for k, (op, _, _) in enumerate(body) if op == _OP["loop"])
    end = [k for k, (op, _, _) in enumerate(body) if op == _OP["end"]][-2]
    assert body[end - 1][0] == _OP["call"]  # the exit charge
    ivs = loop_ivs(body, start, end, gas_import=0)
    assert ivs is not None and ivs.bound == 64
    (text,) = lower_partitions(metered, gas_import=0)
    fn = text[text.index("define internal"):]
    assert "icmp ugt" not in fn[fn.index("\nfast"):fn.index("\njoin")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wat=_iv_module(False), b=_IV_BASES, i=_IV_STARTS, n=st.integers(0, 70),
       gas=st.integers(0, 60000))
def test_gasmeter_injected_induction_variable_loops_match_the_baseline_tier(wat, b, i, n, gas):
    wasm = gasmeter.inject(wat2wasm(wat))
    args = (b, i, n)
    assert _run(wasm, "optimized", args, gas) == _run(wasm, "baseline", args, gas)


def test_only_the_innermost_accessing_loop_of_a_deep_nest_is_a_range():
    # 1,000 loops nested, an access in the innermost only: the innermost is the range,
    # and each enclosing loop is answered without rescanning its body.
    depth = 1000
    body = ([(_OP["loop"], 0, 0)] * depth + [(_OP["local.get"], 0, 0), (_OP["i32.load"], 0, 0),
            (_OP["drop"], 0, 0)] + [(_OP["end"], 0, 0)] * depth + [(_OP["end"], 0, 0)])
    ranges = plan_ranges(body, None)
    assert ranges == {depth - 1: (depth + 4, True)}
