"""WorkerPool: persistent compile worker processes, so that nothing LLVM does can kill
the host.

LLVM is built with assertions in llvmlite's wheels, and some valid inputs reach them
(SimplifyCFG's "Iterative simplification didn't converge!" on deep nesting aborts the
process). Every IR-to-object step therefore runs in a worker (worker.py). A worker that
dies mid-request becomes a CompileError naming the signal; the request is never retried
in the host. Workers are started once and reused: the first compile of a process pays
their start-up (~0.1 s, overlapped with decoding and lowering by `warm`), later ones
only a pipe round trip.

Pools: `foreground()` compiles what a caller waits for (the baseline tier, and the
optimised tier when asked for synchronously), with one worker per core; `background()`
is one low-priority worker for tier-up, so background work never delays a first result.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from functools import cache

from ..errors import CompileError
from .pipeline import Pipeline
from .target import TargetSpec
from .worker import BOOT, read_frames, write_frames


def worker_python() -> str:
    """The interpreter for workers. An embedding host (libewasm.so in a C node) is not a
    Python executable: EWASM_PYTHON, or the interpreter this Python was installed as."""
    env = os.environ.get("EWASM_PYTHON")
    if env:
        return env
    candidates = [sys.executable, getattr(sys, "_base_executable", "")]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix):
        candidates += [os.path.join(prefix, "bin", version), os.path.join(prefix, "bin", "python3")]
    for c in candidates:
        if c and os.path.basename(c).startswith("python") and os.access(c, os.X_OK):
            return c
    raise CompileError("no Python interpreter for compile workers (set EWASM_PYTHON)")


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not answer"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def engine_root() -> str:
    """The directory this `ewasm` package was imported from (its parent): a site-packages
    directory for `pip install .`, the project for `pip install -e .` (whose import hook
    puts no directory on sys.path), or wherever the embedding host found it."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def worker_path() -> list[str]:
    """The import path handed to workers: the engine's own directory first, so `ewasm`
    resolves to the package this process runs, then the host's path for the engine's
    dependencies. Entries are made absolute (the worker runs elsewhere), and the empty
    entry, which means "the current directory", is dropped."""
    out: list[str] = []
    for p in [engine_root(), *sys.path]:
        if not p or not isinstance(p, str):
            continue
        p = os.path.abspath(p)
        if p not in out and os.path.isdir(p):
            out.append(p)
    return out


# Workers run here, whatever the caller's directory: nothing relative resolves against a
# directory the user did not choose for it (a cloned repository, an unpacked tarball).
WORKER_CWD = "/"


class _Worker:
    def __init__(self, spec: TargetSpec, nice: int) -> None:
        self.stderr = tempfile.TemporaryFile()
        # -I: neither the current directory nor the user's site directory is searched,
        # and PYTHON* variables (PYTHONPATH, PYTHONSTARTUP, ...) are ignored; the import
        # path is exactly worker_path().
        args = [worker_python(), "-I", "-c", BOOT, json.dumps(worker_path()),
                json.dumps(dataclasses.asdict(spec)), str(nice)]
        try:
            self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self.stderr, close_fds=True,
                                         start_new_session=True, cwd=WORKER_CWD)
        except OSError as exc:
            self.stderr.close()
            raise CompileError(f"cannot start a compile worker: {exc}") from None

    def request(self, items: list[bytes]) -> list[bytes]:
        write_frames(self.proc.stdin, items)
        return read_frames(self.proc.stdout)

    def failure(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        self.stderr.seek(0)
        tail = self.stderr.read()[-400:].decode(errors="replace").strip()
        last = tail.splitlines()[-1] if tail else ""
        return f"the compile worker {_describe_exit(code)}" + (f": {last}" if last else "")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.stderr.close()


class WorkerPool:
    def __init__(self, size: int, spec: TargetSpec, *, nice: int = 0) -> None:
        self.size = max(1, size)
        self.spec = spec
        self.nice = nice
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._count = 0  # workers alive, idle or busy
        self._cond = threading.Condition()
        self._closed = False

    def warm(self, n: int | None = None) -> None:
        """Start workers now (without waiting for them to boot)."""
        n = min(self.size, n or self.size)
        with self._cond:
            while self._count < n and not self._closed:
                self._idle.append(_Worker(self.spec, self.nice))
                self._count += 1

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise CompileError("the compile worker pool is closed")
                if self._idle:
                    worker = self._idle.pop()
                    self._busy.add(worker)
                    return worker
                if self._count < self.size:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            worker = _Worker(self.spec, self.nice)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._busy.add(worker)
        return worker

    def _release(self, worker: _Worker, healthy: bool) -> None:
        if not healthy:
            worker.kill()
        with self._cond:
            self._busy.discard(worker)
            if healthy and not self._closed:
                self._idle.append(worker)
            else:
                self._count -= 1
                if healthy:
                    worker.kill()
            self._cond.notify()

    def compile(self, texts: Iterable[str], pipeline: Pipeline, *, count: int | None = None,
                verify: bool = False, timeout: float | None = None,
                jobs: int | None = None) -> list[bytes]:
        """IR texts -> objects, text k on worker k % jobs. `texts` may be a generator of
        `count` texts: each is sent as soon as it is produced, so producing the next
        overlaps compiling the previous. Raises CompileError when LLVM refuses or
        crashes; with a timeout, workers still busy after it are killed."""
        if count is None:
            texts = list(texts)
            count = len(texts)
        jobs = max(1, min(jobs or self.size, self.size, count))
        queues: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(jobs)]
        results: dict[int, bytes] = {}
        errors: list[str] = []
        head = [pipeline.key().encode(), b"1" if verify else b"0"]

        def run(q: queue.SimpleQueue) -> None:
            worker, healthy = None, True
            try:
                while (item := q.get()) is not None:
                    if errors:
                        continue  # drain: the compile has failed already
                    if worker is None:
                        worker = self._acquire()
                    k, text = item
                    healthy = False
                    answer = worker.request(head + [text.encode()])
                    if answer[:1] == [b"ok"] and len(answer) == 2:
                        results[k] = answer[1]
                        healthy = True
                    elif answer[:1] == [b"error"] and len(answer) == 2:
                        errors.append(answer[1].decode(errors="replace"))
                        healthy = True
                    else:
                        errors.append("the compile worker answered a malformed reply")
            except CompileError as exc:  # no worker could be started
                errors.append(str(exc))
            except (OSError, EOFError, ValueError):
                errors.append(worker.failure() if worker else "the compile worker failed")
                healthy = False
            finally:
                if worker is not None:
                    self._release(worker, healthy)

        threads = [threading.Thread(target=run, args=(q,), daemon=True) for q in queues]
        for t in threads:
            t.start()
        try:
            for k, text in enumerate(texts):
                queues[k % jobs].put((k, text))
        finally:
            for q in queues:
                q.put(None)
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            self._kill_busy()
            for t in threads:
                t.join()
            raise CompileError(f"{pipeline.tier.value} compile took over {timeout:g} s")
        if errors:
            raise CompileError(errors[0])
        if len(results) != count:
            raise CompileError(f"compile produced {len(results)} of {count} objects")
        return [results[k] for k in range(count)]

    def _kill_busy(self) -> None:
        """Kill the workers that are not idle (their requests then fail with EOF)."""
        with self._cond:
            busy = list(self._busy)
        for w in busy:
            if w.proc.poll() is None:
                w.proc.kill()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for w in idle:
            w.kill()


def _jobs() -> int:
    env = os.environ.get("EWASM_COMPILE_JOBS")
    if env and env.isdigit():
        return max(1, int(env))
    return os.cpu_count() or 1


@cache
def foreground() -> WorkerPool:
    pool = WorkerPool(_jobs(), TargetSpec.portable())
    atexit.register(pool.close)
    return pool


@cache
def background() -> WorkerPool:
    pool = WorkerPool(1, TargetSpec.portable(), nice=10)
    atexit.register(pool.close)
    return pool
