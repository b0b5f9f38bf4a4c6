"""Run filled state tests: one case = one (test, fork, indexes) post entry."""

from __future__ import annotations

import fnmatch
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evmc_bridge import Revision

from ..memory import MemoryBackend
from ..root import logs_hash, state_root
from ..transaction import apply_transaction
from .filler import diff_against_expect, expect_for, find_filler, load_filler
from .fixture import StateTest, load_tests


@dataclass
class CaseResult:
    name: str
    file: str
    group: str
    fork: str
    indexes: tuple[int, int, int]
    status: str  # pass | fail | error
    expected_root: str = ""
    actual_root: str = ""
    expected_logs: str = ""
    actual_logs: str = ""
    time: float = 0.0
    error: str = ""
    diff: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.group}/{self.name}[{self.fork}]"

    def record(self) -> dict:
        d = asdict(self)
        d["indexes"] = list(self.indexes)
        return d


def discover(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob("*.json") if q.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return files


def group_of(path: Path, root: Path) -> str:
    try:
        rel = path.parent.resolve().relative_to(root)
    except ValueError:
        return str(path.parent)
    return str(rel) if str(rel) != "." else path.parent.name


def common_root(paths: Sequence[Path]) -> Path:
    dirs = [str((p if p.is_dir() else p.parent).resolve()) for p in map(Path, paths)]
    root = Path(os.path.commonpath(dirs))
    # Group names relative to the parent when a single folder is given: `filled`, not `.`.
    return root.parent if len(set(dirs)) == 1 else root


def matches(name: str, pattern: str | None) -> bool:
    if not pattern:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def run_case(test: StateTest, fork: str, post_index: int, group: str,
             options: dict[str, str]) -> CaseResult:
    post = test.posts[fork][post_index]
    res = CaseResult(test.name, str(test.path), group, fork, post.indexes, "error",
                     expected_root=post.hash.hex(), expected_logs=post.logs.hex())
    start = time.perf_counter()
    try:
        backend = MemoryBackend.from_accounts(test.pre)
        outcome = apply_transaction(backend, test.env, test.transaction(post.indexes),
                                    revision=Revision.parse(fork), options=options)
        res.actual_root = state_root(backend).hex()
        res.actual_logs = logs_hash(outcome.logs).hex()
        ok = res.actual_root == res.expected_root and res.actual_logs == res.expected_logs
        res.status = "pass" if ok else "fail"
        if not outcome.valid:
            res.error = f"transaction rejected: {outcome.error}"
        elif outcome.error:
            res.error = f"{outcome.status.name}: {outcome.error}"
        if not ok:
            res.diff = _filler_diff(test, fork, post.indexes, backend)
    except Exception as exc:  # a broken fixture or an engine bug: report, keep going
        res.error = f"{type(exc).__name__}: {exc}"
    res.time = time.perf_counter() - start
    return res


def _filler_diff(test: StateTest, fork: str, indexes, backend) -> list[str]:
    path = find_filler(test.path, test.name)
    if path is None:
        return []
    try:
        expect = expect_for(load_filler(path, test.name), fork, indexes)
    except Exception as exc:
        return [f"(filler {path.name} unreadable: {exc})"]
    if expect is None:
        return [f"(no expect section for {fork} in {path.name})"]
    lines = diff_against_expect(backend, expect)
    return lines or [f"(the post state agrees with {path.name}'s expect section, which "
                     "does not describe every account)"]


def _run_file(path: Path, group: str, pattern: str | None, forks: tuple[str, ...] | None,
              options: dict[str, str]) -> list[CaseResult]:
    try:
        tests = load_tests(path)
    except Exception as exc:
        return [CaseResult(path.stem, str(path), group, "-", (0, 0, 0), "error",
                           error=f"cannot load: {type(exc).__name__}: {exc}")]
    out = []
    for test in tests:
        if not matches(test.name, pattern):
            continue
        for fork, entries in test.posts.items():
            if forks and fork.lower() not in forks:
                continue
            for i in range(len(entries)):
                out.append(run_case(test, fork, i, group, options))
    return out


def run_paths(paths: Sequence[Path], *, pattern: str | None = None,
              forks: Sequence[str] | None = None, options: dict[str, str] | None = None,
              jobs: int = 1,
              on_file: Callable[[list[CaseResult]], None] | None = None) -> list[CaseResult]:
    """Run every case under paths; on_file is called after each file (progress)."""
    files = discover(paths)
    root = common_root(paths)
    options = dict(options or {})
    fork_set = tuple(f.lower() for f in forks) if forks else None
    work = [(f, group_of(f, root)) for f in files]
    results: list[CaseResult] = []

    def done(batch: list[CaseResult]) -> None:
        results.extend(batch)
        if on_file:
            on_file(batch)

    if jobs <= 1 or len(work) <= 1:
        for f, g in work:
            done(_run_file(f, g, pattern, fork_set, options))
    else:
        # spawn, not fork: the parent may hold engine threads and locks.
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = [pool.submit(_run_file, f, g, pattern, fork_set, options)
                       for f, g in work]
            for fut in futures:
                done(fut.result())
    return results


def iter_failures(results: Sequence[CaseResult]) -> Iterator[CaseResult]:
    return (r for r in results if r.status != "pass")
