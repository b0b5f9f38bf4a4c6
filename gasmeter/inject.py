"""inject: module bytes -> metered module bytes (a pure function).

Segments (the design's "metered blocks", `ewasm/design` metering.md): a segment ends
after every instruction of the design's branching set (`loop`, `if`, `else`, `br`,
`br_if`, `br_table`, `return`, plus `unreachable`) and after an `end` that control can
reach other than by falling through: the end of an `if` and the end of a `block` that a
branch targets. The design cuts after every `end`; skipping the cut after an untargeted
`block` end (or a `loop` end, reached only by falling through) is wasm-instrument's
merging, and charges the same on every path. The cutting instruction belongs to the
segment it ends. Each segment with a non-zero cost starts with
`i64.const <cost + charge overhead>; call $useGas`, charged up front for the segment.
"""

from __future__ import annotations

from copy import copy
from dataclasses import replace

from ewasm.decoder import decode_module
from ewasm.encoder import encode_module
from ewasm.features import Features
from ewasm.module import EXTERN_FUNC, Function, Import, Instr, Module
from ewasm.opcodes import OPS, REF_FUNC
from ewasm.types import I64, FuncType
from ewasm.validator import validate_module

from .cost_table import DEFAULT, CostTable
from .errors import MeteringError

USE_GAS_TYPE = FuncType((I64,), ())
_MAX_COST = (1 << 63) - 1
_CUT_AFTER = frozenset({0x03, 0x04, 0x05, 0x0C, 0x0D, 0x0E, 0x0F, 0x00})


def inject(
    wasm: bytes,
    costs: CostTable = DEFAULT,
    *,
    namespace: str = "ethereum",
    name: str = "useGas",
    features: Features | None = None,
) -> bytes:
    """Add gas accounting; the output is valid, deterministic, and behaves like the input
    apart from the `useGas` calls."""
    features = features or Features.all()
    module = decode_module(wasm, features)
    validate_module(module, features)
    return encode_module(meter_module(module, costs, namespace=namespace, name=name))


def meter_module(module: Module, costs: CostTable = DEFAULT, *, namespace: str = "ethereum",
                 name: str = "useGas") -> Module:
    m = copy(module)
    func_imports = [imp for imp in m.imports if imp.kind == EXTERN_FUNC]
    existing = next(((k, imp) for k, imp in enumerate(func_imports)
                     if imp.module == namespace and imp.name == name), None)
    other = next((imp for imp in m.imports if imp.module == namespace and imp.name == name
                  and imp.kind != EXTERN_FUNC), None)
    if other is not None:
        raise MeteringError(f"{namespace}.{name} is imported as a non-function", offset=other.offset)
    if existing is not None:
        gas_index, imp = existing
        if m.types[imp.desc] != USE_GAS_TYPE:
            raise MeteringError(f"{namespace}.{name} is imported with type {m.types[imp.desc]}, "
                                f"expected {USE_GAS_TYPE}", offset=imp.offset)
        shift_from = None
    else:
        gas_index = shift_from = len(func_imports)
        m.types = list(m.types)
        if USE_GAS_TYPE in m.types:
            type_index = m.types.index(USE_GAS_TYPE)
        else:
            type_index = len(m.types)
            m.types.append(USE_GAS_TYPE)
        m.imports = list(m.imports) + [Import(namespace, name, EXTERN_FUNC, type_index)]

    def remap(idx: int) -> int:
        return idx + 1 if shift_from is not None and idx >= shift_from else idx

    n_imported = len(func_imports)
    m.codes = [
        _meter_function(fn, m.types[fn.type_index], costs, gas_index, remap,
                        n_imported + i)
        for i, fn in enumerate(module.codes)
    ]
    if shift_from is not None:
        m.exports = [replace(e, index=remap(e.index)) if e.kind == EXTERN_FUNC else e
                     for e in m.exports]
        if m.start is not None:
            m.start = remap(m.start)
        new_elems = []
        for seg in m.elems:
            seg = copy(seg)
            seg.items = [[(op, remap(imm) if op == REF_FUNC else imm, off)
                          for op, imm, off in item] for item in seg.items]
            new_elems.append(seg)
        m.elems = new_elems
        # The name section indexes functions; rather than rewrite it, it is dropped.
        m.customs = [c for c in m.customs if c.name != "name"]
    return m


def _meter_function(fn: Function, ft: FuncType, costs: CostTable, gas_index: int, remap,
                    func_index: int) -> Function:
    body = fn.body
    targeted = _targeted_ends(body)
    overhead = costs.charge_overhead
    # segments: [start index in body, cost]
    segments: list[list[int]] = [[0, costs.per_local * len(fn.locals)]]
    stack: list[int] = []  # opening opcode per open construct
    cut_next = False
    for pc, (op, _imm, off) in enumerate(body):
        if cut_next:
            segments.append([pc, 0])
            cut_next = False
        c = costs.cost(op)
        if c is None:
            raise MeteringError(f"instruction {OPS[op].name} has no cost in the table",
                                func_index=func_index, offset=off)
        seg = segments[-1]
        seg[1] += c
        if seg[1] > _MAX_COST:
            raise MeteringError("segment cost overflows i64", func_index=func_index, offset=off)
        if op in (0x02, 0x03, 0x04):
            stack.append(pc)
        if op in _CUT_AFTER:
            cut_next = True
        elif op == 0x0B and stack:
            opener = stack.pop()
            if body[opener][0] == 0x04 or opener in targeted:
                cut_next = True
    out: list[Instr] = []
    starts = {start: cost for start, cost in segments if cost}
    for pc, (op, imm, off) in enumerate(body):
        cost = starts.get(pc)
        if cost is not None:
            total = cost + overhead
            if total > _MAX_COST:
                raise MeteringError("segment cost overflows i64", func_index=func_index,
                                    offset=off)
            out.append((0x42, total, off))
            out.append((0x10, gas_index, off))
        if op == 0x10:
            imm = remap(imm)
        out.append((op, imm, off))
    return Function(fn.type_index, list(fn.locals), out, fn.offset)


def _targeted_ends(body: list[Instr]) -> set[int]:
    """Body positions of `block`/`if` openers whose end some branch targets."""
    stack: list[int] = []
    targeted: set[int] = set()

    def mark(depth: int) -> None:
        if depth < len(stack):
            opener = stack[-1 - depth]
            if body[opener][0] != 0x03:  # a branch to a loop goes to its start
                targeted.add(opener)

    for pc, (op, imm, _) in enumerate(body):
        if op in (0x02, 0x03, 0x04):
            stack.append(pc)
        elif op == 0x0B:
            if stack:
                stack.pop()
        elif op in (0x0C, 0x0D):
            mark(imm)
        elif op == 0x0E:
            for depth in (*imm[0], imm[1]):
                mark(depth)
    return targeted
