"""`python -m apps.libewasm build --output DIR`: build libewasm.so (see apps.libewasm.build)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m apps.libewasm",
                                description="the engine's EVMC C ABI")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build libewasm.so, loadable as an EVMC VM")
    b.add_argument("--output", "-o", required=True, help="directory for libewasm.so")
    b.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = p.parse_args(argv)
    from .build import BuildError, build_library

    try:
        path = build_library(args.output, force=args.force)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"built {path} (EVMC ABI 12: evmc_create_ewasm, evmc_create)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
