"""Bounds-check elimination by versioning, for the optimising tier: a mixin of the
function-body lowerer (function.py).

A *range* of a function body is a run of instructions that cannot change the memory's
size: a straight run without control flow or calls, or a whole innermost loop without
calls (the inline gas charge is not a call). Inside a range, each access's address is
tracked as a formula in the values locals had at the range's entry: a local the range
never writes, plus a constant, plus (in a loop) a multiple of an induction variable.
Such an access is *covered*; one check at the range's start answers for all covered
accesses from one base, at the lowest and the highest address the formula can take.

Induction variables (loop_ivs): in a loop that is only re-entered by the `br_if 0` at
its end, a local written once per iteration, at the loop's own level, as `p + S` steps
by S. When that branch tests such a local q (`q != C`, `q <u C`, or q itself), the
trip count T follows from q's entry value and is computed at the loop's entry; in
iteration j (0 <= j < T) p holds p0 + S*j before its write and p0 + S*(j+1) after it.

The check may fail where the original code would not trap yet (an earlier access in
bounds, a later one not), so a failed check must not trap. The range is lowered twice:

    <one check per base>  br ok, fast, exact
    fast:   the range with its covered accesses unchecked
    exact:  the range as it always was, every access checked in order
    join:   phis of the operand stack the two leave behind

The fast version runs exactly when every covered access is in bounds (in i64, where no
formula wraps; and an i32 address equal to an in-bounds formula modulo 2^32 is that
address), and then no covered check of the exact version could have fired: both compute
the same values, gas and traps (a trap of another kind, or running out of gas, happens
at the same instruction in both). So the trap kind and offset a program sees never
change; only how often memory's size is compared does. Ranges do not nest (each
versioned range at most doubles its own IR) and are at most MAX_RANGE instructions, so
the IR stays within twice the unversioned lowering.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..opcodes import (
    BLOCK,
    BR,
    BR_IF,
    BR_TABLE,
    CALL,
    CALL_INDIRECT,
    ELSE,
    END,
    I32_ADD,
    I32_CONST,
    I32_LT_U,
    I32_NE,
    I32_SUB,
    I64_CONST,
    IF,
    LOCAL_GET,
    LOCAL_SET,
    LOCAL_TEE,
    LOOP,
    MEMORY_GROW,
    OPS,
    RETURN,
    UNREACHABLE,
)

# A versioned range holds at most this many instructions.
MAX_RANGE = 4096
# A straight run is versioned only when it has this many covered accesses; a loop with one
# is, since the check then leaves every iteration. With 2, ecpairing.wasm's optimising
# compile took 2.2x as long as unversioned for the same run speed as 4 (1.5x).
MIN_COVERED_IN_RUN = 4
# Bounds on what an address formula holds, so that the i64 check cannot overflow:
# |constant| <= 2^33, |IV step| <= 2^16, multiplier <= 2^8, T <= 2^32.
MAX_DISPLACEMENT = 1 << 33
MAX_STEP = 1 << 16
MAX_SCALE = 1 << 8
U32 = 0xFFFFFFFF

ACCESS_OPS = frozenset(code for code, info in OPS.items()
                       if ".load" in info.name or ".store" in info.name)
_ENDS_RUN = frozenset({BLOCK, LOOP, IF, ELSE, END, BR, BR_IF, BR_TABLE, RETURN, UNREACHABLE,
                       CALL, CALL_INDIRECT, MEMORY_GROW})
# Instructions after which memory may have grown, or control leave the function's code.
_LEAVES = frozenset({CALL, CALL_INDIRECT, MEMORY_GROW})


def _is_gas_call(op: int, imm, gas_import: int | None) -> bool:
    return op == CALL and imm == gas_import


def _loop_ends(body: list) -> dict[int, int]:
    """The index of each loop's `end`, by the index of its `loop`."""
    ends: dict[int, int] = {}
    open_: list[tuple[int, int]] = []
    for pc, (op, _, _) in enumerate(body):
        if op in (BLOCK, LOOP, IF):
            open_.append((op, pc))
        elif op == END and open_:
            kind, start = open_.pop()
            if kind == LOOP:
                ends[start] = pc
    return ends


def plan_ranges(body: list, gas_import: int | None) -> dict[int, tuple[int, bool]]:
    """The ranges worth versioning: start index -> (end index, exclusive; is a loop).
    A loop is one range when nothing in it grows memory or leaves compiled code, it
    accesses memory, and no loop inside it does (an inner loop's induction variables,
    and the locals its enclosing loop writes, are only known at its own entry); the runs
    outside such loops are ranges of their own. Linear in the body: prefix counts and one
    pass over the loops answer each loop's question, however deep loops nest."""
    loop_end = _loop_ends(body)
    leaves, accesses = [0], [0]
    for op, imm, _ in body:
        leaves.append(leaves[-1] + (op in _LEAVES and not _is_gas_call(op, imm, gas_import)))
        accesses.append(accesses[-1] + (op in ACCESS_OPS))
    outer = _accessing_inner_loops(body, loop_end, accesses)
    ranges: dict[int, tuple[int, bool]] = {}
    run_start, run_accesses = -1, 0

    def close(pc: int) -> None:
        if run_start >= 0 and run_accesses >= MIN_COVERED_IN_RUN:
            ranges[run_start] = (pc, False)

    pc = 0
    while pc < len(body):
        op, imm, _ = body[pc]
        end = loop_end.get(pc)
        if (end is not None and end - pc < MAX_RANGE and leaves[end] == leaves[pc]
                and accesses[end] > accesses[pc] and pc not in outer):
            close(pc)
            run_start, run_accesses = -1, 0
            ranges[pc] = (end + 1, True)
            pc = end + 1
            continue
        if op in _ENDS_RUN and not _is_gas_call(op, imm, gas_import):
            close(pc)
            run_start, run_accesses = -1, 0
        else:
            if run_start >= 0 and pc - run_start >= MAX_RANGE:
                close(pc)
                run_start = -1
            if run_start < 0:
                run_start, run_accesses = pc, 0
            run_accesses += op in ACCESS_OPS
        pc += 1
    close(len(body))
    return ranges


def _accessing_inner_loops(body: list, loop_end: dict[int, int], accesses: list[int]) -> set[int]:
    """The loops (by start index) that hold a loop that accesses memory."""
    outer: set[int] = set()
    open_loops: list[int] = []
    closing: dict[int, int] = {end: start for start, end in loop_end.items()}
    for pc, (op, _, _) in enumerate(body):
        if op == LOOP:
            open_loops.append(pc)
        elif op == END and pc in closing:
            start = open_loops.pop()
            if open_loops and accesses[pc] > accesses[start]:
                outer.add(open_loops[-1])
    return outer


@dataclass(frozen=True)
class LoopIVs:
    """A loop's induction variables (see the module's doc): local -> (step, index of its
    write); the local its back edge tests, and how: q != bound, or q <u bound."""
    steps: dict[int, tuple[int, int]]
    counter: int
    test: str  # "ne" or "lt_u"
    bound: int


def loop_ivs(body: list, start: int, end: int, gas_import: int | None = None) -> LoopIVs | None:
    """body[start] is a loop and body[end] its `end`. Gas charges after the back edge
    (a metered loop's exit segment) are skipped over: they write no local."""
    while (end - start > 3 and _is_gas_call(body[end - 1][0], body[end - 1][1], gas_import)
           and body[end - 2][0] == I64_CONST):
        end -= 2
    if end - start < 3 or body[end - 1][0] != BR_IF or body[end - 1][1] != 0:
        return None
    depth = 0
    writes: dict[int, list[tuple[int, int]]] = {}
    for pc in range(start + 1, end):
        op, imm, _ = body[pc]
        if op in (BLOCK, LOOP, IF):
            depth += 1
        elif op == END:
            depth -= 1
        elif op in (BR, BR_IF):
            if imm == depth and pc != end - 1:
                return None  # another way back to the loop's head
        elif op == BR_TABLE:
            if depth in imm[0] or imm[1] == depth:
                return None
        elif op in (LOCAL_SET, LOCAL_TEE):
            writes.setdefault(imm, []).append((pc, depth))
    steps: dict[int, tuple[int, int]] = {}
    for k, ws in writes.items():
        if len(ws) == 1 and ws[0][1] == 0:
            step = _step_written(body, start, ws[0][0], k)
            if step is not None:
                steps[k] = (step, ws[0][0])
    test = _back_edge_test(body, end)
    if test is None or test[0] not in steps:
        return None
    q, kind, bound = test
    if kind == "lt_u" and (steps[q][0] < 0 or bound + steps[q][0] > 1 << 32):
        return None
    return LoopIVs(steps, q, kind, bound)


def _step_written(body: list, start: int, w: int, k: int) -> int | None:
    """S when body[w] writes `local.get k; [local.tee x;]... i32.const S; i32.add`."""
    if w - 3 <= start or body[w - 1][0] not in (I32_ADD, I32_SUB) or body[w - 2][0] != I32_CONST:
        return None
    j = w - 3
    while j > start and body[j][0] == LOCAL_TEE and body[j][1] != k:
        j -= 1
    if j <= start or body[j][0] != LOCAL_GET or body[j][1] != k:
        return None
    step = _signed(body[w - 2][1] & U32)
    if body[w - 1][0] == I32_SUB:
        step = -step
    return step if 0 < abs(step) <= MAX_STEP else None


def _back_edge_test(body: list, end: int) -> tuple[int, str, int] | None:
    """What the loop's closing `br_if 0` tests: (local, "ne" or "lt_u", bound)."""
    op, imm, _ = body[end - 2]
    if op in (LOCAL_GET, LOCAL_TEE):
        return imm, "ne", 0
    if op in (I32_NE, I32_LT_U) and body[end - 3][0] == I32_CONST and body[end - 4][0] in (
            LOCAL_GET, LOCAL_TEE):
        return body[end - 4][1], "ne" if op == I32_NE else "lt_u", body[end - 3][1] & U32
    return None


def stable_locals(body: list, start: int, end: int, is_loop: bool) -> frozenset[int]:
    """The locals body[start:end] writes once, at its own level (a loop's: inside it):
    after that write, in program order, such a local holds what was written there."""
    depth, level = 0, 1 if is_loop else 0
    count: dict[int, int] = {}
    top: set[int] = set()
    for op, imm, _ in body[start:end]:
        if op in (BLOCK, LOOP, IF):
            depth += 1
        elif op == END:
            depth -= 1
        elif op in (LOCAL_SET, LOCAL_TEE):
            count[imm] = count.get(imm, 0) + 1
            if depth == level:
                top.add(imm)
    return frozenset(k for k in top if count[k] == 1)


def written_locals(body: list, start: int, end: int) -> frozenset[int]:
    return frozenset(imm for op, imm, _ in body[start:end] if op in (LOCAL_SET, LOCAL_TEE))


# An address formula: (base, c, iv, scale): the entry value of local `base` (None: 0),
# plus c, plus scale times induction variable iv = (local, phase) (None: 0), whose value
# in iteration j is p0 + S*(j + phase).
Sym = tuple[int | None, int, tuple[int, int] | None, int]


def _const(c: int) -> Sym:
    return None, c & U32, None, 0


class BoundsVersioning:
    """Range versioning for _FuncLowerer; uses its lowering state and emit helpers."""

    # Outside a versioned range (and on the baseline tier, which never plans one).
    ranges: dict[int, tuple[int, bool]] = {}
    # While the exact version is lowered: the formula of each SSA value that has one;
    # of each written local, while straight code since its write has not merged with
    # other paths; and of the locals written once at the range's level (stable_locals),
    # from their write to the range's end.
    range_syms: dict[str, Sym] | None = None
    local_syms: dict[int, Sym] = {}
    stable_syms: dict[int, Sym] = {}
    range_written: frozenset[int] = frozenset()
    range_stable: frozenset[int] = frozenset()
    range_ivs: LoopIVs | None = None
    # While the exact version is lowered: (base, iv, scale) -> (the lowest c, the
    # largest c + offset + width) of the covered accesses, and their indices.
    range_ends: dict[tuple, tuple[int, int]] | None = None
    range_covered: list[int] = []
    covered: frozenset[int] = frozenset()  # unchecked, while the fast version is lowered

    def init_bounds(self) -> None:
        if self.ml.optimizing and self.uses_memory:
            self.ranges = plan_ranges(self.fn.body, self.ml.gas_import)

    def _sym(self, value: str) -> Sym | None:
        if value[0] != "%":
            return _const(int(value))
        return self.range_syms.get(value)

    def note_local(self, k: int, value: str) -> None:
        if self.range_syms is None:
            return
        if k not in self.range_written:
            s: Sym | None = (k, 0, None, 0)
        elif self.range_ivs is not None and k in self.range_ivs.steps:
            s = (None, 0, (k, int(self.pc > self.range_ivs.steps[k][1])), 1)
        else:
            s = self.stable_syms.get(k) or self.local_syms.get(k)
        if s is not None:
            self.range_syms[value] = s

    def note_local_write(self, k: int, value: str) -> None:
        if self.range_syms is None or k not in self.range_written:
            return
        if self.range_ivs is not None and k in self.range_ivs.steps:
            return  # its formula depends on where it is read (note_local)
        s = self._sym(value)
        syms = self.stable_syms if k in self.range_stable else self.local_syms
        if s is None:
            syms.pop(k, None)
        else:
            syms[k] = s

    def note_merge(self) -> None:
        """Control reaches here from more than one place (a loop's head, an else, an
        end): what the locals written more than once held is not known any more."""
        if self.local_syms:
            self.local_syms = {}

    def note_add(self, a: str, b: str, result: str, negate: bool) -> None:
        """result = a + b (or a - b) in i32. Modulo 2^32 the formula is the same sum, so
        an access whose formula is checked to lie in [0, size) reads what it says."""
        if self.range_syms is None:
            return
        sa, sb = self._sym(a), self._sym(b)
        if sa is None or sb is None:
            return
        if negate:
            if sb[0] is not None or sb[2] is not None:
                return
            sb = _const(-sb[1])
        if sa[0] is None and sa[2] is None:
            sa, sb = sb, sa
        if sb[0] is None and sb[2] is None:  # a constant
            if sa[0] is None and sa[2] is None:
                self.range_syms[result] = _const(sa[1] + sb[1])
                return
            c = sa[1] + _signed(sb[1])
            if abs(c) <= MAX_DISPLACEMENT:
                self.range_syms[result] = (sa[0], c, sa[2], sa[3])
            return
        if sa[2] is not None and sb[2] is None:
            sa, sb = sb, sa
        if sa[2] is None and sb[0] is None and sa[0] is not None:  # base + iv term
            c = sa[1] + sb[1]
            if abs(c) <= MAX_DISPLACEMENT:
                self.range_syms[result] = (sa[0], c, sb[2], sb[3])

    def note_shl(self, a: str, b: str, result: str) -> None:
        """result = a << b in i32, for a constant b: a multiple of an IV term stays one."""
        if self.range_syms is None or b[0] == "%":
            return
        sa = self._sym(a)
        if sa is None or sa[0] is not None:
            return
        k = int(b) & 31
        if sa[2] is None:
            self.range_syms[result] = _const(sa[1] << k)
            return
        c, scale = sa[1] << k, sa[3] << k
        if scale <= MAX_SCALE and abs(c) <= MAX_DISPLACEMENT:
            self.range_syms[result] = (None, c, sa[2], scale)

    def access_is_covered(self, addr: str, mem_offset: int, width: int) -> bool:
        """In the fast version: no check. In the exact one: record the access."""
        if self.pc in self.covered:
            return True
        if self.range_ends is not None:
            s = self._sym(addr)
            if s is not None:
                base, c, iv, scale = s
                key = (base, iv, scale)
                lo, hi = self.range_ends.get(key, (c, c + mem_offset + width))
                self.range_ends[key] = (min(lo, c), max(hi, c + mem_offset + width))
                self.range_covered.append(self.pc)
        return False

    def version_range(self, start: int, end: int, is_loop: bool) -> None:
        """Lower body[start:end] as a checked fast version and the exact one. Deferred gas
        charges (gas.py) are made before the range and at the end of each version, so
        that both versions start and end with none."""
        self.flush_gas()
        stack0 = list(self.stack)
        mark = len(self.out)
        body = self.fn.body
        self.range_syms, self.range_written = {}, written_locals(body, start, end)
        self.range_stable = stable_locals(body, start, end, is_loop)
        self.range_ivs = (loop_ivs(body, start, end - 1, self.ml.gas_import) if is_loop
                          else None)
        self.local_syms, self.stable_syms = {}, {}
        self.range_ends, self.range_covered = {}, []
        self._body(start, end)
        self.flush_gas()
        ends, covered, ivs = self.range_ends, self.range_covered, self.range_ivs
        self.range_syms = self.range_ends = self.range_ivs = None
        self.local_syms, self.stable_syms = {}, {}
        if len(covered) < (1 if is_loop else MIN_COVERED_IN_RUN):
            return  # what was lowered is the exact version: keep it as it is
        exact = self.out[mark:]
        del self.out[mark:]
        exact_end, exact_stack, exact_dead = self.cur, self.stack, self.dead

        ok = self._range_check(ends, ivs)
        fast, slow, join = self.label("fast"), self.label("exact"), self.label("join")
        self.emit(f"br i1 {ok}, label %{fast}, label %{slow}")
        self.out.append(f"{slow}:")
        self.out += exact
        if not exact_dead:
            self.emit(f"br label %{join}")

        self.stack, self.dead = list(stack0), False
        self.covered = frozenset(covered)
        self.start_block(fast)
        self._body(start, end)
        self.flush_gas()
        self.covered = frozenset()
        if self.dead:
            return
        fast_end, fast_stack = self.cur, self.stack
        self.emit(f"br label %{join}")
        self.start_block(join)
        merged = []
        for (t, a), (_, b) in zip(fast_stack, exact_stack, strict=True):
            if a == b:
                merged.append((t, a))
                continue
            m = self.tmp()
            self.emit(f"{m} = phi {t} [{a}, %{fast_end}], [{b}, %{exact_end}]")
            merged.append((t, m))
        self.stack = merged

    def _entry_value(self, k: int) -> str:
        v, z = self.tmp(), self.tmp()
        self.emit(f"{v} = load i32, ptr {self.local_ptr(k)}")
        self.emit(f"{z} = zext i32 {v} to i64")
        return z

    def _op(self, text: str) -> str:
        r = self.tmp()
        self.emit(f"{r} = {text}")
        return r

    def _trip_count(self, ivs: LoopIVs, conds: list[str]) -> str:
        """T, the loop's iterations, from its counter's entry value; appends to `conds`
        the condition under which T is what the loop will run (at most)."""
        q0 = self._entry_value(ivs.counter)
        step = ivs.steps[ivs.counter][0]
        if ivs.test == "lt_u":
            conds.append(self._op(f"icmp ult i64 {q0}, {ivs.bound}"))
            left = self._op(f"sub i64 {ivs.bound + step - 1}, {q0}")
            return self._op(f"udiv i64 {left}, {step}")
        if step > 0:
            gap = self._op(f"sub i64 {ivs.bound}, {q0}")
        else:
            gap = self._op(f"sub i64 {q0}, {ivs.bound}")
        gap = self._op(f"and i64 {gap}, {U32}")
        conds.append(self._op(f"icmp ne i64 {gap}, 0"))
        rem = self._op(f"urem i64 {gap}, {abs(step)}")
        conds.append(self._op(f"icmp eq i64 {rem}, 0"))
        return self._op(f"udiv i64 {gap}, {abs(step)}")

    def _range_check(self, ends: dict[tuple, tuple[int, int]], ivs: LoopIVs | None) -> str:
        """One i1: every covered access of the range is in bounds. For a base local b
        with accesses at b + c + offset (lowest c lo, largest end hi): b + lo >= 0 and
        b + hi <= size, in i64, where nothing wraps; with an IV term, at its lowest and
        highest value over the T iterations."""
        size = self.mem_size()
        conds: list[str] = []
        trips: str | None = None
        for (base, iv, scale), (lo, hi) in ends.items():
            if iv is None:
                if base is None:
                    conds.append(self._op(f"icmp ule i64 {hi}, {size}"))
                    continue
                z = self._entry_value(base)
                last = self._op(f"add {'nuw ' if hi >= 0 else ''}i64 {z}, {hi}")
                # Unsigned: a negative sum fails, as the lower bound's check does too.
                conds.append(self._op(f"icmp ule i64 {last}, {size}"))
                if lo < 0:
                    conds.append(self._op(f"icmp uge i64 {z}, {-lo}"))
                continue
            if trips is None:
                trips = self._trip_count(ivs, conds)
            p, phase = iv
            step = ivs.steps[p][0]
            first = self._op(f"add i64 {self._entry_value(p)}, {step * phase}")
            span = self._op(f"mul i64 {self._op(f'sub i64 {trips}, 1')}, {step}")
            last = self._op(f"add i64 {first}, {span}")
            low, high = (first, last) if step > 0 else (last, first)
            low = self._op(f"mul i64 {low}, {scale}")
            high = self._op(f"mul i64 {high}, {scale}")
            if base is not None:
                z = self._entry_value(base)
                low, high = self._op(f"add i64 {low}, {z}"), self._op(f"add i64 {high}, {z}")
            conds.append(self._op(f"icmp sge i64 {self._op(f'add i64 {low}, {lo}')}, 0"))
            conds.append(self._op(f"icmp sle i64 {self._op(f'add i64 {high}, {hi}')}, {size}"))
        ok = conds[0]
        for c in conds[1:]:
            ok = self._op(f"and i1 {ok}, {c}")
        return ok


def _signed(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v
