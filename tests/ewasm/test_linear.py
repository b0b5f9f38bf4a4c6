"""Decode, validate, meter and lower are linear in the module: doubling an adversarial
module about doubles their work, whatever its shape.

Work is counted, not timed (timings on a shared machine are noise): the number of Python
line events each stage executes, which grows quadratically when a stage loops over its
input once per instruction (the br_table and nesting shapes that were quadratic in the
lowering), and the size of the IR it writes."""

from __future__ import annotations

import sys

import pytest

import ewasm
import gasmeter
from ewasm.compiler.lower import lower_baseline, lower_module
from ewasm.decoder import decode_module
from ewasm.validator import validate_module
from tests.ewasm import adversarial

# The families whose nesting stays under the nesting limit at these sizes are used as
# they are; the others are built from repeated groups (see adversarial.py).
SIZES_KB = (1.25, 2.5)  # nesting stays under GROUP_DEPTH: depth doubles too
# 2x input may cost up to this much more work (constant terms make it a bit above 2).
MAX_GROWTH = 2.4


def _count_lines(fn) -> int:
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def _work(wasm: bytes) -> dict[str, int]:
    module = decode_module(wasm)
    out = {"decode": _count_lines(lambda: decode_module(wasm)),
           "validate": _count_lines(lambda: validate_module(module))}
    metered: list = []
    out["meter"] = _count_lines(lambda: metered.append(gasmeter.meter_module(module)))
    texts: list = []
    out["lower"] = _count_lines(lambda: texts.extend(lower_module(metered[0], None, 1)))
    out["ir bytes"] = sum(map(len, texts))
    # The baseline tier's lowering: partitions, split functions, groups of small ones.
    base: list = []
    out["lower baseline"] = _count_lines(lambda: base.extend(lower_baseline(metered[0])))
    out["baseline ir bytes"] = sum(map(len, base))
    return out


@pytest.mark.parametrize("family", sorted(adversarial.FAMILIES))
def test_work_grows_linearly_with_the_module(family):
    small, big = (adversarial.sized(family, int(kb * 1024)) for kb in SIZES_KB)
    ewasm.validate(big)  # both are valid (under every implementation limit)
    size_ratio = len(big) / len(small)
    w_small, w_big = _work(small), _work(big)
    for stage, amount in w_small.items():
        growth = w_big[stage] / max(amount, 1) / size_ratio * 2
        assert growth <= MAX_GROWTH, (stage, w_small[stage], w_big[stage], size_ratio)
