"""gasmeter.inject on instructions whose work grows with a run-time count (issue 19 point 6):
bulk memory is charged per byte and per table element before it runs, the same on both
tiers and in wasmtime with a counting useGas, and refused by a table that does not price
it. Contract metering (no bulk memory) is wasm-metering's exactly."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ewasm
import gasmeter
from ewasm.contract import CONTRACT_FEATURES
from ewasm.errors import TrapKind
from ewasm.limits import DEFAULT_LIMITS
from ewasm.opcodes import MEMORY_COPY, MEMORY_FILL, MEMORY_INIT, TABLE_COPY, TABLE_INIT

wasmtime = pytest.importorskip("wasmtime", reason="wasmtime (a test dependency) is needed")

TIERS = ("baseline", "optimized")
PAGE = 65536
MAX_COUNT = 2**32 - 1
DATA = bytes(range(256)) * 16   # the passive data segment: 4 KiB
ELEMS = 64                      # the passive element segment
TABLE = 20_000
DATA_WAT = "".join(f"\\{b:02x}" for b in DATA)

# export name -> (opcode, the unit it is charged by)
OPS = {"fill": (MEMORY_FILL, "byte"), "copy": (MEMORY_COPY, "byte"),
       "init": (MEMORY_INIT, "byte"), "tinit": (TABLE_INIT, "element"),
       "tcopy": (TABLE_COPY, "element")}
# The first counts that run in bounds for each export (memory of 2 pages, table of TABLE).
IN_BOUNDS = {"fill": [0, 1, 4096, 2 * PAGE], "copy": [0, 1, 777, PAGE],
             "init": [0, 1, 300, len(DATA)], "tinit": [0, 1, 17, ELEMS],
             "tcopy": [0, 1, 999, TABLE // 2]}
# (dst, src) operands per export; fill's second operand is the byte value.
ARGS = {"fill": (0, 0xAB), "copy": (PAGE, 0), "init": (8, 0), "tinit": (100, 0),
        "tcopy": (TABLE // 2, 0)}

BULK_MODULE = f"""(module
  (type $v (func (result i32)))
  (memory (export "memory") 2 1024)
  (table (export "table") {TABLE} funcref)
  (func $a (result i32) (i32.const 1))
  (func $b (result i32) (i32.const 2))
  (data $d "{DATA_WAT}")
  (elem $e func {' '.join(['$a $b'] * (ELEMS // 2))})
  (func (export "fill") (param i32 i32 i32)
    (memory.fill (local.get 0) (local.get 1) (local.get 2)))
  (func (export "copy") (param i32 i32 i32)
    (memory.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "init") (param i32 i32 i32)
    (memory.init $d (local.get 0) (local.get 1) (local.get 2)))
  (func (export "tinit") (param i32 i32 i32)
    (table.init $e (local.get 0) (local.get 1) (local.get 2)))
  (func (export "tcopy") (param i32 i32 i32)
    (table.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "seed") (table.init $e (i32.const 0) (i32.const 0) (i32.const {ELEMS}))
    (memory.init $d (i32.const 0) (i32.const 0) (i32.const {len(DATA)}))))"""

# The shape: a loop of fills of the whole 64 MiB memory (97 of them is 6.5 GB).
FILL_LOOP = """(module
  (memory (export "memory") 1024 1024)
  (func (export "go") (param $reps i32) (param $n i32) (local $i i32)
    (block (loop
      (br_if 1 (i32.ge_u (local.get $i) (local.get $reps)))
      (memory.fill (i32.const 0) (i32.add (local.get $i) (i32.const 1)) (local.get $n))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br 0)))))"""


class _OutOfGas(Exception):
    pass


def _unit_cost(costs: gasmeter.CostTable, name: str) -> int:
    k = costs.per_unit(OPS[name][0])
    assert k is not None and k > 0
    return k


def engine_run(wasm: bytes, calls, limit: int = 2**62, tier: str = "baseline"):
    """Run calls [(export, args)] on the engine's inline counter. (outcome of the last call:
    "ok" / "out of gas" / a TrapKind, gas used, instance)."""
    compiled = ewasm.compile(wasm, engine_gas=True, tier=tier)
    inst = ewasm.instantiate(compiled, gas_limit=limit)
    outcome = "ok"
    for name, args in calls:
        try:
            inst.invoke(name, *args)
        except ewasm.OutOfGas:
            outcome = "out of gas"
            break
        except ewasm.Trap as exc:
            outcome = exc.kind
            break
    return outcome, inst.gas_used, inst


_WT_TRAPS = {"MEMORY_OUT_OF_BOUNDS": TrapKind.MEMORY_OUT_OF_BOUNDS,
             "TABLE_OUT_OF_BOUNDS": TrapKind.TABLE_OUT_OF_BOUNDS}


def wasmtime_run(wasm: bytes, calls, limit: int | None = None):
    """The same in wasmtime with a counting useGas. (outcome, total, amounts, store, instance):
    amounts is every charge in order, the failing one excluded."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    module = wasmtime.Module(engine, wasm)
    state = {"total": 0, "oog": False}
    amounts: list[int] = []

    def use_gas(amount):
        if limit is not None and state["total"] + amount > limit:
            state["oog"] = True
            raise _OutOfGas()
        state["total"] += amount
        amounts.append(amount)

    imports = [wasmtime.Func(store, wasmtime.FuncType([wasmtime.ValType.i64()], []), use_gas)
               for _ in module.imports]
    inst = wasmtime.Instance(store, module, imports)
    exports = inst.exports(store)
    outcome = "ok"
    for name, args in calls:
        try:
            exports[name](store, *args)
        except (wasmtime.Trap, wasmtime.WasmtimeError, _OutOfGas) as exc:
            if state["oog"]:
                outcome = "out of gas"
            else:
                outcome = _WT_TRAPS[exc.trap_code.name]
            break
    return outcome, state["total"], amounts, store, exports


def _memory(inst) -> bytes:
    return bytes(inst.exports["memory"].read(0, 2 * PAGE))


def _wt_memory(store, exports) -> bytes:
    return bytes(exports["memory"].read(store, 0, 2 * PAGE))


def _table(inst) -> list[bool]:
    t = inst.exports["table"]
    return [t.get(i) is not None for i in range(TABLE)]


def _wt_table(store, exports) -> list[bool]:
    t = exports["table"]
    return [isinstance(t.get(store, i), wasmtime.Func) for i in range(TABLE)]


@pytest.fixture(scope="module")
def bulk(wat):
    plain = wat(BULK_MODULE)
    return plain, gasmeter.inject(plain)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("name", sorted(OPS))
def test_each_bulk_instruction_is_charged_by_its_count(bulk, name, tier):
    plain, metered = bulk
    k = _unit_cost(gasmeter.DEFAULT, name)
    overhead = gasmeter.DEFAULT.charge_overhead
    used = {}
    for n in IN_BOUNDS[name]:
        calls = [("seed", ()), (name, (*ARGS[name], n))]
        outcome, gas, inst = engine_run(metered, calls, tier=tier)
        wt_outcome, wt_gas, amounts, store, exports = wasmtime_run(metered, calls)
        assert outcome == wt_outcome == "ok", (name, n)
        assert gas == wt_gas, (name, n)
        # The count's charge is the last one, made right before the instruction.
        assert amounts[-1] == overhead + k * n
        used[n] = gas
        # Metering changes nothing else: the unmetered module ends in the same state.
        ref = ewasm.instantiate(plain)
        for call, args in calls:
            ref.invoke(call, *args)
        assert _memory(inst) == _memory(ref) == _wt_memory(store, exports)
        if OPS[name][1] == "element":
            assert _table(inst) == _table(ref) == _wt_table(store, exports)
    # Gas is linear in the count, with the table's slope, from a zero-length base.
    for n, gas in used.items():
        assert gas - used[0] == k * n, (name, n)
    assert used[0] > 0


@pytest.mark.parametrize("name", sorted(OPS))
def test_zero_length_is_charged_the_base_only(bulk, name):
    plain, metered = bulk
    key = gasmeter.PER_UNIT_KEYS[OPS[name][0]]
    calls = [(name, (*ARGS[name], 0))]
    outcome, gas, _ = engine_run(metered, calls)
    _, wt_gas, amounts, _, _ = wasmtime_run(metered, calls)
    assert outcome == "ok" and gas == wt_gas == sum(amounts)
    assert amounts[-1] == gasmeter.DEFAULT.charge_overhead
    # At length 0 the per-unit cost does not matter; at length 1 it does.
    other = gasmeter.inject(plain, gasmeter.CostTable({**gasmeter.EWASM_COSTS, key: 3}))
    assert engine_run(other, calls)[1] == gas
    one = [(name, (*ARGS[name], 1))]
    assert engine_run(other, one)[1] - gas == 3
    assert engine_run(metered, one)[1] - gas == _unit_cost(gasmeter.DEFAULT, name)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("count", [MAX_COUNT, MAX_COUNT - 1, 2**31, 2**31 - 1])
def test_counts_near_2_32_are_charged_in_full_then_trap(bulk, name, count, tier):
    """An out-of-bounds count is charged before the instruction checks its bounds: it
    then traps out of bounds, having paid for every unit (nothing wraps)."""
    _, metered = bulk
    k = _unit_cost(gasmeter.DEFAULT, name)
    zero_gas = engine_run(metered, [(name, (*ARGS[name], 0))])[1]
    calls = [(name, (*ARGS[name], count - 2**32 if count >= 2**31 else count))]
    want = (TrapKind.TABLE_OUT_OF_BOUNDS if OPS[name][1] == "element"
            else TrapKind.MEMORY_OUT_OF_BOUNDS)
    outcome, gas, _ = engine_run(metered, calls, tier=tier)
    wt_outcome, wt_gas, amounts, _, _ = wasmtime_run(metered, calls)
    assert outcome == wt_outcome == want
    assert gas == wt_gas == zero_gas + k * count
    assert amounts[-1] == gasmeter.DEFAULT.charge_overhead + k * count
    # With one gas less than that charge needs, it runs out there instead, on both.
    limit = gas - 1
    outcome, used, _ = engine_run(metered, calls, limit=limit, tier=tier)
    wt_outcome, wt_used, _, _, _ = wasmtime_run(metered, calls, limit=limit)
    assert outcome == wt_outcome == "out of gas"
    assert used == wt_used == sum(amounts[:-1])


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("name", sorted(OPS))
def test_out_of_gas_exactly_at_the_charge(bulk, name, tier):
    _, metered = bulk
    n = IN_BOUNDS[name][-1]
    seed = ("seed", ())
    calls = [(name, (*ARGS[name], n))]
    _, seed_gas, _ = engine_run(metered, [seed])
    _, full, _ = engine_run(metered, [seed, *calls])
    # Exactly the price: the instruction runs.
    outcome, used, inst = engine_run(metered, [seed, *calls], limit=full, tier=tier)
    assert outcome == "ok" and used == full and inst.gas_left == 0
    done = (_memory(inst), _table(inst))
    # One gas short: out of gas at the count's charge, before the instruction touched
    # anything; the counter keeps what the failed charge did not take.
    outcome, used, inst = engine_run(metered, [seed, *calls], limit=full - 1, tier=tier)
    wt_outcome, wt_used, amounts, store, exports = wasmtime_run(metered, [seed, *calls],
                                                                limit=full - 1)
    assert outcome == wt_outcome == "out of gas"
    assert used == wt_used == full - (gasmeter.DEFAULT.charge_overhead
                                      + _unit_cost(gasmeter.DEFAULT, name) * n)
    _, _, seeded = engine_run(metered, [seed])
    assert (_memory(inst), _table(inst)) == (_memory(seeded), _table(seeded)) != done
    assert _wt_memory(store, exports) == _memory(seeded)
    assert used > seed_gas


@pytest.mark.parametrize("tier", TIERS)
def test_the_6_5_gb_fill_shape_costs_gas_by_its_length(wat, tier):
    metered = gasmeter.inject(wat(FILL_LOOP))
    k = _unit_cost(gasmeter.DEFAULT, "fill")
    mib = 1 << 20
    gas = {}
    for reps, n in ((1, 64 * mib), (2, 64 * mib), (2, 32 * mib)):
        outcome, used, _ = engine_run(metered, [("go", (reps, n))], tier=tier)
        wt_outcome, wt_used, _, _, _ = wasmtime_run(metered, [("go", (reps, n))])
        assert outcome == wt_outcome == "ok" and used == wt_used
        gas[reps, n] = used
    assert gas[2, 64 * mib] - gas[2, 32 * mib] == 2 * k * 32 * mib
    per_rep = gas[2, 64 * mib] - gas[1, 64 * mib]
    assert per_rep > k * 64 * mib
    # 97 fills of 64 MiB (6.5 GB) cost at least 97 * 64 MiB * k gas; the budget that
    # bought all of them before (63,904 gas, and a thousand times that) buys none now.
    assert gas[1, 64 * mib] + 96 * per_rep >= 97 * 64 * mib * k > 10**11
    outcome, used, inst = engine_run(metered, [("go", (97, 64 * mib))], limit=63_904_000,
                                     tier=tier)
    assert outcome == "out of gas" and used < 10_000
    assert inst.exports["memory"].read(0, 16) == bytes(16)


@pytest.mark.nightly
@pytest.mark.parametrize("tier", TIERS)
def test_the_6_5_gb_fill_shape_at_full_size(wat, tier):
    metered = gasmeter.inject(wat(FILL_LOOP))
    mib = 1 << 20
    _, one, _ = engine_run(metered, [("go", (1, 64 * mib))], tier=tier)
    _, two, _ = engine_run(metered, [("go", (2, 64 * mib))], tier=tier)
    outcome, used, _ = engine_run(metered, [("go", (97, 64 * mib))], tier=tier)
    wt_outcome, wt_used, _, _, _ = wasmtime_run(metered, [("go", (97, 64 * mib))])
    assert outcome == wt_outcome == "ok"
    assert used == wt_used == one + 96 * (two - one)


# Bulk loops of the other instructions at their largest in-bounds counts: gas grows by
# exactly reps * k * (difference in count).
LOOPS = {
    "copy": ("(memory.copy (i32.const 33554432) (i32.const 0) (local.get $n))", 32 << 20),
    "init": ("(memory.init $d (i32.const 0) (i32.const 0) (local.get $n))", len(DATA)),
    "tinit": ("(table.init $e (i32.const 0) (i32.const 0) (local.get $n))", ELEMS),
    "tcopy": ("(table.copy (i32.const 500000) (i32.const 0) (local.get $n))", 500_000),
}


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("name", sorted(LOOPS))
def test_loops_of_each_bulk_instruction_cost_gas_by_length(wat, name, tier):
    body, big = LOOPS[name]
    src = wat(f"""(module
      (memory 1024 1024) (table 1048576 funcref) (func $a)
      (data $d "{DATA_WAT}")
      (elem $e func {' '.join(['$a'] * ELEMS)})
      (func (export "go") (param $reps i32) (param $n i32) (local $i i32)
        (block (loop (br_if 1 (i32.ge_u (local.get $i) (local.get $reps)))
          {body}
          (local.set $i (i32.add (local.get $i) (i32.const 1))) (br 0)))))""")
    metered = gasmeter.inject(src)
    k = _unit_cost(gasmeter.DEFAULT, name)
    gas = {}
    for n in (big // 2, big):
        outcome, used, _ = engine_run(metered, [("go", (5, n))], tier=tier)
        wt_outcome, wt_used, _, _, _ = wasmtime_run(metered, [("go", (5, n))])
        assert outcome == wt_outcome == "ok" and used == wt_used
        gas[n] = used
    assert gas[big] - gas[big // 2] == 5 * k * (big - big // 2)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(sorted(OPS)), st.integers(0, 2**32 - 1)),
                min_size=1, max_size=6), st.data())
def test_generated_bulk_sequences_agree_with_wasmtime(bulk, ops, data):
    """Any mix of counts, in bounds or not: both engines charge the same and stop at the
    same place for any gas limit."""
    _, metered = bulk
    calls = [("seed", ())] + [(n, (*ARGS[n], c - 2**32 if c >= 2**31 else c)) for n, c in ops]
    outcome, used, _ = engine_run(metered, calls)
    wt_outcome, wt_used, _, _, _ = wasmtime_run(metered, calls)
    assert outcome == wt_outcome and used == wt_used
    limit = data.draw(st.integers(0, used))
    outcome, used_l, _ = engine_run(metered, calls, limit=limit)
    wt_outcome, wt_used_l, _, _, _ = wasmtime_run(metered, calls, limit=limit)
    assert outcome == wt_outcome and used_l == wt_used_l <= limit


# --- tables that do not price bulk work, and tables that price pages -----------------

def _without(*keys: str) -> gasmeter.CostTable:
    return gasmeter.CostTable({k: v for k, v in gasmeter.EWASM_COSTS.items() if k not in keys})


@pytest.mark.parametrize("name", sorted(OPS))
def test_a_table_without_the_per_unit_cost_refuses_the_instruction(bulk, name):
    plain, _ = bulk
    key = gasmeter.PER_UNIT_KEYS[OPS[name][0]]
    with pytest.raises(gasmeter.MissingCostError, match=key) as info:
        gasmeter.inject(plain, _without(key))
    assert info.value.key == key and info.value.instruction == key.rsplit(".", 1)[0]
    assert info.value.func_index is not None and info.value.offset is not None
    assert isinstance(info.value, gasmeter.MeteringError)


def test_per_unit_costs_are_checked(bulk, tmp_path):
    plain, _ = bulk
    # The largest per-byte cost for which (2^32 - 1) bytes still fit an i64 charge.
    overhead = gasmeter.DEFAULT.charge_overhead
    k_max = ((1 << 63) - 1 - overhead) // MAX_COUNT
    ok = gasmeter.CostTable({**gasmeter.EWASM_COSTS, "memory.fill.per_byte": k_max})
    metered = gasmeter.inject(plain, ok)
    outcome, used, _ = engine_run(metered, [("fill", (0, 0, -1))], limit=2**62)
    wt_outcome, wt_used, amounts, _, _ = wasmtime_run(metered, [("fill", (0, 0, -1))],
                                                      limit=2**62)
    # The charge is a positive i64 well over any limit: out of gas, never a cheap wrap.
    assert outcome == wt_outcome == "out of gas" and used == wt_used < 10**6
    assert amounts and overhead + k_max * MAX_COUNT < 1 << 63
    for bad in (k_max + 1, 0, -1):
        table = gasmeter.CostTable({**gasmeter.EWASM_COSTS, "memory.fill.per_byte": bad})
        with pytest.raises(gasmeter.MeteringError, match="memory.fill.per_byte"):
            gasmeter.inject(plain, table)
    path = tmp_path / "costs.json"
    path.write_text(json.dumps({"costs": {**gasmeter.EWASM_COSTS, "table.copy.per_element": 0}}))
    with pytest.raises(gasmeter.CostTableError, match="table.copy.per_element"):
        gasmeter.CostTable.from_json(path)


def test_memory_grow_is_flat_unless_the_table_prices_pages(bulk):
    plain, metered = bulk
    flat = [engine_run(metered, [("grow", (n,))])[1] for n in (0, 1, 5)]
    assert flat[0] == flat[1] == flat[2]  # wasm-metering's flat 10,000 (Hera-exact)
    per_page = 7
    priced = gasmeter.inject(plain, gasmeter.CostTable(
        {**gasmeter.EWASM_COSTS, "memory.grow.per_page": per_page}))
    for tier in TIERS:
        gas = {}
        for n in (0, 1, 5, -1):  # -1: 2^32 - 1 pages, charged in full, then grow fails
            outcome, used, _ = engine_run(priced, [("grow", (n,))], tier=tier)
            wt_outcome, wt_used, _, _, _ = wasmtime_run(priced, [("grow", (n,))])
            assert outcome == wt_outcome == "ok" and used == wt_used
            gas[n % 2**32] = used
        for n, used in gas.items():
            assert used - gas[0] == per_page * n


def test_the_scratch_local_respects_the_locals_limit(wat):
    limit = DEFAULT_LIMITS.function_locals
    src = wat(f"""(module (memory 1)
      (func (export "f") (local {' '.join(['i32'] * limit)})
        (memory.fill (i32.const 0) (i32.const 0) (i32.const 0))))""")
    with pytest.raises(gasmeter.MeteringError, match="locals"):
        gasmeter.inject(src)
    ok = wat(f"""(module (memory 1)
      (func (export "f") (local {' '.join(['i32'] * (limit - 1))})
        (memory.fill (i32.const 0) (i32.const 0) (i32.const 0))))""")
    ewasm.validate(gasmeter.inject(ok))


def test_a_module_without_bulk_instructions_gets_no_scratch_local(wat):
    src = wat('(module (memory 1) (func (export "f") (param i32) (result i32) (local i64)'
              ' (i32.load (local.get 0))))')
    out = ewasm.validate(gasmeter.inject(src))
    assert [len(f.locals) for f in out.codes] == [1]


# --- contracts: bulk memory is refused there; everything else meters as before -------

def test_contract_metering_is_unchanged_by_the_bulk_entries(shared):
    """The bulk entries of the default table never touch a module without bulk
    instructions: each contract (and benchmark module) meters byte-identically under
    wasm-metering's table alone."""
    wasm_metering = _without(*[k for k in gasmeter.EWASM_COSTS
                               if k.startswith(("memory.fill", "memory.copy", "memory.init",
                                                "table.init", "table.copy"))])
    assert len(wasm_metering.costs) == len(gasmeter.EWASM_COSTS) - 10
    paths = sorted(shared("fixtures", "contracts").rglob("*.wasm"))
    paths += sorted(shared("fixtures", "bench").rglob("*.wasm"))
    assert len(paths) >= 20
    metered = 0
    for path in paths:
        wasm = path.read_bytes()
        try:
            want = gasmeter.inject(wasm, wasm_metering, features=CONTRACT_FEATURES)
        except ewasm.WasmError as exc:  # floats, or not a contract's features
            with pytest.raises(type(exc)):
                gasmeter.inject(wasm, features=CONTRACT_FEATURES)
            continue
        assert gasmeter.inject(wasm, features=CONTRACT_FEATURES) == want, path.name
        assert gasmeter.MeteringPolicy().meter(wasm) == want, path.name
        metered += 1
    assert metered >= 15


def test_contract_rules_still_refuse_bulk_memory(wat):
    contract = wat("""(module (import "ethereum" "finish" (func (param i32 i32)))
      (memory (export "memory") 1)
      (func (export "main") (memory.fill (i32.const 0) (i32.const 0) (i32.const 100))))""")
    with pytest.raises(ewasm.WasmError):
        gasmeter.MeteringPolicy().meter(contract)


def test_bulk_in_unreachable_code_and_across_branches_meters_to_valid_code(wat):
    src = wat("""(module (memory (export "memory") 1)
      (func (export "f") (param $n i32) (result i32)
        (block
          (br_if 0 (i32.eqz (local.get $n)))
          (memory.fill (i32.const 0) (i32.const 1) (local.get $n))
          (br 0)
          (memory.fill (i32.const 0) (i32.const 2) (local.get $n)))
        (if (i32.gt_u (local.get $n) (i32.const 10))
          (then (return (i32.const 7))))
        (memory.copy (i32.const 100) (i32.const 0) (local.get $n))
        (i32.load8_u (i32.const 100)))
      (func (export "g") unreachable (memory.fill))
      (func (export "h") (return) (memory.fill (i32.const 0) (i32.const 0) (i32.const 5))))""")
    metered = gasmeter.inject(src)
    ewasm.validate(metered)
    wasmtime.Module(wasmtime.Engine(), metered)  # wasmparser's validation too
    k = _unit_cost(gasmeter.DEFAULT, "fill")
    for tier in TIERS:
        gas = {}
        for n in (0, 3, 6, 11):
            outcome, used, inst = engine_run(metered, [("f", (n,))], tier=tier)
            wt_outcome, wt_used, _, store, exports = wasmtime_run(metered, [("f", (n,))])
            assert outcome == wt_outcome == "ok" and used == wt_used, n
            assert inst.exports["memory"].read(0, 16) == bytes(exports["memory"].read(store, 0, 16))
            gas[n] = used
        # 3 -> 6 bytes: one fill and one copy of 3 more bytes each (the second fill is dead).
        k_copy = _unit_cost(gasmeter.DEFAULT, "copy")
        assert gas[6] - gas[3] == 3 * (k + k_copy)


def test_a_bulk_fill_costs_less_than_the_store_loop_it_replaces(wat):
    """Per-byte pricing must not make memset-style code dearer than the loop of i64.store
    that a compiler would emit without bulk memory (so bulk stays the cheap way)."""
    metered = gasmeter.inject(wat("""(module (memory 1024 1024)
      (func (export "stores") (param $end i32) (local $p i32)
        (block (br_if 0 (i32.eqz (local.get $end)))
          (loop
            (i64.store (local.get $p) (i64.const 0x0101010101010101))
            (local.set $p (i32.add (local.get $p) (i32.const 8)))
            (br_if 0 (i32.lt_u (local.get $p) (local.get $end))))))
      (func (export "fill") (param $n i32)
        (memory.fill (i32.const 0) (i32.const 1) (local.get $n))))"""))
    small, big = 1 << 12, 1 << 20
    per_byte = {}
    for name in ("stores", "fill"):
        runs = [engine_run(metered, [(name, (n,))]) for n in (small, big)]
        assert [r[0] for r in runs] == ["ok", "ok"]
        per_byte[name] = (runs[1][1] - runs[0][1]) / (big - small)
    assert per_byte["fill"] == _unit_cost(gasmeter.DEFAULT, "fill")
    assert per_byte["fill"] < per_byte["stores"]
