"""encode_module is the inverse of decode_module on every valid module we have."""

from __future__ import annotations

import json

import pytest

import ewasm
from ewasm.encoder import encode_module, sleb, uleb
from ewasm.reader import ByteReader


def _shape(m: ewasm.Module):
    """Everything the module means, without byte offsets."""
    def items(seg):
        return [[(op, imm) for op, imm, _ in item if op != 0x0B] for item in seg.items]

    return (
        m.types,
        [(i.module, i.name, i.kind, i.desc) for i in m.imports],
        m.func_types, m.tables, m.memories,
        [(g.type, [(op, imm) for op, imm, _ in g.init]) for g in m.globals],
        [(e.name, e.kind, e.index) for e in m.exports],
        m.start,
        [(s.mode, s.elem_type, s.table_index, items(s),
          s.offset_expr and [(op, imm) for op, imm, _ in s.offset_expr]) for s in m.elems],
        m.data_count,
        [(f.type_index, f.locals, [(op, imm) for op, imm, _ in f.body]) for f in m.codes],
        [(d.mode, d.data, d.memory_index,
          d.offset_expr and [(op, imm) for op, imm, _ in d.offset_expr]) for d in m.datas],
        [(c.name, c.data) for c in m.customs],
    )


def test_leb_encoders_round_trip():
    for n in (0, 1, 63, 64, 127, 128, 2**31 - 1, 2**32 - 1):
        assert ByteReader(uleb(n)).u32() == n
    for n in (0, -1, 63, -64, 64, -65, 2**31 - 1, -(2**31)):
        assert ByteReader(sleb(n)).sleb(32) == n


@pytest.fixture(scope="module")
def corpus(shared):
    from tests.spec.wast import convert, features_for, spec_files, wast2json_tool

    if wast2json_tool() is None:
        pytest.skip("wast2json not installed")
    shared("fixtures", "wasm-spec")
    out = []
    for path in spec_files():
        wasm_dir, commands = convert(path)
        for cmd in commands:
            if cmd["type"] == "module" and cmd.get("filename", "").endswith(".wasm"):
                out.append(((wasm_dir / cmd["filename"]).read_bytes(), features_for(path)))
    assert len(out) > 500
    return out


def test_round_trip_over_the_spec_modules(corpus):
    for wasm, features in corpus:
        m1 = ewasm.decode_module(wasm, features)
        encoded = encode_module(m1)
        m2 = ewasm.decode_module(encoded, features)
        assert _shape(m2) == _shape(m1)
        assert encode_module(m2) == encoded  # canonical: a fixed point
        ewasm.validate(encoded, features)


def test_round_trip_keeps_behaviour(shared):
    kdir = shared("fixtures", "bench", "kernels")
    expected = json.loads((kdir / "expected.json").read_text())
    wasm = encode_module(ewasm.decode_module((kdir / "kernels.wasm").read_bytes()))
    inst = ewasm.instantiate(wasm)
    inst.invoke("fill", 4096, 12345)
    assert inst.invoke("sha256", 4096)[0] & 0xFFFFFFFF == expected["sha256"]["4096"]["return_u32"]
    assert inst.invoke("fib", 20) == [expected["fib"]["20"]]
