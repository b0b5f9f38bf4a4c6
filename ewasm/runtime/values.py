"""Conversions between Python ints and the 64-bit slots values travel in."""

from __future__ import annotations

from ..types import F32, F64, I32, I64

_MASK = {I32: 0xFFFFFFFF, I64: 0xFFFFFFFFFFFFFFFF, F32: 0xFFFFFFFF, F64: 0xFFFFFFFFFFFFFFFF}


def to_carrier(value: int, valtype: int) -> int:
    """Any Python int (signed or unsigned) -> the unsigned bit pattern of the type."""
    if not isinstance(value, int):
        raise TypeError(f"expected an int, got {type(value).__name__}")
    return value & _MASK.get(valtype, 0xFFFFFFFFFFFFFFFF)


def from_carrier(bits: int, valtype: int) -> int:
    """Slot bits -> Python int: integers signed (as wasmtime-py), floats as raw bits."""
    if valtype == I32:
        bits &= 0xFFFFFFFF
        return bits - (1 << 32) if bits & 0x80000000 else bits
    if valtype == I64:
        return bits - (1 << 64) if bits & (1 << 63) else bits
    if valtype == F32:
        return bits & 0xFFFFFFFF
    return bits
