"""Module-level lowering: splitting the functions into partitions, and each partition's
IR text with its declarations, function table, intrinsic declarations and the shared
out-of-line helpers (trap recording, memory.grow)."""

from __future__ import annotations

from collections.abc import Iterator

from ..module import Module
from . import abi
from .calls import _LT, ret_type
from .function import TRAP_CODE_SHIFT, ModuleLowering, _FuncLowerer
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


def lower_partitions(module: Module, gas_import: int | None, partitions: int, *,
                     inline_copies: bool = True) -> Iterator[str]:
    """The `partitions` IR texts, in order, each as soon as it is lowered.

    Partition 0 also holds the function table. With several partitions, functions get
    external linkage so that calls link across objects. With inline_copies (for the
    optimising tier), each partition carries `available_externally` copies of the leaf
    functions it would inline, so every function is lowered before the first text;
    without (the baseline tier inlines nothing), a partition is lowered only when it is
    asked for, and compiling the first can start while the next is lowered."""
    ml = ModuleLowering(module, gas_import)
    k = partitions
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

