"""Cost of gas metering: the kernels metered (gasmeter.inject, engine gas fast path) against
the same kernels unmetered, in one run (issue: gasmeter, the overhead bar).

Prints each kernel's unmetered and metered time (median of several repeats), the ratio, the
gas the metered run charged, and the time to meter sentinel.wasm.

    python bench/bench_metering.py [--repeats N] [--shared PATH]

Bar: ratio <= 1.25 on each kernel; the project aims for <= 1.10.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from harness import median_time, parse_args

import ewasm
import gasmeter
from ewasm.compiler.cache import ObjectCache

GAS_LIMIT = 1 << 62


def main() -> int:
    parsed = parse_args(__doc__)
    if parsed is None:
        return 2
    args, shared, kdir = parsed
    expected = json.loads((kdir / "expected.json").read_text())
    cache = ObjectCache(tempfile.mkdtemp(prefix="ewasm-bench-"))
    mib = 1 << 20
    u32 = 0xFFFFFFFF

    def pair(path: Path):
        plain = path.read_bytes()
        metered = gasmeter.inject(plain)
        a = ewasm.instantiate(ewasm.compile(plain, cache=cache, tier="optimized"))
        b = ewasm.instantiate(metered, cache=cache, gas_limit=GAS_LIMIT, tier="optimized")
        return a, b

    kern, kern_m = pair(kdir / "kernels.wasm")
    naive, naive_m = pair(kdir / "fib_naive.wasm")
    for inst in (kern, kern_m):
        inst.invoke("fill", mib, 12345)

    cases = [
        ("fib(30)", kern, kern_m, ("fib", 30), expected["fib"]["30"]),
        ("sha256 1 MiB", kern, kern_m, ("sha256", mib), expected["sha256"][str(mib)]["return_u32"]),
        ("keccak256 1 MiB", kern, kern_m, ("keccak256", mib),
         expected["keccak256"][str(mib)]["return_u32"]),
        ("fib_naive(30)", naive, naive_m, ("fib", 30), expected["fib"]["30"]),
    ]
    rows = []
    print(f"{'kernel':18} {'plain ms':>10} {'metered ms':>11} {'ratio':>7} {'gas per call':>14}")
    worst = 0.0
    for name, plain, metered, (fn, arg), want in cases:
        before = metered.gas_used
        got_plain = plain.invoke(fn, arg)[0] & u32
        got_metered = metered.invoke(fn, arg)[0] & u32
        gas = metered.gas_used - before
        if got_plain != want & u32 or got_metered != want & u32:
            print(f"{name}: WRONG RESULT plain={got_plain} metered={got_metered} expected={want}")
            return 1
        t_plain = median_time(lambda i=plain, f=fn, a=arg: i.invoke(f, a), args.repeats)
        t_metered = median_time(lambda i=metered, f=fn, a=arg: i.invoke(f, a), args.repeats)
        ratio = t_metered / t_plain
        worst = max(worst, ratio)
        rows.append({"kernel": name, "plain_ms": t_plain * 1e3, "metered_ms": t_metered * 1e3,
                     "ratio": ratio, "gas": gas})
        print(f"{name:18} {t_plain * 1e3:10.2f} {t_metered * 1e3:11.2f} {ratio:7.3f} {gas:14,}")
    print(f"worst overhead: {(worst - 1) * 100:.1f} % (bar <= 25 %, aim <= 10 %)")

    sentinel = shared / "fixtures/contracts/system/sentinel.wasm"
    t_sentinel = None
    if sentinel.is_file():
        data = sentinel.read_bytes()
        t = time.perf_counter()
        gasmeter.inject(data)
        t_sentinel = time.perf_counter() - t
        print(f"metering sentinel.wasm ({len(data):,} bytes): {t_sentinel:.3f} s (bar < 2 s)")
    if args.json:
        print(json.dumps({"kernels": rows, "worst_ratio": worst, "sentinel_s": t_sentinel}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
