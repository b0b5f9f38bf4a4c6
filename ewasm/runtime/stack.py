"""Runs compiled code on a thread whose native stack is sized for the worst case.

The call-depth budget is counted in Wasm terms (see compiler.lower.CALL_BASE_COST), so
it trips deterministically; this stack is what guarantees that it trips before the
native stack could overflow, whatever thread the embedder calls from."""

from __future__ import annotations

import os
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

STACK_SIZE = 512 * 1024 * 1024

_local = threading.local()
_create_lock = threading.Lock()


def _forget_workers_after_fork() -> None:
    # A forked child inherits the thread-local worker handle but not its thread: jobs
    # queued to it would wait forever. Start afresh.
    global _local, _create_lock
    _local = threading.local()
    _create_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_workers_after_fork)


class _Worker:
    """One big-stack thread serving one calling thread. The thread's loop holds only the
    queue, never the _Worker: when the calling thread ends, its thread-local drops the
    _Worker, the finalizer queues the stop sentinel and the big-stack thread exits."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        with _create_lock:
            old = threading.stack_size()
            threading.stack_size(STACK_SIZE)
            try:
                self.thread = threading.Thread(target=_serve, args=(self.jobs,),
                                               name="ewasm-exec", daemon=True)
                self.thread.start()
            finally:
                threading.stack_size(old)
        weakref.finalize(self, self.jobs.put, None)


def _serve(jobs: queue.SimpleQueue) -> None:
    _local.on_worker = True
    while True:
        job = jobs.get()
        if job is None:
            return
        fn, args, box, done = job
        try:
            box.append((True, fn(*args)))
        except BaseException as exc:  # handed back to the submitting thread
            box.append((False, exc))
        del job, fn, args
        done.set()


def on_big_stack() -> bool:
    return getattr(_local, "on_worker", False)


def run_on_big_stack(fn: Callable[..., Any], *args: Any) -> Any:
    """Call fn(*args) on this thread's execution worker (directly if already on one)."""
    if getattr(_local, "on_worker", False):
        return fn(*args)
    worker = getattr(_local, "worker", None)
    if worker is None:
        worker = _local.worker = _Worker()
    box: list = []
    done = threading.Event()
    worker.jobs.put((fn, args, box, done))
    done.wait()
    ok, value = box[0]
    if ok:
        return value
    raise value
