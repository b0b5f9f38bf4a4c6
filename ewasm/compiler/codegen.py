"""compile_module: decoded module -> object code, through LLVM IR text.

Every llvmlite call of the compile path is here, behind one function."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading

import llvmlite.binding as llvm

from ..errors import CompileError
from ..module import Module
from .lower import lower_module
from .target import TargetSpec, target_machine
from .worker import read_frames, write_frames

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


def _jobs() -> int:
    env = os.environ.get("EWASM_COMPILE_JOBS")
    if env and env.isdigit():
        return max(1, int(env))
    # Workers are started as `python -m ...`: only when this process is a Python
    # interpreter (an embedding host's executable is not).
    if not os.path.basename(sys.executable).startswith("python"):
        return 1
    return os.cpu_count() or 1


def _compile_parallel(texts: list[str], spec: TargetSpec, verify: bool, jobs: int) -> list[bytes]:
    """Partition k goes to slot k % jobs; slot 0 is this process, the others workers."""
    slots = [list(range(s, len(texts), jobs)) for s in range(jobs)]
    args = [sys.executable, "-m", "ewasm.compiler.worker", spec.triple, spec.cpu,
            spec.features, spec.reloc, spec.codemodel, str(spec.opt), "1" if verify else "0"]
    procs = []
    try:
        for slot in slots[1:]:
            p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            procs.append((p, slot))
            write_frames(p.stdin, [texts[k].encode() for k in slot])
            p.stdin.close()
        results: dict[int, bytes] = {}
        for k in slots[0]:
            results[k] = compile_ir(texts[k], spec, verify=verify)
        for p, slot in procs:
            objects = read_frames(p.stdout)
            if p.wait() != 0 or len(objects) != len(slot):
                raise RuntimeError(f"compile worker failed: {p.stderr.read()[-500:]!r}")
            results.update(zip(slot, objects, strict=True))
        return [results[k] for k in range(len(texts))]
    finally:
        for p, _ in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            for stream in (p.stdout, p.stderr):
                stream.close()


def compile_module(
    module: Module,
    spec: TargetSpec | None = None,
    *,
    verify: bool = False,
    gas_import: int | None = None,
) -> bytes:
    """Decoded, validated module -> object payload (deterministic for a given module).

    Big modules are lowered to several partitions; with more than one core they compile
    in parallel worker processes (llvmlite serialises all LLVM calls in one process).
    The partitioning depends only on the module, so the bytes are the same either way."""
    spec = spec or TargetSpec.portable()
    texts = lower_module(module, gas_import)
    jobs = min(_jobs(), len(texts))
    if jobs > 1:
        try:
            return pack_objects(_compile_parallel(texts, spec, verify, jobs))
        except (OSError, RuntimeError, EOFError, struct.error):
            pass  # no usable worker processes here: compile in-process
    return pack_objects([compile_ir(t, spec, verify=verify) for t in texts])
