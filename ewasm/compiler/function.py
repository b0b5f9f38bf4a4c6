"""The function-body lowerer: one Wasm function -> the text of one LLVM function.

The Wasm operand stack is simulated at compile time as a list of SSA values; locals and
branch values live in allocas that SROA promotes to SSA registers. Every trap is an
explicit branch to the function's single trap block, which records (trap code, function
index, byte offset) in the context and returns a status. Every instruction, control flow
included, is lowered by a handler in _HANDLERS; call and gas handling come from the
CallLowering (calls.py) and GasLowering (gas.py) mixins."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NoReturn

from ..decoder import block_signature
from ..errors import CompileError, TrapKind
from ..module import EXTERN_FUNC, Function, Module
from ..opcodes import (
    BLOCK,
    BR,
    BR_IF,
    BR_TABLE,
    CALL,
    CALL_INDIRECT,
    DATA_DROP,
    DROP,
    ELEM_DROP,
    ELSE,
    END,
    GLOBAL_GET,
    GLOBAL_SET,
    I32_CONST,
    I64_CONST,
    IF,
    LOCAL_GET,
    LOCAL_SET,
    LOCAL_TEE,
    LOOP,
    MEMORY_COPY,
    MEMORY_FILL,
    MEMORY_GROW,
    MEMORY_INIT,
    MEMORY_SIZE,
    NOP,
    OPS,
    REF_FUNC,
    RETURN,
    SELECT,
    TABLE_COPY,
    TABLE_INIT,
    UNREACHABLE,
)
from . import abi
from .bounds import BoundsVersioning
from .calls import (
    _LT,
    GROW_HELPER,
    TRAP_HELPER,
    CallLowering,
    CallTable,
    _first_result,
    _is_literal,
    ret_type,
)
from .gas import GasLowering

# Opcodes that opcodes.py has no constant for, by their text-format name.
_OP = {info.name: code for code, info in OPS.items()}
I32_EQZ, I64_EQZ = _OP["i32.eqz"], _OP["i64.eqz"]

# Frame cost in budget units: a fixed charge per call plus the Wasm-level frame size
# (locals and operand-stack height) plus one unit per BODY_INSTRUCTIONS_PER_UNIT
# instructions of the body. The last term bounds native frames by the budget: the
# baseline tier's register allocator gives every value that lives across a basic block
# its own stack slot, so its frames grow with the body (measured at most ~16 bytes per
# instruction, real contracts 3-5), and without the term a long function recursing
# would overflow the native stack long before its budget ran out.
CALL_BASE_COST = 8
BODY_INSTRUCTIONS_PER_UNIT = 8
# Leaf functions up to this many instructions are forced inline into their callers.
INLINE_LIMIT = 48

TRAP_CODE_SHIFT = abi.TRAP_CODE_SHIFT

# The metadata node of the branch weights of a rarely taken branch (see _assemble).
UNLIKELY = 0

# Functions up to this many instructions keep the engine's gas counter in a register on
# the baseline tier (see _FuncLowerer).
GAS_REGISTER_MAX_INSTRUCTIONS = 160

_INT_TYPES = ("i32", "i64")
# Where control arrives from more than one place.
_MERGES = frozenset({LOOP, ELSE, END})
# Wasm name -> LLVM instruction (or funnel-shift intrinsic, for the rotations).
_BINOPS = {_OP[f"{t}.{name}"]: (llvm, t) for t in _INT_TYPES for name, llvm in (
    ("add", "add"), ("sub", "sub"), ("mul", "mul"), ("and", "and"), ("or", "or"),
    ("xor", "xor"), ("shl", "shl"), ("shr_s", "ashr"), ("shr_u", "lshr"), ("rotl", "rotl"),
    ("rotr", "rotr"))}
_DIVOPS = {_OP[f"{t}.{name}"]: (llvm, t) for t in _INT_TYPES for name, llvm in (
    ("div_s", "sdiv"), ("div_u", "udiv"), ("rem_s", "srem"), ("rem_u", "urem"))}
_CMPOPS = {_OP[f"{t}.{name}"]: (pred, t) for t in _INT_TYPES for name, pred in (
    ("eq", "eq"), ("ne", "ne"), ("lt_s", "slt"), ("lt_u", "ult"), ("gt_s", "sgt"),
    ("gt_u", "ugt"), ("le_s", "sle"), ("le_u", "ule"), ("ge_s", "sge"), ("ge_u", "uge"))}
_UNOPS = {_OP[f"{t}.{name}"]: (llvm, t) for t in _INT_TYPES for name, llvm in (
    ("clz", "ctlz"), ("ctz", "cttz"), ("popcnt", "ctpop"))}
# (op) -> (from, to, how): conversions between integer widths and sign extensions.
_CONVOPS = {_OP["i32.wrap_i64"]: ("i64", "i32", "trunc"),
            _OP["i64.extend_i32_s"]: ("i32", "i64", "sext"),
            _OP["i64.extend_i32_u"]: ("i32", "i64", "zext")}
_EXTOPS = {_OP["i32.extend8_s"]: ("i32", "i8"), _OP["i32.extend16_s"]: ("i32", "i16"),
           _OP["i64.extend8_s"]: ("i64", "i8"), _OP["i64.extend16_s"]: ("i64", "i16"),
           _OP["i64.extend32_s"]: ("i64", "i32")}
# load op -> (result type, memory type, extension, width)
_LOADOPS = {_OP[name]: kind for name, kind in (
    ("i32.load", ("i32", "i32", None, 4)), ("i64.load", ("i64", "i64", None, 8)),
    ("i32.load8_s", ("i32", "i8", "sext", 1)), ("i32.load8_u", ("i32", "i8", "zext", 1)),
    ("i32.load16_s", ("i32", "i16", "sext", 2)), ("i32.load16_u", ("i32", "i16", "zext", 2)),
    ("i64.load8_s", ("i64", "i8", "sext", 1)), ("i64.load8_u", ("i64", "i8", "zext", 1)),
    ("i64.load16_s", ("i64", "i16", "sext", 2)), ("i64.load16_u", ("i64", "i16", "zext", 2)),
    ("i64.load32_s", ("i64", "i32", "sext", 4)), ("i64.load32_u", ("i64", "i32", "zext", 4)))}
# store op -> (value type, memory type, width)
_STOREOPS = {_OP[name]: kind for name, kind in (
    ("i32.store", ("i32", "i32", 4)), ("i64.store", ("i64", "i64", 8)),
    ("i32.store8", ("i32", "i8", 1)), ("i32.store16", ("i32", "i16", 2)),
    ("i64.store8", ("i64", "i8", 1)), ("i64.store16", ("i64", "i16", 2)),
    ("i64.store32", ("i64", "i32", 4)))}

_MEMORY_OPS = frozenset({*_LOADOPS, *_STOREOPS, MEMORY_SIZE, MEMORY_GROW, MEMORY_INIT,
                         MEMORY_COPY, MEMORY_FILL})

# Instructions that cannot trap, have no effect outside the function's locals and never
# read the gas counter: a deferred charge (gas.py) may wait past them. `block` too (its
# end and every branch out flush); `if` carries the charges into both arms.
_GAS_TRANSPARENT = frozenset({I32_CONST, I64_CONST, LOCAL_GET, LOCAL_SET, LOCAL_TEE,
                              GLOBAL_GET, DROP, SELECT, I32_EQZ, I64_EQZ, NOP, MEMORY_SIZE,
                              BLOCK, IF, *_BINOPS, *_CMPOPS, *_UNOPS, *_CONVOPS, *_EXTOPS})

_T_OOB = int(TrapKind.MEMORY_OUT_OF_BOUNDS)
_T_TABLE_OOB = int(TrapKind.TABLE_OUT_OF_BOUNDS)


def _trap_info(code: int, offset: int) -> int:
    return (int(code) << TRAP_CODE_SHIFT) | offset


# The memory's base and size, cached in allocas (SROA makes them registers); reloaded after
# anything that can grow the memory.
_MEMORY_SETUP = [
    "  %mdesc = load ptr, ptr %ctx",
    "  %mbase = alloca ptr",
    "  %msize = alloca i64",
    "  %mb0 = load ptr, ptr %mdesc",
    "  store ptr %mb0, ptr %mbase",
    f"  %msize.p = getelementptr inbounds i8, ptr %mdesc, i64 {abi.MEM_SIZE}",
    "  %ms0 = load i64, ptr %msize.p",
    "  store i64 %ms0, ptr %msize",
]


def _check_compilable_type(t: int, func_index: int) -> None:
    if t not in _LT:
        raise CompileError(f"value type 0x{t:02x} is not supported", func_index=func_index)


@dataclass
class _Frame:
    kind: str  # "func" | "block" | "loop" | "if"
    params: tuple[str, ...]
    results: tuple[str, ...]
    height: int
    label: str  # branch target
    end_label: str
    slots: list[str] = field(default_factory=list)  # branch-value allocas
    reachable_end: bool = False
    else_label: str | None = None
    if_params: list[tuple[str, str]] | None = None
    has_else: bool = False
    dead_outer: bool = False  # was the code before this frame dead (only for dead nesting)
    gas_at_if: list[tuple[int, int]] = field(default_factory=list)  # deferred charges
    # Split functions only (split.py): the label is entered from another segment, so
    # the stack below `height` and the branch values pass through the frame in memory.
    entry: bool = False
    else_entry: bool = False  # the same for an if's else label


class ModuleLowering:
    """Shared facts about the module that every function's lowering needs."""

    def __init__(self, module: Module, gas_import: int | None = None,
                 optimizing: bool = False) -> None:
        self.module = module
        # Lowering for the optimising tier: IR shaped for LLVM's passes rather than for
        # the fewest blocks (trap sites out of line, checked ranges versioned).
        self.optimizing = optimizing
        # Function index of an `ethereum.useGas` import that the engine implements inline.
        self.gas_import = gas_import
        self.func_types = module.all_func_types()
        self.num_imported = module.num_imported_funcs
        self.global_types = module.all_global_types()
        self.has_memory = bool(module.all_memories())
        # Functions that can be entered from outside compiled code (exports, the start
        # function, table elements) get a wrapper; the others are only called directly,
        # and a wrapper each would double the IR of a module of many small functions.
        self.escaping: set[int] = {e.index for e in module.exports if e.kind == EXTERN_FUNC}
        if module.start is not None:
            self.escaping.add(module.start)
        for seg in module.elems:
            for expr in seg.items:
                if expr and expr[0][0] == REF_FUNC:
                    self.escaping.add(expr[0][1])
        self.inline: set[int] = set()
        for i, fn in enumerate(module.codes):
            if len(fn.body) <= INLINE_LIMIT and not any(
                op in (CALL, CALL_INDIRECT) for op, _, _ in fn.body
            ):
                self.inline.add(self.num_imported + i)
        # The baseline tier's call table of the partition being lowered (calls.CallTable,
        # set by partition.lower_baseline_partitions); None: calls name their callee.
        self.calls: CallTable | None = None
        # Functions lowered as members of a group (group.py, the baseline tier): index ->
        # (the group's symbol, the member's selector).
        self.grouped: dict[int, tuple[str, int]] = {}

class _FuncLowerer(CallLowering, GasLowering, BoundsVersioning):
    def __init__(self, ml: ModuleLowering, idx: int, fn: Function) -> None:
        self.ml = ml
        self.module = ml.module
        self.idx = idx
        self.fn = fn
        self.ft = ml.func_types[idx]
        self.gas = ml.gas_import is not None
        self.rt = ret_type(self.ft, self.gas)
        self.first = _first_result(self.gas)
        # Where the counter lives inside this function. On the optimising tier, in a
        # register (an alloca that SROA promotes): a charge is one sub. On the baseline
        # tier, which promotes nothing, a big function keeps it in the context slot.
        big = len(fn.body) > GAS_REGISTER_MAX_INSTRUCTIONS
        self.gas_in_register = ml.optimizing or not big
        # Each charge's result passes through an empty asm: otherwise instcombine folds
        # consecutive charges into subs from an earlier value, which then stays live
        # beside the running one (two registers for the counter). Measured metered /
        # unmetered: sha256 1.17 -> 1.06 (its compression loop spilled), ecpairing main
        # 1.46 (the counter in the context) -> 1.17 (in a register) -> 1.05.
        self.gas_barrier = ml.optimizing
        self.n = 0  # SSA name counter
        self.budget = "%budget"  # the call-depth budget left inside this function
        self.out: list[str] = []
        self.entry: list[str] = []  # allocas and invariant loads, assembled at the end
        self.stack: list[tuple[str, str]] = []
        self.max_height = 0
        self.frames: list[_Frame] = []
        self.dead = False
        self.cur = "b0"
        self.has_trap = False  # a trap site exists (the trap block is needed)
        self.has_prop = False  # a call status is checked (the propagation block is needed)
        self.local_types: list[str] = []
        self.globals_used: set[int] = set()
        self.need_imports = False
        self.need_table = False
        self.need_sigs = False
        self.need_elem_segs = False
        self.need_data_segs = False
        self.need_calls = False  # the partition's call table is loaded in the entry block
        self.vbuf_slots = 0
        self.deferred: list[str] = []
        self.callees: set[int] = set()
        self.pc = 0  # index of the instruction being lowered
        self.dead_depth = 0  # blocks opened inside dead code
        self.last_memory_op = -1  # index of the body's last memory instruction
        self.loops = 0  # loops open

    # --- small helpers ------------------------------------------------------------------
    def tmp(self) -> str:
        self.n += 1
        return f"%t{self.n}"

    def label(self, hint: str = "b") -> str:
        self.n += 1
        return f"{hint}{self.n}"

    def emit(self, line: str) -> None:
        self.out.append("  " + line)

    def start_block(self, name: str) -> None:
        self.out.append(f"{name}:")
        self.cur = name

    def push(self, ty: str, val: str) -> None:
        self.stack.append((ty, val))
        if len(self.stack) > self.max_height:
            self.max_height = len(self.stack)

    def pop(self) -> tuple[str, str]:
        return self.stack.pop()

    def popn(self, n: int) -> list[tuple[str, str]]:
        if n == 0:
            return []
        vals = self.stack[-n:]
        del self.stack[-n:]
        return vals

    # Trap sites and failed calls reach the function's shared trap and propagation blocks
    # through a small block of their own that stores what happened in an alloca. A phi
    # in the shared block would have one entry per site, and LLVM's instruction
    # selection looks up a phi's entry per predecessor: quadratic in the sites.
    def _trap_site(self, code: int | str, offset: int, prelude: tuple[str, ...] = ()) -> str:
        """A block that records (code, offset) and jumps to the trap block; its label.
        On the optimising tier the site calls the trap helper itself: a shared block's
        phi of trap codes would be materialised on the hot path, one 64-bit constant
        in a register per site (the movabs LLVM hoists to a function's entry)."""
        name = self.label("tr")
        lines = [f"{name}:", *prelude]
        if isinstance(code, int):
            info = str((code << TRAP_CODE_SHIFT) | offset)
        else:
            w, sh, info = self.tmp(), self.tmp(), self.tmp()
            lines += [f"  {w} = zext i32 {code} to i64",
                      f"  {sh} = shl i64 {w}, {TRAP_CODE_SHIFT}",
                      f"  {info} = or i64 {sh}, {offset}"]
        if self.ml.optimizing:
            lines.append(f"  call void {TRAP_HELPER}(ptr %ctx, i32 {self.idx}, i64 {info})")
            lines.append("  br label %trapped")
        else:
            lines.append(f"  store i64 {info}, ptr %trapinfo")
            lines.append("  br label %trap")
        self.deferred.extend(lines)
        self.has_trap = True
        return name

    def trap_if(self, cond: str, code: int | str, offset: int,
                prelude: tuple[str, ...] = ()) -> None:
        """Branch to the trap block when cond holds; continue in a fresh block. On the
        baseline tier a static code is recorded before the branch (one store, no extra
        block: fewer blocks make its code generation faster); otherwise in a site block
        of its own (_trap_site), which runs `prelude` first."""
        ok = self.label("ok")
        if isinstance(code, int) and not self.ml.optimizing and not prelude:
            self.emit(f"store i64 {(code << TRAP_CODE_SHIFT) | offset}, ptr %trapinfo")
            self.emit(f"br i1 {cond}, label %trap, label %{ok}")
            self.has_trap = True
        else:
            site = self._trap_site(code, offset, prelude)
            self.emit(f"br i1 {cond}, label %{site}, label %{ok}{self.cold}")
        self.start_block(ok)

    def trap_now(self, code: int, offset: int) -> None:
        self.emit(f"br label %{self._trap_site(code, offset)}")

    @property
    def cold(self) -> str:
        """Branch weights for a branch whose taken side is a trap: on the optimising tier,
        so that block placement keeps the hot path falling through."""
        return f", !prof !{UNLIKELY}" if self.ml.optimizing else ""

    def check_status(self, st: str) -> None:
        bad = self.tmp()
        self.emit(f"{bad} = icmp ne i32 {st}, 0")
        ok = self.label("ok")
        # Recorded before the branch, as a static trap code (see trap_if).
        self.emit(f"store i32 {st}, ptr %propst")
        # A failed callee is rare: on the optimising tier the weights keep the success
        # path the fall-through (a taken jump per return path, otherwise).
        weights = f", !prof !{UNLIKELY}" if self.ml.optimizing else ""
        self.emit(f"br i1 {bad}, label %prop, label %{ok}{weights}")
        self.has_prop = True
        self.start_block(ok)

    def ctx_field(self, offset: int, ty: str = "ptr") -> str:
        p = self.tmp()
        self.entry.append(f"  {p}.p = getelementptr inbounds i8, ptr %ctx, i64 {offset}")
        self.entry.append(f"  {p} = load {ty}, ptr {p}.p")
        return p

    def call_operand(self, symbol: str) -> str:
        """What a call instruction names to reach `symbol`: the symbol itself, or on the
        baseline tier the pointer loaded from the partition's call table (emitted here)."""
        if self.ml.calls is None:
            return symbol
        lines, fn = self.table_entry(symbol, in_entry=True)
        self.out += lines
        return fn

    def table_entry(self, symbol: str, in_entry: bool) -> tuple[list[str], str]:
        """Lines that load `symbol`'s slot of the call table, and the pointer they load.
        in_entry: the table's address is loaded once in the entry block (for calls in the
        body); else where it is used (the trap block of a function that calls nothing:
        no load on its path in)."""
        table = self.ml.calls
        slot = table.slot(symbol)
        lines = []
        if in_entry or self.need_calls:
            if not self.need_calls:
                self.need_calls = True
                self.entry += self._table_address("%calls")
            base = "%calls"
        else:
            base = self.tmp()
            lines += self._table_address(base)
        fn = self.tmp()
        if slot:
            p = self.tmp()
            lines.append(f"  {p} = getelementptr inbounds i8, ptr {base}, i64 {8 * slot}")
            base = p
        lines.append(f"  {fn} = load ptr, ptr {base}")
        return lines, fn

    def _table_address(self, name: str) -> list[str]:
        offset = 8 * self.ml.calls.partition
        return [f"  {name}.p = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_CALLS}",
                f"  {name}.r = load ptr, ptr {name}.p",
                f"  {name}.q = getelementptr inbounds i8, ptr {name}.r, i64 {offset}",
                f"  {name} = load ptr, ptr {name}.q"]

    def gep(self, base: str, off) -> str:
        p = self.tmp()
        self.emit(f"{p} = getelementptr inbounds i8, ptr {base}, i64 {off}")
        return p

    def reload_memory(self) -> None:
        """After a call (or memory.grow): the memory may have grown. Not needed when no
        memory instruction can run after this point in the function."""
        if not self.uses_memory or (self.pc > self.last_memory_op and not self.loops):
            return
        b = self.tmp()
        self.emit(f"{b} = load ptr, ptr %mdesc")
        self.emit(f"store ptr {b}, ptr %mbase")
        s = self.tmp()
        self.emit(f"{s} = load i64, ptr %msize.p")
        self.emit(f"store i64 {s}, ptr %msize")

    def mem_size(self) -> str:
        s = self.tmp()
        self.emit(f"{s} = load i64, ptr %msize")
        return s

    def mem_base(self) -> str:
        b = self.tmp()
        self.emit(f"{b} = load ptr, ptr %mbase")
        return b

    def mem_check(self, ea: str, width: int | str, offset: int) -> None:
        if _is_literal(ea) and isinstance(width, int):
            end = str(int(ea) + width)
        else:
            end = self.tmp()
            self.emit(f"{end} = add i64 {ea}, {width}")
        size = self.mem_size()
        oob = self.tmp()
        self.emit(f"{oob} = icmp ugt i64 {end}, {size}")
        self.trap_if(oob, _T_OOB, offset)

    def effective_address(self, addr: str, mem_offset: int) -> str:
        if _is_literal(addr):
            return str((int(addr) & 0xFFFFFFFF) + mem_offset)
        ea = self.tmp()
        self.emit(f"{ea} = zext i32 {addr} to i64")
        if mem_offset:
            ea2 = self.tmp()
            self.emit(f"{ea2} = add i64 {ea}, {mem_offset}")
            return ea2
        return ea

    def new_slots(self, types: tuple[str, ...]) -> list[str]:
        slots = []
        for t in types:
            s = self.tmp()
            self.entry.append(f"  {s} = alloca {t}")
            slots.append(s)
        return slots

    def store_slots(self, frame_slots: list[str], vals: list[tuple[str, str]]) -> None:
        for slot, (t, v) in zip(frame_slots, vals, strict=True):
            self.emit(f"store {t} {v}, ptr {self.slot_ptr(slot)}")

    def load_slots(self, slots: list[str], types: tuple[str, ...]) -> None:
        for slot, t in zip(slots, types, strict=True):
            v = self.tmp()
            self.emit(f"{v} = load {t}, ptr {self.slot_ptr(slot)}")
            self.push(t, v)

    # Hooks that split.py overrides: in a function lowered whole, locals and branch slots
    # are allocas and every label is in this one LLVM function.
    def slot_ptr(self, slot: str) -> str:
        return slot

    def local_ptr(self, k: int) -> str:
        return f"%l{k}"

    def direct(self, label: str) -> bool:
        """Can a branch instruction name `label` (is it in this LLVM function)?"""
        return True

    def goto(self, label: str) -> None:
        self.emit(f"br label %{label}")

    def enter_frame(self, fr: _Frame) -> None:
        """A control frame is being pushed (its parameters are still on the stack)."""

    def leave_frame(self, fr: _Frame) -> None:
        """A control frame was popped at its end."""

    def at_label(self, fr: _Frame, height: int) -> None:
        """The code of a label of `fr` starts; the stack below `height` is the label's."""

    def emit_return(self, vals: list[tuple[str, str]]) -> None:
        if not self.ft.results and not self.gas:
            self.emit("ret i32 0")
            return
        acc = "undef"
        r = self.tmp()
        self.emit(f"{r} = insertvalue {self.rt} {acc}, i32 0, 0")
        acc = r
        if self.gas:
            g, r = self.tmp(), self.tmp()
            self.emit(f"{g} = load i64, ptr %gas")
            self.emit(f"{r} = insertvalue {self.rt} {acc}, i64 {g}, 1")
            acc = r
        for k, (t, v) in enumerate(vals):
            r = self.tmp()
            self.emit(f"{r} = insertvalue {self.rt} {acc}, {t} {v}, {k + self.first}")
            acc = r
        self.emit(f"ret {self.rt} {acc}")

    def branch_to(self, depth: int) -> None:
        """Unconditional branch to a label; the caller marks the code after it dead."""
        frame = self.frames[-1 - depth]
        if frame.kind == "func":
            self.emit_return(self.stack[len(self.stack) - len(frame.results):])
            return
        arity = frame.params if frame.kind == "loop" else frame.results
        vals = self.stack[len(self.stack) - len(arity):] if arity else []
        self.store_slots(frame.slots, vals)
        if frame.kind != "loop":
            frame.reachable_end = True
        self.goto(frame.label)

    def edge_to(self, depth: int) -> str:
        """A block that passes the branch values to the target; returns its label."""
        frame = self.frames[-1 - depth]
        arity = frame.params if frame.kind == "loop" else frame.results
        if frame.kind != "func" and not arity and self.direct(frame.label):
            if frame.kind != "loop":
                frame.reachable_end = True
            return frame.label
        # Edge blocks are written aside and appended after the body, so that they never
        # land in the middle of the block being emitted.
        saved_out, saved_cur = self.out, self.cur
        self.out = []
        name = self.label("edge")
        self.start_block(name)
        self.branch_to(depth)
        self.deferred.extend(self.out)
        self.out, self.cur = saved_out, saved_cur
        return name

    # --- the function ---------------------------------------------------------------
    def lower(self) -> str:
        fn, ft, idx = self.fn, self.ft, self.idx
        for t in ft.params + tuple(fn.locals):
            _check_compilable_type(t, idx)
        for t in ft.results:
            _check_compilable_type(t, idx)
        params = [(_LT[t], f"%p{k}") for k, t in enumerate(ft.params)]
        self.local_types = [_LT[t] for t in ft.params] + [_LT[t] for t in fn.locals]
        for k, lt in enumerate(self.local_types):
            self.entry.append(f"  %l{k} = alloca {lt}")
        for k, (lt, name) in enumerate(params):
            self.entry.append(f"  store {lt} {name}, ptr %l{k}")
        for k in range(len(params), len(self.local_types)):
            self.entry.append(f"  store {self.local_types[k]} 0, ptr %l{k}")
        self.scan_memory()
        if self.uses_memory:
            self.entry += _MEMORY_SETUP
        self.init_bounds()

        results = tuple(_LT[t] for t in ft.results)
        func_frame = _Frame("func", (), results, 0, "ret", "ret")
        self.frames.append(func_frame)
        self.start_block("b0")
        self._body()

        cost = (CALL_BASE_COST + len(self.local_types) + self.max_height
                + len(fn.body) // BODY_INSTRUCTIONS_PER_UNIT)
        # The shared trap block: record what and where, then unwind by status. (Before
        # the entry block is written: it may load the call table there.)
        tail = ["trap:", "  %ti = load i64, ptr %trapinfo"]
        tail += self.helper_call(TRAP_HELPER, f"ptr %ctx, i32 {idx}, i64 %ti")
        if self.ml.optimizing:
            tail += ["  br label %trapped", "trapped:"]
        tail += self._status_return(str(abi.STATUS_TRAP), "tr")
        if self.has_prop:
            tail.append("prop:")
            tail.append("  %ps = load i32, ptr %propst")
            tail += self._status_return("%ps", "pr")
        tail.append("}")
        attrs = "#1" if idx in self.ml.inline else "#0"
        gas_param = ["i64 %gas.in"] if self.gas else []
        sig = ", ".join(["ptr %ctx", "i64 %budget.in"] + gas_param
                        + [f"{lt} {n}" for lt, n in params])
        # A cache line's alignment on the optimising tier: at the default 16, where a hot
        # recursive function fell within its lines changed from one load to the next,
        # and metered fib_naive(30) ran 1.045x or 1.12x its unmetered time by that alone.
        align = " align 64" if self.ml.optimizing else ""
        text = [f"define @@LINKAGE@@{self.rt} @f{idx}({sig}) {attrs}{align} {{", "entry:"]
        if self.gas and self.gas_in_register:
            # An alloca that sroa turns into SSA values: the counter lives in a register.
            text += ["  %gas = alloca i64", "  store i64 %gas.in, ptr %gas"]
        elif self.gas:
            text += [f"  %gas = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_GAS}",
                     "  store i64 %gas.in, ptr %gas"]
        text += self.entry
        text.append("  %trapinfo = alloca i64")
        if self.has_prop:
            text.append("  %propst = alloca i32")
        if self.vbuf_slots:
            text.append(f"  %vbuf = alloca [{self.vbuf_slots} x i64], align 8")
        text.append(f"  %budget = sub i64 %budget.in, {cost}")
        text.append("  %exhausted = icmp slt i64 %budget, 0")
        # Recorded before the branch, as a static trap code (see trap_if).
        text.append(f"  store i64 {_trap_info(TrapKind.CALL_STACK_EXHAUSTED, fn.offset)}, "
                    "ptr %trapinfo")
        text.append(f"  br i1 %exhausted, label %trap, label %b0{self.cold}")
        text += self.out
        text += self.deferred
        text += tail
        return "\n".join(text)

    def helper_call(self, symbol: str, args: str) -> list[str]:
        """A void call of a helper in an out-of-line block (the trap block)."""
        if self.ml.calls is None:
            return [f"  call void {symbol}({args})"]
        lines, fn = self.table_entry(symbol, in_entry=False)
        return lines + [f"  call void {fn}({args})"]

    def _status_return(self, status: str, tag: str) -> list[str]:
        if self.gas:
            return [f"  %{tag}r0 = insertvalue {self.rt} undef, i32 {status}, 0",
                    f"  %{tag}g = load i64, ptr %gas",
                    f"  %{tag}r = insertvalue {self.rt} %{tag}r0, i64 %{tag}g, 1",
                    f"  ret {self.rt} %{tag}r"]
        if not self.ft.results:
            return [f"  ret i32 {status}"]
        return [f"  %{tag}r = insertvalue {self.rt} undef, i32 {status}, 0",
                f"  ret {self.rt} %{tag}r"]

    def scan_memory(self) -> None:
        """Only a function that touches memory itself keeps its base and size."""
        self.uses_memory = False
        if self.ml.has_memory:
            for k, (op, _, _) in enumerate(self.fn.body):
                if op in _MEMORY_OPS:
                    self.last_memory_op = k
            self.uses_memory = self.last_memory_op >= 0

    def _body(self, start: int = 0, stop: int | None = None) -> None:
        handlers = _HANDLERS
        dead_depth = self.dead_depth  # blocks opened inside dead code
        body = self.fn.body
        ranges = self.ranges if self.range_ends is None and not self.covered else {}
        skip_to = start
        for pc in range(start, len(body) if stop is None else stop):
            if pc < skip_to:
                continue  # lowered by version_range
            op, imm, off = body[pc]
            if self.dead:
                # Skip unreachable code up to the else or end that makes code live again.
                if op in (BLOCK, LOOP, IF):
                    dead_depth += 1
                    continue
                if op == END:
                    if dead_depth:
                        dead_depth -= 1
                        continue
                elif op == ELSE:
                    if dead_depth:
                        continue
                else:
                    continue
            r = ranges.get(pc)
            if r is not None:
                self.version_range(pc, *r)
                skip_to = r[0]
                continue
            handler = handlers.get(op)
            if handler is None:
                self._unsupported(op, off)
            self.pc = pc
            if op in _MERGES and self.range_syms is not None:
                self.note_merge()
            if self.pending_gas and op not in _GAS_TRANSPARENT and not (
                    op == CALL and imm == self.ml.gas_import):
                self.flush_gas()
            handler(self, op, imm, off)
        self.dead_depth = dead_depth

    def _unsupported(self, op: int, off: int) -> NoReturn:
        info = OPS[op]
        if info.uses_float:
            err = CompileError(
                f"float instruction {info.name} is not supported by the compiler",
                func_index=self.idx, offset=off,
            )
            err.float_instruction = info.name
            raise err
        raise CompileError(f"instruction {info.name} is not supported by the compiler",
                           func_index=self.idx, offset=off)

    # --- control-flow handlers --------------------------------------------------------
    def _block_types(self, imm) -> tuple[tuple[str, ...], tuple[str, ...]]:
        params, results = block_signature(self.module, imm)
        return tuple(_LT[t] for t in params), tuple(_LT[t] for t in results)

    def h_block(self, op, imm, off):
        p, r = self._block_types(imm)
        end = self.label("end")
        fr = _Frame("block", p, r, len(self.stack) - len(p), end, end)
        fr.slots = self.new_slots(r)
        self.enter_frame(fr)
        self.frames.append(fr)

    def h_loop(self, op, imm, off):
        p, r = self._block_types(imm)
        hdr = self.label("loop")
        fr = _Frame("loop", p, r, len(self.stack) - len(p), hdr, hdr)
        fr.slots = self.new_slots(p)
        self.enter_frame(fr)
        vals = self.popn(len(p))
        self.store_slots(fr.slots, vals)
        self.emit(f"br label %{hdr}")
        self.start_block(hdr)
        self.at_label(fr, fr.height)
        self.load_slots(fr.slots, p)
        self.frames.append(fr)
        self.loops += 1

    def h_if(self, op, imm, off):
        p, r = self._block_types(imm)
        _, cond = self.pop()
        c = self.tmp()
        self.emit(f"{c} = icmp ne i32 {cond}, 0")
        then, els, end = self.label("then"), self.label("else"), self.label("end")
        fr = _Frame("if", p, r, len(self.stack) - len(p), end, end)
        fr.else_label = els
        fr.gas_at_if = self.pending_gas  # both arms start with them (gas.py)
        fr.if_params = self.stack[len(self.stack) - len(p):] if p else []
        fr.slots = self.new_slots(r)
        self.enter_frame(fr)
        if not self.direct(els):  # the else is in a later segment (split.py)
            saved_out, saved_cur = self.out, self.cur
            self.out = []
            edge = self.label("edge")
            self.start_block(edge)
            self.goto(els)
            self.deferred.extend(self.out)
            self.out, self.cur = saved_out, saved_cur
            els = edge
        self.emit(f"br i1 {c}, label %{then}, label %{els}")
        self.start_block(then)
        self.frames.append(fr)

    def h_else(self, op, imm, off):
        # Also reached in dead code: the else of an if whose then-branch ended dead.
        fr = self.frames[-1]
        if not self.dead:
            self.store_slots(fr.slots, self.popn(len(fr.results)))
            self.goto(fr.end_label)
            fr.reachable_end = True
        fr.has_else = True
        del self.stack[fr.height:]
        self.stack.extend(fr.if_params or [])
        self.start_block(fr.else_label)
        if fr.else_entry:
            self.at_label(fr, len(self.stack))
        self.dead = False
        self.pending_gas = fr.gas_at_if

    def h_end(self, op, imm, off):
        fr = self.frames.pop()
        if fr.kind == "func":
            if not self.dead:
                self.emit_return(self.stack[len(self.stack) - len(fr.results):])
            self.frames.append(fr)  # keep for completeness; nothing follows
            return
        self.leave_frame(fr)
        if fr.kind == "loop":
            self.loops -= 1
            # The end of a loop is reached only by falling through: values stay SSA.
            if self.dead:
                del self.stack[fr.height:]
            elif fr.entry:  # the stack below it comes back into reach (split.py)
                self.at_label(fr, fr.height)
            return
        if not self.dead:
            self.store_slots(fr.slots, self.popn(len(fr.results)))
            self.goto(fr.end_label)
            fr.reachable_end = True
        if fr.kind == "if" and not fr.has_else:
            # No else: the false edge passes the if's parameters through as results.
            self.start_block(fr.else_label)
            self.dead, self.pending_gas = False, fr.gas_at_if
            self.flush_gas()
            params = fr.if_params or []
            if fr.else_entry:
                del self.stack[fr.height:]
                self.stack.extend(params)
                self.at_label(fr, len(self.stack))
                params = self.popn(len(params))
            self.store_slots(fr.slots, params)
            self.goto(fr.end_label)
            fr.reachable_end = True
        del self.stack[fr.height:]
        if fr.reachable_end:
            self.start_block(fr.end_label)
            if fr.entry:
                self.at_label(fr, fr.height)
            self.load_slots(fr.slots, fr.results)
            self.dead = False
        else:
            self.dead = True

    def h_br(self, op, imm, off):
        self.branch_to(imm)
        self.dead = True

    def h_br_if(self, op, imm, off):
        _, cond = self.pop()
        c = self.tmp()
        self.emit(f"{c} = icmp ne i32 {cond}, 0")
        frame = self.frames[-1 - imm]
        arity = frame.params if frame.kind == "loop" else frame.results
        if arity and frame.kind != "func" and self.direct(frame.label):
            # The branch values are stored before the branch, taken or not: the slots are
            # read only where the label starts, and every way there stores them first.
            # No edge block (fewer blocks for the baseline tier; SROA makes them phis).
            self.store_slots(frame.slots, self.stack[len(self.stack) - len(arity):])
            if frame.kind != "loop":
                frame.reachable_end = True
            target = frame.label
        else:
            target = self.edge_to(imm)
        cont = self.label("cont")
        self.emit(f"br i1 {c}, label %{target}, label %{cont}")
        self.start_block(cont)

    def h_br_table(self, op, imm, off):
        labels, default = imm
        _, idx = self.pop()
        edges: dict[int, str] = {}
        for d in (*labels, default):
            if d not in edges:
                edges[d] = self.edge_to(d)
        cases = " ".join(f"i32 {k}, label %{edges[d]}" for k, d in enumerate(labels))
        self.emit(f"switch i32 {idx}, label %{edges[default]} [{cases}]")
        self.dead = True

    def h_return(self, op, imm, off):
        self.emit_return(self.stack[len(self.stack) - len(self.ft.results):])
        self.dead = True

    def h_unreachable(self, op, imm, off):
        self.trap_now(int(TrapKind.UNREACHABLE), off)
        self.dead = True

    def h_nop(self, op, imm, off):
        pass

    # --- instruction handlers ---------------------------------------------------------
    def h_const(self, op, imm, off):
        self.push("i32" if op == I32_CONST else "i64", str(imm))

    def h_local_get(self, op, imm, off):
        t = self.local_types[imm]
        v = self.tmp()
        self.emit(f"{v} = load {t}, ptr {self.local_ptr(imm)}")
        self.note_local(imm, v)
        self.push(t, v)

    def h_local_set(self, op, imm, off):
        t, v = self.pop()
        self.note_local_write(imm, v)
        self.emit(f"store {t} {v}, ptr {self.local_ptr(imm)}")

    def h_local_tee(self, op, imm, off):
        t, v = self.stack[-1]
        self.note_local_write(imm, v)
        self.emit(f"store {t} {v}, ptr {self.local_ptr(imm)}")

    def global_cell(self, i: int) -> str:
        if i not in self.globals_used:
            self.globals_used.add(i)
            if len(self.globals_used) == 1:
                self.entry.append(f"  %gtab.p = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_GLOBALS}")
                self.entry.append("  %gtab = load ptr, ptr %gtab.p")
            self.entry.append(f"  %g{i}.p = getelementptr inbounds i8, ptr %gtab, i64 {8 * i}")
            self.entry.append(f"  %g{i} = load ptr, ptr %g{i}.p")
        return f"%g{i}"

    def h_global_get(self, op, imm, off):
        t = _LT[self.ml.global_types[imm].valtype]
        cell = self.global_cell(imm)
        v = self.tmp()
        self.emit(f"{v} = load {t}, ptr {cell}")
        self.push(t, v)

    def h_global_set(self, op, imm, off):
        cell = self.global_cell(imm)
        t, v = self.pop()
        self.emit(f"store {t} {v}, ptr {cell}")

    def h_drop(self, op, imm, off):
        self.pop()

    def h_select(self, op, imm, off):
        _, c = self.pop()
        t, b = self.pop()
        _, a = self.pop()
        cc = self.tmp()
        self.emit(f"{cc} = icmp ne i32 {c}, 0")
        r = self.tmp()
        self.emit(f"{r} = select i1 {cc}, {t} {a}, {t} {b}")
        self.push(t, r)

    def h_binop(self, op, imm, off):
        name, t = _BINOPS[op]
        _, b = self.pop()
        _, a = self.pop()
        r = self.tmp()
        bits = 31 if t == "i32" else 63
        if name in ("shl", "ashr", "lshr"):
            m = self.tmp()
            self.emit(f"{m} = and {t} {b}, {bits}")
            self.emit(f"{r} = {name} {t} {a}, {m}")
            if t == "i32" and name == "shl":
                self.note_shl(a, b, r)
        elif name in ("rotl", "rotr") and self.ml.calls is not None:
            # The baseline tier: FastISel has no funnel shift, and a block with one
            # falls back to SelectionDAG; two shifts and an or are the same rotation.
            # rotl: (a << k) | (a >> ((bits + 1 - k) & bits)), k = b & bits; rotr mirrored.
            if _is_literal(b):
                k = str(int(b) & bits)
                back = str((bits + 1 - int(k)) & bits)
            else:
                k, back, negm = self.tmp(), self.tmp(), self.tmp()
                self.emit(f"{k} = and {t} {b}, {bits}")
                self.emit(f"{negm} = sub {t} {bits + 1}, {k}")
                self.emit(f"{back} = and {t} {negm}, {bits}")
            left, right = (k, back) if name == "rotl" else (back, k)
            hi, lo = self.tmp(), self.tmp()
            self.emit(f"{hi} = shl {t} {a}, {left}")
            self.emit(f"{lo} = lshr {t} {a}, {right}")
            self.emit(f"{r} = or {t} {hi}, {lo}")
        elif name in ("rotl", "rotr"):
            fn = ("fshl." if name == "rotl" else "fshr.") + t
            self.emit(f"{r} = call {t} @llvm.{fn}({t} {a}, {t} {a}, {t} {b})")
        else:
            self.emit(f"{r} = {name} {t} {a}, {b}")
            if t == "i32" and name in ("add", "sub"):
                self.note_add(a, b, r, name == "sub")
        self.push(t, r)

    def h_divop(self, op, imm, off):
        name, t = _DIVOPS[op]
        _, b = self.pop()
        _, a = self.pop()
        z = self.tmp()
        self.emit(f"{z} = icmp eq {t} {b}, 0")
        self.trap_if(z, int(TrapKind.INTEGER_DIVIDE_BY_ZERO), off)
        r = self.tmp()
        if name == "sdiv":
            minv = -(1 << 31) if t == "i32" else -(1 << 63)
            c1, c2, c3 = self.tmp(), self.tmp(), self.tmp()
            self.emit(f"{c1} = icmp eq {t} {a}, {minv}")
            self.emit(f"{c2} = icmp eq {t} {b}, -1")
            self.emit(f"{c3} = and i1 {c1}, {c2}")
            self.trap_if(c3, int(TrapKind.INTEGER_OVERFLOW), off)
            self.emit(f"{r} = sdiv {t} {a}, {b}")
        elif name == "srem":
            # INT_MIN rem -1 is 0 in Wasm but overflows in LLVM: divide by 1 instead.
            c, sb = self.tmp(), self.tmp()
            self.emit(f"{c} = icmp eq {t} {b}, -1")
            self.emit(f"{sb} = select i1 {c}, {t} 1, {t} {b}")
            self.emit(f"{r} = srem {t} {a}, {sb}")
        else:
            self.emit(f"{r} = {name} {t} {a}, {b}")
        self.push(t, r)

    def h_cmp(self, op, imm, off):
        pred, t = _CMPOPS[op]
        _, b = self.pop()
        _, a = self.pop()
        c, r = self.tmp(), self.tmp()
        self.emit(f"{c} = icmp {pred} {t} {a}, {b}")
        self.emit(f"{r} = zext i1 {c} to i32")
        self.push("i32", r)

    def h_eqz(self, op, imm, off):
        t, a = self.pop()
        c, r = self.tmp(), self.tmp()
        self.emit(f"{c} = icmp eq {t} {a}, 0")
        self.emit(f"{r} = zext i1 {c} to i32")
        self.push("i32", r)

    def h_unop(self, op, imm, off):
        name, t = _UNOPS[op]
        _, a = self.pop()
        fn = f"{name}.{t}"
        r = self.tmp()
        if name == "ctpop":
            self.emit(f"{r} = call {t} @llvm.{fn}({t} {a})")
        else:
            self.emit(f"{r} = call {t} @llvm.{fn}({t} {a}, i1 false)")
        self.push(t, r)

    def h_conv(self, op, imm, off):
        src, dst, how = _CONVOPS[op]
        _, a = self.pop()
        r = self.tmp()
        self.emit(f"{r} = {how} {src} {a} to {dst}")
        self.push(dst, r)

    def h_ext(self, op, imm, off):
        t, narrow = _EXTOPS[op]
        _, a = self.pop()
        n, r = self.tmp(), self.tmp()
        self.emit(f"{n} = trunc {t} {a} to {narrow}")
        self.emit(f"{r} = sext {narrow} {n} to {t}")
        self.push(t, r)

    def h_load(self, op, imm, off):
        rt, mt, ext, width = _LOADOPS[op]
        _, addr = self.pop()
        ea = self.effective_address(addr, imm[1])
        if not self.access_is_covered(addr, imm[1], width):
            self.mem_check(ea, width, off)
        p = self.gep(self.mem_base(), ea)
        v = self.tmp()
        self.emit(f"{v} = load {mt}, ptr {p}, align 1")
        if ext:
            r = self.tmp()
            self.emit(f"{r} = {ext} {mt} {v} to {rt}")
            v = r
        self.push(rt, v)

    def h_store(self, op, imm, off):
        vt, mt, width = _STOREOPS[op]
        _, val = self.pop()
        _, addr = self.pop()
        ea = self.effective_address(addr, imm[1])
        if not self.access_is_covered(addr, imm[1], width):
            self.mem_check(ea, width, off)
        p = self.gep(self.mem_base(), ea)
        if mt != vt:
            n = self.tmp()
            self.emit(f"{n} = trunc {vt} {val} to {mt}")
            val = n
        self.emit(f"store {mt} {val}, ptr {p}, align 1")

    def h_memory_size(self, op, imm, off):
        s = self.mem_size()
        p, r = self.tmp(), self.tmp()
        self.emit(f"{p} = lshr i64 {s}, 16")
        self.emit(f"{r} = trunc i64 {p} to i32")
        self.push("i32", r)

    def h_memory_grow(self, op, imm, off):
        _, delta = self.pop()
        fn = self.call_operand(GROW_HELPER)
        r = self.tmp()
        self.emit(f"{r} = call i32 {fn}(ptr %mdesc, i32 {delta})")
        self.reload_memory()
        self.push("i32", r)

    def _zext3(self) -> tuple[str, str, str]:
        """Pop three i32 operands (a, b, n) and widen them to i64."""
        vals = self.popn(3)
        out = []
        for _, v in vals:
            w = self.tmp()
            self.emit(f"{w} = zext i32 {v} to i64")
            out.append(w)
        return out[0], out[1], out[2]

    def h_memory_fill(self, op, imm, off):
        vals = self.popn(3)
        d, n = self.tmp(), self.tmp()
        self.emit(f"{d} = zext i32 {vals[0][1]} to i64")
        self.emit(f"{n} = zext i32 {vals[2][1]} to i64")
        self.mem_check(d, n, off)
        p = self.gep(self.mem_base(), d)
        b = self.tmp()
        self.emit(f"{b} = trunc i32 {vals[1][1]} to i8")
        self.emit(f"call void @llvm.memset.p0.i64(ptr {p}, i8 {b}, i64 {n}, i1 false)")

    def h_memory_copy(self, op, imm, off):
        d, s, n = self._zext3()
        self.mem_check(s, n, off)
        self.mem_check(d, n, off)
        base = self.mem_base()
        pd, ps = self.gep(base, d), self.gep(base, s)
        self.emit(f"call void @llvm.memmove.p0.p0.i64(ptr {pd}, ptr {ps}, i64 {n}, i1 false)")

    def seg_desc(self, field_offset: int, seg: int) -> str:
        attr = "need_data_segs" if field_offset == abi.CTX_DATA_SEGS else "need_elem_segs"
        tab = "%dsegs" if field_offset == abi.CTX_DATA_SEGS else "%esegs"
        if not getattr(self, attr):
            setattr(self, attr, True)
            self.entry.append(f"  {tab}.p = getelementptr inbounds i8, ptr %ctx, i64 {field_offset}")
            self.entry.append(f"  {tab} = load ptr, ptr {tab}.p")
        return self.gep(tab, seg * abi.SEG_DESC_SIZE)

    def h_memory_init(self, op, imm, off):
        d, s, n = self._zext3()
        sd = self.seg_desc(abi.CTX_DATA_SEGS, imm)
        sptr, slen = self.tmp(), self.tmp()
        self.emit(f"{sptr} = load ptr, ptr {sd}")
        lp = self.gep(sd, abi.SEG_LEN)
        self.emit(f"{slen} = load i64, ptr {lp}")
        send, bad = self.tmp(), self.tmp()
        self.emit(f"{send} = add i64 {s}, {n}")
        self.emit(f"{bad} = icmp ugt i64 {send}, {slen}")
        self.trap_if(bad, _T_OOB, off)
        self.mem_check(d, n, off)
        pd = self.gep(self.mem_base(), d)
        ps = self.gep(sptr, s)
        self.emit(f"call void @llvm.memcpy.p0.p0.i64(ptr {pd}, ptr {ps}, i64 {n}, i1 false)")

    def h_data_drop(self, op, imm, off):
        sd = self.seg_desc(abi.CTX_DATA_SEGS, imm)
        lp = self.gep(sd, abi.SEG_LEN)
        self.emit(f"store i64 0, ptr {lp}")

    def table_desc(self) -> str:
        if not self.need_table:
            self.need_table = True
            self.entry.append(f"  %tdesc.p = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_TABLE}")
            self.entry.append("  %tdesc = load ptr, ptr %tdesc.p")
        return "%tdesc"

    def table_size_and_elems(self) -> tuple[str, str]:
        td = self.table_desc()
        sp = self.gep(td, abi.TABLE_SIZE)
        size, elems = self.tmp(), self.tmp()
        self.emit(f"{size} = load i64, ptr {sp}")
        self.emit(f"{elems} = load ptr, ptr {td}")
        return size, elems

    def table_range_check(self, start: str, n: str, size: str, off: int) -> None:
        end, bad = self.tmp(), self.tmp()
        self.emit(f"{end} = add i64 {start}, {n}")
        self.emit(f"{bad} = icmp ugt i64 {end}, {size}")
        self.trap_if(bad, _T_TABLE_OOB, off)

    def h_table_init(self, op, imm, off):
        seg, _table = imm
        d, s, n = self._zext3()
        sd = self.seg_desc(abi.CTX_ELEM_SEGS, seg)
        sptr, slen = self.tmp(), self.tmp()
        self.emit(f"{sptr} = load ptr, ptr {sd}")
        lp = self.gep(sd, abi.SEG_LEN)
        self.emit(f"{slen} = load i64, ptr {lp}")
        self.table_range_check(s, n, slen, off)
        size, elems = self.table_size_and_elems()
        self.table_range_check(d, n, size, off)
        self._table_move(elems, d, sptr, s, n, "memcpy")

    def _table_move(self, dbase: str, d: str, sbase: str, s: str, n: str, how: str) -> None:
        do, so, no = self.tmp(), self.tmp(), self.tmp()
        self.emit(f"{do} = mul i64 {d}, {abi.ELEM_SIZE}")
        self.emit(f"{so} = mul i64 {s}, {abi.ELEM_SIZE}")
        self.emit(f"{no} = mul i64 {n}, {abi.ELEM_SIZE}")
        pd, ps = self.gep(dbase, do), self.gep(sbase, so)
        self.emit(f"call void @llvm.memmove.p0.p0.i64(ptr {pd}, ptr {ps}, i64 {no}, i1 false)")

    def h_elem_drop(self, op, imm, off):
        sd = self.seg_desc(abi.CTX_ELEM_SEGS, imm)
        lp = self.gep(sd, abi.SEG_LEN)
        self.emit(f"store i64 0, ptr {lp}")

    def h_table_copy(self, op, imm, off):
        d, s, n = self._zext3()
        size, elems = self.table_size_and_elems()
        self.table_range_check(s, n, size, off)
        self.table_range_check(d, n, size, off)
        self._table_move(elems, d, elems, s, n, "memmove")


_HANDLERS = {
    BLOCK: _FuncLowerer.h_block, LOOP: _FuncLowerer.h_loop, IF: _FuncLowerer.h_if,
    ELSE: _FuncLowerer.h_else, END: _FuncLowerer.h_end, BR: _FuncLowerer.h_br,
    BR_IF: _FuncLowerer.h_br_if, BR_TABLE: _FuncLowerer.h_br_table,
    RETURN: _FuncLowerer.h_return, UNREACHABLE: _FuncLowerer.h_unreachable,
    NOP: _FuncLowerer.h_nop,
    I32_CONST: _FuncLowerer.h_const, I64_CONST: _FuncLowerer.h_const,
    LOCAL_GET: _FuncLowerer.h_local_get, LOCAL_SET: _FuncLowerer.h_local_set,
    LOCAL_TEE: _FuncLowerer.h_local_tee, GLOBAL_GET: _FuncLowerer.h_global_get,
    GLOBAL_SET: _FuncLowerer.h_global_set, DROP: _FuncLowerer.h_drop,
    SELECT: _FuncLowerer.h_select, I32_EQZ: _FuncLowerer.h_eqz, I64_EQZ: _FuncLowerer.h_eqz,
    MEMORY_SIZE: _FuncLowerer.h_memory_size, MEMORY_GROW: _FuncLowerer.h_memory_grow,
    CALL: _FuncLowerer.h_call, CALL_INDIRECT: _FuncLowerer.h_call_indirect,
    MEMORY_INIT: _FuncLowerer.h_memory_init, DATA_DROP: _FuncLowerer.h_data_drop,
    MEMORY_COPY: _FuncLowerer.h_memory_copy, MEMORY_FILL: _FuncLowerer.h_memory_fill,
    TABLE_INIT: _FuncLowerer.h_table_init, ELEM_DROP: _FuncLowerer.h_elem_drop,
    TABLE_COPY: _FuncLowerer.h_table_copy,
}
for _table, _handler in ((_BINOPS, _FuncLowerer.h_binop), (_DIVOPS, _FuncLowerer.h_divop),
                        (_CMPOPS, _FuncLowerer.h_cmp), (_UNOPS, _FuncLowerer.h_unop),
                        (_CONVOPS, _FuncLowerer.h_conv), (_EXTOPS, _FuncLowerer.h_ext),
                        (_LOADOPS, _FuncLowerer.h_load), (_STOREOPS, _FuncLowerer.h_store)):
    for _op_code in _table:
        _HANDLERS[_op_code] = _handler
