"""Small functions on the baseline tier: several Wasm functions as one LLVM function.

LLVM pays a fixed price per function, whatever its size: its machine function, a hundred
code-generation passes set up and run, a frame, a symbol (measured ~0.1 ms at level 0).
A module of thousands of tiny functions spends most of its baseline compile on that. So,
on the baseline tier, the small functions of a partition that nothing outside compiled
code can name (not exported, not in a table, not the start function) and that share a
signature are lowered as members of a group:

    {ret} @g<first>(ptr ctx, i64 budget, [i64 gas,] i32 selector, params...)

whose entry block branches on the selector to the member's code (a tree of compares:
see _dispatch). A call to a member calls its group with the member's selector
(calls.py). Each member's code is what
function.py makes of it, with its own locals, its own call charge and budget, and its
trap records naming it: results, gas, traps, trap offsets and the call-depth budget are
those of the function lowered alone. What the members share is what a function sets up
the same way on every entry: the memory base and size, the trap record, the failed
call's status, the call table, the context fields, the out-of-line trap and propagation
blocks (which take the member's index from a slot its code sets first).

The frame is the group's, for any member: every member's locals and the values that
the fast register allocator keeps in stack slots. plan_groups bounds it by the call
charge of the group's cheapest member (CALL_BASE_COST budget units at least), so that
a call never takes more native stack than the budget allows for (see function.py's
frame cost): recursion through a group runs out of budget long before it runs out of
stack.
"""

from __future__ import annotations

from ..errors import TrapKind
from ..module import Function
from . import abi
from .calls import _LT, TRAP_HELPER, ret_type
from .function import (
    _MEMORY_SETUP,
    BODY_INSTRUCTIONS_PER_UNIT,
    CALL_BASE_COST,
    GAS_REGISTER_MAX_INSTRUCTIONS,
    ModuleLowering,
    _check_compilable_type,
    _Frame,
    _FuncLowerer,
    _trap_info,
)

# A function of at most this many instructions may be a member (and keeps the gas
# counter in a register, as every member must: they share the counter's slot).
MEMBER_MAX_INSTRUCTIONS = 48
GROUP_MAX_MEMBERS = 64
# The frame bound. A member's weight is its instructions, parameters and locals plus
# MEMBER_WEIGHT; the group's frame was measured at most ~6.2 bytes per unit of weight
# (values kept across blocks, locals, outgoing call arguments: tests/ewasm/
# test_baseline_groups.py has the shapes), so FRAME_BYTES_PER_WEIGHT is an upper bound.
# A group may take up to STACK_BYTES_PER_UNIT bytes per budget unit of its cheapest
# member's call charge: half of what the execution stack holds per unit of the
# call-depth budget (512 MiB for 2^20 units, see ewasm/runtime/stack.py), so recursion
# through a group exhausts its budget first.
MEMBER_WEIGHT = 4
FRAME_BYTES_PER_WEIGHT = 8
STACK_BYTES_PER_UNIT = 256

assert MEMBER_MAX_INSTRUCTIONS <= GAS_REGISTER_MAX_INSTRUCTIONS


def group_symbol(first: int) -> str:
    return f"@g{first}"


def plan_groups(ml: ModuleLowering, partitions: list[list[int]]) -> list[list[int]]:
    """The groups (lists of function indices, two members at least) of each partition's
    functions (given whole, in order): runs of candidates of one signature, each cut
    before its frame bound or GROUP_MAX_MEMBERS is passed. Depends only on the module
    and the partitions."""
    nimp = ml.num_imported
    groups: list[list[int]] = []
    for members in partitions:
        # signature -> [members, weight, the cheapest member's least call charge]
        open_: dict[tuple, list] = {}
        for idx in members:
            fn = ml.module.codes[idx - nimp]
            if idx in ml.escaping or len(fn.body) > MEMBER_MAX_INSTRUCTIONS:
                continue
            ft = ml.func_types[idx]
            slots = len(ft.params) + len(fn.locals)
            weight = len(fn.body) + slots + MEMBER_WEIGHT
            # The charge without the operand-stack height, which only lowering finds.
            charge = CALL_BASE_COST + slots + len(fn.body) // BODY_INSTRUCTIONS_PER_UNIT
            entry = open_.get((ft.params, ft.results))
            if entry is not None:
                group, w, least = entry
                if (len(group) < GROUP_MAX_MEMBERS and FRAME_BYTES_PER_WEIGHT * (w + weight)
                        <= STACK_BYTES_PER_UNIT * min(least, charge)):
                    group.append(idx)
                    entry[1], entry[2] = w + weight, min(least, charge)
                    continue
                if len(group) > 1:
                    groups.append(group)
            open_[ft.params, ft.results] = [[idx], weight, charge]
        groups += [group for group, _, _ in open_.values() if len(group) > 1]
    groups.sort(key=lambda g: g[0])
    return groups


class _MemberLowerer(_FuncLowerer):
    """One member's code: its locals and budget under names of its own (tag), its SSA
    names and labels numbered on from the previous member's."""

    def __init__(self, ml: ModuleLowering, idx: int, fn: Function, tag: int, n: int) -> None:
        super().__init__(ml, idx, fn)
        self.tag = tag
        self.n = n
        self.budget = f"%budget.{tag}"

    def local_ptr(self, k: int) -> str:
        return f"%l{self.tag}.{k}"

    def lower_member(self) -> tuple[list[str], list[str]]:
        """(its allocas, its blocks); the context loads it needs are left in self.entry."""
        fn, ft, idx, tag = self.fn, self.ft, self.idx, self.tag
        for t in ft.params + tuple(fn.locals) + ft.results:
            _check_compilable_type(t, idx)
        self.local_types = [_LT[t] for t in ft.params] + [_LT[t] for t in fn.locals]
        allocas = [f"  {self.local_ptr(k)} = alloca {lt}" for k, lt in enumerate(self.local_types)]
        self.scan_memory()
        self.frames.append(_Frame("func", (), tuple(_LT[t] for t in ft.results), 0, "ret", "ret"))
        self.start_block(f"m{tag}.b")
        self._body()
        cost = (CALL_BASE_COST + len(self.local_types) + self.max_height
                + len(fn.body) // BODY_INSTRUCTIONS_PER_UNIT)
        head = [f"m{tag}:", f"  store i32 {idx}, ptr %trapfn"]
        head += [f"  store {lt} %p{k}, ptr {self.local_ptr(k)}"
                 for k, lt in enumerate(self.local_types[:len(ft.params)])]
        head += [f"  store {lt} 0, ptr {self.local_ptr(k)}"
                 for k, lt in enumerate(self.local_types) if k >= len(ft.params)]
        head += [f"  {self.budget} = sub i64 %budget.in, {cost}",
                 f"  %exhausted.{tag} = icmp slt i64 {self.budget}, 0",
                 f"  store i64 {_trap_info(TrapKind.CALL_STACK_EXHAUSTED, fn.offset)}, "
                 "ptr %trapinfo",
                 f"  br i1 %exhausted.{tag}, label %trap, label %m{tag}.b"]
        # Slot allocas (branch values) go to the group's entry block with the locals.
        allocas += [line for line in self.entry if " = alloca " in line]
        self.entry = [line for line in self.entry if " = alloca " not in line]
        return allocas, head + self.out + self.deferred


def _dispatch(lo: int, hi: int, name: str = "ds") -> tuple[str, list[str]]:
    """The blocks that branch to member %sel of [lo, hi), and the first one's label: a
    binary tree of compares rather than a switch, which FastISel cannot select (the
    block would go to SelectionDAG, at several times the cost)."""
    if hi - lo == 1:
        return f"m{lo}", []
    mid = (lo + hi) // 2
    left, left_blocks = _dispatch(lo, mid, name + "l")
    right, right_blocks = _dispatch(mid, hi, name + "r")
    return name, [f"{name}:", f"  %{name}.c = icmp ult i32 %sel, {mid}",
                  f"  br i1 %{name}.c, label %{left}, label %{right}"] + left_blocks + right_blocks


def lower_group(ml: ModuleLowering, members: list[int]) -> tuple[str, set[int]]:
    """A group's function text (its linkage left as @@LINKAGE@@) and the functions it calls."""
    nimp = ml.num_imported
    ft = ml.func_types[members[0]]
    gas = ml.gas_import is not None
    rt = ret_type(ft, gas)
    allocas: list[str] = []
    loads: dict[str, None] = {}  # the context loads, once each, in order
    blocks: list[str] = []
    callees: set[int] = set()
    uses_memory = has_prop = False
    vbuf = 0
    n = 0
    m = None
    for tag, idx in enumerate(members):
        m = _MemberLowerer(ml, idx, ml.module.codes[idx - nimp], tag, n)
        member_allocas, member_blocks = m.lower_member()
        n = m.n
        allocas += member_allocas
        loads.update(dict.fromkeys(m.entry))
        blocks += member_blocks
        callees |= m.callees
        uses_memory |= m.uses_memory
        has_prop |= m.has_prop
        vbuf = max(vbuf, m.vbuf_slots)
    params = [f"{_LT[t]} %p{k}" for k, t in enumerate(ft.params)]
    sig = ", ".join(["ptr %ctx", "i64 %budget.in"] + (["i64 %gas.in"] if gas else [])
                    + ["i32 %sel"] + params)
    text = [f"define @@LINKAGE@@{rt} {group_symbol(members[0])}({sig}) #0 {{", "entry:"]
    if gas:  # every member keeps the counter in this alloca (MEMBER_MAX_INSTRUCTIONS)
        text += ["  %gas = alloca i64", "  store i64 %gas.in, ptr %gas"]
    if uses_memory:
        text += _MEMORY_SETUP
    text += ["  %trapinfo = alloca i64", "  %trapfn = alloca i32"]
    if has_prop:
        text.append("  %propst = alloca i32")
    if vbuf:
        text.append(f"  %vbuf = alloca [{vbuf} x i64], align 8")
    text += allocas
    text += loads
    root, dispatch = _dispatch(0, len(members))
    text.append(f"  br label %{root}")
    text += dispatch
    text += blocks
    text += ["trap:", "  %ti = load i64, ptr %trapinfo", "  %tf = load i32, ptr %trapfn"]
    m.need_calls = "%calls" in loads
    text += m.helper_call(TRAP_HELPER, "ptr %ctx, i32 %tf, i64 %ti")
    text += m._status_return(str(abi.STATUS_TRAP), "tr")
    if has_prop:
        text += ["prop:", "  %ps = load i32, ptr %propst"]
        text += m._status_return("%ps", "pr")
    text.append("}")
    return "\n".join(text), callees
