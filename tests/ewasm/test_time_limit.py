"""ewasm.time_limit: a wall-clock limit for simulations ends every frame of its thread out
of gas, lets no new frame start, and changes nothing once left or when it never fires."""

from __future__ import annotations

import threading

import pytest

import ewasm
from evmc_bridge import CallKind, Message, Revision, StatusCode
from evmc_bridge.mocked_host import MockedHost

# Loops on a host call (getGasLeft: 2 gas) until its gas runs out: ~10^11 rounds.
SPIN = """
(module
  (import "ethereum" "getGasLeft" (func $gasLeft (result i64)))
  (memory 1)
  (export "memory" (memory 0))
  (func (export "main")
    (loop $again
      (br_if $again (i64.gt_u (call $gasLeft) (i64.const 10))))))
"""
GAS = 200_000_000_000


def _execute(code: bytes, gas: int = GAS):
    msg = Message(kind=CallKind.CALL, gas=gas)
    return ewasm.execute(MockedHost(), Revision.BYZANTIUM, msg, code)


def _in_thread(fn):
    """Run fn on a thread; a hang fails the test instead of stalling the run."""
    box = []
    t = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    t.start()
    t.join(120)
    assert not t.is_alive(), "the time limit did not stop the frame"
    return box[0]


def test_a_fired_limit_ends_the_frame_out_of_gas(wat):
    code = wat(SPIN)

    def run():
        with ewasm.time_limit(0.2) as limit:
            result = _execute(code)
        return result, limit.expired

    result, expired = _in_thread(run)
    assert expired
    assert result.status == StatusCode.OUT_OF_GAS
    assert result.gas_left == 0


def test_no_frame_starts_under_a_fired_limit_and_all_run_after_it(wat):
    code = wat(SPIN)
    short = 1_000  # ends by itself: ~500 rounds

    def run():
        with ewasm.time_limit(0.05) as limit:
            first = _execute(code)
            second = _execute(code, short)
        after = _execute(code, short)
        return first, second, after, limit.expired

    first, second, after, expired = _in_thread(run)
    assert expired and first.status == second.status == StatusCode.OUT_OF_GAS
    assert "time limit" in second.message
    assert after.status == StatusCode.SUCCESS and 0 < after.gas_left <= 10


def test_a_limit_that_does_not_fire_changes_nothing(wat):
    code = wat(SPIN)
    plain = _execute(code, 5_000)
    with ewasm.time_limit(300) as limit:
        limited = _execute(code, 5_000)
    assert not limit.expired
    assert limited == plain and plain.status == StatusCode.SUCCESS


def test_other_threads_are_not_limited(wat):
    code = wat(SPIN)
    started, results = threading.Event(), []

    def other():
        started.wait()
        results.append(_execute(code, 20_000))

    t = threading.Thread(target=other)
    t.start()

    def run():
        with ewasm.time_limit(0.05) as limit:
            started.set()
            return _execute(code), limit.expired

    result, expired = _in_thread(run)
    t.join(120)
    assert expired and result.status == StatusCode.OUT_OF_GAS
    assert results[0].status == StatusCode.SUCCESS


@pytest.mark.parametrize("seconds", [0, -1, float("nan")])
def test_a_limit_must_be_positive(seconds):
    with pytest.raises(ewasm.InvalidArgument), ewasm.time_limit(seconds):
        pass

