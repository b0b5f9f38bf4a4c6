"""validate_module: the WebAssembly typing rules (Wasm 1.0 plus sign-extension,
multi-value, mutable globals, non-trapping float-to-int and bulk memory).

Function bodies follow the spec's validation algorithm (appendix "Validation
Algorithm"): an operand stack of value types where 0 stands for an unknown type, and a
stack of control frames that records where the code became unreachable. Every error
names the function index and the byte offset of the offending instruction.

The implementation limits that only validation can see (ewasm.limits: control nesting
depth, operand stack height, table size, block signature values) raise
ValidationLimitError, a ValidationError.
"""

from __future__ import annotations

from .decoder import BLOCK_EMPTY
from .errors import ValidationError, ValidationLimitError
from .features import Features
from .limits import DEFAULT_LIMITS, ImplementationLimits
from .module import (
    ELEM_ACTIVE,
    EXTERN_FUNC,
    EXTERN_GLOBAL,
    EXTERN_MEMORY,
    EXTERN_TABLE,
    Function,
    Instr,
    Module,
)
from .opcodes import (
    LOAD_OPS,
    OPS,
    REF_FUNC,
    REF_NULL,
    STORE_OPS,
)
from .types import FUNCREF, I32, I64, MAX_PAGES, NUMERIC_TYPES, FuncType, Limits

UNKNOWN = 0  # the bottom type of unreachable code: matches anything

_CONST_TYPES = {0x41: I32, 0x42: I64, 0x43: 0x7D, 0x44: 0x7C}
_SPECIAL = frozenset({0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10,
                      0x11, 0x1A, 0x1B, 0x20, 0x21, 0x22, 0x23, 0x24, 0x3F, 0x40,
                      0xFC08, 0xFC09, 0xFC0A, 0xFC0B, 0xFC0C, 0xFC0D, 0xFC0E})
_MEMORY_OPS = LOAD_OPS | STORE_OPS | {0x3F, 0x40, 0xFC08, 0xFC0A, 0xFC0B}
_SIGS = {code: info.sig for code, info in OPS.items() if info.sig is not None}


def validate_module(module: Module, features: Features | None = None, *,
                    limits: ImplementationLimits | None = None) -> None:
    """Raise ValidationError unless the module is valid and within `limits` (default
    DEFAULT_LIMITS; the counts and sizes among them are checked by decode_module)."""
    _ModuleValidator(module, features or Features.all(), limits or DEFAULT_LIMITS).run()


def _fail(message: str, offset: int | None = None, func_index: int | None = None):
    return ValidationError(message, offset=offset, func_index=func_index)


class _ModuleValidator:
    def __init__(self, module: Module, features: Features,
                 limits: ImplementationLimits = DEFAULT_LIMITS) -> None:
        self.m = module
        self.features = features
        self.limits = limits
        self.block_values = 0  # params + results of every block, loop and if so far

    def over(self, limit: str, offset: int | None = None,
             func_index: int | None = None) -> ValidationLimitError:
        return ValidationLimitError(self.limits.message(limit), limit=limit, offset=offset,
                                    func_index=func_index)

    def _table_size(self, declared: Limits, offset: int | None = None) -> None:
        if declared.min > self.limits.table_size:  # tables never grow (no table.grow)
            raise self.over("table_size", offset)

    def run(self) -> None:
        m = self.m
        ntypes = len(m.types)
        for imp in m.imports:
            if imp.kind == EXTERN_FUNC and imp.desc >= ntypes:
                raise _fail(f"unknown type {imp.desc}", imp.offset)
            if imp.kind == EXTERN_TABLE:
                self._limits(imp.desc.limits, 0xFFFFFFFF, "table", imp.offset)
                self._table_size(imp.desc.limits, imp.offset)
            if imp.kind == EXTERN_MEMORY:
                self._limits(imp.desc.limits, MAX_PAGES, "memory", imp.offset)
            if imp.kind == EXTERN_GLOBAL and imp.desc.mutable and not self.features.mutable_global:
                raise _fail("mutable global import needs the mutable-global feature", imp.offset)
        for t in m.func_types:
            if t >= ntypes:
                raise _fail(f"unknown type {t}")
        for tt in m.tables:
            self._limits(tt.limits, 0xFFFFFFFF, "table")
            self._table_size(tt.limits)
        for mt in m.memories:
            self._limits(mt.limits, MAX_PAGES, "memory")
        self.tables = m.all_tables()
        self.memories = m.all_memories()
        if len(self.tables) > 1:
            raise _fail("multiple tables")
        if len(self.memories) > 1:
            raise _fail("multiple memories")
        self.funcs = m.all_func_types()
        self.globals = m.all_global_types()
        self.n_imported_globals = m.num_imported_globals
        for g in m.globals:
            self._const_expr(g.init, g.type.valtype, g.offset)
        names = set()
        for exp in m.exports:
            if exp.name in names:
                raise _fail(f"duplicate export name {exp.name!r}", exp.offset)
            names.add(exp.name)
            limit = {EXTERN_FUNC: len(self.funcs), EXTERN_TABLE: len(self.tables),
                     EXTERN_MEMORY: len(self.memories), EXTERN_GLOBAL: len(self.globals)}[exp.kind]
            if exp.index >= limit:
                raise _fail(f"unknown export target {exp.index}", exp.offset)
            if (exp.kind == EXTERN_GLOBAL and self.globals[exp.index].mutable
                    and not self.features.mutable_global):
                raise _fail("mutable global export needs the mutable-global feature", exp.offset)
        if m.start is not None:
            if m.start >= len(self.funcs):
                raise _fail(f"unknown function {m.start} (start)")
            if self.funcs[m.start] != FuncType((), ()):
                raise _fail("start function must have type [] -> []")
        for seg in m.elems:
            if seg.elem_type != FUNCREF:
                raise _fail("element segment type mismatch", seg.offset)
            if seg.mode == ELEM_ACTIVE:
                if seg.table_index >= len(self.tables):
                    raise _fail(f"unknown table {seg.table_index}", seg.offset)
                if self.tables[seg.table_index].elem_type != seg.elem_type:
                    raise _fail("element segment type mismatch", seg.offset)
                self._const_expr(seg.offset_expr, I32, seg.offset)
            for item in seg.items:
                self._elem_item(item, seg.elem_type, seg.offset)
        for seg in m.datas:
            if seg.offset_expr is not None:
                if seg.memory_index >= len(self.memories):
                    raise _fail(f"unknown memory {seg.memory_index}", seg.offset)
                self._const_expr(seg.offset_expr, I32, seg.offset)
        nimp = m.num_imported_funcs
        for i, fn in enumerate(m.codes):
            _FunctionValidator(self, nimp + i, fn).run()

    def _limits(self, limits: Limits, bound: int, what: str, offset: int | None = None) -> None:
        if limits.min > bound:
            raise _fail(f"{what} size must be at most {bound}", offset)
        if limits.max is not None:
            if limits.max > bound:
                raise _fail(f"{what} size must be at most {bound}", offset)
            if limits.min > limits.max:
                raise _fail("size minimum must not be greater than maximum", offset)

    def _const_expr(self, expr: list[Instr], want: int, offset: int) -> None:
        if not expr or expr[-1][0] != 0x0B:
            raise _fail("constant expression required", offset)
        body = expr[:-1]
        if len(body) != 1:
            raise _fail("type mismatch: constant expression must produce one value",
                        body[-1][2] if body else offset)
        op, imm, off = body[0]
        if op in _CONST_TYPES:
            have = _CONST_TYPES[op]
        elif op == 0x23:
            # Wasm 1.0: only imported globals, and only immutable ones.
            if imm >= self.n_imported_globals:
                raise _fail(f"unknown global {imm}", off)
            if self.globals[imm].mutable:
                raise _fail("constant expression required (mutable global)", off)
            have = self.globals[imm].valtype
        else:
            raise _fail("constant expression required", off)
        if have != want:
            raise _fail("type mismatch in constant expression", off)

    def _elem_item(self, item: list[Instr], elem_type: int, offset: int) -> None:
        body = item[:-1] if item and item[-1][0] == 0x0B else item
        if len(body) != 1:
            raise _fail("type mismatch in element expression", offset)
        op, imm, off = body[0]
        if op == REF_FUNC:
            if imm >= len(self.funcs):
                raise _fail(f"unknown function {imm}", off)
        elif op == REF_NULL:
            if imm != elem_type:
                raise _fail("type mismatch in element expression", off)
        else:
            raise _fail("constant expression required", off)


class _FunctionValidator:
    def __init__(self, mv: _ModuleValidator, index: int, fn: Function) -> None:
        self.mv = mv
        self.index = index
        self.fn = fn

    def run(self) -> None:
        mv, m, index = self.mv, self.mv.m, self.index
        ft = mv.funcs[index]
        types = m.types
        ntypes = len(types)
        locals_ = list(ft.params) + self.fn.locals
        nlocals = len(locals_)
        funcs = mv.funcs
        globals_ = mv.globals
        has_memory = bool(mv.memories)
        has_table = bool(mv.tables)
        n_elems = len(m.elems)
        data_count = m.data_count
        sigs = _SIGS
        special = _SPECIAL
        memory_ops = _MEMORY_OPS
        ops = OPS

        limits = mv.limits
        max_height = limits.stack_height
        max_ctrls = limits.nesting_depth + 1  # the function's own frame is not counted
        max_block_values = limits.block_values

        vals: list[int] = []
        # Control frame: [opcode, start types, end types, height, unreachable]
        ctrls: list[list] = [[0x02, (), ft.results, 0, False]]
        off = self.fn.offset

        def fail(msg: str) -> ValidationError:
            return _fail(msg, off, index)

        def over(limit: str) -> ValidationLimitError:
            return mv.over(limit, off, index)

        def pop() -> int:
            frame = ctrls[-1]
            if len(vals) == frame[3]:
                if frame[4]:
                    return UNKNOWN
                raise fail("type mismatch: operand stack underflow")
            return vals.pop()

        def pop_expect(want: int) -> int:
            frame = ctrls[-1]
            if len(vals) == frame[3]:
                if frame[4]:
                    return want
                raise fail("type mismatch: operand stack underflow")
            have = vals.pop()
            if have != want and have != UNKNOWN and want != UNKNOWN:
                raise fail("type mismatch")
            return have

        def pop_vals(ts) -> list[int]:
            return [pop_expect(t) for t in reversed(ts)][::-1]

        def block_type(imm: int):
            if imm == BLOCK_EMPTY:
                return (), ()
            if imm < 0:
                return (), (imm + 0x80,)
            if imm >= ntypes:
                raise fail(f"unknown type {imm}")
            bt = types[imm]
            return bt.params, bt.results

        def label(depth: int):
            if depth >= len(ctrls):
                raise fail(f"unknown label {depth}")
            frame = ctrls[-1 - depth]
            return frame[1] if frame[0] == 0x03 else frame[2]

        def unreachable() -> None:
            frame = ctrls[-1]
            del vals[frame[3]:]
            frame[4] = True

        body = self.fn.body
        last = len(body) - 1
        # `off` is read by fail() above, so errors point at the current instruction.
        for pc, (op, imm, off) in enumerate(body):  # noqa: B007
            sig = sigs.get(op)
            if sig is not None and op not in special:
                if op in memory_ops:
                    if not has_memory:
                        raise fail("unknown memory 0")
                    if imm[0] > ops[op].align:
                        raise fail("alignment must not be larger than natural")
                params, results = sig
                for t in reversed(params):
                    pop_expect(t)
                vals.extend(results)
                if len(vals) > max_height:
                    raise over("stack_height")
                continue
            if op == 0x20 or op == 0x21 or op == 0x22:  # local.get / set / tee
                if imm >= nlocals:
                    raise fail(f"unknown local {imm}")
                t = locals_[imm]
                if op == 0x20:
                    vals.append(t)
                    if len(vals) > max_height:
                        raise over("stack_height")
                else:
                    pop_expect(t)
                    if op == 0x22:
                        vals.append(t)  # unreachable code: pop_expect may pop nothing
                        if len(vals) > max_height:
                            raise over("stack_height")
            elif op == 0x23 or op == 0x24:  # global.get / set
                if imm >= len(globals_):
                    raise fail(f"unknown global {imm}")
                g = globals_[imm]
                if op == 0x23:
                    vals.append(g.valtype)
                    if len(vals) > max_height:
                        raise over("stack_height")
                else:
                    if not g.mutable:
                        raise fail("global is immutable")
                    pop_expect(g.valtype)
            elif op == 0x0B:  # end
                frame = ctrls[-1]
                pop_vals(frame[2])
                if len(vals) != frame[3]:
                    raise fail("type mismatch: values remaining on the stack at end of block")
                ctrls.pop()
                if frame[0] == 0x04 and frame[1] != frame[2]:
                    raise fail("type mismatch: if without else must leave its parameters")
                if not ctrls:
                    if pc != last:
                        raise fail("unexpected end of function")
                    return
                vals.extend(frame[2])
                if len(vals) > max_height:
                    raise over("stack_height")
            elif op == 0x02 or op == 0x03 or op == 0x04:  # block / loop / if
                params, results = block_type(imm)
                if op == 0x04:
                    pop_expect(I32)
                pop_vals(params)
                ctrls.append([op, params, results, len(vals), False])
                vals.extend(params)
                if len(ctrls) > max_ctrls:
                    raise over("nesting_depth")
                if len(vals) > max_height:
                    raise over("stack_height")
                if params or results:
                    mv.block_values += len(params) + len(results)
                    if mv.block_values > max_block_values:
                        raise over("block_values")
            elif op == 0x05:  # else
                frame = ctrls[-1]
                if frame[0] != 0x04:
                    raise fail("else without if")
                pop_vals(frame[2])
                if len(vals) != frame[3]:
                    raise fail("type mismatch: values remaining on the stack before else")
                ctrls[-1] = [0x05, frame[1], frame[2], frame[3], False]
                vals.extend(frame[1])
            elif op == 0x0C:  # br
                pop_vals(label(imm))
                unreachable()
            elif op == 0x0D:  # br_if
                pop_expect(I32)
                ts = label(imm)
                vals.extend(pop_vals(ts))
                if len(vals) > max_height:
                    raise over("stack_height")
            elif op == 0x0E:  # br_table
                labels, default = imm
                pop_expect(I32)
                arity = len(label(default))
                # Checking a target again changes nothing: each distinct one once, so the
                # work is bounded by nesting depth x arity, not by the vector's length.
                for depth in dict.fromkeys(labels):
                    ts = label(depth)
                    if len(ts) != arity:
                        raise fail("type mismatch: br_table targets differ in arity")
                    vals.extend(pop_vals(ts))
                if len(vals) > max_height:
                    raise over("stack_height")
                pop_vals(label(default))
                unreachable()
            elif op == 0x0F:  # return
                pop_vals(ft.results)
                unreachable()
            elif op == 0x10:  # call
                if imm >= len(funcs):
                    raise fail(f"unknown function {imm}")
                callee = funcs[imm]
                pop_vals(callee.params)
                vals.extend(callee.results)
                if len(vals) > max_height:
                    raise over("stack_height")
            elif op == 0x11:  # call_indirect
                tidx, table = imm
                if not has_table or table >= len(mv.tables):
                    raise fail(f"unknown table {table}")
                if tidx >= ntypes:
                    raise fail(f"unknown type {tidx}")
                pop_expect(I32)
                callee = types[tidx]
                pop_vals(callee.params)
                vals.extend(callee.results)
                if len(vals) > max_height:
                    raise over("stack_height")
            elif op == 0x1A:  # drop
                pop()
            elif op == 0x1B:  # select
                pop_expect(I32)
                t1 = pop()
                t2 = pop()
                if (t1 != UNKNOWN and t1 not in NUMERIC_TYPES) or (
                        t2 != UNKNOWN and t2 not in NUMERIC_TYPES):
                    raise fail("type mismatch: select operands must be numeric")
                if t1 != t2 and t1 != UNKNOWN and t2 != UNKNOWN:
                    raise fail("type mismatch: select operands differ")
                vals.append(t1 if t1 != UNKNOWN else t2)
                if len(vals) > max_height:
                    raise over("stack_height")
            elif op == 0x00:
                unreachable()
            elif op == 0x01:
                pass
            elif op == 0x3F or op == 0x40:  # memory.size / memory.grow
                if not has_memory:
                    raise fail("unknown memory 0")
                if op == 0x40:
                    pop_expect(I32)
                vals.append(I32)
                if len(vals) > max_height:
                    raise over("stack_height")
            elif op == 0xFC08 or op == 0xFC09:  # memory.init / data.drop
                if op == 0xFC08 and not has_memory:
                    raise fail("unknown memory 0")
                if data_count is None or imm >= data_count:
                    raise fail(f"unknown data segment {imm}")
                if op == 0xFC08:
                    pop_vals((I32, I32, I32))
            elif op == 0xFC0A or op == 0xFC0B:  # memory.copy / memory.fill
                if not has_memory:
                    raise fail("unknown memory 0")
                pop_vals((I32, I32, I32))
            elif op == 0xFC0C:  # table.init
                seg, table = imm
                if table >= len(mv.tables):
                    raise fail(f"unknown table {table}")
                if seg >= n_elems:
                    raise fail(f"unknown element segment {seg}")
                if m.elems[seg].elem_type != mv.tables[table].elem_type:
                    raise fail("type mismatch: element segment and table types differ")
                pop_vals((I32, I32, I32))
            elif op == 0xFC0D:  # elem.drop
                if imm >= n_elems:
                    raise fail(f"unknown element segment {imm}")
            elif op == 0xFC0E:  # table.copy
                dst, src = imm
                if dst >= len(mv.tables) or src >= len(mv.tables):
                    raise fail(f"unknown table {max(dst, src)}")
                pop_vals((I32, I32, I32))
            else:
                raise fail(f"unsupported instruction {ops[op].name}")
        raise fail("function body does not end with end")
