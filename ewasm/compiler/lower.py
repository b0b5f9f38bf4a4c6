"""Wasm module -> LLVM IR text.

The IR is written as text rather than through llvmlite.ir objects: the builder objects
cost several microseconds each, and a 128 KB contract has ~50k instructions.

The translation is direct: the Wasm operand stack is simulated at compile time as a
list of SSA values; locals and branch values live in allocas that SROA promotes to SSA
registers. Every trap is an explicit branch to the function's single trap block, which
records (trap code, function index, byte offset) in the context and returns a status.
Layouts come from abi.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..decoder import block_signature
from ..errors import CompileError, TrapKind
from ..module import EXTERN_FUNC, Function, Module
from ..opcodes import OPS, REF_FUNC
from ..types import F32, F64, I32, I64, FuncType
from . import abi

_LT = {I32: "i32", I64: "i64", F32: "i32", F64: "i64"}  # floats travel as their bits

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

_BINOPS = {}
for _base, _t in ((0x6A, "i32"), (0x7C, "i64")):
    for _k, _name in enumerate(
        ["add", "sub", "mul", None, None, None, None, "and", "or", "xor", "shl", "ashr", "lshr",
         "rotl", "rotr"]
    ):
        if _name:
            _BINOPS[_base + _k] = (_name, _t)
_DIVOPS = {0x6D: ("sdiv", "i32"), 0x6E: ("udiv", "i32"), 0x6F: ("srem", "i32"),
           0x70: ("urem", "i32"), 0x7F: ("sdiv", "i64"), 0x80: ("udiv", "i64"),
           0x81: ("srem", "i64"), 0x82: ("urem", "i64")}
_CMPOPS = {}
for _base, _t in ((0x46, "i32"), (0x51, "i64")):
    for _k, _pred in enumerate(["eq", "ne", "slt", "ult", "sgt", "ugt", "sle", "ule", "sge", "uge"]):
        _CMPOPS[_base + _k] = (_pred, _t)
_UNOPS = {0x67: ("ctlz", "i32"), 0x68: ("cttz", "i32"), 0x69: ("ctpop", "i32"),
          0x79: ("ctlz", "i64"), 0x7A: ("cttz", "i64"), 0x7B: ("ctpop", "i64")}
# (op) -> (from, to, how): conversions between integer widths and sign extensions.
_CONVOPS = {0xA7: ("i64", "i32", "trunc"), 0xAC: ("i32", "i64", "sext"),
            0xAD: ("i32", "i64", "zext")}
_EXTOPS = {0xC0: ("i32", "i8"), 0xC1: ("i32", "i16"), 0xC2: ("i64", "i8"),
           0xC3: ("i64", "i16"), 0xC4: ("i64", "i32")}
# load op -> (result type, memory type, extension, width)
_LOADOPS = {0x28: ("i32", "i32", None, 4), 0x29: ("i64", "i64", None, 8),
            0x2C: ("i32", "i8", "sext", 1), 0x2D: ("i32", "i8", "zext", 1),
            0x2E: ("i32", "i16", "sext", 2), 0x2F: ("i32", "i16", "zext", 2),
            0x30: ("i64", "i8", "sext", 1), 0x31: ("i64", "i8", "zext", 1),
            0x32: ("i64", "i16", "sext", 2), 0x33: ("i64", "i16", "zext", 2),
            0x34: ("i64", "i32", "sext", 4), 0x35: ("i64", "i32", "zext", 4)}
_STOREOPS = {0x36: ("i32", "i32", 4), 0x37: ("i64", "i64", 8), 0x3A: ("i32", "i8", 1),
             0x3B: ("i32", "i16", 2), 0x3C: ("i64", "i8", 1), 0x3D: ("i64", "i16", 2),
             0x3E: ("i64", "i32", 4)}

_MEMORY_OPS = frozenset({*_LOADOPS, *_STOREOPS, 0x3F, 0x40, 0xFC08, 0xFC0A, 0xFC0B})

_T_OOB = int(TrapKind.MEMORY_OUT_OF_BOUNDS)
_T_TABLE_OOB = int(TrapKind.TABLE_OUT_OF_BOUNDS)


# A trap site's code and byte offset travel packed in one i64: offset in the low bits
# (module sizes are far below 2^40), code above.
TRAP_CODE_SHIFT = 40

# Functions up to this many instructions keep the engine's gas counter in a register.
GAS_REGISTER_MAX_INSTRUCTIONS = 160


def ret_type(ft: FuncType, gas: bool = False) -> str:
    """Internal functions return {status, [gas,] results...}. With the engine's gas counter
    the counter travels in registers (an argument in, a field out) instead of through the
    context struct, so a tight metered loop has no store-to-load chain on its critical path."""
    if gas:
        return "{i32, i64" + "".join(", " + _LT[t] for t in ft.results) + "}"
    if not ft.results:
        return "i32"
    return "{i32, " + ", ".join(_LT[t] for t in ft.results) + "}"


def _first_result(gas: bool) -> int:
    return 2 if gas else 1


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


class ModuleLowering:
    """Shared facts about the module that every function's lowering needs."""

    def __init__(self, module: Module, gas_import: int | None = None) -> None:
        self.module = module
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
                op in (0x10, 0x11) for op, _, _ in fn.body
            ):
                self.inline.add(self.num_imported + i)


# Modules above this many instructions are split into partitions compiled in parallel.
# The count depends only on the module (and the tier), so the object bytes never depend
# on the machine. The baseline tier splits finer: its compile time is what a caller waits
# for, and it inlines nothing across partitions anyway.
PARTITION_INSTRUCTIONS = 16384
MAX_PARTITIONS = 4
BASELINE_PARTITION_INSTRUCTIONS = 2048
BASELINE_MAX_PARTITIONS = 8


def partition_count(module: Module, baseline: bool = False) -> int:
    total = sum(len(fn.body) for fn in module.codes)
    size, most = ((BASELINE_PARTITION_INSTRUCTIONS, BASELINE_MAX_PARTITIONS) if baseline
                  else (PARTITION_INSTRUCTIONS, MAX_PARTITIONS))
    return max(1, min(most, -(-total // size)))


def lower_module(module: Module, gas_import: int | None = None,
                 partitions: int | None = None) -> list[str]:
    """The module as LLVM IR texts, one per partition (deterministic for a module)."""
    return list(lower_partitions(module, gas_import, partitions))


def assign_partitions(module: Module, k: int, nimp: int) -> list[list[int]]:
    """Greedy bin packing of the functions, largest first; ties broken by index, so the
    assignment depends only on the module."""
    bins: list[list[int]] = [[] for _ in range(k)]
    loads = [0] * k
    order = sorted(range(len(module.codes)), key=lambda i: (-len(module.codes[i].body), i))
    for i in order:
        b = min(range(k), key=lambda j: (loads[j], j))
        bins[b].append(nimp + i)
        loads[b] += len(module.codes[i].body) + 1
    for members in bins:
        members.sort()
    return bins


def lower_partitions(module: Module, gas_import: int | None = None,
                     partitions: int | None = None, *,
                     inline_copies: bool = True) -> Iterator[str]:
    """The partitions' IR texts, in order, each as soon as it is lowered.

    Partition 0 also holds the function table. With several partitions, functions get
    external linkage so that calls link across objects. With inline_copies (for the
    optimising tier), each partition carries `available_externally` copies of the leaf
    functions it would inline, so every function is lowered before the first text;
    without (the baseline tier inlines nothing), a partition is lowered only when it is
    asked for, and compiling the first can start while the next is lowered."""
    ml = ModuleLowering(module, gas_import)
    k = partitions or partition_count(module)
    nimp = ml.num_imported
    texts: dict[int, str] = {}
    callees: dict[int, set[int]] = {}

    def lower_one(idx: int) -> None:
        lowering = _FuncLowerer(ml, idx, module.codes[idx - nimp])
        texts[idx] = lowering.lower()
        callees[idx] = lowering.callees

    if inline_copies:
        for i in range(len(module.codes)):
            lower_one(nimp + i)
    linkage = "internal " if k == 1 else ""
    for p, members in enumerate(assign_partitions(module, k, nimp)):
        mine = set(members)
        parts: list[str] = []
        for idx in members:
            if idx not in texts:
                lower_one(idx)
            parts.append(texts[idx].replace("define @@LINKAGE@@", f"define {linkage}", 1))
            if idx in ml.escaping:
                parts.append(_wrapper(ml, idx, linkage))
        needed = set().union(*(callees[idx] for idx in members)) - mine
        for idx in sorted(needed):
            if inline_copies and idx in ml.inline:
                parts.append(texts[idx].replace("define @@LINKAGE@@",
                                                "define available_externally ", 1))
            else:
                parts.append(_declare(ml, idx))
        if not inline_copies:
            for idx in members:  # the text is in this partition's output now
                del texts[idx]
        if p == 0:
            n = len(module.codes)
            for i in range(n):
                idx = nimp + i
                if idx not in mine:
                    if idx not in needed:
                        parts.append(_declare(ml, idx))
                    if idx in ml.escaping:
                        parts.append(f"declare i32 @w{idx}(ptr, ptr, ptr)")
            if n:
                items = ", ".join(
                    f"ptr @f{nimp + i}, ptr " + (f"@w{nimp + i}" if nimp + i in ml.escaping
                                                 else "null") for i in range(n))
                parts.append(f"@{abi.FUNCS_SYMBOL} = constant [{2 * n} x ptr] [{items}]")
            else:
                parts.append(f"@{abi.FUNCS_SYMBOL} = constant [0 x ptr] zeroinitializer")
        body = "\n".join(parts)
        head = [decl for name, decl in sorted(_INTRINSIC_DECLS.items())
                if f"@llvm.{_INTRINSIC_NAMES[name]}(" in body]
        if "@ewasm.memory_grow(" in body:
            head.append(_GROW_HELPER)
        if "@ewasm.trap(" in body:
            head.append(_TRAP_HELPER)
        head.append("attributes #0 = { nounwind }")
        head.append("attributes #1 = { nounwind alwaysinline }")
        head.append("attributes #2 = { nounwind noinline cold }")
        yield "\n".join(head) + "\n" + body + "\n"


def _declare(ml: ModuleLowering, idx: int) -> str:
    ft = ml.func_types[idx]
    gas = ml.gas_import is not None
    params = ", ".join(["ptr", "i64"] + (["i64"] if gas else []) + [_LT[t] for t in ft.params])
    return f"declare fastcc {ret_type(ft, gas)} @f{idx}({params})"


_INTRINSIC_DECLS = {
    "memset": "declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)",
    "memmove": "declare void @llvm.memmove.p0.p0.i64(ptr, ptr, i64, i1)",
    "memcpy": "declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)",
    "ctlz.i32": "declare i32 @llvm.ctlz.i32(i32, i1)",
    "ctlz.i64": "declare i64 @llvm.ctlz.i64(i64, i1)",
    "cttz.i32": "declare i32 @llvm.cttz.i32(i32, i1)",
    "cttz.i64": "declare i64 @llvm.cttz.i64(i64, i1)",
    "ctpop.i32": "declare i32 @llvm.ctpop.i32(i32)",
    "ctpop.i64": "declare i64 @llvm.ctpop.i64(i64)",
    "fshl.i32": "declare i32 @llvm.fshl.i32(i32, i32, i32)",
    "fshl.i64": "declare i64 @llvm.fshl.i64(i64, i64, i64)",
    "fshr.i32": "declare i32 @llvm.fshr.i32(i32, i32, i32)",
    "fshr.i64": "declare i64 @llvm.fshr.i64(i64, i64, i64)",
    "usub.with.overflow.i64": "declare {i64, i1} @llvm.usub.with.overflow.i64(i64, i64)",
}
_INTRINSIC_NAMES = {
    "memset": "memset.p0.i64", "memmove": "memmove.p0.p0.i64", "memcpy": "memcpy.p0.p0.i64",
    **{k: k for k in _INTRINSIC_DECLS if "." in k and not k.startswith("mem")},
}

# What every function's trap block does, out of line: one copy per partition instead of
# a dozen instructions in every function (the baseline tier pays per IR instruction).
_TRAP_HELPER = f"""define internal void @ewasm.trap(ptr %ctx, i32 %func, i64 %info) #2 {{
entry:
  %tcw = lshr i64 %info, {TRAP_CODE_SHIFT}
  %tc = trunc i64 %tcw to i32
  %to = and i64 %info, {(1 << TRAP_CODE_SHIFT) - 1}
  %tcp = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_TRAP_CODE}
  store i32 %tc, ptr %tcp
  %tfp = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_TRAP_FUNC}
  store i32 %func, ptr %tfp
  %top = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_TRAP_OFFSET}
  store i64 %to, ptr %top
  ret void
}}"""

_GROW_HELPER = f"""define internal i32 @ewasm.memory_grow(ptr %m, i32 %delta) #0 {{
entry:
  %szp = getelementptr inbounds i8, ptr %m, i64 {abi.MEM_SIZE}
  %sz = load i64, ptr %szp
  %old = lshr i64 %sz, 16
  %d = zext i32 %delta to i64
  %new = add i64 %old, %d
  %maxp = getelementptr inbounds i8, ptr %m, i64 {abi.MEM_MAX_PAGES}
  %max = load i64, ptr %maxp
  %bad = icmp ugt i64 %new, %max
  br i1 %bad, label %fail, label %ok
ok:
  %nsz = shl i64 %new, 16
  store i64 %nsz, ptr %szp
  %o32 = trunc i64 %old to i32
  ret i32 %o32
fail:
  ret i32 -1
}}"""


def _wrapper(ml: ModuleLowering, idx: int, linkage: str) -> str:
    ft = ml.func_types[idx]
    gas = ml.gas_import is not None
    rt = ret_type(ft, gas)
    first = _first_result(gas)
    lines = [
        f"define {linkage}i32 @w{idx}(ptr %callee, ptr %caller, ptr %vals) #0 {{",
        "entry:",
        "  %hascaller = icmp ne ptr %caller, null",
        "  %bsrc = select i1 %hascaller, ptr %caller, ptr %callee",
        f"  %bp = getelementptr inbounds i8, ptr %bsrc, i64 {abi.CTX_BUDGET}",
        "  %budget = load i64, ptr %bp",
    ]
    if gas:
        lines.append(f"  %gasp = getelementptr inbounds i8, ptr %callee, i64 {abi.CTX_GAS}")
        lines.append("  %gas = load i64, ptr %gasp")
    args = []
    for k, t in enumerate(ft.params):
        lt = _LT[t]
        lines.append(f"  %ap{k} = getelementptr inbounds i8, ptr %vals, i64 {8 * k}")
        lines.append(f"  %a{k}w = load i64, ptr %ap{k}")
        if lt == "i32":
            lines.append(f"  %a{k} = trunc i64 %a{k}w to i32")
            args.append(f"i32 %a{k}")
        else:
            args.append(f"i64 %a{k}w")
    arglist = ", ".join(["ptr %callee", "i64 %budget"] + (["i64 %gas"] if gas else []) + args)
    lines.append(f"  %r = call fastcc {rt} @f{idx}({arglist})")
    if gas:
        lines.append(f"  %gasout = extractvalue {rt} %r, 1")
        lines.append("  store i64 %gasout, ptr %gasp")
    if ft.results or gas:
        lines.append(f"  %st = extractvalue {rt} %r, 0")
    else:
        lines.append("  %st = add i32 %r, 0")
    lines += ["  %bad = icmp ne i32 %st, 0", "  br i1 %bad, label %fail, label %ok", "ok:"]
    for k, t in enumerate(ft.results):
        lt = _LT[t]
        lines.append(f"  %v{k} = extractvalue {rt} %r, {k + first}")
        val = f"%v{k}"
        if lt == "i32":
            lines.append(f"  %v{k}w = zext i32 %v{k} to i64")
            val = f"%v{k}w"
        lines.append(f"  %rp{k} = getelementptr inbounds i8, ptr %vals, i64 {8 * k}")
        lines.append(f"  store i64 {val}, ptr %rp{k}")
    lines += [
        "  ret i32 0",
        "fail:",
        "  br i1 %hascaller, label %copy, label %out",
        "copy:",
        # The trap happened in this instance; the caller's instance reports it.
        f"  %tsrc = getelementptr inbounds i8, ptr %callee, i64 {abi.CTX_TRAP_CODE}",
        f"  %tdst = getelementptr inbounds i8, ptr %caller, i64 {abi.CTX_TRAP_CODE}",
        "  %t0 = load i64, ptr %tsrc",
        "  store i64 %t0, ptr %tdst",
        f"  %tsrc1 = getelementptr inbounds i8, ptr %callee, i64 {abi.CTX_TRAP_OFFSET}",
        f"  %tdst1 = getelementptr inbounds i8, ptr %caller, i64 {abi.CTX_TRAP_OFFSET}",
        "  %t1 = load i64, ptr %tsrc1",
        "  store i64 %t1, ptr %tdst1",
        "  br label %out",
        "out:",
        "  ret i32 %st",
        "}",
    ]
    return "\n".join(lines)


def _is_literal(value: str) -> bool:
    """An operand that is a constant in the IR (pushed by i32.const / i64.const)."""
    return value[0] != "%"


class _FuncLowerer:
    def __init__(self, ml: ModuleLowering, idx: int, fn: Function) -> None:
        self.ml = ml
        self.module = ml.module
        self.idx = idx
        self.fn = fn
        self.ft = ml.func_types[idx]
        self.gas = ml.gas_import is not None
        self.rt = ret_type(self.ft, self.gas)
        self.first = _first_result(self.gas)
        # Where the counter lives inside this function. In a register it costs one sub per
        # charge, but a big function's loops are already short of registers (sha256's
        # compression loop spills); there the context slot is cheaper, and its
        # store-to-load latency is hidden behind the long loop body.
        self.gas_in_register = len(fn.body) <= GAS_REGISTER_MAX_INSTRUCTIONS
        self.n = 0  # SSA name counter
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
        self.vbuf_slots = 0
        self.deferred: list[str] = []
        self.callees: set[int] = set()

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
    def _trap_site(self, code: int | str, offset: int) -> str:
        """A block that records (code, offset) and jumps to the trap block; its label."""
        name = self.label("tr")
        lines = [f"{name}:"]
        if isinstance(code, int):
            lines.append(f"  store i64 {(code << TRAP_CODE_SHIFT) | offset}, ptr %trapinfo")
        else:
            w, sh, packed = self.tmp(), self.tmp(), self.tmp()
            lines += [f"  {w} = zext i32 {code} to i64",
                      f"  {sh} = shl i64 {w}, {TRAP_CODE_SHIFT}",
                      f"  {packed} = or i64 {sh}, {offset}",
                      f"  store i64 {packed}, ptr %trapinfo"]
        lines.append("  br label %trap")
        self.deferred.extend(lines)
        self.has_trap = True
        return name

    def trap_if(self, cond: str, code: int | str, offset: int) -> None:
        """Branch to the trap block when cond holds; continue in a fresh block. A static
        code is recorded before the branch (one store, no extra block: fewer blocks make
        the baseline tier's code generation faster, and the optimising tier promotes the
        store away); a dynamic one in a site block of its own."""
        ok = self.label("ok")
        if isinstance(code, int):
            self.emit(f"store i64 {(code << TRAP_CODE_SHIFT) | offset}, ptr %trapinfo")
            self.emit(f"br i1 {cond}, label %trap, label %{ok}")
            self.has_trap = True
        else:
            self.emit(f"br i1 {cond}, label %{self._trap_site(code, offset)}, label %{ok}")
        self.start_block(ok)

    def trap_now(self, code: int, offset: int) -> None:
        self.emit(f"br label %{self._trap_site(code, offset)}")

    def check_status(self, st: str) -> None:
        bad = self.tmp()
        self.emit(f"{bad} = icmp ne i32 {st}, 0")
        ok = self.label("ok")
        # Recorded before the branch, as a static trap code (see trap_if).
        self.emit(f"store i32 {st}, ptr %propst")
        self.emit(f"br i1 {bad}, label %prop, label %{ok}")
        self.has_prop = True
        self.start_block(ok)

    def ctx_field(self, offset: int, ty: str = "ptr") -> str:
        p = self.tmp()
        self.entry.append(f"  {p}.p = getelementptr inbounds i8, ptr %ctx, i64 {offset}")
        self.entry.append(f"  {p} = load {ty}, ptr {p}.p")
        return p

    def gep(self, base: str, off) -> str:
        p = self.tmp()
        self.emit(f"{p} = getelementptr inbounds i8, ptr {base}, i64 {off}")
        return p

    def reload_memory(self) -> None:
        if not self.uses_memory:
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
            self.emit(f"store {t} {v}, ptr {slot}")

    def load_slots(self, slots: list[str], types: tuple[str, ...]) -> None:
        for slot, t in zip(slots, types, strict=True):
            v = self.tmp()
            self.emit(f"{v} = load {t}, ptr {slot}")
            self.push(t, v)

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
        self.emit(f"br label %{frame.label}")

    def edge_to(self, depth: int) -> str:
        """A block that passes the branch values to the target; returns its label."""
        frame = self.frames[-1 - depth]
        arity = frame.params if frame.kind == "loop" else frame.results
        if frame.kind != "func" and not arity:
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
        # Only a function that touches memory itself keeps its base and size.
        self.uses_memory = self.ml.has_memory and any(op in _MEMORY_OPS for op, _, _ in fn.body)
        if self.uses_memory:
            self.entry.append("  %mdesc = load ptr, ptr %ctx")
            self.entry.append("  %mbase = alloca ptr")
            self.entry.append("  %msize = alloca i64")
            self.entry.append("  %mb0 = load ptr, ptr %mdesc")
            self.entry.append("  store ptr %mb0, ptr %mbase")
            self.entry.append(f"  %msize.p = getelementptr inbounds i8, ptr %mdesc, i64 {abi.MEM_SIZE}")
            self.entry.append("  %ms0 = load i64, ptr %msize.p")
            self.entry.append("  store i64 %ms0, ptr %msize")

        results = tuple(_LT[t] for t in ft.results)
        func_frame = _Frame("func", (), results, 0, "ret", "ret")
        self.frames.append(func_frame)
        self.start_block("b0")
        self._body()

        cost = (CALL_BASE_COST + len(self.local_types) + self.max_height
                + len(fn.body) // BODY_INSTRUCTIONS_PER_UNIT)
        attrs = "#1" if idx in self.ml.inline else "#0"
        gas_param = ["i64 %gas.in"] if self.gas else []
        sig = ", ".join(["ptr %ctx", "i64 %budget.in"] + gas_param
                        + [f"{lt} {n}" for lt, n in params])
        text = [f"define @@LINKAGE@@fastcc {self.rt} @f{idx}({sig}) {attrs} {{", "entry:"]
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
        text.append(f"  br i1 %exhausted, label %{self._trap_site(int(TrapKind.CALL_STACK_EXHAUSTED), fn.offset)}, label %b0")
        text += self.out
        text += self.deferred
        # The shared trap block: record what and where, then unwind by status.
        text.append("trap:")
        text.append("  %ti = load i64, ptr %trapinfo")
        text.append(f"  call void @ewasm.trap(ptr %ctx, i32 {idx}, i64 %ti)")
        text += self._status_return(str(abi.STATUS_TRAP), "tr")
        if self.has_prop:
            text.append("prop:")
            text.append("  %ps = load i32, ptr %propst")
            text += self._status_return("%ps", "pr")
        text.append("}")
        return "\n".join(text)

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

    def _body(self) -> None:
        module = self.module
        dead_depth = 0  # blocks opened inside dead code
        for op, imm, off in self.fn.body:
            if self.dead:
                if op in (0x02, 0x03, 0x04):
                    dead_depth += 1
                    continue
                if op == 0x0B:
                    if dead_depth:
                        dead_depth -= 1
                        continue
                elif op == 0x05:
                    if dead_depth:
                        continue
                else:
                    continue
            info = OPS[op]
            if info.uses_float:
                err = CompileError(
                    f"float instruction {info.name} is not supported by the compiler",
                    func_index=self.idx, offset=off,
                )
                err.float_instruction = info.name
                raise err
            handler = _HANDLERS.get(op)
            if handler is not None:
                handler(self, op, imm, off)
                continue
            # control instructions
            if op == 0x0B:
                self._end()
            elif op == 0x02:
                params, results = block_signature(module, imm)
                p = tuple(_LT[t] for t in params)
                r = tuple(_LT[t] for t in results)
                end = self.label("end")
                fr = _Frame("block", p, r, len(self.stack) - len(p), end, end)
                fr.slots = self.new_slots(r)
                self.frames.append(fr)
            elif op == 0x03:
                params, results = block_signature(module, imm)
                p = tuple(_LT[t] for t in params)
                r = tuple(_LT[t] for t in results)
                hdr = self.label("loop")
                fr = _Frame("loop", p, r, len(self.stack) - len(p), hdr, hdr)
                fr.slots = self.new_slots(p)
                vals = self.popn(len(p))
                self.store_slots(fr.slots, vals)
                self.emit(f"br label %{hdr}")
                self.start_block(hdr)
                self.load_slots(fr.slots, p)
                self.frames.append(fr)
            elif op == 0x04:
                params, results = block_signature(module, imm)
                p = tuple(_LT[t] for t in params)
                r = tuple(_LT[t] for t in results)
                _, cond = self.pop()
                c = self.tmp()
                self.emit(f"{c} = icmp ne i32 {cond}, 0")
                then, els, end = self.label("then"), self.label("else"), self.label("end")
                fr = _Frame("if", p, r, len(self.stack) - len(p), end, end)
                fr.else_label = els
                fr.if_params = self.stack[len(self.stack) - len(p):] if p else []
                fr.slots = self.new_slots(r)
                self.emit(f"br i1 {c}, label %{then}, label %{els}")
                self.start_block(then)
                self.frames.append(fr)
            elif op == 0x05:
                fr = self.frames[-1]
                if not self.dead:
                    self.store_slots(fr.slots, self.popn(len(fr.results)))
                    self.emit(f"br label %{fr.end_label}")
                    fr.reachable_end = True
                fr.has_else = True
                del self.stack[fr.height:]
                self.stack.extend(fr.if_params or [])
                self.start_block(fr.else_label)
                self.dead = False
            elif op == 0x0C:
                self.branch_to(imm)
                self.dead = True
            elif op == 0x0D:
                _, cond = self.pop()
                c = self.tmp()
                self.emit(f"{c} = icmp ne i32 {cond}, 0")
                target = self.edge_to(imm)
                cont = self.label("cont")
                self.emit(f"br i1 {c}, label %{target}, label %{cont}")
                self.start_block(cont)
            elif op == 0x0E:
                labels, default = imm
                _, idx = self.pop()
                edges: dict[int, str] = {}
                for d in (*labels, default):
                    if d not in edges:
                        edges[d] = self.edge_to(d)
                cases = " ".join(f"i32 {k}, label %{edges[d]}" for k, d in enumerate(labels))
                self.emit(f"switch i32 {idx}, label %{edges[default]} [{cases}]")
                self.dead = True
            elif op == 0x0F:
                self.emit_return(self.stack[len(self.stack) - len(self.ft.results):])
                self.dead = True
            elif op == 0x00:
                self.trap_now(int(TrapKind.UNREACHABLE), off)
                self.dead = True
            elif op == 0x01:
                pass
            else:
                raise CompileError(f"instruction {info.name} is not supported by the compiler",
                                   func_index=self.idx, offset=off)

    def _end(self) -> None:
        fr = self.frames.pop()
        if fr.kind == "func":
            if not self.dead:
                self.emit_return(self.stack[len(self.stack) - len(fr.results):])
            self.frames.append(fr)  # keep for completeness; nothing follows
            return
        if fr.kind == "loop":
            # The end of a loop is reached only by falling through: values stay SSA.
            if self.dead:
                del self.stack[fr.height:]
            return
        if not self.dead:
            self.store_slots(fr.slots, self.popn(len(fr.results)))
            self.emit(f"br label %{fr.end_label}")
            fr.reachable_end = True
        if fr.kind == "if" and not fr.has_else:
            # No else: the false edge passes the if's parameters through as results.
            self.start_block(fr.else_label)
            self.store_slots(fr.slots, fr.if_params or [])
            self.emit(f"br label %{fr.end_label}")
            fr.reachable_end = True
        del self.stack[fr.height:]
        if fr.reachable_end:
            self.start_block(fr.end_label)
            self.load_slots(fr.slots, fr.results)
            self.dead = False
        else:
            self.dead = True

    # --- instruction handlers ---------------------------------------------------------
    def h_const(self, op, imm, off):
        self.push("i32" if op == 0x41 else "i64", str(imm))

    def h_local_get(self, op, imm, off):
        t = self.local_types[imm]
        v = self.tmp()
        self.emit(f"{v} = load {t}, ptr %l{imm}")
        self.push(t, v)

    def h_local_set(self, op, imm, off):
        t, v = self.pop()
        self.emit(f"store {t} {v}, ptr %l{imm}")

    def h_local_tee(self, op, imm, off):
        t, v = self.stack[-1]
        self.emit(f"store {t} {v}, ptr %l{imm}")

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
        elif name in ("rotl", "rotr"):
            fn = ("fshl." if name == "rotl" else "fshr.") + t
            self.emit(f"{r} = call {t} @llvm.{fn}({t} {a}, {t} {a}, {t} {b})")
        else:
            self.emit(f"{r} = {name} {t} {a}, {b}")
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
        r = self.tmp()
        self.emit(f"{r} = call i32 @ewasm.memory_grow(ptr %mdesc, i32 {delta})")
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
        self.emit(f"store i64 %budget, ptr {bp}")
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

    def use_gas(self, off: int) -> None:
        """The engine's gas counter, inline: no host call per metered block. On running
        out the counter keeps its value from before the failing charge."""
        _, amount = self.pop()
        g, r, oog, ng = self.tmp(), self.tmp(), self.tmp(), self.tmp()
        self.emit(f"{g} = load i64, ptr %gas")
        # One sub and a carry branch; on a borrow the stored counter is left untouched.
        self.emit(f"{r} = call {{i64, i1}} @llvm.usub.with.overflow.i64(i64 {g}, i64 {amount})")
        self.emit(f"{oog} = extractvalue {{i64, i1}} {r}, 1")
        # A negative amount always borrows (the counter is < 2^63); Ewasm reports it as
        # an argument error, not out of gas. LLVM sinks the select into the trap path.
        if _is_literal(amount):
            code: int | str = int(TrapKind.NEGATIVE_GAS if int(amount) < 0 else TrapKind.OUT_OF_GAS)
        else:
            neg, code = self.tmp(), self.tmp()
            self.emit(f"{neg} = icmp slt i64 {amount}, 0")
            self.emit(f"{code} = select i1 {neg}, i32 {int(TrapKind.NEGATIVE_GAS)}, "
                      f"i32 {int(TrapKind.OUT_OF_GAS)}")
        self.trap_if(oog, code, off)
        self.emit(f"{ng} = extractvalue {{i64, i1}} {r}, 0")
        self.emit(f"store i64 {ng}, ptr %gas")

    def gas_arg(self) -> list[str]:
        if not self.gas:
            return []
        g = self.tmp()
        self.emit(f"{g} = load i64, ptr %gas")
        return [f"i64 {g}"]

    def gas_from_call(self, r: str, rt: str) -> None:
        if self.gas:
            g = self.tmp()
            self.emit(f"{g} = extractvalue {rt} {r}, 1")
            self.emit(f"store i64 {g}, ptr %gas")

    def gas_to_ctx(self) -> None:
        """Before a call that leaves compiled code: the host reads and charges the counter
        in the context struct."""
        if self.gas and self.gas_in_register:
            g, p = self.tmp(), self.tmp()
            self.emit(f"{g} = load i64, ptr %gas")
            self.emit(f"{p} = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_GAS}")
            self.emit(f"store i64 {g}, ptr {p}")

    def gas_from_ctx(self) -> None:
        if self.gas and self.gas_in_register:
            g, p = self.tmp(), self.tmp()
            self.emit(f"{p} = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_GAS}")
            self.emit(f"{g} = load i64, ptr {p}")
            self.emit(f"store i64 {g}, ptr %gas")

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
        arglist = ", ".join(["ptr %ctx", "i64 %budget"] + self.gas_arg()
                            + [f"{t} {v}" for t, v in args])
        r = self.tmp()
        self.emit(f"{r} = call fastcc {rt} @f{imm}({arglist})")
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
        arglist = ", ".join(["ptr %ctx", "i64 %budget"] + self.gas_arg()
                            + [f"{t} {v}" for t, v in args])
        r = self.tmp()
        self.emit(f"{r} = call fastcc {rt} {fn}({arglist})")
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


_HANDLERS = {0x41: _FuncLowerer.h_const, 0x42: _FuncLowerer.h_const,
             0x20: _FuncLowerer.h_local_get, 0x21: _FuncLowerer.h_local_set,
             0x22: _FuncLowerer.h_local_tee, 0x23: _FuncLowerer.h_global_get,
             0x24: _FuncLowerer.h_global_set, 0x1A: _FuncLowerer.h_drop,
             0x1B: _FuncLowerer.h_select, 0x45: _FuncLowerer.h_eqz, 0x50: _FuncLowerer.h_eqz,
             0x3F: _FuncLowerer.h_memory_size, 0x40: _FuncLowerer.h_memory_grow,
             0x10: _FuncLowerer.h_call, 0x11: _FuncLowerer.h_call_indirect,
             0xFC08: _FuncLowerer.h_memory_init, 0xFC09: _FuncLowerer.h_data_drop,
             0xFC0A: _FuncLowerer.h_memory_copy, 0xFC0B: _FuncLowerer.h_memory_fill,
             0xFC0C: _FuncLowerer.h_table_init, 0xFC0D: _FuncLowerer.h_elem_drop,
             0xFC0E: _FuncLowerer.h_table_copy}
for _table, _handler in ((_BINOPS, _FuncLowerer.h_binop), (_DIVOPS, _FuncLowerer.h_divop),
                        (_CMPOPS, _FuncLowerer.h_cmp), (_UNOPS, _FuncLowerer.h_unop),
                        (_CONVOPS, _FuncLowerer.h_conv), (_EXTOPS, _FuncLowerer.h_ext),
                        (_LOADOPS, _FuncLowerer.h_load), (_STOREOPS, _FuncLowerer.h_store)):
    for _op_code in _table:
        _HANDLERS[_op_code] = _handler
