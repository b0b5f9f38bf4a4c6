"""encode_module: Module -> Wasm binary, the inverse of decode_module.

Transforms that work module-to-module (the gas metering of gasmeter/) decode, edit the
Module and encode it again. The output is canonical: minimal LEB128, sections in the
standard order, custom sections after the known ones; for a given Module it is always
the same bytes.
"""

from __future__ import annotations

from .decoder import MAGIC, VERSION
from .module import (
    DATA_ACTIVE,
    ELEM_ACTIVE,
    ELEM_DECLARATIVE,
    EXTERN_FUNC,
    EXTERN_GLOBAL,
    EXTERN_MEMORY,
    EXTERN_TABLE,
    Instr,
    Module,
)
from .opcodes import OPS, REF_FUNC, REF_NULL, Imm
from .types import FUNCREF, Limits


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
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


def _name(s: str) -> bytes:
    raw = s.encode("utf-8")
    return uleb(len(raw)) + raw


def _vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def _limits(lim: Limits) -> bytes:
    if lim.max is None:
        return b"\x00" + uleb(lim.min)
    return b"\x01" + uleb(lim.min) + uleb(lim.max)


def encode_instructions(body: list[Instr]) -> bytes:
    """Instructions (as the decoder produces them) back to bytes."""
    out = bytearray()
    for op, imm, _ in body:
        if op == REF_NULL:
            out += bytes([op, imm])
            continue
        if op == REF_FUNC:
            out += bytes([op]) + uleb(imm)
            continue
        if op >= 0xFC00:
            out += b"\xfc" + uleb(op & 0xFF)
        else:
            out.append(op)
        kind = OPS[op].imm
        if kind is Imm.NONE:
            continue
        if kind in (Imm.LOCAL, Imm.GLOBAL, Imm.LABEL, Imm.FUNC, Imm.DATA, Imm.ELEM):
            out += uleb(imm)
        elif kind is Imm.I32 or kind is Imm.I64 or kind is Imm.BLOCK:
            out += sleb(imm)
        elif kind is Imm.MEMARG:
            out += uleb(imm[0]) + uleb(imm[1])
        elif kind is Imm.BR_TABLE:
            labels, default = imm
            out += _vec([uleb(x) for x in labels]) + uleb(default)
        elif kind is Imm.CALL_INDIRECT:
            out += uleb(imm[0]) + b"\x00"
        elif kind is Imm.MEMORY:
            out += b"\x00"
        elif kind is Imm.F32:
            out += imm.to_bytes(4, "little")
        elif kind is Imm.F64:
            out += imm.to_bytes(8, "little")
        elif kind is Imm.MEMORY_INIT:
            out += uleb(imm) + b"\x00"
        elif kind is Imm.MEMORY_COPY:
            out += b"\x00\x00"
        elif kind is Imm.TABLE_INIT or kind is Imm.TABLE_COPY:
            out += uleb(imm[0]) + uleb(imm[1])
        else:  # pragma: no cover - kept in step with opcodes.Imm
            raise AssertionError(kind)
    return bytes(out)


def _section(sec_id: int, payload: bytes) -> bytes:
    return bytes([sec_id]) + uleb(len(payload)) + payload


def _func_indices(items: list[list[Instr]]) -> list[int] | None:
    """The plain function indices if every item is a bare ref.func (legacy encoding)."""
    out = []
    for item in items:
        body = [i for i in item if i[0] != 0x0B]
        if len(body) != 1 or body[0][0] != REF_FUNC:
            return None
        out.append(body[0][1])
    return out


def _elem(seg) -> bytes:
    indices = _func_indices(seg.items) if seg.elem_type == FUNCREF else None
    exprs = None if indices is not None else [
        encode_instructions(item if item and item[-1][0] == 0x0B else item + [(0x0B, None, 0)])
        for item in seg.items
    ]
    if seg.mode == ELEM_ACTIVE:
        offset = encode_instructions(seg.offset_expr)
        if seg.table_index == 0 and indices is not None:
            return uleb(0) + offset + _vec([uleb(i) for i in indices])
        if seg.table_index == 0:
            return uleb(4) + offset + _vec(exprs)
        if indices is not None:
            return uleb(2) + uleb(seg.table_index) + offset + b"\x00" + _vec(
                [uleb(i) for i in indices])
        return uleb(6) + uleb(seg.table_index) + offset + bytes([seg.elem_type]) + _vec(exprs)
    flag = 3 if seg.mode == ELEM_DECLARATIVE else 1
    if indices is not None:
        return uleb(flag) + b"\x00" + _vec([uleb(i) for i in indices])
    return uleb(flag | 4) + bytes([seg.elem_type]) + _vec(exprs)


def encode_module(m: Module) -> bytes:
    out = bytearray(MAGIC + VERSION)
    if m.types:
        out += _section(1, _vec([b"\x60" + _vec([bytes([t]) for t in ft.params])
                                 + _vec([bytes([t]) for t in ft.results]) for ft in m.types]))
    if m.imports:
        items = []
        for imp in m.imports:
            head = _name(imp.module) + _name(imp.name) + bytes([imp.kind])
            if imp.kind == EXTERN_FUNC:
                items.append(head + uleb(imp.desc))
            elif imp.kind == EXTERN_TABLE:
                items.append(head + bytes([imp.desc.elem_type]) + _limits(imp.desc.limits))
            elif imp.kind == EXTERN_MEMORY:
                items.append(head + _limits(imp.desc.limits))
            elif imp.kind == EXTERN_GLOBAL:
                items.append(head + bytes([imp.desc.valtype, int(imp.desc.mutable)]))
        out += _section(2, _vec(items))
    if m.func_types:
        out += _section(3, _vec([uleb(t) for t in m.func_types]))
    if m.tables:
        out += _section(4, _vec([bytes([t.elem_type]) + _limits(t.limits) for t in m.tables]))
    if m.memories:
        out += _section(5, _vec([_limits(mt.limits) for mt in m.memories]))
    if m.globals:
        out += _section(6, _vec([bytes([g.type.valtype, int(g.type.mutable)])
                                 + encode_instructions(g.init) for g in m.globals]))
    if m.exports:
        out += _section(7, _vec([_name(e.name) + bytes([e.kind]) + uleb(e.index)
                                 for e in m.exports]))
    if m.start is not None:
        out += _section(8, uleb(m.start))
    if m.elems:
        out += _section(9, _vec([_elem(seg) for seg in m.elems]))
    if m.data_count is not None:
        out += _section(12, uleb(m.data_count))
    if m.codes:
        bodies = []
        for fn in m.codes:
            groups: list[tuple[int, int]] = []
            for t in fn.locals:
                if groups and groups[-1][1] == t:
                    groups[-1] = (groups[-1][0] + 1, t)
                else:
                    groups.append((1, t))
            code = _vec([uleb(n) + bytes([t]) for n, t in groups]) + encode_instructions(fn.body)
            bodies.append(uleb(len(code)) + code)
        out += _section(10, _vec(bodies))
    if m.datas:
        items = []
        for seg in m.datas:
            if seg.mode == DATA_ACTIVE and seg.memory_index == 0:
                head = uleb(0) + encode_instructions(seg.offset_expr)
            elif seg.mode == DATA_ACTIVE:
                head = uleb(2) + uleb(seg.memory_index) + encode_instructions(seg.offset_expr)
            else:
                head = uleb(1)
            items.append(head + uleb(len(seg.data)) + seg.data)
        out += _section(11, _vec(items))
    for c in m.customs:
        out += _section(0, _name(c.name) + c.data)
    return bytes(out)
