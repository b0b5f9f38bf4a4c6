"""compile_module: decoded module -> object code, through LLVM IR text.

Every llvmlite call of the compile path is here, behind one function."""

from __future__ import annotations

import atexit
import multiprocessing
import os
import struct
import threading
from concurrent.futures import ProcessPoolExecutor

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


def pack_objects(objects: list[bytes]) -> bytes:
    """Several partition objects as one payload: count, lengths, then the bytes."""
    head = struct.pack(f"<I{len(objects)}Q", len(objects), *(len(o) for o in objects))
    return head + b"".join(objects)


def unpack_objects(payload: bytes) -> list[bytes]:
    if len(payload) < 4:
        raise CompileError("compiled code payload is truncated")
    (n,) = struct.unpack_from("<I", payload)
    if n > 64 or len(payload) < 4 + 8 * n:
        raise CompileError("compiled code payload is malformed")
    lengths = struct.unpack_from(f"<{n}Q", payload, 4)
    pos = 4 + 8 * n
    if pos + sum(lengths) != len(payload):
        raise CompileError("compiled code payload is truncated")
    out = []
    for length in lengths:
        out.append(payload[pos : pos + length])
        pos += length
    return out


_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _jobs() -> int:
    env = os.environ.get("EWASM_COMPILE_JOBS")
    if env and env.isdigit():
        return max(1, int(env))
    return os.cpu_count() or 1


def _get_pool(workers: int) -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # spawn, not fork: the parent has threads (execution workers, LLVM).
            ctx = multiprocessing.get_context("spawn")
            _pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
            atexit.register(_pool.shutdown, wait=False, cancel_futures=True)
        return _pool


def compile_module(
    module: Module, spec: TargetSpec | None = None, *, verify: bool = False
) -> bytes:
    """Decoded, validated module -> object payload (deterministic for a given module).

    Big modules are lowered to several partitions; with more than one core they compile
    in parallel worker processes (llvmlite serialises all LLVM calls in one process)."""
    spec = spec or TargetSpec.portable()
    texts = lower_module(module)
    jobs = min(_jobs(), len(texts))
    if jobs > 1:
        try:
            pool = _get_pool(jobs)
            futures = [pool.submit(compile_ir, t, spec, verify=verify) for t in texts]
            return pack_objects([f.result() for f in futures])
        except CompileError:
            raise
        except Exception:  # no usable worker processes here: compile in-process
            pass
    return pack_objects([compile_ir(t, spec, verify=verify) for t in texts])
