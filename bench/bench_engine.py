"""Engine speed against wasmtime, in one run (issues: engine core, bounds checks and
metering).

Prints engine_report's table: the kernels, ecpairing's `main` and the precompile
contracts, each unmetered and metered on this engine and on wasmtime, in interleaved
rounds; then cold compile time and cache-hit instantiate time for kernels.wasm and
ecpairing.wasm.

    python bench/bench_engine.py [--repeats N] [--shared PATH] [--json]

Bars: kernels geomean <= 1.0x wasmtime, each <= 1.3x; ecpairing main <= 1.0x;
metered/unmetered <= 1.10 on every kernel.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

import engine_report
from harness import median_time

import ewasm
from ewasm.compiler.cache import ObjectCache


def compile_times(shared) -> list[dict]:
    import wasmtime

    engine = wasmtime.Engine()
    kdir = shared / "fixtures/bench/kernels"
    ecpairing = shared / "fixtures/bench/ewasm-benchmarking/wasm/ecpairing.wasm"
    out = []
    for name, path in (("kernels.wasm", kdir / "kernels.wasm"), ("ecpairing.wasm", ecpairing)):
        wasm = path.read_bytes()
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
        wasmtime.Module(engine, wasm)
        t_wt = time.perf_counter() - t
        out.append({"module": name, "cold_s": cold, "cold_optimized_s": cold_opt,
                    "cache_hit_ms": t_hit * 1e3, "wasmtime_compile_ms": t_wt * 1e3})
        print(f"{name:16} compile cold: baseline {cold:6.3f} s, optimized {cold_opt:6.3f} s;"
              f"   cache-hit instantiate {t_hit * 1e3:6.2f} ms"
              f"   (wasmtime compile {t_wt * 1e3:.1f} ms)")
    return out


def main() -> int:
    started = engine_report.main(__doc__)
    if isinstance(started, int):
        return started
    args, shared, table = started
    compiles = compile_times(shared)
    if args.json:
        print(json.dumps({"workloads": table, "compile": compiles}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
