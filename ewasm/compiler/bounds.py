"""Bounds-check elimination by versioning, for the optimising tier: a mixin of the
function-body lowerer (function.py).

A *range* of a function body is a run of instructions that cannot change the memory's
size: a straight run without control flow or calls, or a whole loop without calls (the
inline gas charge is not a call). Inside a range, a local that the range never writes
holds one value throughout, so every access from it at a constant offset is in bounds
when the largest one is; accesses at constant addresses likewise. Such an access is
*covered*, and one check at the range's start, per base, answers for all of them.

The check may fail where the original code would not trap yet (an earlier access in
bounds, a later one not), so a failed check must not trap. The range is lowered twice:

    <one check per base>  br ok, fast, exact
    fast:   the range with its covered accesses unchecked
    exact:  the range as it always was, every access checked in order
    join:   phis of the operand stack the two leave behind

The fast version runs exactly when every covered access is in bounds, and then no covered
check of the exact version could have fired: both compute the same values, gas and traps
(a trap of another kind, or running out of gas, happens at the same instruction in both).
So the trap kind and offset a program sees never change; only how often memory's size is
compared does. Ranges do not nest (each versioned range at most doubles its own IR) and are
at most MAX_RANGE instructions, so the IR stays within twice the unversioned lowering.
"""

from __future__ import annotations

from ..opcodes import (
    BLOCK,
    BR,
    BR_IF,
    BR_TABLE,
    CALL,
    CALL_INDIRECT,
    ELSE,
    END,
    IF,
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
    Outermost loops first: a loop that qualifies (nothing in it grows memory or leaves
    compiled code, and it accesses memory) is one range, and the runs inside a loop that
    does not are ranges of their own. Linear in the body: prefix counts answer each
    loop's question, however deep loops nest."""
    loop_end = _loop_ends(body)
    leaves, accesses = [0], [0]
    for op, imm, _ in body:
        leaves.append(leaves[-1] + (op in _LEAVES and not _is_gas_call(op, imm, gas_import)))
        accesses.append(accesses[-1] + (op in ACCESS_OPS))
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
                and accesses[end] > accesses[pc]):
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


def written_locals(body: list, start: int, end: int) -> frozenset[int]:
    return frozenset(imm for op, imm, _ in body[start:end] if op in (LOCAL_SET, LOCAL_TEE))


class BoundsVersioning:
    """Range versioning for _FuncLowerer; uses its lowering state and emit helpers."""

    # Outside a versioned range (and on the baseline tier, which never plans one).
    ranges: dict[int, tuple[int, bool]] = {}
    range_bases: dict[str, int] | None = None  # SSA value -> the unwritten local it read
    range_written: frozenset[int] = frozenset()
    # While the exact version is lowered: base ("c" or a local) -> the largest end of an
    # access from it, and the covered accesses' indices.
    range_ends: dict[object, int] | None = None
    range_covered: list[int] = []
    covered: frozenset[int] = frozenset()  # unchecked, while the fast version is lowered

    def init_bounds(self) -> None:
        if self.ml.optimizing and self.uses_memory:
            self.ranges = plan_ranges(self.fn.body, self.ml.gas_import)

    def note_local(self, k: int, value: str) -> None:
        if self.range_bases is not None and k not in self.range_written:
            self.range_bases[value] = k

    def access_is_covered(self, addr: str, mem_offset: int, width: int) -> bool:
        """In the fast version: no check. In the exact one: record the access."""
        if self.pc in self.covered:
            return True
        if self.range_ends is not None:
            if addr[0] != "%":
                key: object = "c"
                end = (int(addr) & 0xFFFFFFFF) + mem_offset + width
            else:
                key = self.range_bases.get(addr)
                end = mem_offset + width
            if key is not None:
                self.range_ends[key] = max(self.range_ends.get(key, 0), end)
                self.range_covered.append(self.pc)
        return False

    def version_range(self, start: int, end: int, is_loop: bool) -> None:
        """Lower body[start:end] as a checked fast version and the exact one. Deferred gas
        charges (gas.py) are made before the range and at the end of each version, so
        that both versions start and end with none."""
        self.flush_gas()
        stack0 = list(self.stack)
        mark = len(self.out)
        self.range_bases, self.range_written = {}, written_locals(self.fn.body, start, end)
        self.range_ends, self.range_covered = {}, []
        self._body(start, end)
        self.flush_gas()
        ends, covered = self.range_ends, self.range_covered
        self.range_bases = self.range_ends = None
        if len(covered) < (1 if is_loop else MIN_COVERED_IN_RUN):
            return  # what was lowered is the exact version: keep it as it is
        exact = self.out[mark:]
        del self.out[mark:]
        exact_end, exact_stack, exact_dead = self.cur, self.stack, self.dead

        ok = self._range_check(ends)
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

    def _range_check(self, ends: dict[object, int]) -> str:
        """One i1: every covered access of the range is in bounds."""
        size = self.mem_size()
        ok = ""
        for key, end in ends.items():
            if key == "c":
                last = str(end)
            else:
                v, z, last = self.tmp(), self.tmp(), self.tmp()
                self.emit(f"{v} = load i32, ptr {self.local_ptr(key)}")
                self.emit(f"{z} = zext i32 {v} to i64")
                self.emit(f"{last} = add nuw i64 {z}, {end}")
            c = self.tmp()
            self.emit(f"{c} = icmp ule i64 {last}, {size}")
            if ok:
                both = self.tmp()
                self.emit(f"{both} = and i1 {ok}, {c}")
                c = both
            ok = c
        return ok
