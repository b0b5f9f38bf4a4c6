"""Instance: a compiled module bound to its imports, with its memory, table, globals and
context; calls into compiled code and turns status returns into Python results or errors.
"""

from __future__ import annotations

import ctypes
import mmap
import struct
import threading
from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..compiler import abi
from ..errors import LinkError, Trap, TrapKind
from ..module import (
    DATA_ACTIVE,
    ELEM_ACTIVE,
    EXTERN_FUNC,
    EXTERN_GLOBAL,
    EXTERN_MEMORY,
    EXTERN_TABLE,
    Instr,
)
from ..opcodes import GLOBAL_GET, I32_CONST, I64_CONST, REF_FUNC, REF_NULL
from ..types import I32, I64, PAGE_SIZE, FuncType
from .externs import (
    DEFAULT_MAX_MEMORY_PAGES,
    Global,
    HostFunc,
    Memory,
    MemoryImage,
    NativeFunc,
    Table,
)
from .stack import NATIVE_SWITCH, call_compiled, run_on_big_stack
from .template import FastInit, template_of
from .values import from_carrier, to_carrier

if TYPE_CHECKING:
    from ..compiled import CompiledModule
    from .linker import LoadedCode

# Call-depth budget in Wasm frame units (see compiler.lower.CALL_BASE_COST).
DEFAULT_STACK_BUDGET = 1 << 20

_sig_lock = threading.Lock()
_sig_ids: dict[FuncType, int] = {}


def signature_id(ft: FuncType) -> int:
    """A process-wide id per function type; 0 is reserved for null table elements."""
    with _sig_lock:
        sid = _sig_ids.get(ft)
        if sid is None:
            sid = _sig_ids[ft] = len(_sig_ids) + 1
        return sid


# A native host function (NativeFunc) ended the run; why is in the instance's native_ctx.
STATUS_EXIT = 3

_exec = threading.local()
_memmove = ctypes.memmove
# Past this many data segments (or bytes), instances map their initial memory from an
# image instead of copying each segment.
_IMAGE_SEGMENTS = 8
_IMAGE_BYTES = 16 * 1024
# An integer result's bit pattern in its slot (floats go through to_carrier).
_RESULT_MASKS = {I32: 0xFFFFFFFF, I64: 0xFFFFFFFFFFFFFFFF}


def _budget_stack() -> list[int]:
    """The contexts (addresses; 0: none) of the compiled code that called the host
    functions running on this thread, innermost last."""
    stack = getattr(_exec, "budgets", None)
    if stack is None:
        stack = _exec.budgets = []
    return stack


class FuncRef:
    """What a table element or an import entry needs to call a function."""

    __slots__ = ("internal", "wrapper", "vmctx", "sig", "owner", "_entry")

    def __init__(self, internal: int, wrapper: int, vmctx: int, sig: int, owner: Any) -> None:
        self.internal = internal
        self.wrapper = wrapper
        self.vmctx = vmctx
        self.sig = sig
        self.owner = owner
        self._entry = None

    @property
    def entry(self) -> Any:
        """The wrapper as a callable ctypes function pointer (made once)."""
        if self._entry is None:
            self._entry = abi.WRAPPER_CFUNC(self.wrapper)
        return self._entry


_thunk_lock = threading.Lock()


def _host_funcref(hf: HostFunc) -> FuncRef:
    if hf._trampoline is None:
        # Exactly one thunk per function: an instance's import table holds its address,
        # and a second one built by a racing thread would free the first under it.
        with _thunk_lock:
            if hf._trampoline is None:
                hf._trampoline = _make_trampoline(hf)
    addr = ctypes.cast(hf._trampoline, ctypes.c_void_p).value
    return FuncRef(0, addr, ctypes.addressof(hf._vmctx), signature_id(hf.type), hf)


def _make_trampoline(hf: HostFunc):
    """The native entry of a host function: slots in, slots out, a status returned.

    Specialised per function once (the slot array type, the argument conversion, the
    result shape), so that a call builds no Python objects beyond its arguments. The
    caller's context goes on the thread's stack of callers: a nested call into compiled
    code (a contract calling another) continues with the caller's remaining budget."""
    params, results = hf.type.params, hf.type.results
    slots_type = ctypes.c_uint64 * max(len(params), len(results), 1)
    fn = hf.fn
    nparams, nresults = len(params), len(results)
    all_i32 = all(t == I32 for t in params)
    result_mask = _RESULT_MASKS.get(results[0]) if nresults == 1 else None

    def _store_results(vals, res) -> None:
        if res is None:
            res = ()
        elif not isinstance(res, (tuple, list)):
            res = (res,)
        if len(res) != nresults:
            raise TypeError(
                f"host function returned {len(res)} values, its type {hf.type} "
                f"declares {nresults}"
            )
        for i, (t, v) in enumerate(zip(results, res, strict=True)):
            vals[i] = to_carrier(v, t)

    if all_i32 and not nresults and not hf.reenters:
        # The common EEI shape (i32 arguments, no result, no nested call): the arguments
        # as signed i32s straight out of the slots' low halves, in two C calls.
        unpack = struct.Struct("<" + "i4x" * nparams).unpack
        size = 8 * nparams
        string_at = ctypes.string_at

        def leaf(callee: int, caller: int | None, vals_ptr: int) -> int:
            try:
                fn(*unpack(string_at(vals_ptr, size)))
                return abi.STATUS_OK
            except BaseException as exc:
                _exec.pending = exc
                return abi.STATUS_HOST

        return abi.WRAPPER_CFUNC(leaf)

    def trampoline(callee: int, caller: int | None, vals_ptr: int) -> int:
        # Never let an exception cross into native frames: stash it, return a status.
        try:
            try:
                stack = _exec.budgets
            except AttributeError:
                stack = _budget_stack()
            stack.append(caller or 0)
            try:
                vals = slots_type.from_address(vals_ptr)
                raw = vals[:nparams]
                if all_i32:
                    args = [((v & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000 for v in raw]
                else:
                    args = [from_carrier(v, t) for v, t in zip(raw, params, strict=True)]
                res = fn(*args)
                if result_mask is not None and type(res) is int:
                    vals[0] = res & result_mask
                elif nresults or res is not None:
                    _store_results(vals, res)
            finally:
                stack.pop()
            return abi.STATUS_OK
        except BaseException as exc:
            _exec.pending = exc
            return abi.STATUS_HOST

    return abi.WRAPPER_CFUNC(trampoline)


class NativeExit(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by Instance calls when a native host function ended the run (STATUS_EXIT);
    the embedder that gave the instance its native_ctx reads why."""


class Func:
    """An exported (or table-held) Wasm function of an instance; call it like a function."""

    def __init__(self, instance: Instance, index: int) -> None:
        self.instance = instance
        self.index = index
        self.type: FuncType = instance._func_types[index]

    def __call__(self, *args: int) -> list[int]:
        return self.instance._call(self.index, args)

    def __repr__(self) -> str:
        return f"<ewasm.Func {self.index} {self.type}>"


def funcref_of(ext: Any) -> FuncRef:
    if isinstance(ext, Func):
        return ext.instance._funcref(ext.index)
    if isinstance(ext, HostFunc):
        return _host_funcref(ext)
    raise TypeError(f"not a function: {ext!r}")


class Instance:
    """A module instance. Create it with ewasm.instantiate()."""

    def __init__(
        self,
        compiled: CompiledModule,
        externs: Sequence[Any],
        *,
        max_memory_pages: int = DEFAULT_MAX_MEMORY_PAGES,
        gas_limit: int | None = None,
        code: LoadedCode | None = None,
        native_ctx: int = 0,
    ) -> None:
        """code: compiled.load()'s result when the caller already took it. native_ctx:
        the context address that imported NativeFuncs receive (their per-instance frame)."""
        m = compiled.module
        self.gas_limit = gas_limit
        self.compiled = compiled
        self._externs = list(externs)  # keeps imported objects alive
        if code is None:
            code = compiled.load()
        self._code = code
        self._void_entry = None  # call_void's (index, entry, wrapper, vmctx, slot, address)
        self.ctx = abi.VMContext()
        self._ctx_addr = ctypes.addressof(self.ctx)
        t = self._template = template_of(m, code)
        self._func_types = t.func_types

        # --- imports ------------------------------------------------------------------
        nimp = self._nimp = t.nimp
        # Defined functions' FuncRefs (and their Funcs) are made when first asked for.
        self._funcrefs: list[FuncRef | None] = [None] * len(t.func_types)
        self.memory: Memory | None = None
        self.table: Table | None = None
        imported_globals: list[Global] = []
        self._import_entries = (abi.ImportEntry * max(nimp, 1))()
        k = 0
        for imp, ext in zip(m.imports, externs, strict=True):
            if imp.kind == EXTERN_FUNC:
                if isinstance(ext, NativeFunc):
                    if not native_ctx:
                        raise LinkError(f"native import {imp.module}.{imp.name} needs a "
                                        "native context")
                    ref = FuncRef(0, ext.address, native_ctx, signature_id(ext.type), ext)
                else:
                    ref = funcref_of(ext)
                entry = self._import_entries[k]
                entry.fn, entry.vmctx = ref.wrapper, ref.vmctx
                self._funcrefs[k] = ref
                k += 1
            elif imp.kind == EXTERN_MEMORY:
                self.memory = ext
            elif imp.kind == EXTERN_TABLE:
                self.table = ext
            elif imp.kind == EXTERN_GLOBAL:
                imported_globals.append(ext)

        # --- own definitions ------------------------------------------------------------
        self._owns_memory = bool(m.memories)
        if m.memories:
            self.memory = Memory(m.memories[0], max_pages=max_memory_pages)
        if m.tables:
            self.table = Table(m.tables[0])
        if self.table is not None:
            # Table elements point into this instance's code and context.
            self.table_keepalive(self.table)
        # Globals: imported ones are their own cells; the module's own live in one array,
        # with a Global object made only when one is asked for.
        self._imported_globals = imported_globals
        n_own = len(t.global_types)
        self._global_cells = (ctypes.c_uint64 * max(n_own, 1))()
        self._global_views: dict[int, Global] = {}
        self._init_globals()
        cells = ctypes.addressof(self._global_cells)
        ptrs = array("Q", [g.address for g in imported_globals])
        ptrs.extend(range(cells, cells + 8 * n_own, 8))
        if not ptrs:
            ptrs.append(0)
        self._global_ptrs = (ctypes.c_void_p * len(ptrs)).from_buffer(ptrs)
        self._sig_ids = (ctypes.c_int64 * max(len(m.types), 1)).from_buffer_copy(t.sig_ids)
        fast = t.fast_init
        self._table_words: array | None = None  # this instance's initial table (FastInit)
        self._elem_descs = (abi.SegDesc * max(len(m.elems), 1))()
        if fast is None:
            self._elem_arrays: list[Any] = [self._elem_array(k) for k in range(len(m.elems))]
            for k, arr in enumerate(self._elem_arrays):
                self._elem_descs[k] = abi.SegDesc(ctypes.addressof(arr), t.elems[k].count)
            self._data_descs = (abi.SegDesc * max(len(m.datas), 1)).from_buffer_copy(
                t.data_descs)
        else:  # without bulk memory nothing reads a segment after instantiation
            self._elem_arrays = []
            self._data_descs = (abi.SegDesc * max(len(m.datas), 1))()

        ctx = self.ctx
        ctx.memory = ctypes.addressof(self.memory.desc) if self.memory else None
        ctx.globals = ctypes.addressof(self._global_ptrs)
        ctx.table = ctypes.addressof(self.table.desc) if self.table else None
        ctx.imports = ctypes.addressof(self._import_entries)
        ctx.sig_ids = ctypes.addressof(self._sig_ids)
        ctx.elem_segs = ctypes.addressof(self._elem_descs)
        ctx.data_segs = ctypes.addressof(self._data_descs)
        ctx.budget = DEFAULT_STACK_BUDGET
        ctx.gas = gas_limit or 0

        self.exports: dict[str, Any] = {}
        for exp in m.exports:
            self.exports[exp.name] = self._export_object(exp.kind, exp.index)

        if fast is not None:
            self._apply_fast_init(fast, image_applied=False)
        else:
            self._initialise_segments(compiled.features.bulk_memory)
            if not t.fast_checked:
                t.fast_checked = True
                t.fast_init = self._make_fast_init()
        if m.start is not None:
            self._call(m.start, ())

    @property
    def code(self) -> LoadedCode:
        """The loaded code this instance runs (a tier-up loads new code for new ones)."""
        return self._code

    def resettable(self) -> bool:
        """Whether reset() can make this instance as new: it owns its memory, table and
        globals (imported ones are shared with others and not its to reset)."""
        m = self.compiled.module
        return all(imp.kind == EXTERN_FUNC for imp in m.imports)

    def reset(self, gas_limit: int | None) -> None:
        """Make this instance as a new one from the same module and imports, for another
        run (instance pooling, as wasmtime's pooling allocator): memory zeroed and back to
        its initial size, table and globals back to their initial values, segments live
        and applied again, the gas counter at gas_limit, no trap state. Only for a
        resettable() instance that no frame is running."""
        m = self.compiled.module
        self.gas_limit = gas_limit
        fast = self._template.fast_init
        image = fast.image if fast is not None and self._owns_memory else None
        if image is not None:
            self.memory.reset_to_image(image)
        elif self.memory is not None:
            self.memory.reset()
        self._init_globals()
        ctx = self.ctx
        ctx.gas = gas_limit or 0
        ctx.budget = DEFAULT_STACK_BUDGET
        ctx.trap_code = ctx.trap_func = ctx.trap_offset = 0
        if fast is not None:
            # Nothing in a Wasm 1.0 module writes a table or a descriptor after
            # instantiation: the entries segments wrote are copied again all the same (as
            # a guard, at the cost of what the segments hold), the rest stays null.
            self._apply_fast_init(fast, image_applied=True)
        else:
            if self.table is not None:
                self.table.reset()
            for k, seg in enumerate(m.elems):
                self._elem_descs[k].len = len(seg.items)
            for k, seg in enumerate(m.datas):
                self._data_descs[k].len = len(seg.data)
            self._initialise_segments(self.compiled.features.bulk_memory)
        if m.start is not None:
            self._call(m.start, ())

    def _make_fast_init(self) -> FastInit | None:
        """The FastInit of this module, when it has one (called on the first instance,
        once its segments applied without error, so they all fit)."""
        m = self.compiled.module
        t = self._template
        if self.compiled.features.bulk_memory:
            return None
        if m.elems and not m.tables or m.datas and not m.memories:
            return None  # an imported table or memory: shared, not the instance's to write
        if any(s.offset_expr[0][0] != I32_CONST for s in [*m.elems, *m.datas]):
            return None
        words, start, own, imports = None, 0, False, []
        if m.tables and m.elems:
            spans = [(seg.offset_expr[0][1] % (1 << 32), t.elems[k]) for k, seg in
                     enumerate(m.elems)]
            if any(image.words is None for _, image in spans):
                return None
            start = min(off for off, _ in spans)
            end = max(off + image.count for off, image in spans)
            words = array("Q", bytes(32 * (end - start)))  # only the entries written
            for off, image in spans:
                lo = off - start
                words[4 * lo:4 * (lo + image.count)] = image.words
                own = own or image.own
                # A later segment may overwrite an import's entry: keep the last writer.
                imports = [(j, imm) for j, imm in imports if not lo <= j < lo + image.count]
                imports.extend((lo + j, imm) for j, imm in image.imports)
        writes = [(seg.offset_expr[0][1] % (1 << 32), seg.data) for seg in m.datas if seg.data]
        image = None
        if len(writes) > _IMAGE_SEGMENTS or sum(len(d) for _, d in writes) > _IMAGE_BYTES:
            # Many segments: later instances map them in one call instead of copying each.
            end = max(off + len(d) for off, d in writes)
            span = -(-end // mmap.PAGESIZE) * mmap.PAGESIZE
            if span <= m.memories[0].limits.min * PAGE_SIZE:
                image = MemoryImage(writes, span)
        return FastInit(words, start, own, tuple(imports), writes, image)

    def _apply_fast_init(self, fast: FastInit, image_applied: bool) -> None:
        if fast.table_words is not None:
            words = self._table_words
            if words is None:
                words = array("Q", fast.table_words)
                if fast.table_own:
                    # Every entry's context, nulls' and imports' too: a null's is never
                    # read (its signature 0 traps first) and imports' are set next.
                    words[2::4] = array("Q", [self._ctx_addr]) * (len(words) // 4)
                for j, imm in fast.table_imports:
                    ref = self._funcrefs[imm]
                    words[4 * j:4 * j + 4] = array(
                        "Q", [ref.internal, ref.wrapper, ref.vmctx, ref.sig])
                self._table_words = words
            _memmove(self.table.desc.elems + fast.table_start * abi.ELEM_SIZE,
                     words.buffer_info()[0], 8 * len(words))
        if fast.image is not None:
            if not image_applied:
                self.memory.reset_to_image(fast.image)
        elif fast.writes:
            base = self.memory.desc.base
            for off, data in fast.writes:
                _memmove(base + off, data, len(data))

    @property
    def gas_left(self) -> int | None:
        """Gas left on the engine's counter (None without a gas limit)."""
        return None if self.gas_limit is None else self.ctx.gas

    @property
    def gas_used(self) -> int | None:
        return None if self.gas_limit is None else self.gas_limit - self.ctx.gas

    # --- what the template leaves to each instance ------------------------------------
    def _funcref(self, index: int) -> FuncRef:
        """The FuncRef of function `index` (a defined one's is made on first use)."""
        ref = self._funcrefs[index]
        if ref is None:
            i = index - self._nimp
            code = self._code
            ref = FuncRef(code.internal(i), code.wrapper(i), self._ctx_addr,
                          self._template.func_sigs[i], None)
            ref.owner = Func(self, index)
            self._funcrefs[index] = ref
        return ref

    def _global(self, index: int) -> Global:
        n = len(self._imported_globals)
        if index < n:
            return self._imported_globals[index]
        g = self._global_views.get(index)
        if g is None:
            own = index - n
            g = self._global_views[index] = Global.view(
                self._template.global_types[own],
                ctypes.addressof(self._global_cells) + 8 * own, self)
        return g

    def _init_globals(self) -> None:
        """The module's own globals at their initial values."""
        t = self._template
        if not t.global_types:
            return
        if t.global_image is not None:
            _memmove(self._global_cells, t.global_image, len(t.global_image))
            return
        n = len(self._imported_globals)
        for own, gdef in enumerate(self.compiled.module.globals):
            self._global(n + own).value = self._const(gdef.init)

    def _elem_array(self, k: int) -> Any:
        """Element segment k's entries for this instance: the template's image with this
        instance's context in its own functions' entries."""
        image = self._template.elems[k]
        n = image.count
        if image.words is None:  # not plain ref.func / ref.null: one by one
            arr = (abi.TableElem * max(n, 1))()
            for j, expr in enumerate(self.compiled.module.elems[k].items):
                ref = self._const_ref(expr)
                if ref is not None:
                    arr[j] = abi.TableElem(ref.internal, ref.wrapper, ref.vmctx, ref.sig)
            return arr
        if n == 0:
            return (abi.TableElem * 1)()
        words = array("Q", image.words)
        if image.own:
            # Every entry's context, nulls' and imports' included: a null's is never read
            # (its signature 0 traps first) and imports' are set next.
            words[2::4] = array("Q", [self._ctx_addr]) * n
        for j, imm in image.imports:
            ref = self._funcrefs[imm]
            words[4 * j:4 * j + 4] = array("Q", [ref.internal, ref.wrapper, ref.vmctx, ref.sig])
        return (abi.TableElem * n).from_buffer(words)

    def owner_of(self, wrapper: int, vmctx: int) -> Any:
        """The function (Func or host function) a table entry with this wrapper and
        context stands for, if it is one of this instance's; else None."""
        if vmctx == self._ctx_addr:
            index = self._wrapper_index().get(wrapper)
            return None if index is None else self._funcref(index).owner
        for ref in self._funcrefs[:self._nimp]:
            if ref.wrapper == wrapper and ref.vmctx == vmctx:
                return ref.owner
        return None

    def _wrapper_index(self) -> dict[int, int]:
        index = getattr(self, "_by_wrapper", None)
        if index is None:
            code, nimp = self._code, self._nimp
            index = self._by_wrapper = {code.wrapper(i): nimp + i
                                        for i in range(len(self._func_types) - nimp)}
        return index

    def table_keepalive(self, table: Table) -> None:
        table._instances.append(self)

    # --- constant expressions -----------------------------------------------------------
    def _const(self, expr: list[Instr]) -> int:
        op, imm, _ = expr[0]
        if op in (I32_CONST, I64_CONST):
            return imm
        if op == GLOBAL_GET:
            return self._global(imm).value
        if op in (0x43, 0x44):  # float constants: their bit patterns
            return imm
        raise Trap(TrapKind.HOST, f"unsupported constant expression opcode 0x{op:02x}")

    def _const_ref(self, expr: list[Instr]) -> FuncRef | None:
        op, imm, _ = expr[0]
        if op == REF_NULL:
            return None
        if op == REF_FUNC:
            return self._funcref(imm)
        raise Trap(TrapKind.HOST, f"unsupported element expression opcode 0x{op:02x}")

    def _initialise_segments(self, bulk: bool) -> None:
        m = self.compiled.module
        active_elems = [(k, s) for k, s in enumerate(m.elems) if s.mode == ELEM_ACTIVE]
        active_datas = [(k, s) for k, s in enumerate(m.datas) if s.mode == DATA_ACTIVE]
        if not bulk:
            # Wasm 1.0: every segment is checked before anything is written, and one that
            # does not fit makes the module unlinkable (bulk memory made it a trap).
            for _, seg in active_elems:
                if self._const(seg.offset_expr) % (1 << 32) + len(seg.items) > self.table.size:
                    raise LinkError("elements segment does not fit", offset=seg.offset)
            for _, seg in active_datas:
                off = self._const(seg.offset_expr) % (1 << 32)
                if off + len(seg.data) > self.memory.data_size:
                    raise LinkError("data segment does not fit", offset=seg.offset)
        for k, seg in active_elems:
            off = self._const(seg.offset_expr) % (1 << 32)
            n = len(seg.items)
            if off + n > self.table.size:
                raise Trap(TrapKind.TABLE_OUT_OF_BOUNDS, "out of bounds table access")
            ctypes.memmove(
                self.table.desc.elems + off * abi.ELEM_SIZE,
                ctypes.addressof(self._elem_arrays[k]),
                n * abi.ELEM_SIZE,
            )
            self._elem_descs[k].len = 0
        for k, seg in enumerate(m.elems):
            if seg.mode != ELEM_ACTIVE and seg.mode != 1:  # declarative: dropped at once
                self._elem_descs[k].len = 0
        for k, seg in active_datas:
            off = self._const(seg.offset_expr) % (1 << 32)
            if off + len(seg.data) > self.memory.data_size:
                raise Trap(TrapKind.MEMORY_OUT_OF_BOUNDS, "out of bounds memory access")
            if seg.data:
                self.memory.write(off, seg.data)
            self._data_descs[k].len = 0

    def _export_object(self, kind: int, index: int) -> Any:
        if kind == EXTERN_FUNC:
            return self._funcref(index).owner
        if kind == EXTERN_MEMORY:
            return self.memory
        if kind == EXTERN_TABLE:
            return self.table
        return self._global(index)

    # --- calls -------------------------------------------------------------------------------
    def invoke(self, name: str, *args: int) -> list[int]:
        """Call an exported function by name; results as a list of Python ints."""
        func = self.exports.get(name)
        if func is None:
            raise KeyError(f"no export named {name!r}")
        if not callable(func):
            raise TypeError(f"export {name!r} is not a function")
        return func(*args)

    def _call(self, index: int, args: Sequence[int]) -> list[int]:
        ft = self._func_types[index]
        if len(args) != len(ft.params):
            raise TypeError(f"function {index} takes {len(ft.params)} arguments, got {len(args)}")
        ref = self._funcref(index)
        if index < self._nimp:
            return ref.owner(*args)  # an imported function: call it where it lives
        n = max(len(ft.params), len(ft.results), 1)
        vals = (ctypes.c_uint64 * n)(*[to_carrier(a, t) for a, t in zip(args, ft.params,
                                                                          strict=True)])
        entry = ref.entry
        ctx = self.ctx
        vmctx = ref.vmctx
        if NATIVE_SWITCH:
            stack = _budget_stack()
            caller = stack[-1] if stack else 0  # the compiled code that called the host
            ctx.budget = (ctypes.c_int64.from_address(caller + abi.CTX_BUDGET).value
                          if caller else DEFAULT_STACK_BUDGET)
            status = call_compiled(entry, ref.wrapper, vmctx, None, ctypes.addressof(vals))
            if status == abi.STATUS_OK:
                return [from_carrier(vals[i], t) for i, t in enumerate(ft.results)]
            exc = None
            if status == abi.STATUS_HOST:
                exc = getattr(_exec, "pending", None)
                _exec.pending = None
            return self._ended(status, exc)

        def run() -> tuple[int, BaseException | None]:
            stack = _budget_stack()
            caller = stack[-1] if stack else 0  # the compiled code that called the host
            ctx.budget = (ctypes.c_int64.from_address(caller + abi.CTX_BUDGET).value
                          if caller else DEFAULT_STACK_BUDGET)
            status = entry(vmctx, None, ctypes.addressof(vals))
            exc = None
            if status == abi.STATUS_HOST:
                exc = getattr(_exec, "pending", None)
                _exec.pending = None
            return status, exc

        status, exc = run_on_big_stack(run)
        if status == abi.STATUS_OK:
            return [from_carrier(vals[i], t) for i, t in enumerate(ft.results)]
        return self._ended(status, exc)

    def call_void(self, index: int) -> bool:
        """Call function `index`, of type [] -> [] (a contract's main), with nothing to box
        or unbox: the per-message path of execute. True when it returned; False when a
        native host function ended the run (STATUS_EXIT: no exception for the common
        end of a contract, finish); raises for a trap or a host function's error."""
        entry = self._void_entry
        if entry is None or entry[0] != index:
            ft = self._func_types[index]
            if index < self._nimp or ft.params or ft.results or not NATIVE_SWITCH:
                try:
                    self._call(index, ())
                except NativeExit:
                    return False
                return True
            ref = self._funcref(index)
            vals = (ctypes.c_uint64 * 1)()
            entry = self._void_entry = (index, ref.entry, ref.wrapper, ref.vmctx, vals,
                                        ctypes.addressof(vals))
        _, fn, wrapper, vmctx, _, vals_addr = entry
        ctx = self.ctx
        try:
            stack = _exec.budgets
        except AttributeError:
            stack = _budget_stack()
        if stack and stack[-1]:  # the compiled code that called the host goes on with its budget
            ctx.budget = ctypes.c_int64.from_address(stack[-1] + abi.CTX_BUDGET).value
        else:
            ctx.budget = DEFAULT_STACK_BUDGET
        status = call_compiled(fn, wrapper, vmctx, None, vals_addr)
        if not status:
            return True
        if status == STATUS_EXIT:
            return False
        exc = None
        if status == abi.STATUS_HOST:
            exc = getattr(_exec, "pending", None)
            _exec.pending = None
        self._ended(status, exc)
        return True

    def _ended(self, status: int, exc: BaseException | None) -> list[int]:
        """Raise what a non-OK status from compiled code stands for."""
        ctx = self.ctx
        if status == abi.STATUS_TRAP:
            raise Trap.make(ctx.trap_code, func_index=ctx.trap_func, offset=ctx.trap_offset)
        if status == STATUS_EXIT:
            raise NativeExit
        if exc is not None:
            raise exc
        raise Trap(TrapKind.HOST, f"compiled code returned unknown status {status}")
