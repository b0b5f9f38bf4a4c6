"""Cost of gas metering (issues: gasmeter, bounds checks and metering): engine_report's
table, the same one bench_engine.py prints (each workload unmetered and metered, with
wasmtime's time beside, interleaved rounds, median and min), then the time to meter
sentinel.wasm.

    python bench/bench_metering.py [--repeats N] [--shared PATH] [--json]

Bar: metered/unmetered <= 1.10 on every kernel.
"""

from __future__ import annotations

import json
import sys
import time

import engine_report

import gasmeter


def main() -> int:
    started = engine_report.main(__doc__)
    if isinstance(started, int):
        return started
    args, shared, table = started
    sentinel = shared / "fixtures/contracts/system/sentinel.wasm"
    t_sentinel = None
    if sentinel.is_file():
        data = sentinel.read_bytes()
        t = time.perf_counter()
        gasmeter.inject(data)
        t_sentinel = time.perf_counter() - t
        print(f"metering sentinel.wasm ({len(data):,} bytes): {t_sentinel:.3f} s (bar < 2 s)")
    if args.json:
        print(json.dumps({"workloads": table, "sentinel_s": t_sentinel}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
