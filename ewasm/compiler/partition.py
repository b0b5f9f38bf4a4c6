"""Module-level lowering: splitting the functions into partitions, and each partition's
IR text with its declarations, function table, intrinsic declarations and the shared
out-of-line helpers (trap recording, memory.grow)."""

from __future__ import annotations

from collections.abc import Iterator

from ..module import Module
from ..opcodes import CALL
from . import abi
from . import split as _split
from .calls import _LT, CallTable, ret_type
from .function import TRAP_CODE_SHIFT, UNLIKELY, ModuleLowering, _FuncLowerer
from .group import group_symbol, lower_group, plan_groups
from .split import SplitLowerer, is_split, segment_count, segment_decl
from .wrapper import _wrapper


def partition_count_for(module: Module, size: int, most: int) -> int:
    """Partitions of about `size` instructions each, at most `most` (the entry point,
    lower.partition_count, picks size and most for the tier)."""
    total = sum(len(fn.body) for fn in module.codes)
    return max(1, min(most, -(-total // size)))


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


# What a function costs the baseline tier beyond its instructions, in instructions: LLVM
# pays a fixed price per function (its passes, its frame, its symbol), about that of this
# many instructions.
FUNCTION_WEIGHT = 16
DRIVER = -1  # the unit of a split function's driver (its segments are 0, 1, ...)

Unit = tuple[int, int | None]  # (function index, None for the whole function | segment)


def baseline_units(module: Module, nimp: int) -> list[tuple[Unit, int]]:
    """The baseline tier's units of compilation with their weights, in order: a function
    whole, or a split function's segments then its driver (split.py)."""
    units: list[tuple[Unit, int]] = []
    for i, fn in enumerate(module.codes):
        idx, n = nimp + i, len(fn.body)
        if is_split(fn):
            for j in range(segment_count(fn)):
                units.append(((idx, j), min(_split.SEGMENT, n - j * _split.SEGMENT) + FUNCTION_WEIGHT))
            units.append(((idx, DRIVER), FUNCTION_WEIGHT))
        else:
            units.append(((idx, None), n + FUNCTION_WEIGHT))
    return units


def contiguous_partitions(module: Module, size: int, most: int, nimp: int) -> list[list[Unit]]:
    """The baseline tier's partitions: runs of consecutive units of about equal weight
    (instructions plus FUNCTION_WEIGHT per LLVM function), at most `most`, none empty.
    Runs keep callers beside their callees (producers emit them close), so most calls
    stay inside one object and most functions stay internal to it."""
    units = baseline_units(module, nimp)
    total = sum(w for _, w in units)
    k = max(1, min(most, len(units), -(-total // size)))
    bins: list[list[Unit]] = [[]]
    acc = 0
    for unit, w in units:
        # Close the current run once it holds its share of the weight.
        if bins[-1] and len(bins) < k and acc + w / 2 > total * len(bins) / k:
            bins.append([])
        bins[-1].append(unit)
        acc += w
    return bins


def _cross_partition_callees(module: Module, bins: list[list[int]], nimp: int) -> set[int]:
    """Functions called directly from a partition other than their own."""
    where = {idx: p for p, members in enumerate(bins) for idx in members}
    out: set[int] = set()
    for p, members in enumerate(bins):
        for idx in members:
            for op, imm, _ in module.codes[idx - nimp].body:
                if op == CALL and imm >= nimp and where[imm] != p:
                    out.add(imm)
    return out


def lower_baseline_partitions(module: Module, gas_import: int | None,
                              bins: list[list[Unit]]) -> Iterator[str]:
    """The baseline tier's partition texts (bins from contiguous_partitions), each
    lowered only when it is asked for: compiling one overlaps lowering the next. A
    function (or a split function's driver) gets external linkage only where another
    partition refers to it, a segment only when its driver is in another partition.
    Small functions are lowered in groups (group.py)."""
    ml = ModuleLowering(module, gas_import)
    nimp = ml.num_imported
    home: dict[int, int] = {}
    for p, units in enumerate(bins):
        for idx, seg in units:
            if seg is None or seg == DRIVER:
                home[idx] = p
    exported = {idx for idx in ml.escaping if idx >= nimp and home[idx] != 0}
    for p, units in enumerate(bins):
        for idx, seg in units:
            if seg == DRIVER:
                continue
            body = module.codes[idx - nimp].body
            if seg is not None:
                body = body[seg * _split.SEGMENT:(seg + 1) * _split.SEGMENT]
            for op, imm, _ in body:
                if op == CALL and imm >= nimp and home[imm] != p:
                    exported.add(imm)
    groups = plan_groups(ml, [[idx for idx, seg in units if seg is None] for units in bins])
    group_of = {idx: g for g in groups for idx in g}
    ml.grouped = {idx: (group_symbol(g[0]), sel) for g in groups for sel, idx in enumerate(g)}
    splitting: dict[int, Iterator[tuple[str, set]]] = {}
    seg_home: dict[tuple[int, int], int] = {}
    for p, units in enumerate(bins):
        for idx, seg in units:
            if seg is not None and seg != DRIVER:
                seg_home[idx, seg] = p
    for p, units in enumerate(bins):
        parts: list[str] = []
        needed: set[int] = set()
        ml.calls = CallTable(p)
        for idx, seg in units:
            group = group_of.get(idx) if seg is None else None
            if group is not None:
                if idx == group[0]:  # the group is lowered where its first member is
                    text, callees = lower_group(ml, group)
                    linkage = "" if exported.intersection(group) else "internal "
                    parts.append(text.replace("define @@LINKAGE@@", f"define {linkage}", 1))
                    needed |= callees
                continue
            if seg is None:
                lowering = _FuncLowerer(ml, idx, module.codes[idx - nimp])
                text, callees = lowering.lower(), lowering.callees
            else:
                if seg == 0:
                    splitting[idx] = SplitLowerer(ml, idx, module.codes[idx - nimp]).segments()
                text, callees = next(splitting[idx])
            if seg is None or seg == DRIVER:
                linkage = "" if idx in exported else "internal "
                if seg == DRIVER:
                    del splitting[idx]
                    parts += [segment_decl(idx, j) for j in sorted(callees)
                              if seg_home[idx, j] != p]
                    callees = set()
                if idx in ml.escaping:
                    parts.append(_wrapper(ml, idx, "" if p else "internal "))
            else:
                linkage = "" if home[idx] != p else "internal "
            parts.append(text.replace("define @@LINKAGE@@", f"define {linkage}", 1))
            needed |= callees
        needed -= {idx for idx, seg in units if seg is None or seg == DRIVER}
        declared: set[str] = set()
        for idx in sorted(needed):
            decl = _declare(ml, idx)
            if decl not in declared:  # one declaration per group
                declared.add(decl)
                parts.append(decl)
        parts.append(ml.calls.definition())
        if p == 0:
            first = {idx for idx, seg in units if seg is None or seg == DRIVER}
            parts += _table(ml, module, first, needed)
            parts += _root_call_table(len(bins))
        elif any(idx in ml.escaping for idx, seg in units if seg is None or seg == DRIVER):
            parts.append(f"@{abi.CALLS_SYMBOL} = external constant [{len(bins)} x ptr]")
        ml.calls = None
        yield _assemble(parts)


def _root_call_table(k: int) -> list[str]:
    """Partition 0's table of the partitions' call tables (abi.CTX_CALLS)."""
    parts = [f"@ewasm.calls.{p} = external constant [0 x ptr]" for p in range(1, k)]
    items = ", ".join(f"ptr @ewasm.calls.{p}" for p in range(k))
    parts.append(f"@{abi.CALLS_SYMBOL} = constant [{k} x ptr] [{items}]")
    return parts


def _table(ml: ModuleLowering, module: Module, first: set[int], declared: set[int]) -> list[str]:
    """Partition 0's function table and the declarations it needs: (internal entry,
    wrapper) of each defined function. Only escaping functions are ever entered through
    it (table elements, exports, the start function); the others get null."""
    nimp, n = ml.num_imported, len(module.codes)
    parts: list[str] = []
    for i in range(n):
        idx = nimp + i
        if idx not in first and idx in ml.escaping:
            if idx not in declared:
                parts.append(_declare(ml, idx))
            parts.append(f"declare i32 @w{idx}(ptr, ptr, ptr)")
    if n:
        items = ", ".join(
            (f"ptr @f{nimp + i}, ptr @w{nimp + i}" if nimp + i in ml.escaping
             else "ptr null, ptr null") for i in range(n))
        parts.append(f"@{abi.FUNCS_SYMBOL} = constant [{2 * n} x ptr] [{items}]")
    else:
        parts.append(f"@{abi.FUNCS_SYMBOL} = constant [0 x ptr] zeroinitializer")
    return parts


def _assemble(parts: list[str]) -> str:
    """A partition's text: the declarations and helpers its body uses, then the body."""
    body = "\n".join(parts)
    head = [decl for name, decl in sorted(_INTRINSIC_DECLS.items())
            if f"@llvm.{_INTRINSIC_NAMES[name]}(" in body]
    # A call table names a helper without a call ("ptr @ewasm.trap").
    if "@ewasm.memory_grow" in body:
        head.append(_GROW_HELPER)
    if "@ewasm.trap" in body:
        head.append(_TRAP_HELPER)
    head.append("attributes #0 = { nounwind }")
    head.append("attributes #1 = { nounwind alwaysinline }")
    head.append("attributes #2 = { nounwind noinline cold }")
    if f"!prof !{UNLIKELY}" in body:
        head.append(f'!{UNLIKELY} = !{{!"branch_weights", i32 1, i32 1048575}}')
    return "\n".join(head) + "\n" + body + "\n"


def lower_partitions(module: Module, gas_import: int | None, partitions: int, *,
                     inline_copies: bool = True,
                     bins: list[list[int]] | None = None) -> Iterator[str]:
    """The partitions' IR texts, in order, each as soon as it is lowered.

    `bins` lists each partition's functions (default: assign_partitions into
    `partitions`). Partition 0 also holds the function table. A function gets external
    linkage only where another partition refers to it (a call, or the table for an
    escaping function), so that calls link across objects; the others stay internal.
    With inline_copies (for the optimising tier), each partition carries
    `available_externally` copies of the leaf functions it would inline, so every
    function is lowered before the first text; without (the baseline tier inlines
    nothing), a partition is lowered only when it is asked for, and compiling the first
    can start while the next is lowered."""
    ml = ModuleLowering(module, gas_import, optimizing=True)
    nimp = ml.num_imported
    if bins is None:
        bins = assign_partitions(module, partitions, nimp)
    k = len(bins)
    texts: dict[int, str] = {}
    callees: dict[int, set[int]] = {}

    def lower_one(idx: int) -> None:
        lowering = _FuncLowerer(ml, idx, module.codes[idx - nimp])
        texts[idx] = lowering.lower()
        callees[idx] = lowering.callees

    if inline_copies:
        for i in range(len(module.codes)):
            lower_one(nimp + i)
    exported: set[int] = set()
    if k > 1:
        exported = _cross_partition_callees(module, bins, nimp)
        exported |= {idx for idx in ml.escaping if idx not in bins[0]}
        if inline_copies:  # a copy that is not inlined calls the original
            exported |= ml.inline
    first = set(bins[0])
    for p, members in enumerate(bins):
        mine = set(members)
        parts: list[str] = []
        for idx in members:
            if idx not in texts:
                lower_one(idx)
            linkage = "" if idx in exported else "internal "
            parts.append(texts[idx].replace("define @@LINKAGE@@", f"define {linkage}", 1))
            if idx in ml.escaping:
                parts.append(_wrapper(ml, idx, "" if p else "internal "))
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
            parts += _table(ml, module, first, needed)
        yield _assemble(parts)


def _declare(ml: ModuleLowering, idx: int) -> str:
    """The declaration of function idx (of its group's function for a group member)."""
    ft = ml.func_types[idx]
    gas = ml.gas_import is not None
    symbol, selector = ml.grouped.get(idx, (f"@f{idx}", None))
    params = ", ".join(["ptr", "i64"] + (["i64"] if gas else [])
                       + ([] if selector is None else ["i32"]) + [_LT[t] for t in ft.params])
    return f"declare {ret_type(ft, gas)} {symbol}({params})"


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

