"""ewasm.execute's checks of what its caller hands it."""

from __future__ import annotations

import pytest

import ewasm
from evmc_bridge import CallKind, Message, Revision, StatusCode
from evmc_bridge.mocked_host import MockedHost

TRIVIAL = "(module (memory 1) (export \"memory\" (memory 0)) (func (export \"main\")))"


@pytest.mark.parametrize("gas", [2**63, 2**64 - 1, 2**64 + 1000, -1])
def test_gas_outside_int64_is_refused_not_wrapped(wat, gas):
    # c_int64 would mask 2**64 + 1000 to 1000 gas: refused as a host error instead.
    msg = Message(kind=CallKind.CALL, gas=gas)
    result = ewasm.execute(MockedHost(), Revision.BYZANTIUM, msg, wat(TRIVIAL))
    assert result.status == StatusCode.INTERNAL_ERROR
    assert "int64" in result.message or "negative" in result.message


def test_gas_at_the_int64_limit_runs(wat):
    msg = Message(kind=CallKind.CALL, gas=2**63 - 1)
    result = ewasm.execute(MockedHost(), Revision.BYZANTIUM, msg, wat(TRIVIAL))
    assert result.status == StatusCode.SUCCESS and result.gas_left == 2**63 - 1


def _execute_module():
    import importlib

    return importlib.import_module("ewasm.execute")


def test_ephemeral_code_is_not_kept_nor_written(wat, tmp_path, monkeypatch):
    ex = _execute_module()
    monkeypatch.setenv("EWASM_CACHE_DIR", str(tmp_path / "cache"))
    ex.clear_cache()
    code = wat(TRIVIAL.replace('(func (export "main")', '(func (export "main") nop'))
    msg = Message(kind=CallKind.CALL, gas=1000)
    with ewasm.ephemeral_code():
        for _ in range(3):  # prepared once for the block, then reused within it
            assert ewasm.execute(MockedHost(), Revision.BYZANTIUM, msg, code).status == 0
        assert len(ex._ephemeral.stack[-1]) == 1
    assert not ex._cache  # not kept by the process
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and
              not p.name.startswith(".")]
    assert not any(p.suffix == ".obj" for p in cached)  # nor written to disk
    # Outside the block the same code is prepared as usual, and kept.
    assert ewasm.execute(MockedHost(), Revision.BYZANTIUM, msg, code).status == 0
    assert len(ex._cache) == 1
    assert any(p.suffix == ".obj" for p in (tmp_path / "cache").rglob("*"))


def test_the_process_cache_is_bounded_in_bytes(wat, monkeypatch):
    ex = _execute_module()
    ex.clear_cache()
    msg = Message(kind=CallKind.CALL, gas=1000)
    codes = [wat(TRIVIAL.replace('(func (export "main")',
                                 f'(func (export "main") i32.const {i} drop'))
             for i in range(6)]
    sizes = []
    for code in codes[:2]:
        ewasm.execute(MockedHost(), Revision.BYZANTIUM, msg, code)
        sizes.append(ex._cache_bytes)
    per_entry = sizes[1] - sizes[0]
    monkeypatch.setattr(ex, "CACHE_BYTES", int(per_entry * 3.5))
    for code in codes[2:]:
        ewasm.execute(MockedHost(), Revision.BYZANTIUM, msg, code)
    assert len(ex._cache) == 3 and ex._cache_bytes <= ex.CACHE_BYTES
    kept = [k[1] for k in ex._cache]
    assert kept == codes[3:]  # least recently used went first
    ex.clear_cache()
