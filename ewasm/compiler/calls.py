"""Call lowering: direct calls, imported (host) calls and call_indirect, as a mixin of
the function-body lowerer (function.py), and the internal calling convention they share
with the rest of the compiler: how values travel (_LT), what internal functions return
(ret_type), which operands are IR constants (_is_literal).

Internal functions use the C calling convention (see abi.py) and take (ctx, budget[,
gas], params...); they return ret_type(...). Anything that may leave compiled code
(imports, another instance's table entries) goes through a wrapper, `i32 @w(ptr callee,
ptr caller, ptr vals)`, with the arguments and results in a buffer of i64 slots (see
wrapper.py)."""

from __future__ import annotations

from ..errors import TrapKind
from ..types import F32, F64, I32, I64, FuncType
from . import abi

_LT = {I32: "i32", I64: "i64", F32: "i32", F64: "i64"}  # floats travel as their bits


def ret_type(ft: FuncType, gas: bool = False) -> str:
    """Internal functions return {status, [gas,] results...}. With the engine's gas counter
    the counter travels in registers (an argument in, a field out) instead of through the
    context struct, so a tight metered loop has no store-to-load chain on its critical path."""
    if gas:
        return "{i32, i64" + "".join(", " + _LT[t] for t in ft.results) + "}"
    if not ft.results:
        return "i32"
    return "{i32, " + ", ".join(_LT[t] for t in ft.results) + "}"


class CallTable:
    """What one baseline partition's code calls, by slot (see abi.CTX_CALLS): a call loads
    its callee from the table instead of naming it, which keeps every call in FastISel
    under the large code model. Slots are given in the order of first use, so the table
    depends only on the module; slot 0 is the trap helper, which nearly every function
    may call."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.slots: dict[str, int] = {TRAP_HELPER: 0}

    def slot(self, symbol: str) -> int:
        s = self.slots.get(symbol)
        if s is None:
            s = self.slots[symbol] = len(self.slots)
        return s

    def symbol(self) -> str:
        return f"@ewasm.calls.{self.partition}"

    def definition(self) -> str:
        """The table's global (external beyond partition 0, whose root table names it)."""
        linkage = "internal " if self.partition == 0 else ""
        items = ", ".join(f"ptr {s}" for s in self.slots)
        return f"{self.symbol()} = {linkage}constant [{len(self.slots)} x ptr] [{items}]"


TRAP_HELPER = "@ewasm.trap"
GROW_HELPER = "@ewasm.memory_grow"


def _first_result(gas: bool) -> int:
    return 2 if gas else 1


def _is_literal(value: str) -> bool:
    """An operand that is a constant in the IR (pushed by i32.const / i64.const)."""
    return value[0] != "%"


class CallLowering:
    """Call handlers for _FuncLowerer; uses its stack, emit helpers and gas methods."""

    def vbuf(self, n: int) -> str:
        self.vbuf_slots = max(self.vbuf_slots, n, 1)
        return "%vbuf"

    def _call_results_from(self, r: str, rt: str, results: tuple[int, ...]) -> None:
        for k, t in enumerate(results):
            v = self.tmp()
            self.emit(f"{v} = extractvalue {rt} {r}, {k + self.first}")
            self.push(_LT[t], v)

    def _call_wrapper(self, fn: str, fctx: str, ft: FuncType, args) -> str:
        """Call through the wrapper ABI; returns the status. Results land in the buffer."""
        buf = self.vbuf(max(len(ft.params), len(ft.results)))
        bp = self.tmp()
        self.emit(f"{bp} = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_BUDGET}")
        self.emit(f"store i64 {self.budget}, ptr {bp}")
        for k, (t, v) in enumerate(args):
            if t == "i32":
                w = self.tmp()
                self.emit(f"{w} = zext i32 {v} to i64")
                v = w
            p = self.gep(buf, 8 * k)
            self.emit(f"store i64 {v}, ptr {p}")
        st = self.tmp()
        self.emit(f"{st} = call i32 {fn}(ptr {fctx}, ptr %ctx, ptr {buf})")
        return st

    def _wrapper_results(self, ft: FuncType) -> list[tuple[str, str]]:
        out = []
        for k, t in enumerate(ft.results):
            p = self.gep("%vbuf", 8 * k)
            w = self.tmp()
            self.emit(f"{w} = load i64, ptr {p}")
            if _LT[t] == "i32":
                n = self.tmp()
                self.emit(f"{n} = trunc i64 {w} to i32")
                w = n
            out.append((_LT[t], w))
        return out

    def h_call(self, op, imm, off):
        if imm == self.ml.gas_import:
            self.use_gas(off)
            return
        ft = self.ml.func_types[imm]
        args = self.popn(len(ft.params))
        if imm < self.ml.num_imported:
            if not self.need_imports:
                self.need_imports = True
                self.entry.append(f"  %imps.p = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_IMPORTS}")
                self.entry.append("  %imps = load ptr, ptr %imps.p")
            ent = self.gep("%imps", imm * abi.IMPORT_SIZE)
            fn, fctx = self.tmp(), self.tmp()
            self.emit(f"{fn} = load ptr, ptr {ent}")
            cp = self.gep(ent, abi.IMPORT_VMCTX)
            self.emit(f"{fctx} = load ptr, ptr {cp}")
            self.gas_to_ctx()
            st = self._call_wrapper(fn, fctx, ft, args)
            self.gas_from_ctx()
            self.check_status(st)
            for t, v in self._wrapper_results(ft):
                self.push(t, v)
            self.reload_memory()
            return
        rt = ret_type(ft, self.gas)
        self.callees.add(imm)
        # A member of a group (group.py, the baseline tier) is its group's function and
        # a selector.
        symbol, selector = self.ml.grouped.get(imm, (f"@f{imm}", None))
        arglist = ", ".join(["ptr %ctx", f"i64 {self.budget}"] + self.gas_arg()
                            + ([] if selector is None else [f"i32 {selector}"])
                            + [f"{t} {v}" for t, v in args])
        fn = self.call_operand(symbol)
        r = self.tmp()
        self.emit(f"{r} = call {rt} {fn}({arglist})")
        self.gas_from_call(r, rt)
        if ft.results or self.gas:
            st = self.tmp()
            self.emit(f"{st} = extractvalue {rt} {r}, 0")
        else:
            st = r
        self.check_status(st)
        self._call_results_from(r, rt, ft.results)
        self.reload_memory()

    def h_call_indirect(self, op, imm, off):
        type_index = imm[0]
        ft = self.module.types[type_index]
        _, idx = self.pop()
        args = self.popn(len(ft.params))
        size, elems = self.table_size_and_elems()
        i64 = self.tmp()
        self.emit(f"{i64} = zext i32 {idx} to i64")
        oob = self.tmp()
        self.emit(f"{oob} = icmp uge i64 {i64}, {size}")
        self.trap_if(oob, int(TrapKind.UNDEFINED_ELEMENT), off)
        eo = self.tmp()
        self.emit(f"{eo} = mul i64 {i64}, {abi.ELEM_SIZE}")
        ep = self.gep(elems, eo)
        sp = self.gep(ep, abi.ELEM_SIG)
        sig = self.tmp()
        self.emit(f"{sig} = load i64, ptr {sp}")
        isnull = self.tmp()
        self.emit(f"{isnull} = icmp eq i64 {sig}, 0")
        self.trap_if(isnull, int(TrapKind.UNINITIALIZED_ELEMENT), off)
        if not self.need_sigs:
            self.need_sigs = True
            self.entry.append(f"  %sigs.p = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_SIG_IDS}")
            self.entry.append("  %sigs = load ptr, ptr %sigs.p")
        xp = self.gep("%sigs", 8 * type_index)
        expected, mismatch = self.tmp(), self.tmp()
        self.emit(f"{expected} = load i64, ptr {xp}")
        self.emit(f"{mismatch} = icmp ne i64 {sig}, {expected}")
        self.trap_if(mismatch, int(TrapKind.INDIRECT_CALL_TYPE_MISMATCH), off)
        vp = self.gep(ep, abi.ELEM_VMCTX)
        vmctx, same = self.tmp(), self.tmp()
        self.emit(f"{vmctx} = load ptr, ptr {vp}")
        self.emit(f"{same} = icmp eq ptr {vmctx}, %ctx")
        direct, cross, join = self.label("direct"), self.label("cross"), self.label("join")
        self.emit(f"br i1 {same}, label %{direct}, label %{cross}")
        # Same instance: call the internal entry directly.
        self.start_block(direct)
        rt = ret_type(ft, self.gas)
        fn = self.tmp()
        self.emit(f"{fn} = load ptr, ptr {ep}")
        arglist = ", ".join(["ptr %ctx", f"i64 {self.budget}"] + self.gas_arg()
                            + [f"{t} {v}" for t, v in args])
        r = self.tmp()
        self.emit(f"{r} = call {rt} {fn}({arglist})")
        self.gas_from_call(r, rt)
        if ft.results or self.gas:
            st1 = self.tmp()
            self.emit(f"{st1} = extractvalue {rt} {r}, 0")
        else:
            st1 = r
        direct_vals = []
        for k, t in enumerate(ft.results):
            v = self.tmp()
            self.emit(f"{v} = extractvalue {rt} {r}, {k + self.first}")
            direct_vals.append((_LT[t], v))
        direct_end = self.cur
        self.emit(f"br label %{join}")
        # Another instance (or a host function): go through its wrapper.
        self.start_block(cross)
        wp = self.gep(ep, abi.ELEM_WRAPPER)
        w = self.tmp()
        self.emit(f"{w} = load ptr, ptr {wp}")
        self.gas_to_ctx()
        st2 = self._call_wrapper(w, vmctx, ft, args)
        self.gas_from_ctx()
        cross_vals = self._wrapper_results(ft)
        cross_end = self.cur
        self.emit(f"br label %{join}")
        self.start_block(join)
        st = self.tmp()
        self.emit(f"{st} = phi i32 [{st1}, %{direct_end}], [{st2}, %{cross_end}]")
        merged = []
        for (t, a), (_, b) in zip(direct_vals, cross_vals, strict=True):
            v = self.tmp()
            self.emit(f"{v} = phi {t} [{a}, %{direct_end}], [{b}, %{cross_end}]")
            merged.append((t, v))
        self.check_status(st)
        for t, v in merged:
            self.push(t, v)
        self.reload_memory()

