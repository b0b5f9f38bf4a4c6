"""decode_module: Wasm binary -> Module. Every malformed input raises DecodeError with the
byte offset where the fault was found.

Covers the Wasm 1.0 binary format plus the sign-extension, multi-value, mutable-global,
non-trapping float-to-int and bulk-memory proposals. Custom sections are kept (name and
bytes) and otherwise ignored.
"""

from __future__ import annotations

from .errors import DecodeError, DecodeLimitError
from .features import Features
from .limits import DEFAULT_LIMITS, ImplementationLimits
from .module import (
    DATA_ACTIVE,
    DATA_PASSIVE,
    ELEM_ACTIVE,
    ELEM_DECLARATIVE,
    ELEM_PASSIVE,
    EXTERN_FUNC,
    EXTERN_GLOBAL,
    EXTERN_MEMORY,
    EXTERN_TABLE,
    CustomSection,
    DataSegment,
    ElemSegment,
    Export,
    Function,
    Global,
    Import,
    Instr,
    Module,
)
from .opcodes import OPS, REF_FUNC, REF_NULL, Imm
from .reader import ByteReader
from .types import (
    EXTERNREF,
    F32,
    F64,
    FUNCREF,
    I32,
    I64,
    FuncType,
    GlobalType,
    Limits,
    MemoryType,
    TableType,
)

MAGIC = b"\x00asm"
VERSION = b"\x01\x00\x00\x00"

SEC_CUSTOM, SEC_TYPE, SEC_IMPORT, SEC_FUNCTION, SEC_TABLE, SEC_MEMORY = 0, 1, 2, 3, 4, 5
SEC_GLOBAL, SEC_EXPORT, SEC_START, SEC_ELEMENT, SEC_CODE, SEC_DATA, SEC_DATACOUNT = (
    6, 7, 8, 9, 10, 11, 12,
)
# Position of each known section in the required order.
_SECTION_ORDER = {
    SEC_TYPE: 1, SEC_IMPORT: 2, SEC_FUNCTION: 3, SEC_TABLE: 4, SEC_MEMORY: 5, SEC_GLOBAL: 6,
    SEC_EXPORT: 7, SEC_START: 8, SEC_ELEMENT: 9, SEC_DATACOUNT: 10, SEC_CODE: 11, SEC_DATA: 12,
}

_NUM_TYPES = frozenset({I32, I64, F32, F64})

# Signed LEB128 first bytes that are one-byte valtypes, for blocktype decoding.
_BLOCK_VALTYPES = {-1: I32, -2: I64, -3: F32, -4: F64}
BLOCK_EMPTY = -64


def decode_module(
    data: bytes, features: Features | None = None, *, skip_bodies: bool = False,
    limits: ImplementationLimits | None = None,
) -> Module:
    """Decode a Wasm binary. Raises DecodeError for anything malformed, DecodeLimitError
    (a DecodeError) for a count or size over `limits` (default DEFAULT_LIMITS).

    With skip_bodies, function bodies are only delimited, not decoded: enough to
    instantiate code that was compiled (and so validated) before. The limits on what
    is inside a body (locals, instructions, br_table targets) are then not checked."""
    return _Decoder(bytes(data), features or Features.all(), skip_bodies,
                    limits or DEFAULT_LIMITS).decode()


class _Decoder:
    def __init__(self, data: bytes, features: Features, skip_bodies: bool = False,
                 limits: ImplementationLimits = DEFAULT_LIMITS) -> None:
        self.skip_bodies = skip_bodies
        self.data = data
        self.features = features
        self.limits = limits
        self.module = Module()
        self.func_count: int | None = None
        self.uses_data_count_ops = False
        # Running totals for the module-wide limits.
        self.elem_entries = 0
        self.data_bytes = 0
        self.locals_total = 0
        self.instructions = 0
        self.func_index: int | None = None  # function being decoded, for limit errors

    def fail(self, message: str, offset: int) -> DecodeError:
        return DecodeError(message, offset=offset)

    def over(self, limit: str, offset: int, func_index: int | None = None) -> DecodeLimitError:
        """The error for a count or size over `limit` (a field of ImplementationLimits)."""
        return DecodeLimitError(self.limits.message(limit), limit=limit, offset=offset,
                                func_index=func_index)

    def decode(self) -> Module:
        data = self.data
        if len(data) < 4 or data[:4] != MAGIC:
            raise self.fail("magic header not detected", 0)
        if len(data) < 8:
            raise self.fail("unexpected end (missing version)", 4)
        if data[4:8] != VERSION:
            raise self.fail("unknown binary version", 4)
        if len(data) > self.limits.module_size:
            raise self.over("module_size", self.limits.module_size)
        r = ByteReader(data, 8)
        last_order = 0
        seen_code = False
        while not r.eof():
            sec_start = r.pos
            sec_id = r.byte()
            size = r.u32()
            body_start = r.pos
            if size > r.end - body_start:
                raise self.fail("section size out of bounds (unexpected end)", sec_start)
            sr = ByteReader(data, body_start, body_start + size)
            if sec_id == SEC_CUSTOM:
                name = sr.name()
                self.module.customs.append(CustomSection(name, data[sr.pos : sr.end], sec_start))
                r.pos = sr.end
                continue
            order = _SECTION_ORDER.get(sec_id)
            if order is None:
                raise self.fail(f"malformed section id {sec_id}", sec_start)
            if sec_id == SEC_DATACOUNT and not self.features.bulk_memory:
                raise self.fail(f"malformed section id {sec_id}", sec_start)
            if order <= last_order:
                raise self.fail("unexpected content after last section (section out of order)",
                                sec_start)
            last_order = order
            handler = getattr(self, f"_sec_{sec_id}")
            handler(sr)
            if sr.pos != sr.end:
                raise self.fail("section size mismatch", sr.pos)
            if sec_id == SEC_CODE:
                seen_code = True
            r.pos = sr.end
        m = self.module
        n_funcs = len(m.func_types)
        if not seen_code and n_funcs:
            raise self.fail("function and code section have inconsistent lengths", len(data))
        if m.data_count is not None and m.data_count != len(m.datas):
            raise self.fail("data count and data section have inconsistent lengths", len(data))
        # With no data segments at all, the reference interpreter reports a data index as
        # unknown (invalid) rather than the section as missing (malformed).
        if self.uses_data_count_ops and m.data_count is None and m.datas:
            raise self.fail("data count section required", len(data))
        return m

    # --- sections ------------------------------------------------------------------
    def _vec_len(self, r: ByteReader, limit: str | None = None) -> int:
        start = r.pos
        n = r.u32()
        # Every element takes at least one byte: a longer count cannot be satisfied.
        if n > r.end - r.pos:
            raise self.fail("length out of bounds (unexpected end)", start)
        if limit is not None and n > getattr(self.limits, limit):
            raise self.over(limit, start, self.func_index)
        return n

    def _valtype(self, r: ByteReader) -> int:
        pos = r.pos
        t = r.byte()
        if t in _NUM_TYPES:
            return t
        # Without reference types, funcref is only a table element type.
        if t in (FUNCREF, EXTERNREF) and self.features.reference_types:
            return t
        raise self.fail(f"malformed value type 0x{t:02x}", pos)

    def _reftype(self, r: ByteReader) -> int:
        pos = r.pos
        t = r.byte()
        if t == FUNCREF or (t == EXTERNREF and self.features.reference_types):
            return t
        raise self.fail(f"malformed reference type 0x{t:02x}", pos)

    def _limits(self, r: ByteReader, bits: int = 32) -> Limits:
        pos = r.pos
        flag = r.byte()
        if flag == 0:
            return Limits(r.u32())
        if flag == 1:
            lo = r.u32()
            return Limits(lo, r.u32())
        raise self.fail(f"integer too large (malformed limits flags 0x{flag:02x})", pos)

    def _globaltype(self, r: ByteReader) -> GlobalType:
        t = self._valtype(r)
        pos = r.pos
        mut = r.byte()
        if mut not in (0, 1):
            raise self.fail("malformed mutability", pos)
        return GlobalType(t, bool(mut))

    def _sec_1(self, r: ByteReader) -> None:  # type
        for _ in range(self._vec_len(r, "types")):
            pos = r.pos
            form = r.byte()
            if form != 0x60:
                raise self.fail(f"malformed function type form 0x{form:02x}", pos)
            params = tuple(self._valtype(r) for _ in range(self._vec_len(r, "type_params")))
            rpos = r.pos
            results = tuple(self._valtype(r) for _ in range(self._vec_len(r, "type_results")))
            if len(results) > 1 and not self.features.multi_value:
                raise DecodeError("invalid result arity (multi-value disabled)", offset=rpos)
            self.module.types.append(FuncType(params, results))

    def _sec_2(self, r: ByteReader) -> None:  # import
        for _ in range(self._vec_len(r, "imports")):
            pos = r.pos
            mod = r.name()
            name = r.name()
            kpos = r.pos
            kind = r.byte()
            if kind == EXTERN_FUNC:
                desc = r.u32()
            elif kind == EXTERN_TABLE:
                desc = TableType(self._reftype(r), self._limits(r))
            elif kind == EXTERN_MEMORY:
                desc = MemoryType(self._limits(r))
            elif kind == EXTERN_GLOBAL:
                desc = self._globaltype(r)
            else:
                raise self.fail(f"malformed import kind {kind}", kpos)
            self.module.imports.append(Import(mod, name, kind, desc, pos))

    def _sec_3(self, r: ByteReader) -> None:  # function
        self.module.func_types = [r.u32() for _ in range(self._vec_len(r, "functions"))]

    def _sec_4(self, r: ByteReader) -> None:  # table
        for _ in range(self._vec_len(r)):
            self.module.tables.append(TableType(self._reftype(r), self._limits(r)))

    def _sec_5(self, r: ByteReader) -> None:  # memory
        for _ in range(self._vec_len(r)):
            self.module.memories.append(MemoryType(self._limits(r)))

    def _sec_6(self, r: ByteReader) -> None:  # global
        for _ in range(self._vec_len(r, "globals")):
            pos = r.pos
            gt = self._globaltype(r)
            self.module.globals.append(Global(gt, self._const_expr(r), pos))

    def _sec_7(self, r: ByteReader) -> None:  # export
        for _ in range(self._vec_len(r, "exports")):
            pos = r.pos
            name = r.name()
            kpos = r.pos
            kind = r.byte()
            if kind > EXTERN_GLOBAL:
                raise self.fail(f"malformed export kind {kind}", kpos)
            self.module.exports.append(Export(name, kind, r.u32(), pos))

    def _sec_8(self, r: ByteReader) -> None:  # start
        self.module.start = r.u32()

    def _elem_kind(self, r: ByteReader) -> int:
        pos = r.pos
        if r.byte() != 0x00:
            raise self.fail("malformed element kind", pos)
        return FUNCREF

    def _elem_count(self, r: ByteReader) -> int:
        start = r.pos
        n = self._vec_len(r)
        self.elem_entries += n
        if self.elem_entries > self.limits.elem_entries:
            raise self.over("elem_entries", start)
        return n

    def _func_index_items(self, r: ByteReader) -> list[list[Instr]]:
        items = []
        for _ in range(self._elem_count(r)):
            pos = r.pos
            items.append([(REF_FUNC, r.u32(), pos)])
        return items

    def _expr_items(self, r: ByteReader) -> list[list[Instr]]:
        return [self._const_expr(r) for _ in range(self._elem_count(r))]

    def _sec_9(self, r: ByteReader) -> None:  # element
        for _ in range(self._vec_len(r, "elem_segments")):
            pos = r.pos
            flags = r.u32()
            if flags != 0 and not self.features.bulk_memory:
                raise self.fail(f"malformed elements segment kind {flags}", pos)
            if flags > 7:
                raise self.fail(f"malformed elements segment kind {flags}", pos)
            table = 0
            offset_expr = None
            if flags & 1:
                mode = ELEM_DECLARATIVE if flags & 2 else ELEM_PASSIVE
            else:
                mode = ELEM_ACTIVE
                if flags & 2:
                    table = r.u32()
                offset_expr = self._const_expr(r)
            uses_exprs = bool(flags & 4)
            if flags in (0, 4):
                etype = FUNCREF
            elif uses_exprs:
                etype = self._reftype(r)
            else:
                etype = self._elem_kind(r)
            items = self._expr_items(r) if uses_exprs else self._func_index_items(r)
            self.module.elems.append(ElemSegment(mode, etype, items, table, offset_expr, pos))

    def _sec_12(self, r: ByteReader) -> None:  # data count
        pos = r.pos
        self.module.data_count = r.u32()
        # It must equal the data section's count, which is held to the same limit.
        if self.module.data_count > self.limits.data_segments:
            raise self.over("data_segments", pos)

    def _sec_10(self, r: ByteReader) -> None:  # code
        n = self._vec_len(r)
        m = self.module
        if n != len(m.func_types):
            raise self.fail("function and code section have inconsistent lengths", r.pos)
        codes = m.codes
        limits = self.limits
        nimp = m.num_imported_funcs
        for i in range(n):
            size_pos = r.pos
            size = r.u32()
            start = r.pos
            if size > r.end - start:
                raise self.fail("unexpected end (function body out of bounds)", size_pos)
            index = nimp + i
            if size > limits.function_size:
                raise self.over("function_size", size_pos, index)
            fr = ByteReader(self.data, start, start + size)
            fn = Function(m.func_types[i], offset=start)
            if self.skip_bodies:
                codes.append(fn)
                r.pos = fr.end
                continue
            self.func_index = index
            ti = fn.type_index
            # An unknown type index is the validator's to report; count no parameters.
            nparams = len(m.types[ti].params) if ti < len(m.types) else 0
            if nparams > limits.function_locals:
                raise self.over("function_locals", size_pos, index)
            self.locals_total += nparams
            if self.locals_total > limits.module_locals:
                raise self.over("module_locals", size_pos, index)
            total = 0
            for _ in range(self._vec_len(fr)):
                cpos = fr.pos
                count = fr.u32()
                total += count
                if total > 0xFFFFFFFF:
                    raise self.fail("too many locals", cpos)
                if nparams + total > limits.function_locals:
                    raise self.over("function_locals", cpos, index)
                self.locals_total += count
                if self.locals_total > limits.module_locals:
                    raise self.over("module_locals", cpos, index)
                t = self._valtype(fr)
                fn.locals.extend([t] * count)
            body = fn.body = self._instructions(fr, func=True)
            if fr.pos != fr.end:
                raise self.fail("section size mismatch (bytes after function end)", fr.pos)
            if len(body) > limits.function_instructions:
                raise self.over("function_instructions", body[limits.function_instructions][2],
                                index)
            before = self.instructions
            self.instructions += len(body)
            if self.instructions > limits.module_instructions:
                raise self.over("module_instructions",
                                body[limits.module_instructions - before][2], index)
            codes.append(fn)
            r.pos = fr.end
        self.func_index = None

    def _sec_11(self, r: ByteReader) -> None:  # data
        n = self._vec_len(r, "data_segments")
        for _ in range(n):
            pos = r.pos
            flags = r.u32()
            if flags == 0:
                seg = DataSegment(DATA_ACTIVE, b"", 0, self._const_expr(r), pos)
            elif flags == 1 and self.features.bulk_memory:
                seg = DataSegment(DATA_PASSIVE, b"", 0, None, pos)
            elif flags == 2 and self.features.bulk_memory:
                mem = r.u32()
                seg = DataSegment(DATA_ACTIVE, b"", mem, self._const_expr(r), pos)
            else:
                raise self.fail(f"malformed data segment kind {flags}", pos)
            seg.data = r.bytes(r.u32())
            self.data_bytes += len(seg.data)
            if self.data_bytes > self.limits.data_bytes:
                raise self.over("data_bytes", pos)
            self.module.datas.append(seg)

    # --- instructions ----------------------------------------------------------------
    def _const_expr(self, r: ByteReader) -> list[Instr]:
        return self._instructions(r, func=False)

    def _instructions(self, r: ByteReader, func: bool) -> list[Instr]:
        """Decode instructions up to and including the `end` that closes the sequence."""
        data = self.data
        end = r.end
        ops = OPS
        features = self.features
        out: list[Instr] = []
        append = out.append
        # Block nesting: each entry is the opening opcode; `else` is legal only in an `if`.
        blocks: list[int] = []
        pos = r.pos
        while True:
            if pos >= end:
                raise self.fail("unexpected end of section or function (END opcode expected)",
                                pos)
            op_pos = pos
            op = data[pos]
            pos += 1
            if op == 0xFC:
                r.pos = pos
                sub = r.u32()
                pos = r.pos
                op = 0xFC00 + sub if sub < 0x100 else -1
            info = ops.get(op)
            if info is None:
                if op in (REF_NULL, REF_FUNC) and not func:
                    # Reference constants appear in element-segment expressions.
                    r.pos = pos
                    if op == REF_NULL:
                        imm = self._reftype(r)
                    else:
                        imm = r.u32()
                    pos = r.pos
                    append((op, imm, op_pos))
                    continue
                raise self.fail(f"illegal opcode 0x{data[op_pos]:02x}", op_pos)
            feat = info.feature
            if feat and not features.enables(feat):
                raise self.fail(f"illegal opcode {info.name} (feature disabled)", op_pos)
            kind = info.imm
            if kind is Imm.NONE:
                if op == 0x0B:  # end
                    append((op, None, op_pos))
                    if not blocks:
                        r.pos = pos
                        return out
                    blocks.pop()
                    continue
                if op == 0x05:  # else
                    if not blocks or blocks[-1] != 0x04:
                        raise self.fail("malformed else (not inside an if)", op_pos)
                    blocks[-1] = 0x05
                append((op, None, op_pos))
                continue
            # Fast path for one-byte unsigned immediates (locals, globals, labels, calls).
            if kind in (Imm.LOCAL, Imm.GLOBAL, Imm.LABEL, Imm.FUNC) and pos < end:
                b = data[pos]
                if b < 0x80:
                    append((op, b, op_pos))
                    pos += 1
                    continue
            r.pos = pos
            if kind is Imm.LOCAL or kind is Imm.GLOBAL or kind is Imm.LABEL or kind is Imm.FUNC:
                imm = r.u32()
            elif kind is Imm.I32:
                imm = r.sleb(32)
            elif kind is Imm.I64:
                imm = r.sleb(64)
            elif kind is Imm.MEMARG:
                align = r.u32()
                imm = (align, r.u32())
            elif kind is Imm.BLOCK:
                imm = self._blocktype(r)
                blocks.append(op)
            elif kind is Imm.BR_TABLE:
                n = self._vec_len(r, "br_table_targets")
                labels = tuple(r.u32() for _ in range(n))
                imm = (labels, r.u32())
            elif kind is Imm.CALL_INDIRECT:
                tidx = r.u32()
                zpos = r.pos
                if r.byte() != 0:
                    raise self.fail("zero flag expected (call_indirect table)", zpos)
                imm = (tidx, 0)
            elif kind is Imm.MEMORY:
                zpos = r.pos
                if r.byte() != 0:
                    raise self.fail("zero flag expected (memory index)", zpos)
                imm = 0
            elif kind is Imm.F32:
                imm = int.from_bytes(r.bytes(4), "little")
            elif kind is Imm.F64:
                imm = int.from_bytes(r.bytes(8), "little")
            elif kind is Imm.MEMORY_INIT:
                seg = r.u32()
                zpos = r.pos
                if r.byte() != 0:
                    raise self.fail("zero flag expected (memory index)", zpos)
                imm = seg
                self.uses_data_count_ops = True
            elif kind is Imm.DATA:
                imm = r.u32()
                self.uses_data_count_ops = True
            elif kind is Imm.MEMORY_COPY:
                for _ in range(2):
                    zpos = r.pos
                    if r.byte() != 0:
                        raise self.fail("zero flag expected (memory index)", zpos)
                imm = (0, 0)
            elif kind is Imm.TABLE_INIT:
                seg = r.u32()
                imm = (seg, r.u32())
            elif kind is Imm.ELEM:
                imm = r.u32()
            elif kind is Imm.TABLE_COPY:
                dst = r.u32()
                imm = (dst, r.u32())
            else:  # pragma: no cover - the table and this switch are kept in step
                raise AssertionError(kind)
            if r.pos > end:
                raise self.fail("unexpected end", end)
            pos = r.pos
            append((op, imm, op_pos))

    def _blocktype(self, r: ByteReader) -> int:
        """Block type as a raw s33: -64 empty, -1..-4 a value type, >= 0 a type index."""
        pos = r.pos
        if pos >= r.end:
            raise self.fail("unexpected end (block type)", pos)
        b = r.data[pos]
        if b == 0x40:
            r.pos += 1
            return BLOCK_EMPTY
        if 0x40 < b < 0x80:  # a one-byte negative s33: must be a value type
            if b in _NUM_TYPES or (b in (FUNCREF, EXTERNREF) and self.features.reference_types):
                r.pos += 1
                return b - 0x80
            raise self.fail(f"malformed value type 0x{b:02x} in block type", pos)
        v = r.sleb(33)
        if v < 0:
            raise self.fail("malformed block type", pos)
        if not self.features.multi_value:
            raise self.fail("malformed block type (type index needs multi-value)", pos)
        return v


def block_signature(module: Module, imm: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(params, results) of a block from its raw block-type immediate."""
    if imm == BLOCK_EMPTY:
        return (), ()
    if imm < 0:
        return (), (imm + 0x80,)
    ft = module.types[imm]
    return ft.params, ft.results
