"""The big native stack: compiled code and the Python frames of nested calls run on a
512 MiB stack, on the caller's own thread where stacks can be switched (no thread hop),
on a worker thread otherwise; both give the same results."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from ewasm.runtime import stack

DEPTH = 40_000  # Python frames: far past what an 8 MiB thread stack holds in CPython 3.11


def _deep(n: int) -> int:
    return 0 if n == 0 else 1 + _deep(n - 1)


@pytest.fixture
def recursion():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(DEPTH + 1000)
    yield
    sys.setrecursionlimit(old)


@pytest.mark.skipif(not stack.SWITCH_STACKS, reason="stack switching needs Linux glibc "
                                                    "(x86-64 or aarch64) and Python < 3.14")
def test_switched_stacks_run_on_the_callers_thread(recursion):
    assert stack.run_on_big_stack(threading.get_ident) == threading.get_ident()
    assert stack.run_on_big_stack(_deep, DEPTH) == DEPTH
    assert not stack.on_big_stack()
    assert stack.run_on_big_stack(stack.on_big_stack) is True


def test_exceptions_come_back_and_nested_runs_stay_on_the_big_stack(recursion):
    def fail():
        raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        stack.run_on_big_stack(fail)
    assert stack.run_on_big_stack(lambda: stack.run_on_big_stack(_deep, 1000)) == 1000


def test_threads_run_at_once_each_on_a_stack_of_its_own(recursion):
    out: list[int] = []
    barrier = threading.Barrier(6)

    def work():
        barrier.wait()
        out.append(stack.run_on_big_stack(_deep, DEPTH // 4))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [DEPTH // 4] * 6
    assert len(stack._idle_stacks) <= stack.IDLE_STACKS


@pytest.mark.parametrize("switch", ["0", "1"])
def test_both_ways_give_the_same_deep_recursion(switch, tmp_path):
    code = ("import sys, threading; from ewasm.runtime import stack; "
            "sys.setrecursionlimit(60000); "
            "d = lambda n: 0 if n == 0 else 1 + d(n - 1); "
            "same = stack.run_on_big_stack(threading.get_ident) == threading.get_ident(); "
            "print(stack.SWITCH_STACKS, same, stack.run_on_big_stack(d, 50000))")
    env = {"EWASM_STACK_SWITCH": switch, "PATH": "/usr/bin:/bin",
           "EWASM_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120, check=True).stdout.split()
    switched = out[0] == "True"
    assert out[2] == "50000"
    assert out[1] == str(switched)  # switched: the caller's thread; else a worker thread
    if switch == "0":
        assert not switched
