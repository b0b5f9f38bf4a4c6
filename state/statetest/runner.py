"""Run filled state tests. One case = one (test, fork, post entry): the entry's
transaction applied alone to `pre`, then the state root and logs hash compared with the
entry's `hash` and `logs`."""

from __future__ import annotations

import fnmatch
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from evmc_bridge import Revision

from ..backend import StateBackend
from ..memory import MemoryBackend
from ..root import logs_hash, state_root
from ..transaction import apply_transaction
from .fixture import NotAStateTest, StateTest, load_tests


@dataclass
class CaseResult:
    name: str
    file: str
    group: str  # the fixture folder relative to the common root, e.g. "filled"
    fork: str
    indexes: tuple[int, int, int]
    status: str  # "pass" | "fail" | "error"
    expected_root: str = ""  # hex, no 0x
    actual_root: str = ""
    expected_logs: str = ""
    actual_logs: str = ""
    time_s: float = 0.0
    error: str = ""
    diff: list[str] = field(default_factory=list)  # filled in for failures only

    @property
    def id(self) -> str:
        prefix = f"{self.group}/" if self.group else ""
        return f"{prefix}{self.name}[{self.fork}]"

    def record(self) -> dict[str, Any]:
        """The --json record."""
        d = asdict(self)
        d["indexes"] = {"data": self.indexes[0], "gas": self.indexes[1],
                        "value": self.indexes[2]}
        d["time"] = round(d.pop("time_s"), 6)
        return d


# --- discovery -------------------------------------------------------------------------

def discover(paths: Iterable[Path | str]) -> list[Path]:
    """JSON files: given files as they are, folders searched recursively (sorted).
    Fillers written as JSON (`*Filler.json`) are sources, not tests: skipped in folders.
    FileNotFoundError for a path that does not exist."""
    files: list[Path] = []
    seen: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.json")
                           if q.is_file() and not q.name.endswith("Filler.json"))
        elif p.is_file():
            found = [p]
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
        for q in found:
            key = q.resolve()
            if key not in seen:  # overlapping arguments: run each file once
                seen.add(key)
                files.append(q)
    return files


def common_root(files: Sequence[Path]) -> Path:
    """The deepest folder holding every file's folder."""
    dirs = {str(f.resolve().parent) for f in files}
    return Path(os.path.commonpath(sorted(dirs))) if dirs else Path(".")


def group_of(path: Path, root: Path) -> str:
    """The file's folder relative to root (`filled`, `benchmarking/filled`), or the
    folder's own name when every file sits in one folder."""
    parent = path.resolve().parent
    try:
        rel = parent.relative_to(root)
    except ValueError:
        return parent.name
    return rel.as_posix() if rel.parts else parent.name


def matches(name: str, pattern: str | None) -> bool:
    """-k: a substring, or a glob when it holds * ? or [."""
    if not pattern:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


# --- one case --------------------------------------------------------------------------

# The fork names of the legacy GeneralStateTests (ethereum/legacytests) that are not
# EVMC revision names.
FORK_ALIASES = {"eip150": Revision.TANGERINE_WHISTLE, "eip158": Revision.SPURIOUS_DRAGON,
                "constantinoplefix": Revision.PETERSBURG, "merge": Revision.PARIS,
                "tangerinewhistle": Revision.TANGERINE_WHISTLE,
                "spuriousdragon": Revision.SPURIOUS_DRAGON}


@lru_cache(maxsize=256)
def revision_of(fork: str) -> Revision:
    """The EVMC revision of a fork name of the fixtures (`Byzantium`, `EIP158`, ...)."""
    alias = FORK_ALIASES.get(fork.strip().lower())
    return alias if alias is not None else Revision.parse(fork)


_revision = revision_of


def run_case(test: StateTest, fork: str, index: int, *, options: dict[str, str] | None = None,
             group: str = "") -> CaseResult:
    """Run test.posts[fork][index]; never raises for the test's own sake (status 'error')."""
    post = test.posts[fork][index]
    res = CaseResult(test.name, str(test.path), group, fork, post.indexes, "error",
                     expected_root=post.hash.hex(), expected_logs=post.logs.hex())
    start = time.perf_counter()
    backend = None
    try:
        backend = MemoryBackend.from_accounts(test.pre)
        outcome = apply_transaction(backend, test.env, test.build_transaction(post.indexes),
                                    revision=_revision(fork), options=options or None)
        res.actual_root = state_root(backend).hex()
        res.actual_logs = logs_hash(outcome.logs).hex()
        res.time_s = time.perf_counter() - start
        ok = res.actual_root == res.expected_root and res.actual_logs == res.expected_logs
        res.status = "pass" if ok else "fail"
        if not outcome.valid:
            res.error = f"transaction rejected: {outcome.error}"
        elif outcome.error:
            status = getattr(outcome.status, "name", outcome.status)
            res.error = f"{status}: {outcome.error}"
    except Exception as exc:  # a broken fixture or an engine bug: report it, keep going
        res.time_s = time.perf_counter() - start
        res.error = f"{type(exc).__name__}: {exc}"
    if res.status != "pass" and backend is not None:
        res.diff = filler_diff(test, fork, post.indexes, backend)
    return res


@lru_cache(maxsize=64)
def _expect_of(filler: Path, name: str, mtime_ns: int) -> tuple:
    # mtime_ns is only part of the key: an edited filler is read again.
    from .filler import expect_entries, load_filler

    return tuple(expect_entries(load_filler(filler, name)))


def filler_diff(test: StateTest, fork: str, indexes: tuple[int, int, int],
                backend: StateBackend) -> list[str]:
    """The post state against the filler's `expect`, when a filler can be found."""
    # Imported here: only failures need the fillers, and so PyYAML.
    from .filler import diff_against_expect, find_filler

    path = find_filler(test.path, test.name)
    if path is None:
        return []
    try:
        entries = _expect_of(path, test.name, path.stat().st_mtime_ns)
        lines = diff_against_expect(backend, entries, fork, indexes)
    except Exception as exc:  # the diff is a help, not the verdict
        return [f"(filler {path.name} unusable: {type(exc).__name__}: {exc})"]
    return lines or [f"(the post state agrees with {path.name}'s expect, which does not "
                     "describe every account)"]


# --- files and folders -----------------------------------------------------------------

def run_file(path: Path, *, group: str = "", pattern: str | None = None,
             forks: frozenset[str] | None = None, options: dict[str, str] | None = None,
             skip_foreign: bool = False) -> list[CaseResult]:
    """Every selected case of one file. skip_foreign: a JSON file that is not a state
    test (found by a folder scan, e.g. test_vectors.json) yields nothing."""
    try:
        tests = load_tests(path)
    except NotAStateTest as exc:
        if skip_foreign:
            return []
        return [CaseResult(path.stem, str(path), group, "-", (0, 0, 0), "error",
                           error=str(exc))]
    except Exception as exc:
        return [CaseResult(path.stem, str(path), group, "-", (0, 0, 0), "error",
                           error=f"cannot load: {type(exc).__name__}: {exc}")]
    out = []
    for test in tests:
        if matches(test.name, pattern):
            for fork, i, _ in test.cases(forks):
                out.append(run_case(test, fork, i, options=options, group=group))
    return out


def run_paths(paths: Sequence[Path | str], *, pattern: str | None = None,
              forks: Iterable[str] | None = None, options: dict[str, str] | None = None,
              jobs: int = 1,
              on_file: Callable[[Path, list[CaseResult]], None] | None = None,
              ) -> list[CaseResult]:
    """Every selected case under paths, in file order. on_file(path, results) is called
    as each file finishes (progress), in completion order when jobs > 1."""
    given = {Path(p).resolve() for p in paths if Path(p).is_file()}
    files = discover(paths)
    root = common_root(files)
    fork_set = frozenset(f.lower() for f in forks) if forks else None
    work = [dict(path=f, group=group_of(f, root), pattern=pattern, forks=fork_set,
                 options=dict(options or {}), skip_foreign=f.resolve() not in given)
            for f in files]
    by_file: list[list[CaseResult]] = [[] for _ in work]

    def done(i: int, batch: list[CaseResult]) -> None:
        by_file[i] = batch
        if on_file is not None:
            on_file(work[i]["path"], batch)

    if jobs <= 1 or len(work) <= 1:
        for i, kw in enumerate(work):
            done(i, run_file(**kw))
    else:
        _run_parallel(work, min(jobs, len(work)), done)
    return [r for batch in by_file for r in batch]


def _run_parallel(work: list[dict[str, Any]], jobs: int,
                  done: Callable[[int, list[CaseResult]], None]) -> None:
    # One task per file: workers import the engine once and keep their compile caches;
    # "spawn", not "fork", because the parent may hold engine threads and locks.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        pending: dict[Future, int] = {pool.submit(run_file, **kw): i
                                      for i, kw in enumerate(work)}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = pending.pop(fut)
                    try:
                        batch = fut.result()
                    except Exception as exc:  # e.g. a worker killed by a crash
                        kw = work[i]
                        batch = [CaseResult(kw["path"].stem, str(kw["path"]), kw["group"], "-",
                                            (0, 0, 0), "error",
                                            error=f"worker failed: {type(exc).__name__}: {exc}")]
                    done(i, batch)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
