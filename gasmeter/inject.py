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

Work that grows with a run-time operand (bulk memory, and `memory.grow` when the table
prices pages) is charged by that operand, right before the instruction: the count on top
of the stack goes through a scratch i32 local added to the function, and
`useGas(overhead + per_unit * count)` runs first, so the instruction runs only when its
whole charge fitted. The count is a u32 widened to i64, and the table's per-unit cost is
checked at metering time so that `overhead + per_unit * (2^32 - 1)` fits an i64: no
count wraps the charge, so the most a single instruction can buy is exactly its price.
Running out at that charge stops before the instruction touches anything.
"""

from __future__ import annotations

from copy import copy
from dataclasses import replace

from ewasm.decoder import decode_module
from ewasm.encoder import encode_module
from ewasm.features import Features
from ewasm.limits import DEFAULT_LIMITS
from ewasm.module import EXTERN_FUNC, Function, Import, Instr, Module
from ewasm.opcodes import OPS, REF_FUNC
from ewasm.types import I32, I64, FuncType
from ewasm.validator import validate_module

from .cost_table import DEFAULT, LENGTH_PRICED, PER_UNIT_KEYS, CostTable
from .errors import MeteringError, MissingCostError

USE_GAS_TYPE = FuncType((I64,), ())
_MAX_COST = (1 << 63) - 1
_CUT_AFTER = frozenset({0x03, 0x04, 0x05, 0x0C, 0x0D, 0x0E, 0x0F, 0x00})
# The largest count operand: every count is an i32, read unsigned.
_MAX_COUNT = 0xFFFFFFFF
_LOCAL_GET, _LOCAL_TEE, _I64_CONST, _I64_EXTEND_I32_U, _I64_MUL, _I64_ADD, _CALL = (
    0x20, 0x22, 0x42, 0xAD, 0x7E, 0x7C, 0x10)


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
    _check_locals(module, m, n_imported)
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
    # pc -> gas per unit of the instruction's count operand
    per_unit: dict[int, int] = {}
    for pc, (op, _imm, off) in enumerate(body):
        if cut_next:
            segments.append([pc, 0])
            cut_next = False
        c = costs.cost(op)
        if c is None:
            raise MissingCostError(f"instruction {OPS[op].name} has no cost in the table",
                                   instruction=OPS[op].name, key=OPS[op].name,
                                   func_index=func_index, offset=off)
        if op in PER_UNIT_KEYS:
            k = _unit_cost(op, costs, func_index, off)
            if k is not None:
                per_unit[pc] = k
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
    # The scratch local that holds a count operand while its charge is computed.
    scratch = len(ft.params) + len(fn.locals)
    for pc, (op, imm, off) in enumerate(body):
        cost = starts.get(pc)
        if cost is not None:
            total = cost + overhead
            if total > _MAX_COST:
                raise MeteringError("segment cost overflows i64", func_index=func_index,
                                    offset=off)
            out.append((_I64_CONST, total, off))
            out.append((_CALL, gas_index, off))
        k = per_unit.get(pc)
        if k is not None:
            # [.. count] -> [.. count], having charged overhead + k * count.
            out.append((_LOCAL_TEE, scratch, off))
            out.append((_LOCAL_GET, scratch, off))
            out.append((_I64_EXTEND_I32_U, None, off))
            if k != 1:
                out.append((_I64_CONST, k, off))
                out.append((_I64_MUL, None, off))
            if overhead:
                out.append((_I64_CONST, overhead, off))
                out.append((_I64_ADD, None, off))
            out.append((_CALL, gas_index, off))
        if op == _CALL:
            imm = remap(imm)
        out.append((op, imm, off))
    locals_ = list(fn.locals) + ([I32] if per_unit else [])
    return Function(fn.type_index, locals_, out, fn.offset)


def _unit_cost(op: int, costs: CostTable, func_index: int, off: int) -> int | None:
    """Gas per unit of `op`'s count, None for a flat charge; refuses what cannot be priced."""
    name, key = OPS[op].name, PER_UNIT_KEYS[op]
    k = costs.per_unit(op)
    if k is None:
        if op in LENGTH_PRICED:
            raise MissingCostError(
                f"{name} does work proportional to its count operand and the cost table "
                f"has no {key!r} entry", instruction=name, key=key, func_index=func_index,
                offset=off)
        return None
    if type(k) is not int or k <= 0:
        raise MeteringError(f"cost table entry {key!r} must be a positive int, not {k!r}",
                            func_index=func_index, offset=off)
    if costs.charge_overhead + k * _MAX_COUNT > _MAX_COST:
        # Checked here rather than at run time: no count can then wrap the charge.
        raise MeteringError(f"cost table entry {key!r} ({k}) overflows i64 for a count of "
                            f"2^32 - 1", func_index=func_index, offset=off)
    return k


def _check_locals(before: Module, after: Module, n_imported: int) -> None:
    """The scratch locals must keep the module within the engine's locals limits, which
    the input met (a MeteringError here rather than a DecodeError when it is run)."""
    limits = DEFAULT_LIMITS
    total = added = 0
    for i, (old, new) in enumerate(zip(before.codes, after.codes, strict=True)):
        nparams = len(after.types[new.type_index].params)
        total += nparams + len(new.locals)
        if len(new.locals) == len(old.locals):
            continue
        added += 1
        if nparams + len(new.locals) > limits.function_locals:
            raise MeteringError(f"metering needs a scratch local and the function has the "
                                f"limit of {limits.function_locals} locals already",
                                func_index=n_imported + i, offset=new.offset)
    if added and total > limits.module_locals:
        raise MeteringError(f"metering needs a scratch local in each of {added} functions, "
                            f"which takes the module over the limit of "
                            f"{limits.module_locals} locals")


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
