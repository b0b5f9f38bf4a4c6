"""compile_module: decoded module -> object code, through LLVM IR text.

Every llvmlite call of the compile path is here, behind one function."""

from __future__ import annotations

import threading

import llvmlite.binding as llvm

from ..errors import CompileError
from ..module import Module
from .lower import lower_module
from .target import TargetSpec, target_machine

# The light pipeline (shared/docs/compiler-design.md): on Wasm that a producer already
# optimised, these four passes give O2's run speed at a fraction of its compile time.
PASSES = ("always-inline", "sroa", "instcombine", "simplifycfg")

# LLVM's global state is not safe to drive from several threads at once.
_LLVM_LOCK = threading.Lock()


def _add_passes(mpm) -> None:
    mpm.add_always_inliner_pass()
    mpm.add_sroa_pass()
    mpm.add_instruction_combine_pass()
    mpm.add_simplify_cfg_pass()
    mpm.add_dead_code_elimination_pass()


def compile_ir(ir_text: str, spec: TargetSpec, *, verify: bool = False) -> bytes:
    """LLVM IR text -> relocatable object bytes for the fixed target."""
    with _LLVM_LOCK:
        tm = target_machine(spec)
        try:
            mod = llvm.parse_assembly(ir_text)
        except RuntimeError as exc:  # a lowering bug, never the user's input
            raise CompileError(f"internal error: generated IR does not parse: {exc}") from None
        mod.triple = spec.triple
        # Without the target's data layout MCJIT/ORC abort the process.
        mod.data_layout = str(tm.target_data)
        if verify:
            try:
                mod.verify()
            except RuntimeError as exc:
                raise CompileError(f"internal error: generated IR is invalid: {exc}") from None
        pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=0))
        mpm = llvm.create_new_module_pass_manager()
        _add_passes(mpm)
        mpm.run(mod, pb)
        return bytes(tm.emit_object(mod))


def compile_module(module: Module, spec: TargetSpec | None = None, *, verify: bool = False) -> bytes:
    """Decoded, validated module -> object bytes (deterministic for a given module)."""
    return compile_ir(lower_module(module), spec or TargetSpec.portable(), verify=verify)
