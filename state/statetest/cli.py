"""`ewasm statetest PATH...`: run filled state tests, show progress and a summary."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from ..transaction import engine_options
from .runner import CaseResult, discover, run_paths


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ewasm statetest",
                                description="Run Ethereum GeneralStateTests (filled JSON) "
                                            "and compare post-state roots and logs hashes.")
    p.add_argument("paths", nargs="+", type=Path, help="filled test files or folders")
    p.add_argument("-k", dest="pattern", help="only tests whose name contains this "
                                              "(or matches it, as a glob with * ? [)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--fork", action="append", help="only this fork (repeatable)")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="engine option, e.g. debug=true (the wrc20 fixture's older Hera "
                        "accepted the debug namespace) or metering=true")
    p.add_argument("--json", action="store_true", help="one JSON record per test on stdout")
    p.add_argument("--progress", action="store_true", help="show the progress bar even "
                                                           "when stderr is not a terminal")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and 2
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"ewasm statetest: option {item!r} is not KEY=VALUE", file=sys.stderr)
            return 2
        options[key.strip()] = value.strip()
    try:
        engine_options(options)
    except ValueError as exc:
        print(f"ewasm statetest: {exc}", file=sys.stderr)
        return 2
    try:
        files = discover(args.paths)
    except FileNotFoundError as exc:
        print(f"ewasm statetest: {exc}", file=sys.stderr)
        return 2
    if not files:
        print("ewasm statetest: no test files found", file=sys.stderr)
        return 2
    show_progress = args.progress or sys.stderr.isatty()
    start = time.perf_counter()
    try:
        if show_progress:
            results = _run_with_progress(args, options, len(files))
        else:
            results = run_paths(args.paths, pattern=args.pattern, forks=args.fork,
                                options=options, jobs=args.jobs)
    except ValueError as exc:  # e.g. an unknown engine option
        print(f"ewasm statetest: {exc}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - start
    if not results:
        print("ewasm statetest: no tests matched", file=sys.stderr)
        return 2
    if args.json:
        json.dump([r.record() for r in results], sys.stdout, indent=1)
        print()
    else:
        _summary(results, wall)
    return 0 if all(r.status == "pass" for r in results) else 1


def _run_with_progress(args, options, nfiles: int) -> list[CaseResult]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    counts = Counter()
    with Progress(TextColumn("statetest"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), transient=True) as progress:
        task = progress.add_task("", total=nfiles, status="")

        def on_file(batch: list[CaseResult]) -> None:
            counts.update(r.status for r in batch)
            progress.update(task, advance=1, status=f"{counts['pass']} passed, "
                            f"{counts['fail']} failed, {counts['error']} errors")

        return run_paths(args.paths, pattern=args.pattern, forks=args.fork, options=options,
                         jobs=args.jobs, on_file=on_file)


def _summary(results: list[CaseResult], wall: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    groups: dict[str, Counter] = {}
    for r in results:
        groups.setdefault(r.group, Counter())[r.status] += 1
    table = Table(title="state tests")
    for col in ("group", "passed", "failed", "errors", "total"):
        table.add_column(col, justify="left" if col == "group" else "right")
    total = Counter()
    for g, c in sorted(groups.items()):
        total.update(c)
        table.add_row(g, str(c["pass"]), str(c["fail"]), str(c["error"]), str(sum(c.values())))
    table.add_row("all", str(total["pass"]), str(total["fail"]), str(total["error"]),
                  str(sum(total.values())), style="bold")
    console.print(table)
    slow = Table(title="slowest")
    slow.add_column("test")
    slow.add_column("seconds", justify="right")
    for r in sorted(results, key=lambda r: -r.time)[:5]:
        slow.add_row(r.id, f"{r.time:.3f}")
    console.print(slow)
    for r in results:
        if r.status == "pass":
            continue
        console.print(f"[bold red]{r.status.upper()}[/] {r.id}  ({r.file})", highlight=False)
        if r.error:
            console.print(f"  {r.error}", highlight=False, markup=False)
        if r.expected_root != r.actual_root:
            console.print(f"  state root: expected {r.expected_root}\n"
                          f"              actual {r.actual_root}", highlight=False)
        if r.expected_logs != r.actual_logs:
            console.print(f"  logs hash:  expected {r.expected_logs}\n"
                          f"              actual {r.actual_logs}", highlight=False)
        for line in r.diff:
            console.print(f"  {line}", highlight=False, markup=False)
    verdict = "[green]all passed[/]" if total["pass"] == len(results) else "[red]FAILED[/]"
    console.print(f"{total['pass']}/{len(results)} passed in {wall:.2f} s: {verdict}")
