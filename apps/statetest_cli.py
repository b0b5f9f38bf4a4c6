"""`ewasm statetest PATH...`: run filled state tests with a progress bar, then a summary
(or --json records). Exit status: 0 all passed, 1 a failure or error, 2 usage error."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from state.errors import EngineOptionError
from state.statetest.runner import CaseResult, discover, run_paths
from state.transaction import engine_options

PROG = "ewasm statetest"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Run Ethereum GeneralStateTests (filled JSON) and compare "
                               "post-state roots and logs hashes.")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                   help="filled test files or folders (searched recursively)")
    p.add_argument("-k", dest="pattern", metavar="PATTERN",
                   help="only tests whose name contains PATTERN, or matches it as a glob "
                        "when it holds * ? or [")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="worker processes (default 1)")
    p.add_argument("--fork", action="append", metavar="NAME",
                   help="only this fork (repeatable; default: every fork in each file)")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="engine option passed to the transaction (repeatable), e.g. "
                        "debug=true for fixtures filled by a Hera with the debug namespace")
    p.add_argument("--json", action="store_true",
                   help="print a JSON array of one record per test on stdout instead of "
                        "the summary")
    p.add_argument("--slowest", type=int, default=5, metavar="N",
                   help="list the N slowest tests in the summary (default 5)")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", action="store_true", default=None,
                     help="show the progress bar on stderr even when it is not a terminal "
                          "(default: only on a terminal)")
    bar.add_argument("--no-progress", dest="progress", action="store_false",
                     help="never show the progress bar")
    return p


def _usage_error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def parse_options(items: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise EngineOptionError(f"option {item!r} is not KEY=VALUE")
        options[key.strip()] = value.strip()
    return options


def _check_options(options: dict[str, str]) -> None:
    """Reject unknown engine options before running anything, when the transaction
    module can say which it knows; otherwise every case would report the same error."""
    if options:
        engine_options(options)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # -h exits 0, argparse errors 2
        return 0 if not exc.code else 2
    if args.jobs < 1:
        return _usage_error("-j must be at least 1")
    try:
        options = parse_options(args.option)
        _check_options(options)
    except EngineOptionError as exc:
        return _usage_error(str(exc))
    try:
        files = discover(args.paths)
    except FileNotFoundError as exc:
        return _usage_error(str(exc))
    if not files:
        return _usage_error("no JSON test files under " + " ".join(map(str, args.paths)))

    # The bar goes to stderr, and by default only to a terminal: in a CI log or a
    # captured stream its redraws are noise next to the summary or the --json records.
    show_progress = args.progress if args.progress is not None else sys.stderr.isatty()
    start = time.perf_counter()
    kwargs = dict(pattern=args.pattern, forks=args.fork, options=options, jobs=args.jobs)
    try:
        if show_progress:
            results = _run_with_progress(args.paths, len(files), kwargs)
        else:
            results = run_paths(args.paths, **kwargs)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    wall = time.perf_counter() - start
    if not results:
        return _usage_error("no tests matched" + (f" -k {args.pattern!r}" if args.pattern else "")
                           + (f" --fork {','.join(args.fork)}" if args.fork else ""))
    status = 0 if all(r.status == "pass" for r in results) else 1
    try:
        if args.json:
            json.dump([r.record() for r in results], sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            print_summary(results, wall, slowest=args.slowest)
        sys.stdout.flush()
    except BrokenPipeError:
        # `... --json | head`: the reader left; the verdict still stands. Point stdout
        # at /dev/null so that the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return status


def _run_with_progress(paths: list[Path], nfiles: int, kwargs: dict) -> list[CaseResult]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    counts: Counter[str] = Counter()
    # On a terminal the bar disappears at the end (the summary follows); in a log the
    # final state of the bar is written once.
    with Progress(TextColumn("statetest"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.fields[status]}"),
                  console=console, transient=console.is_terminal) as progress:
        task = progress.add_task("files", total=nfiles, status="")

        def on_file(path: Path, batch: list[CaseResult]) -> None:
            counts.update(r.status for r in batch)
            status = f"{counts['pass']} passed"
            if counts["fail"]:
                status += f", [red]{counts['fail']} failed[/]"
            if counts["error"]:
                status += f", [red]{counts['error']} errors[/]"
            progress.update(task, advance=1, status=status)

        return run_paths(paths, on_file=on_file, **kwargs)


def print_summary(results: list[CaseResult], wall: float, *, slowest: int = 5) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 120))
    groups: dict[str, Counter[str]] = {}
    for r in results:
        groups.setdefault(r.group, Counter())[r.status] += 1
    table = Table(title="state tests", title_justify="left")
    for col in ("group", "passed", "failed", "errors", "total"):
        table.add_column(col, justify="left" if col == "group" else "right")
    total: Counter[str] = Counter()
    for g, c in groups.items():
        total.update(c)
        table.add_row(g, str(c["pass"]), _red(c["fail"]), _red(c["error"]), str(c.total()))
    if len(groups) > 1:
        table.add_row("all", str(total["pass"]), _red(total["fail"]), _red(total["error"]),
                      str(total.total()), style="bold")
    console.print(table)

    if slowest > 0:
        slow = Table(title=f"slowest {min(slowest, len(results))}", title_justify="left")
        slow.add_column("test")
        slow.add_column("seconds", justify="right")
        for r in sorted(results, key=lambda r: -r.time_s)[:slowest]:
            slow.add_row(r.id, f"{r.time_s:.3f}")
        console.print(slow)

    for r in results:
        if r.status == "pass":
            continue
        console.print(f"[bold red]{r.status.upper()}[/] {r.id}  [dim]{r.file}[/]",
                      highlight=False, soft_wrap=True)
        lines = []
        if r.error:
            lines.append(r.error)
        if r.actual_root or r.expected_root:
            for what, e, a in (("state root", r.expected_root, r.actual_root),
                               ("logs hash ", r.expected_logs, r.actual_logs)):
                mark = "ok" if e == a else "MISMATCH"
                lines.append(f"{what}: expected {e or '-'}")
                lines.append(f"            actual {a or '-'}  {mark}")
        lines.extend(r.diff)
        for line in lines:
            console.print("  " + line, highlight=False, markup=False, soft_wrap=True)
    n = len(results)
    verdict = "[green]all passed[/]" if total["pass"] == n else "[bold red]FAILED[/]"
    console.print(f"{total['pass']}/{n} passed, {total['fail']} failed, {total['error']} "
                  f"errors in {wall:.2f} s: {verdict}", highlight=False)


def _red(n: int) -> str:
    return f"[red]{n}[/]" if n else "0"
