"""Threads that come and go: a caller's thread that ends must not leave its engine worker
behind, whether it is a C thread calling libewasm.so or a Python thread calling through
`load_vm`.

Where it cannot switch stacks on the calling thread (EWASM_STACK_SWITCH=0, not glibc),
the engine runs each contract on a big-stack worker thread per calling thread
(ewasm/runtime/stack.py, 512 MiB of address space each). A node that starts a thread per
request or per block therefore needs each worker to end with its caller: the worker's
loop holds only its queue, and a weakref.finalize on the `_Worker` queues the stop
sentinel when the caller's thread-local drops it.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from evmc_bridge import Message, Revision, StatusCode, cabi
from evmc_bridge.mocked_host import MockedHost

HERE = Path(__file__).resolve().parent
TRIVIAL = Path(__file__).resolve().parents[3] / "fixtures" / "evmc" / "trivial.wat"
THREADS = 40


@pytest.fixture(scope="module")
def trivial(wat) -> bytes:
    return wat(TRIVIAL.read_text())


@pytest.mark.parametrize("switch", ["0", "1"], ids=["worker-threads", "switched-stacks"])
def test_c_threads_that_end_leave_no_engine_worker_behind(cc, library, trivial, tmp_path,
                                                          switch):
    (tmp_path / "evmc_abi.h").write_text(
        "#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n" + cabi.CDEF)
    exe = tmp_path / "thread_churn"
    subprocess.run([cc, "-O1", "-Wall", "-Werror", "-I", str(tmp_path), "-o", str(exe),
                    str(HERE / "thread_churn.c"), "-ldl", "-lpthread"], check=True)
    wasm = tmp_path / "trivial.wasm"
    wasm.write_bytes(trivial)
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
           "EWASM_CACHE_DIR": os.environ["EWASM_CACHE_DIR"], "EWASM_STACK_SWITCH": switch}
    proc = subprocess.run([str(exe), str(library), str(wasm), str(THREADS)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    m = re.fullmatch(r"threads=(\d+) failures=(\d+) tasks_before=(\d+) tasks_after=(\d+)\n",
                     proc.stdout)
    assert m, proc.stdout
    threads, failures, before, after = map(int, m.groups())
    assert (threads, failures) == (THREADS, 0)  # every execute succeeded
    # +1 for the big-stack worker of the thread measuring; +2 for the engine's one
    # background tier-up thread and its compile request (not per caller).
    assert after <= before + 3, f"{after - before} threads left after {THREADS} callers ended"


@pytest.mark.parametrize("switch", [False, True], ids=["worker-threads", "switched-stacks"])
def test_python_threads_that_end_leave_no_engine_worker_behind(library, trivial, switch,
                                                               monkeypatch):
    from evmc_bridge.loader import load_vm
    from ewasm.runtime import stack

    if switch and not stack.SWITCH_STACKS:
        pytest.skip("stack switching is not available here (see ewasm/runtime/stack.py)")
    monkeypatch.setattr(stack, "SWITCH_STACKS", switch)

    statuses: list[StatusCode] = []

    def one_call() -> None:
        r = vm.execute(MockedHost(), Revision.BYZANTIUM, Message(gas=100_000), trivial)
        statuses.append(r.status)

    with load_vm(library) as vm:
        one_call()  # this thread's worker, kept while it lives
        before = threading.active_count()
        for _ in range(THREADS):
            t = threading.Thread(target=one_call)
            t.start()
            t.join()
        deadline = time.monotonic() + 3
        while threading.active_count() > before and time.monotonic() < deadline:
            time.sleep(0.01)
        after = threading.active_count()
    assert statuses == [StatusCode.SUCCESS] * (THREADS + 1)
    assert after <= before, f"{after - before} threads left after {THREADS} callers ended"
