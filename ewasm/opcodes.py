"""One table of every instruction the engine knows: code, name, immediate kind,
the feature that introduces it, and (for the simple ones) its stack effect.

Single-byte opcodes keep their byte value; 0xFC-prefixed ones are 0xFC00 + sub-opcode.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .types import F32, F64, I32, I64


class Imm(enum.Enum):
    NONE = "none"
    BLOCK = "blocktype"
    LABEL = "label"
    BR_TABLE = "br_table"
    FUNC = "funcidx"
    CALL_INDIRECT = "call_indirect"
    LOCAL = "localidx"
    GLOBAL = "globalidx"
    MEMARG = "memarg"
    MEMORY = "memidx"  # memory.size / memory.grow reserved zero byte
    I32 = "i32"
    I64 = "i64"
    F32 = "f32"
    F64 = "f64"
    MEMORY_INIT = "memory.init"  # dataidx, zero byte
    DATA = "dataidx"
    MEMORY_COPY = "memory.copy"  # zero byte, zero byte
    TABLE_INIT = "table.init"  # elemidx, tableidx
    ELEM = "elemidx"
    TABLE_COPY = "table.copy"  # tableidx, tableidx


class Feature(enum.Flag):
    NONE = 0
    SIGN_EXTENSION = enum.auto()
    MULTI_VALUE = enum.auto()
    MUTABLE_GLOBAL = enum.auto()
    SATURATING_FLOAT_TO_INT = enum.auto()
    BULK_MEMORY = enum.auto()


@dataclass(frozen=True, slots=True)
class OpInfo:
    code: int
    name: str
    imm: Imm
    # (params, results) for instructions whose typing is fixed; None for the rest.
    sig: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    feature: Feature = Feature.NONE
    uses_float: bool = False
    # For loads and stores: natural alignment as a power of two, and access width.
    align: int = 0


OPS: dict[int, OpInfo] = {}


def _op(code: int, name: str, imm: Imm = Imm.NONE, sig=None, feature=Feature.NONE, align=0):
    uses_float = name.startswith(("f32", "f64")) or ".convert_" in name or (
        "trunc" in name and name[:3] in ("i32", "i64")
    ) or "reinterpret" in name or name in ("f32.const", "f64.const")
    OPS[code] = OpInfo(code, name, imm, sig, feature, uses_float, align)


_i, _l, _f, _d = I32, I64, F32, F64

# Control and parametric instructions (typed by the validator itself).
_op(0x00, "unreachable")
_op(0x01, "nop")
_op(0x02, "block", Imm.BLOCK)
_op(0x03, "loop", Imm.BLOCK)
_op(0x04, "if", Imm.BLOCK)
_op(0x05, "else")
_op(0x0B, "end")
_op(0x0C, "br", Imm.LABEL)
_op(0x0D, "br_if", Imm.LABEL)
_op(0x0E, "br_table", Imm.BR_TABLE)
_op(0x0F, "return")
_op(0x10, "call", Imm.FUNC)
_op(0x11, "call_indirect", Imm.CALL_INDIRECT)
_op(0x1A, "drop")
_op(0x1B, "select")
_op(0x20, "local.get", Imm.LOCAL)
_op(0x21, "local.set", Imm.LOCAL)
_op(0x22, "local.tee", Imm.LOCAL)
_op(0x23, "global.get", Imm.GLOBAL)
_op(0x24, "global.set", Imm.GLOBAL)

# Memory instructions: (code, name, value type, natural alignment log2).
_LOADS = [
    (0x28, "i32.load", _i, 2), (0x29, "i64.load", _l, 3), (0x2A, "f32.load", _f, 2),
    (0x2B, "f64.load", _d, 3), (0x2C, "i32.load8_s", _i, 0), (0x2D, "i32.load8_u", _i, 0),
    (0x2E, "i32.load16_s", _i, 1), (0x2F, "i32.load16_u", _i, 1), (0x30, "i64.load8_s", _l, 0),
    (0x31, "i64.load8_u", _l, 0), (0x32, "i64.load16_s", _l, 1), (0x33, "i64.load16_u", _l, 1),
    (0x34, "i64.load32_s", _l, 2), (0x35, "i64.load32_u", _l, 2),
]
_STORES = [
    (0x36, "i32.store", _i, 2), (0x37, "i64.store", _l, 3), (0x38, "f32.store", _f, 2),
    (0x39, "f64.store", _d, 3), (0x3A, "i32.store8", _i, 0), (0x3B, "i32.store16", _i, 1),
    (0x3C, "i64.store8", _l, 0), (0x3D, "i64.store16", _l, 1), (0x3E, "i64.store32", _l, 2),
]
for _c, _n, _t, _a in _LOADS:
    _op(_c, _n, Imm.MEMARG, ((_i,), (_t,)), align=_a)
for _c, _n, _t, _a in _STORES:
    _op(_c, _n, Imm.MEMARG, ((_i, _t), ()), align=_a)
_op(0x3F, "memory.size", Imm.MEMORY, ((), (_i,)))
_op(0x40, "memory.grow", Imm.MEMORY, ((_i,), (_i,)))

_op(0x41, "i32.const", Imm.I32, ((), (_i,)))
_op(0x42, "i64.const", Imm.I64, ((), (_l,)))
_op(0x43, "f32.const", Imm.F32, ((), (_f,)))
_op(0x44, "f64.const", Imm.F64, ((), (_d,)))


def _group(start: int, prefix: str, names: str, sig) -> None:
    for k, n in enumerate(names.split()):
        _op(start + k, f"{prefix}.{n}", Imm.NONE, sig)


_group(0x45, "i32", "eqz", ((_i,), (_i,)))
_group(0x46, "i32", "eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u", ((_i, _i), (_i,)))
_group(0x50, "i64", "eqz", ((_l,), (_i,)))
_group(0x51, "i64", "eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u", ((_l, _l), (_i,)))
_group(0x5B, "f32", "eq ne lt gt le ge", ((_f, _f), (_i,)))
_group(0x61, "f64", "eq ne lt gt le ge", ((_d, _d), (_i,)))
_group(0x67, "i32", "clz ctz popcnt", ((_i,), (_i,)))
_group(0x6A, "i32", "add sub mul div_s div_u rem_s rem_u and or xor shl shr_s shr_u rotl rotr",
       ((_i, _i), (_i,)))
_group(0x79, "i64", "clz ctz popcnt", ((_l,), (_l,)))
_group(0x7C, "i64", "add sub mul div_s div_u rem_s rem_u and or xor shl shr_s shr_u rotl rotr",
       ((_l, _l), (_l,)))
_group(0x8B, "f32", "abs neg ceil floor trunc nearest sqrt", ((_f,), (_f,)))
_group(0x92, "f32", "add sub mul div min max copysign", ((_f, _f), (_f,)))
_group(0x99, "f64", "abs neg ceil floor trunc nearest sqrt", ((_d,), (_d,)))
_group(0xA0, "f64", "add sub mul div min max copysign", ((_d, _d), (_d,)))

_CONVERSIONS = [
    (0xA7, "i32.wrap_i64", _l, _i), (0xA8, "i32.trunc_f32_s", _f, _i),
    (0xA9, "i32.trunc_f32_u", _f, _i), (0xAA, "i32.trunc_f64_s", _d, _i),
    (0xAB, "i32.trunc_f64_u", _d, _i), (0xAC, "i64.extend_i32_s", _i, _l),
    (0xAD, "i64.extend_i32_u", _i, _l), (0xAE, "i64.trunc_f32_s", _f, _l),
    (0xAF, "i64.trunc_f32_u", _f, _l), (0xB0, "i64.trunc_f64_s", _d, _l),
    (0xB1, "i64.trunc_f64_u", _d, _l), (0xB2, "f32.convert_i32_s", _i, _f),
    (0xB3, "f32.convert_i32_u", _i, _f), (0xB4, "f32.convert_i64_s", _l, _f),
    (0xB5, "f32.convert_i64_u", _l, _f), (0xB6, "f32.demote_f64", _d, _f),
    (0xB7, "f64.convert_i32_s", _i, _d), (0xB8, "f64.convert_i32_u", _i, _d),
    (0xB9, "f64.convert_i64_s", _l, _d), (0xBA, "f64.convert_i64_u", _l, _d),
    (0xBB, "f64.promote_f32", _f, _d), (0xBC, "i32.reinterpret_f32", _f, _i),
    (0xBD, "i64.reinterpret_f64", _d, _l), (0xBE, "f32.reinterpret_i32", _i, _f),
    (0xBF, "f64.reinterpret_i64", _l, _d),
]
for _c, _n, _a, _r in _CONVERSIONS:
    _op(_c, _n, Imm.NONE, ((_a,), (_r,)))

_SE = Feature.SIGN_EXTENSION
_op(0xC0, "i32.extend8_s", Imm.NONE, ((_i,), (_i,)), _SE)
_op(0xC1, "i32.extend16_s", Imm.NONE, ((_i,), (_i,)), _SE)
_op(0xC2, "i64.extend8_s", Imm.NONE, ((_l,), (_l,)), _SE)
_op(0xC3, "i64.extend16_s", Imm.NONE, ((_l,), (_l,)), _SE)
_op(0xC4, "i64.extend32_s", Imm.NONE, ((_l,), (_l,)), _SE)

_SAT = Feature.SATURATING_FLOAT_TO_INT
_SATS = [
    (0, "i32.trunc_sat_f32_s", _f, _i), (1, "i32.trunc_sat_f32_u", _f, _i),
    (2, "i32.trunc_sat_f64_s", _d, _i), (3, "i32.trunc_sat_f64_u", _d, _i),
    (4, "i64.trunc_sat_f32_s", _f, _l), (5, "i64.trunc_sat_f32_u", _f, _l),
    (6, "i64.trunc_sat_f64_s", _d, _l), (7, "i64.trunc_sat_f64_u", _d, _l),
]
for _c, _n, _a, _r in _SATS:
    _op(0xFC00 + _c, _n, Imm.NONE, ((_a,), (_r,)), _SAT)

_BM = Feature.BULK_MEMORY
_op(0xFC08, "memory.init", Imm.MEMORY_INIT, ((_i, _i, _i), ()), _BM)
_op(0xFC09, "data.drop", Imm.DATA, ((), ()), _BM)
_op(0xFC0A, "memory.copy", Imm.MEMORY_COPY, ((_i, _i, _i), ()), _BM)
_op(0xFC0B, "memory.fill", Imm.MEMORY, ((_i, _i, _i), ()), _BM)
_op(0xFC0C, "table.init", Imm.TABLE_INIT, ((_i, _i, _i), ()), _BM)
_op(0xFC0D, "elem.drop", Imm.ELEM, ((), ()), _BM)
_op(0xFC0E, "table.copy", Imm.TABLE_COPY, ((_i, _i, _i), ()), _BM)

# Opcode constants used across the decoder, validator and compiler.
UNREACHABLE, NOP, BLOCK, LOOP, IF, ELSE, END = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x0B
BR, BR_IF, BR_TABLE, RETURN, CALL, CALL_INDIRECT = 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11
DROP, SELECT = 0x1A, 0x1B
LOCAL_GET, LOCAL_SET, LOCAL_TEE, GLOBAL_GET, GLOBAL_SET = 0x20, 0x21, 0x22, 0x23, 0x24
I32_CONST, I64_CONST, F32_CONST, F64_CONST = 0x41, 0x42, 0x43, 0x44
I32_NE, I32_LT_U, I32_ADD, I32_SUB = 0x47, 0x49, 0x6A, 0x6B
MEMORY_SIZE, MEMORY_GROW = 0x3F, 0x40
MEMORY_INIT, DATA_DROP, MEMORY_COPY, MEMORY_FILL = 0xFC08, 0xFC09, 0xFC0A, 0xFC0B
TABLE_INIT, ELEM_DROP, TABLE_COPY = 0xFC0C, 0xFC0D, 0xFC0E
REF_NULL, REF_FUNC = 0xD0, 0xD2

LOAD_OPS = frozenset(c for c, *_ in _LOADS)
STORE_OPS = frozenset(c for c, *_ in _STORES)


def op_name(code: int) -> str:
    info = OPS.get(code)
    if info is not None:
        return info.name
    return f"0xfc {code & 0xFF}" if code >= 0xFC00 else f"0x{code:02x}"
