"""The wrapper of an escaping function (export, start function, table element):
`i32 @w{idx}(ptr callee, ptr caller, ptr vals)`, which loads the arguments from the
buffer, calls the internal entry and stores the results back. On a trap it
copies the trap record into the caller's instance, which reports it. On the baseline
tier it first points the callee's context at the module's call tables (abi.CTX_CALLS):
every way into compiled code from outside passes a wrapper."""

from __future__ import annotations

from . import abi
from .calls import _LT, _first_result, ret_type
from .function import ModuleLowering


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
    if ml.calls is not None:
        lines.append(f"  %cp = getelementptr inbounds i8, ptr %callee, i64 {abi.CTX_CALLS}")
        lines.append(f"  store ptr @{abi.CALLS_SYMBOL}, ptr %cp")
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
    lines.append(f"  %r = call {rt} @f{idx}({arglist})")
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
