"""Time per unit of the bulk-memory instructions against time per gas of ordinary metered
code (issue 19 point 6): the data behind gasmeter's per-byte and per-element costs.

    python bench/bench_bulk_gas.py [--repeats N] [--shared PATH]

Prints, on the optimised tier:
* ns per gas of the metered kernels (the Ewasm cost table): the reference;
* ns per unit (byte or table element) of each bulk instruction at its largest size, on
  fresh and on touched memory, and ns per call at length 0;
* the per-unit and per-call gas that would make each shape cost no less gas per ns than
  the slowest kernel, and the ns per gas that the default table gives each shape.
"""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import parse_args

import ewasm
import gasmeter
from ewasm.compiler.cache import ObjectCache

MIB = 1 << 20
BIG = 32 * MIB           # bytes per memory op
DATA = 256 * 1024        # passive data segment (data_bytes limit: 512 KiB)
ELEMS = 65536            # passive element segment (elem_entries limit: 65,536)
TABLE = 1 << 20          # table size (table_size limit)


def wat2wasm(text: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d, "m.wat"), Path(d, "m.wasm")
        src.write_text(text)
        tool = Path(sys.executable).parent / "wat2wasm"
        subprocess.run([str(tool) if tool.exists() else "wat2wasm", str(src), "-o", str(out)],
                       check=True)
        return out.read_bytes()


def module_text() -> str:
    data = "\\00" * DATA
    funcs = " ".join(["$f"] * ELEMS)

    def loop(name: str, body: str) -> str:
        return f"""(func (export "{name}") (param $n i32) (param $reps i32) (local $i i32)
          (block (loop (br_if 1 (i32.ge_u (local.get $i) (local.get $reps)))
            {body}
            (local.set $i (i32.add (local.get $i) (i32.const 1))) (br 0))))"""

    return f"""(module
      (memory 1024 1024)
      (table {TABLE} funcref)
      (func $f)
      (data $d "{data}")
      (elem $e func {funcs})
      {loop("empty", "(nop)")}
      {loop("fill", "(memory.fill (i32.const 0) (local.get $i) (local.get $n))")}
      {loop("copy", f"(memory.copy (i32.const {BIG}) (i32.const 0) (local.get $n))")}
      {loop("copy_overlap", "(memory.copy (i32.const 1) (i32.const 0) (local.get $n))")}
      {loop("init", "(memory.init $d (i32.const 0) (i32.const 0) (local.get $n))")}
      {loop("tinit", "(table.init $e (i32.const 0) (i32.const 0) (local.get $n))")}
      {loop("tcopy", f"(table.copy (i32.const {TABLE // 2}) (i32.const 0) (local.get $n))")}
    )"""


def best(fn, repeats: int) -> float:
    fn()
    return statistics.median(_timed(fn) for _ in range(repeats))


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    parsed = parse_args(__doc__)
    if parsed is None:
        return 2
    args, _shared, kdir = parsed
    reps = max(3, args.repeats)
    cache = ObjectCache(tempfile.mkdtemp(prefix="ewasm-bench-"))

    # The reference: ns per gas of ordinary metered code.
    kern = gasmeter.inject((kdir / "kernels.wasm").read_bytes())
    naive = gasmeter.inject((kdir / "fib_naive.wasm").read_bytes())
    k = ewasm.instantiate(kern, cache=cache, gas_limit=1 << 62, tier="optimized")
    n = ewasm.instantiate(naive, cache=cache, gas_limit=1 << 62, tier="optimized")
    k.invoke("fill", MIB, 12345)
    ref = {}
    for name, inst, fn, a in (("fib(30)", k, "fib", (30,)), ("sha256 1 MiB", k, "sha256", (MIB,)),
                              ("keccak256 1 MiB", k, "keccak256", (MIB,)),
                              ("fib_naive(30)", n, "fib", (30,))):
        g0 = inst.gas_used
        inst.invoke(fn, *a)
        gas = inst.gas_used - g0
        t = best(lambda i=inst, f=fn, a=a: i.invoke(f, *a), reps)
        ref[name] = t * 1e9 / gas
    print(f"{'reference (metered kernels)':32} {'ns per gas':>12}")
    for name, v in ref.items():
        print(f"{name:32} {v:12.6f}")
    slowest = max(ref.values())
    print(f"{'slowest':32} {slowest:12.6f}\n")

    plain = wat2wasm(module_text())
    inst = ewasm.instantiate(ewasm.compile(plain, cache=cache, tier="optimized"))
    fixed = {}
    calls = 200_000
    t_empty = best(lambda: inst.invoke("empty", 0, calls), reps)
    for fn in ("fill", "copy", "copy_overlap", "init", "tinit", "tcopy"):
        t = best(lambda f=fn: inst.invoke(f, 0, calls), reps)
        fixed[fn] = max(0.0, (t - t_empty) * 1e9 / calls)

    sizes = {"fill": BIG, "copy": BIG, "copy_overlap": BIG, "init": DATA, "tinit": ELEMS,
             "tcopy": TABLE // 2}
    unit = {"fill": "byte", "copy": "byte", "copy_overlap": "byte", "init": "byte",
            "tinit": "element", "tcopy": "element"}
    per_unit = {}
    for fn, size in sizes.items():
        r = max(1, (64 * MIB) // (size * (32 if unit[fn] == "element" else 1)))
        t = best(lambda f=fn, s=size, r=r: inst.invoke(f, s, r), reps)
        per_unit[fn] = t * 1e9 / (size * r)
    # Fresh memory: the first touch of each page (a new instance per run).
    fresh = []
    for _ in range(reps):
        i2 = ewasm.instantiate(ewasm.compile(plain, cache=cache, tier="optimized"))
        fresh.append(_timed(lambda i2=i2: i2.invoke("fill", 64 * MIB, 1)) * 1e9 / (64 * MIB))
    per_unit["fill (fresh pages)"] = statistics.median(fresh)
    unit["fill (fresh pages)"] = "byte"
    fixed["fill (fresh pages)"] = fixed["fill"]

    costs = gasmeter.DEFAULT
    keys = {"fill": "memory.fill", "copy": "memory.copy", "copy_overlap": "memory.copy",
            "init": "memory.init", "tinit": "table.init", "tcopy": "table.copy",
            "fill (fresh pages)": "memory.fill"}
    print(f"{'bulk shape':20} {'ns/unit':>9} {'ns/call':>8} {'needs gas/unit':>15} "
          f"{'needs gas/call':>15} {'table gas/unit':>15} {'ns per gas':>11}")
    worst = 0.0
    for fn, v in per_unit.items():
        name = keys[fn]
        per = costs.costs[f"{name}.per_{unit[fn]}"]
        base = costs.costs[name] + costs.charge_overhead
        ns_per_gas = v / per
        worst = max(worst, ns_per_gas, fixed[fn] / base)
        print(f"{fn:20} {v:9.4f} {fixed[fn]:8.2f} {math.ceil(v / slowest):15d} "
              f"{math.ceil(fixed[fn] / slowest):15d} {per:15d} {ns_per_gas:11.6f}")
    print(f"\nworst bulk ns per gas with the default table: {worst:.6f} "
          f"(slowest kernel: {slowest:.6f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
