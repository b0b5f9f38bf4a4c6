"""The binary decoder: LEB128 limits, section rules, offsets in errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ewasm
from ewasm.reader import ByteReader

HEADER = b"\0asm\1\0\0\0"


def uleb(n: int, pad_to: int = 0) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n or len(out) + 1 < pad_to else b)
        if not n and len(out) >= pad_to:
            return bytes(out)


def sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


@given(st.integers(0, 2**32 - 1), st.integers(0, 5))
def test_u32_round_trip_including_padded_forms(n, pad):
    data = uleb(n, pad)
    if len(data) > 5:
        with pytest.raises(ewasm.DecodeError):
            ByteReader(data).u32()
    else:
        r = ByteReader(data)
        assert r.u32() == n and r.pos == len(data)


@given(st.integers(-(2**63), 2**63 - 1))
def test_s64_round_trip(n):
    r = ByteReader(sleb(n))
    assert r.sleb(64) == n


@given(st.integers(-(2**31), 2**31 - 1))
def test_s32_round_trip(n):
    assert ByteReader(sleb(n)).sleb(32) == n


@pytest.mark.parametrize("data", [
    b"\x80\x80\x80\x80\x10",  # u32 with a set unused bit in the fifth byte
    b"\x80\x80\x80\x80\x80\x00",  # six bytes
    b"\x80\x80",  # unterminated
])
def test_u32_rejects_too_long_or_too_large(data):
    with pytest.raises(ewasm.DecodeError) as e:
        ByteReader(data).u32()
    assert e.value.offset == 0


def test_s32_rejects_bad_sign_extension():
    with pytest.raises(ewasm.DecodeError, match="too large"):
        ByteReader(b"\xff\xff\xff\xff\x4f").sleb(32)
    assert ByteReader(b"\xff\xff\xff\xff\x7f").sleb(32) == -1


def test_header_errors_carry_offsets():
    with pytest.raises(ewasm.DecodeError, match="magic") as e:
        ewasm.decode_module(b"\0asn\1\0\0\0")
    assert e.value.offset == 0
    with pytest.raises(ewasm.DecodeError, match="version") as e:
        ewasm.decode_module(b"\0asm\2\0\0\0")
    assert e.value.offset == 4


def test_sections_out_of_order_and_size_mismatch():
    type_sec = b"\x01\x04\x01\x60\x00\x00"
    func_sec = b"\x03\x02\x01\x00"
    with pytest.raises(ewasm.DecodeError, match="order"):
        ewasm.decode_module(HEADER + func_sec + type_sec)
    with pytest.raises(ewasm.DecodeError, match="inconsistent"):
        ewasm.decode_module(HEADER + type_sec + func_sec)  # no code section
    with pytest.raises(ewasm.DecodeError) as e:
        ewasm.decode_module(HEADER + b"\x01\x05\x01\x60\x00\x00")  # size says 5, has 4
    assert e.value.offset is not None and e.value.offset >= 8


def test_custom_sections_are_kept_and_names_checked():
    custom = b"\x00\x06\x03abc\x01\x02"
    m = ewasm.decode_module(HEADER + custom)
    assert [(c.name, c.data) for c in m.customs] == [("abc", b"\x01\x02")]
    with pytest.raises(ewasm.DecodeError, match="UTF-8"):
        ewasm.decode_module(HEADER + b"\x00\x04\x02\xc0\x80\x00")


def test_illegal_opcode_offset(wat):
    wasm = bytearray(wat('(module (func (export "f") nop))'))
    pos = wasm.rindex(b"\x01\x0b")  # the nop before the final end
    wasm[pos] = 0xFF
    with pytest.raises(ewasm.DecodeError, match="illegal opcode") as e:
        ewasm.decode_module(bytes(wasm))
    assert e.value.offset == pos


def test_feature_gating(wat):
    wasm = wat('(module (func (param i32) (result i32) (i32.extend8_s (local.get 0))))')
    ewasm.decode_module(wasm)
    with pytest.raises(ewasm.DecodeError):
        ewasm.decode_module(wasm, ewasm.Features.mvp())
