"""Huge functions on the baseline tier: one Wasm function as several LLVM functions.

LLVM compiles one function in one worker, so a module that is one huge function would
keep one core busy and the other idle, its whole compile on the critical path. On the
baseline tier a function of more than SPLIT_MIN instructions is therefore cut every
SEGMENT instructions into segments, each an LLVM function of its own

    i32 @f<N>.s<j>(ptr ctx, i64 budget, ptr frame, i32 entry_id)

and @f<N> becomes a driver: it charges the call like any function, puts the parameters
and zeroed locals in a frame (an alloca of its own), and calls segments until one
returns from the function or fails. The partitions spread the segments over the
workers like functions. The optimising tier compiles the function whole: both run the
same lowering of each instruction, with the same trap codes and offsets, gas and call
charge (the driver charges what the whole function would).

What lives in the frame: the locals, the results, the branch-value slots of every
block, and the operand stack at the places control passes between segments. A segment
returns the id of the entry where control goes on (>= 0), RETURNED (the results are in
the frame), or -status-1 (a trap or a failed call; the trap is recorded already).

Entries: the start of each segment (control falls in from the previous one), and every
label that a jump may reach from another segment: the end of a block or if, and the
header of a loop, whose construct spans a cut, and an if's else when the cut is between
the if and its else. Every construct that encloses one spanning a cut spans it too, so
the frames with entry labels are the outermost ones. At such a frame's start the
stack below it is stored in the frame (the part above the next enclosing entry frame:
the rest is there already) and stays valid while the frame is open, as Wasm code cannot
touch the stack below its block; each entry label loads that part back. At a cut the
stack is stored and the next segment loads it. An if whose else is an entry also stores
its parameters, which the else loads: on that path nothing runs in between. Constants
are neither stored nor loaded (they are the same in every segment). Each value is thus
stored and loaded a bounded number of times per cut, whatever the nesting: the IR stays
linear in the function.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import TrapKind
from ..module import Function
from ..opcodes import BLOCK, ELSE, END, IF, LOOP
from . import abi
from .calls import _LT, TRAP_HELPER, _is_literal
from .function import (
    _MEMORY_SETUP,
    BODY_INSTRUCTIONS_PER_UNIT,
    CALL_BASE_COST,
    ModuleLowering,
    _check_compilable_type,
    _Frame,
    _FuncLowerer,
    _trap_info,
)

SEGMENT = 2048
SPLIT_MIN = 2 * SEGMENT
RETURNED = -1


def is_split(fn: Function) -> bool:
    return len(fn.body) > SPLIT_MIN


def segment_count(fn: Function) -> int:
    return -(-len(fn.body) // SEGMENT)


def segment_name(idx: int, j: int) -> str:
    return f"@f{idx}.s{j}"


def segment_decl(idx: int, j: int) -> str:
    return f"declare i32 {segment_name(idx, j)}(ptr, i64, ptr, i32)"


def _constructs(body) -> dict[int, tuple[int | None, int]]:
    """For each block, loop and if (by the index of its opening instruction): the index
    of its else (or None) and of its end."""
    out: dict[int, tuple[int | None, int]] = {}
    open_: list[list] = []
    for pc, (op, _, _) in enumerate(body):
        if op in (BLOCK, LOOP, IF):
            open_.append([pc, None])
        elif op == ELSE:
            open_[-1][1] = pc
        elif op == END and open_:
            start, els = open_.pop()
            out[start] = (els, pc)
    return out


class SplitLowerer(_FuncLowerer):
    """Lowers one function as segments and a driver (see the module docstring)."""

    def __init__(self, ml: ModuleLowering, idx: int, fn: Function) -> None:
        super().__init__(ml, idx, fn)
        self.nseg = segment_count(fn)
        self.seg = 0
        self.constructs = _constructs(fn.body)
        self.label_seg: dict[str, int] = {}  # entry label -> the segment that holds it
        self.entry_ids: dict[str, int] = {}  # entry label -> its id (segment starts: 0..)
        self.entry_seg: dict[int, int] = {}  # id -> segment, for the entries emitted
        self.seg_entries: list[tuple[int, str]] = []  # this segment's entries
        self.fptrs: set[str] = set()  # frame pointers defined in this segment
        self.slot_off: dict[str, int] = {}
        self.nslots = 0
        self.n_entry = 0  # open frames with entry labels (frames[1..n_entry])

    # --- the frame ----------------------------------------------------------------------
    def _fptr(self, name: str, off: int) -> str:
        if name not in self.fptrs:
            self.fptrs.add(name)
            self.entry.append(f"  {name} = getelementptr inbounds i8, ptr %fr, i64 {off}")
        return name

    @property
    def _extra(self) -> int:  # stack positions and slots, interleaved, after these
        return 8 * (len(self.local_types) + len(self.ft.results))

    def local_ptr(self, k: int) -> str:
        return self._fptr(f"%fp.l{k}", 8 * k)

    def result_ptr(self, k: int) -> str:
        return self._fptr(f"%fp.r{k}", 8 * (len(self.local_types) + k))

    def stack_ptr(self, i: int) -> str:
        return self._fptr(f"%fp.s{i}", self._extra + 16 * i)

    def new_slots(self, types: tuple[str, ...]) -> list[str]:
        slots = []
        for _ in types:
            name = f"%fp.b{self.nslots}"
            self.slot_off[name] = self._extra + 16 * self.nslots + 8
            self.nslots += 1
            slots.append(name)
        return slots

    def slot_ptr(self, slot: str) -> str:
        return self._fptr(slot, self.slot_off[slot])

    # --- control between segments --------------------------------------------------------
    def direct(self, label: str) -> bool:
        return self.label_seg.get(label, self.seg) == self.seg

    def goto(self, label: str) -> None:
        if self.direct(label):
            self.emit(f"br label %{label}")
        else:
            self.emit(f"ret i32 {self.entry_ids[label]}")

    def _entry_label(self, label: str, seg: int) -> None:
        self.label_seg[label] = seg
        self.entry_ids[label] = self.nseg + len(self.entry_ids)

    def start_block(self, name: str) -> None:
        super().start_block(name)
        eid = self.entry_ids.get(name)
        if eid is not None:
            self.seg_entries.append((eid, name))
            self.entry_seg[eid] = self.seg

    def _spill_base(self, skip: _Frame | None = None) -> int:
        """The height of the innermost open entry frame (other than `skip`, which may not
        be on the frame stack yet): the stack below it is in the frame already."""
        k = self.n_entry
        if k and (k >= len(self.frames) or self.frames[k] is skip):
            k -= 1
        return self.frames[k].height if k else 0

    def spill(self, start: int, stop: int) -> None:
        for i in range(start, stop):
            t, v = self.stack[i]
            if not _is_literal(v):
                self.emit(f"store {t} {v}, ptr {self.stack_ptr(i)}")

    def reload(self, start: int, stop: int) -> None:
        for i in range(start, stop):
            t, v = self.stack[i]
            if not _is_literal(v):
                nv = self.tmp()
                self.emit(f"{nv} = load {t}, ptr {self.stack_ptr(i)}")
                self.stack[i] = (t, nv)

    def enter_frame(self, fr: _Frame) -> None:
        els, end = self.constructs[self.pc]
        here, end_seg = self.seg, end // SEGMENT
        if end_seg == here:
            return
        fr.entry = True
        if fr.kind == "loop":
            self._entry_label(fr.label, here)
        else:
            self._entry_label(fr.label, end_seg)
        top = fr.height
        if fr.kind == "if":
            else_seg = (end if els is None else els) // SEGMENT
            if else_seg != here:
                fr.else_entry = True
                self._entry_label(fr.else_label, else_seg)
                top = len(self.stack)  # with the if's parameters
        self.spill(self._spill_base(), top)
        self.n_entry += 1

    def leave_frame(self, fr: _Frame) -> None:
        if fr.entry:
            self.n_entry -= 1

    def at_label(self, fr: _Frame, height: int) -> None:
        if fr.entry:
            self.reload(self._spill_base(skip=fr), height)

    def emit_return(self, vals: list[tuple[str, str]]) -> None:
        for k, (t, v) in enumerate(vals):
            self.emit(f"store {t} {v}, ptr {self.result_ptr(k)}")
        self.emit(f"ret i32 {RETURNED}")

    # --- segments and the driver ---------------------------------------------------------
    def segments(self) -> Iterator[tuple[str, set]]:
        """Each segment's (text, callees), in order, then the driver's (text, segments)."""
        fn, ft, idx = self.fn, self.ft, self.idx
        for t in ft.params + tuple(fn.locals) + ft.results:
            _check_compilable_type(t, idx)
        self.local_types = [_LT[t] for t in ft.params] + [_LT[t] for t in fn.locals]
        self.scan_memory()
        self.frames.append(_Frame("func", (), tuple(_LT[t] for t in ft.results), 0, "ret", "ret"))
        n = len(fn.body)
        for j in range(self.nseg):
            self._begin_segment(j)
            self._body(j * SEGMENT, min(n, (j + 1) * SEGMENT))
            if j + 1 < self.nseg and not self.dead:
                self.spill(self._spill_base(), len(self.stack))
                self.emit(f"ret i32 {j + 1}")
            yield self._segment_text(j), self.callees
        yield self._driver(), set(range(self.nseg))

    def _begin_segment(self, j: int) -> None:
        self.seg = j
        self.out, self.entry, self.deferred = [], [], []
        self.fptrs = set()
        self.seg_entries = []
        self.globals_used = set()
        self.need_imports = self.need_table = self.need_sigs = False
        self.need_elem_segs = self.need_data_segs = self.need_calls = False
        self.vbuf_slots = 0
        self.has_trap = self.has_prop = False
        self.callees = set()
        self.start_block(f"s{j}go")
        if self.dead:
            self.emit("unreachable")
        else:
            self.reload(self._spill_base(), len(self.stack))

    def _segment_text(self, j: int) -> str:
        idx = self.idx
        # Before the entry block is written: the trap block may load the call table there.
        tail = ["trap:", "  %ti = load i64, ptr %trapinfo"]
        tail += self.helper_call(TRAP_HELPER, f"ptr %ctx, i32 {idx}, i64 %ti")
        tail.append(f"  ret i32 {-abi.STATUS_TRAP - 1}")
        lines = [f"define @@LINKAGE@@i32 {segment_name(idx, j)}(ptr %ctx, i64 %budget, "
                 "ptr %fr, i32 %eid) #0 {", "entry:"]
        if self.gas:
            lines.append(f"  %gas = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_GAS}")
        if self.uses_memory:
            lines += _MEMORY_SETUP
        lines += self.entry
        lines.append("  %trapinfo = alloca i64")
        if self.has_prop:
            lines.append("  %propst = alloca i32")
        if self.vbuf_slots:
            lines.append(f"  %vbuf = alloca [{self.vbuf_slots} x i64], align 8")
        cases = " ".join(f"i32 {eid}, label %{name}" for eid, name in self.seg_entries)
        lines.append(f"  switch i32 %eid, label %s{j}go [{cases}]")
        lines += self.out
        lines += self.deferred
        lines += tail
        if self.has_prop:
            lines += ["prop:", "  %ps = load i32, ptr %propst", "  %ps1 = sub i32 -1, %ps",
                      "  ret i32 %ps1"]
        lines.append("}")
        return "\n".join(lines)

    def _driver(self) -> str:
        fn, ft, idx = self.fn, self.ft, self.idx
        params = [(_LT[t], f"%p{k}") for k, t in enumerate(ft.params)]
        cost = (CALL_BASE_COST + len(self.local_types) + self.max_height
                + len(fn.body) // BODY_INSTRUCTIONS_PER_UNIT)
        gas_param = ["i64 %gas.in"] if self.gas else []
        sig = ", ".join(["ptr %ctx", "i64 %budget.in"] + gas_param
                        + [f"{lt} {n}" for lt, n in params])
        words = (self._extra + 16 * max(self.max_height, self.nslots) + 16) // 8
        # The calls of the segments and the trap block first: on the baseline tier they
        # load the call table in the entry block.
        self.entry, self.need_calls = [], False
        calls: list[list[str]] = []
        for j in range(self.nseg):
            lines, target = [], segment_name(idx, j)
            if self.ml.calls is not None:
                lines, target = self.table_entry(target, in_entry=True)
            calls.append(lines + [f"  %r{j} = call i32 {target}(ptr %ctx, i64 %budget, "
                                  "ptr %fr, i32 %e)"])
        trap = ["trap:", "  %ti = load i64, ptr %trapinfo"]
        trap += self.helper_call(TRAP_HELPER, f"ptr %ctx, i32 {idx}, i64 %ti")
        text = [f"define @@LINKAGE@@{self.rt} @f{idx}({sig}) #0 {{", "entry:"] + self.entry
        if self.gas:
            text += [f"  %gas = getelementptr inbounds i8, ptr %ctx, i64 {abi.CTX_GAS}",
                     "  store i64 %gas.in, ptr %gas"]
        text.append(f"  %fr = alloca [{words} x i64], align 8")
        if self.local_types:
            text.append(f"  call void @llvm.memset.p0.i64(ptr %fr, i8 0, "
                        f"i64 {8 * len(self.local_types)}, i1 false)")
        for k, (lt, name) in enumerate(params):
            text.append(f"  %pp{k} = getelementptr inbounds i8, ptr %fr, i64 {8 * k}")
            text.append(f"  store {lt} {name}, ptr %pp{k}")
        text += ["  %trapinfo = alloca i64", "  %next = alloca i32",
                 f"  %budget = sub i64 %budget.in, {cost}",
                 "  %exhausted = icmp slt i64 %budget, 0",
                 f"  store i64 {_trap_info(TrapKind.CALL_STACK_EXHAUSTED, fn.offset)}, "
                 "ptr %trapinfo",
                 "  br i1 %exhausted, label %trap, label %go",
                 "go:", "  store i32 0, ptr %next", "  br label %disp",
                 "disp:", "  %e = load i32, ptr %next"]
        targets = {j: j for j in range(self.nseg)}
        targets.update(self.entry_seg)
        cases = " ".join(f"i32 {eid}, label %c{seg}" for eid, seg in sorted(targets.items()))
        text.append(f"  switch i32 %e, label %bad [{cases}]")
        for j in range(self.nseg):
            text.append(f"c{j}:")
            text += calls[j]
            text += [f"  store i32 %r{j}, ptr %next",
                     f"  %k{j} = icmp sge i32 %r{j}, 0",
                     f"  br i1 %k{j}, label %disp, label %out"]
        text += ["out:", "  %r = load i32, ptr %next",
                 f"  %done = icmp eq i32 %r, {RETURNED}",
                 "  br i1 %done, label %ret, label %fail", "ret:"]
        if not ft.results and not self.gas:
            text.append("  ret i32 0")
        else:
            text.append(f"  %v = insertvalue {self.rt} undef, i32 0, 0")
            acc = "%v"
            if self.gas:
                text += ["  %vg = load i64, ptr %gas",
                         f"  %vg1 = insertvalue {self.rt} {acc}, i64 %vg, 1"]
                acc = "%vg1"
            for k, t in enumerate(ft.results):
                lt = _LT[t]
                off = 8 * (len(self.local_types) + k)
                text += [f"  %rp{k} = getelementptr inbounds i8, ptr %fr, i64 {off}",
                         f"  %rl{k} = load {lt}, ptr %rp{k}",
                         f"  %rv{k} = insertvalue {self.rt} {acc}, {lt} %rl{k}, {k + self.first}"]
                acc = f"%rv{k}"
            text.append(f"  ret {self.rt} {acc}")
        text += ["fail:", "  %st = sub i32 -1, %r"]
        text += self._status_return("%st", "fl")
        text += trap
        text += self._status_return(str(abi.STATUS_TRAP), "tr")
        text += ["bad:", "  unreachable", "}"]
        return "\n".join(text)
