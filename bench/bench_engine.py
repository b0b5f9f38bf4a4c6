"""Engine speed against wasmtime, in one run (issue: engine core, the speed bar).

Runs kernels.wasm fib(30), sha256 and keccak256 over 1 MiB (after fill(1048576, 12345)),
and fib_naive.wasm fib(30), in this engine and in wasmtime; median of several repeats each.
Prints each time, the ratio to wasmtime, and their geometric mean; then cold compile time
and cache-hit instantiate time for kernels.wasm and ecpairing.wasm.

    python bench/bench_engine.py [--repeats N] [--shared PATH]
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time

from harness import median_time, parse_args

import ewasm
from ewasm.compiler.cache import ObjectCache


def main() -> int:
    parsed = parse_args(__doc__)
    if parsed is None:
        return 2
    args, shared, kdir = parsed
    try:
        import wasmtime
    except ImportError:
        print("wasmtime is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    expected = json.loads((kdir / "expected.json").read_text())
    kernels = (kdir / "kernels.wasm").read_bytes()
    fib_naive = (kdir / "fib_naive.wasm").read_bytes()
    ecpairing = (shared / "fixtures/bench/ewasm-benchmarking/wasm/ecpairing.wasm").read_bytes()
    mib = 1 << 20

    cache = ObjectCache(tempfile.mkdtemp(prefix="ewasm-bench-"))
    # The optimised tier: what code runs once tier-up has happened.
    ours = ewasm.instantiate(ewasm.compile(kernels, cache=cache, tier="optimized"))
    ours_naive = ewasm.instantiate(ewasm.compile(fib_naive, cache=cache, tier="optimized"))
    ours.invoke("fill", mib, 12345)

    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    wt = wasmtime.Instance(store, wasmtime.Module(engine, kernels), []).exports(store)
    wt_naive = wasmtime.Instance(store, wasmtime.Module(engine, fib_naive), []).exports(store)
    wt["fill"](store, mib, 12345)

    u32 = 0xFFFFFFFF
    cases = [
        ("fib(30)", lambda: ours.invoke("fib", 30)[0], lambda: wt["fib"](store, 30),
         expected["fib"]["30"]),
        ("sha256 1 MiB", lambda: ours.invoke("sha256", mib)[0] & u32,
         lambda: wt["sha256"](store, mib) & u32, expected["sha256"][str(mib)]["return_u32"]),
        ("keccak256 1 MiB", lambda: ours.invoke("keccak256", mib)[0] & u32,
         lambda: wt["keccak256"](store, mib) & u32,
         expected["keccak256"][str(mib)]["return_u32"]),
        ("fib_naive(30)", lambda: ours_naive.invoke("fib", 30)[0],
         lambda: wt_naive["fib"](store, 30), expected["fib"]["30"]),
    ]
    rows = []
    print(f"{'kernel':18} {'ewasm ms':>10} {'wasmtime ms':>12} {'ratio':>7}")
    for name, run_ours, run_wt, want in cases:
        got_ours, got_wt = run_ours(), run_wt()
        if got_ours != want or got_wt != want:
            print(f"{name}: WRONG RESULT ewasm={got_ours} wasmtime={got_wt} expected={want}")
            return 1
        t_ours = median_time(run_ours, args.repeats)
        t_wt = median_time(run_wt, args.repeats)
        ratio = t_ours / t_wt
        rows.append({"kernel": name, "ewasm_ms": t_ours * 1e3, "wasmtime_ms": t_wt * 1e3,
                     "ratio": ratio})
        print(f"{name:18} {t_ours * 1e3:10.2f} {t_wt * 1e3:12.2f} {ratio:7.2f}")
    geo = math.exp(sum(math.log(r["ratio"]) for r in rows) / len(rows))
    worst = max(r["ratio"] for r in rows)
    print(f"geometric mean of ratios: {geo:.3f} (bar <= 1.3); worst: {worst:.2f} (bar <= 2.0)")

    compile_rows = []
    for name, wasm in (("kernels.wasm", kernels), ("ecpairing.wasm", ecpairing)):
        t = time.perf_counter()
        ewasm.compile(wasm, cache=False, tier="baseline")
        cold = time.perf_counter() - t
        t = time.perf_counter()
        ewasm.compile(wasm, cache=False, tier="optimized")
        cold_opt = time.perf_counter() - t
        warm_cache = ObjectCache(tempfile.mkdtemp(prefix="ewasm-bench-"))
        ewasm.compile(wasm, cache=warm_cache, tier="optimized")

        def hit(wasm=wasm, warm_cache=warm_cache):
            ewasm.instantiate(ewasm.compile(wasm, cache=warm_cache))

        t_hit = median_time(hit, 7)
        t = time.perf_counter()
        wmod = wasmtime.Module(engine, wasm)
        t_wt = time.perf_counter() - t
        compile_rows.append({"module": name, "cold_s": cold, "cold_optimized_s": cold_opt,
                             "cache_hit_ms": t_hit * 1e3, "wasmtime_compile_ms": t_wt * 1e3})
        print(f"{name:16} compile cold: baseline {cold:6.3f} s, optimized {cold_opt:6.3f} s;"
              f"   cache-hit instantiate "
              f"{t_hit * 1e3:6.2f} ms   (wasmtime compile {t_wt * 1e3:.1f} ms)")
        del wmod
    ec = ewasm.instantiate(ewasm.compile(ecpairing, cache=cache, tier="optimized"))
    t_ec = median_time(lambda: ec.invoke("main"), 5)
    wec = wasmtime.Instance(store, wasmtime.Module(engine, ecpairing), []).exports(store)
    t_wec = median_time(lambda: wec["main"](store), 5)
    print(f"ecpairing main: ewasm {t_ec * 1e3:.2f} ms, wasmtime {t_wec * 1e3:.2f} ms, "
          f"ratio {t_ec / t_wec:.2f}")
    if args.json:
        print(json.dumps({"kernels": rows, "geomean": geo, "compile": compile_rows,
                          "ecpairing_ms": t_ec * 1e3, "ecpairing_wasmtime_ms": t_wec * 1e3}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
