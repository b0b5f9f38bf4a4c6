"""What every benchmark script shares: timing and finding the shared benchmark inputs."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def parse_args(description: str | None = None) -> tuple[argparse.Namespace, Path, Path] | None:
    """--repeats, --shared, --json; returns (args, shared dir, kernels dir), or None after
    saying why when the benchmark inputs are missing."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    shared = Path(args.shared)
    kdir = shared / "fixtures/bench/kernels"
    if not kdir.is_dir():
        print(f"benchmark inputs not found under {shared} (pass --shared)", file=sys.stderr)
        return None
    return args, shared, kdir
