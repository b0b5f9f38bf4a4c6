"""Wasm's static types: value types, function types, limits and the extern types."""

from __future__ import annotations

from dataclasses import dataclass

# Value types are kept as their binary codes: cheap to compare and to hash.
I32 = 0x7F
I64 = 0x7E
F32 = 0x7D
F64 = 0x7C
V128 = 0x7B
FUNCREF = 0x70
EXTERNREF = 0x6F

NUMERIC_TYPES = frozenset({I32, I64, F32, F64})
REFERENCE_TYPES = frozenset({FUNCREF, EXTERNREF})
FLOAT_TYPES = frozenset({F32, F64})

VALTYPE_NAMES = {
    I32: "i32",
    I64: "i64",
    F32: "f32",
    F64: "f64",
    V128: "v128",
    FUNCREF: "funcref",
    EXTERNREF: "externref",
}

# Bit width of the integer that carries each value type at run time
# (floats travel as their bit patterns).
CARRIER_BITS = {I32: 32, I64: 64, F32: 32, F64: 64}


def valtype_name(t: int) -> str:
    return VALTYPE_NAMES.get(t, f"<0x{t:02x}>")


@dataclass(frozen=True, slots=True)
class FuncType:
    params: tuple[int, ...]
    results: tuple[int, ...]

    def __str__(self) -> str:
        p = " ".join(valtype_name(t) for t in self.params)
        r = " ".join(valtype_name(t) for t in self.results)
        return f"[{p}] -> [{r}]"


@dataclass(frozen=True, slots=True)
class Limits:
    min: int
    max: int | None = None


@dataclass(frozen=True, slots=True)
class TableType:
    elem_type: int
    limits: Limits


@dataclass(frozen=True, slots=True)
class MemoryType:
    limits: Limits


@dataclass(frozen=True, slots=True)
class GlobalType:
    valtype: int
    mutable: bool


PAGE_SIZE = 65536
MAX_PAGES = 65536  # 4 GiB: the spec's limit for a 32-bit memory
