"""Runs compiled code on a native stack sized for the worst case.

The call-depth budget is counted in Wasm terms (see compiler.lower.CALL_BASE_COST), so
it trips deterministically; this stack is what guarantees that it trips before the
native stack could overflow, whatever thread the embedder calls from.

Three ways to get there, the same stack size each way:

* on x86-64, `call_compiled`: one native call of an engine-made stub that points the
  stack pointer at a big stack, calls the compiled function and points it back (no libc
  context switch, no Python in between); Python host functions that compiled code calls
  run on the big stack too;
* on the caller's own thread, switching stacks (glibc's makecontext/swapcontext through
  ctypes), for any Python function: no thread hop, a few microseconds a call. Each stack
  is 512 MiB (reserved, committed by the kernel as it is touched) with a guard page below
  it, from a process-wide pool;
* on a big-stack worker thread per calling thread, handed each call through a queue,
  where the switch is not available (not glibc, an unknown ABI, Python 3.14+ which checks
  the C stack against the thread's own bounds) or `EWASM_STACK_SWITCH=0`.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
import queue
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

from . import vmem

STACK_SIZE = 512 * 1024 * 1024

_local = threading.local()
_create_lock = threading.Lock()


def _forget_workers_after_fork() -> None:
    # A forked child inherits the thread-local worker handle but not its thread: jobs
    # queued to it would wait forever. Start afresh. (Idle switched stacks are memory,
    # which the child has its own copy of: they stay usable.)
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


# --- switching stacks on the calling thread --------------------------------------------------
# glibc's ucontext_t on x86-64 and aarch64 begins {unsigned long uc_flags; ucontext_t
# *uc_link; stack_t uc_stack = {void *ss_sp; int ss_flags; size_t ss_size;}}.
_UC_LINK, _UC_STACK_SP, _UC_STACK_FLAGS, _UC_STACK_SIZE = 8, 16, 24, 32
_UCONTEXT_BYTES = 16384  # more than sizeof(ucontext_t) on either (968, 4560)
_ENTRY = ctypes.CFUNCTYPE(None)


def _switch_available() -> bool:
    if os.environ.get("EWASM_STACK_SWITCH", "1") == "0":
        return False
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    if platform.machine() not in ("x86_64", "aarch64") or sys.version_info >= (3, 14):
        return False
    return ctypes.sizeof(ctypes.c_void_p) == 8


class _SwitchedStack:
    """One thread's big stack and the two contexts that switch to it and back."""

    def __init__(self) -> None:
        _libc()
        base = vmem.reserve(STACK_SIZE)  # away from the JIT's sections (see vmem)
        weakref.finalize(self, vmem.release, base, STACK_SIZE)
        # A guard page at the low end: an overflow would fault, never write past it.
        vmem.protect_none(base, mmap.PAGESIZE)
        self._base = base + mmap.PAGESIZE
        self._size = STACK_SIZE - mmap.PAGESIZE
        self._caller = ctypes.create_string_buffer(_UCONTEXT_BYTES)
        self._callee = ctypes.create_string_buffer(_UCONTEXT_BYTES)
        self._entry = _ENTRY(self._run_job)  # kept alive with the stack
        self._job: tuple | None = None
        self._result: tuple | None = None
        self._thread: int | None = None  # whose context (signal mask) the callee holds
        # The callee context's fields that getcontext overwrites, set again for each run.
        address = ctypes.addressof(self._callee)
        self._fields = (
            (ctypes.c_void_p.from_address(address + _UC_LINK), ctypes.addressof(self._caller)),
            (ctypes.c_void_p.from_address(address + _UC_STACK_SP), self._base),
            (ctypes.c_int.from_address(address + _UC_STACK_FLAGS), 0),
            (ctypes.c_size_t.from_address(address + _UC_STACK_SIZE), self._size),
        )

    @property
    def top(self) -> int:
        """The initial stack pointer: the high end, 16-byte aligned."""
        return (self._base + self._size) & ~15

    def _run_job(self) -> None:
        fn, args = self._job
        _local.on_worker = True
        try:
            self._result = (True, fn(*args))
        except BaseException as exc:  # handed back to the switching frame
            self._result = (False, exc)
        finally:
            _local.on_worker = False

    def run(self, fn: Callable[..., Any], args: tuple) -> Any:
        libc = _LIBC
        callee = self._callee
        self._job, self._result = (fn, args), None
        # getcontext when another thread takes the stack: the code runs with the calling
        # thread's signal mask (as that thread had it when it first took this stack).
        thread = threading.get_ident()
        if thread != self._thread:
            if libc.getcontext(callee) != 0:
                raise OSError(ctypes.get_errno(), "getcontext failed")
            for cell, value in self._fields:
                cell.value = value
            self._thread = thread
        libc.makecontext(callee, self._entry, 0)
        if libc.swapcontext(self._caller, callee) != 0:
            raise OSError(ctypes.get_errno(), "swapcontext failed")
        result, self._job, self._result = self._result, None, None
        if result is None:
            raise RuntimeError("the switched stack returned without a result")
        ok, value = result
        if ok:
            return value
        raise value


_LIBC = None


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        libc = vmem.libc()
        libc.getcontext.argtypes = [ctypes.c_void_p]
        libc.getcontext.restype = ctypes.c_int
        libc.makecontext.argtypes = [ctypes.c_void_p, _ENTRY, ctypes.c_int]
        libc.makecontext.restype = None
        libc.swapcontext.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        libc.swapcontext.restype = ctypes.c_int
        _LIBC = libc
    return _LIBC


SWITCH_STACKS = _switch_available()
IDLE_STACKS = 8  # stacks kept between runs; more run at once only with more threads
_idle_stacks: list[_SwitchedStack] = []


# x86-64 SysV: ewasm_switch_call(a, b, c, fn, sp) calls fn(a, b, c) with the stack
# pointer at sp and returns fn's i32. a, b, c arrive in rdi, rsi, rdx, where fn wants them;
# rbx is callee-saved, so it keeps the old stack pointer across the call. At entry rsp is
# 8 mod 16, 0 after the push, as sp is: fn sees the alignment the ABI promises.
_SWITCH_CALL_X86_64 = bytes([
    0x53,              # push %rbx
    0x48, 0x89, 0xE3,  # mov  %rsp, %rbx
    0x4C, 0x89, 0xC4,  # mov  %r8, %rsp
    0xFF, 0xD1,        # call *%rcx
    0x48, 0x89, 0xDC,  # mov  %rbx, %rsp
    0x5B,              # pop  %rbx
    0xC3,              # ret
])
_SWITCH_CFUNC = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def _native_switch() -> Any:
    if not SWITCH_STACKS or platform.machine() != "x86_64":
        return None
    try:
        return _SWITCH_CFUNC(vmem.executable(_SWITCH_CALL_X86_64))
    except OSError:
        return None


_SWITCH_CALL = _native_switch()
NATIVE_SWITCH = _SWITCH_CALL is not None


def call_compiled(entry: Any, fn: int, a: int, b: int | None, c: int) -> int:
    """Call the wrapper-ABI function at `fn` (`entry`: the same as a ctypes function) with
    (a, b, c) on a big stack; its status. Only where NATIVE_SWITCH. Already on the big
    stack (a nested call), a plain call."""
    if getattr(_local, "on_worker", False):
        return entry(a, b, c)
    try:
        stack = _idle_stacks.pop()
    except IndexError:
        stack = _SwitchedStack()
    _local.on_worker = True
    try:
        return _SWITCH_CALL(a, b, c, fn, stack.top)
    finally:
        _local.on_worker = False
        if len(_idle_stacks) < IDLE_STACKS:
            _idle_stacks.append(stack)


def on_big_stack() -> bool:
    return getattr(_local, "on_worker", False)


def run_on_big_stack(fn: Callable[..., Any], *args: Any) -> Any:
    """Call fn(*args) on a big native stack: this thread's own switched stack, or its
    execution worker thread (directly if already on one)."""
    if getattr(_local, "on_worker", False):
        return fn(*args)
    if SWITCH_STACKS:
        # A process-wide pool, not a thread-local: a C thread's Python thread state (and
        # its thread-locals) ends with each call from C, the stacks stay for the next.
        try:
            stack = _idle_stacks.pop()
        except IndexError:
            stack = _SwitchedStack()
        try:
            return stack.run(fn, args)
        finally:
            if len(_idle_stacks) < IDLE_STACKS:
                _idle_stacks.append(stack)
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
