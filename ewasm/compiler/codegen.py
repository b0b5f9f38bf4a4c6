"""Codegen: every llvmlite call of the engine, behind one class and one lock.

Two uses, in two kinds of process:
* `emit_object` (IR text -> object bytes) runs only in compile worker processes
  (workers.py): an LLVM assertion or crash there kills the worker, never the host.
* `load_objects` (object bytes -> executable code through ORC LLJIT) runs in the host
  process, on objects a worker of this engine produced.

LLVM's global state is not safe to drive from several threads at once, hence the lock.
"""

from __future__ import annotations

import ctypes
import itertools
import struct
import threading
from functools import cache

import llvmlite
import llvmlite.binding as llvm

from ..errors import CompileError
from .pipeline import Pipeline
from .target import TargetSpec


def llvm_version() -> str:
    return f"llvmlite {llvmlite.__version__} / LLVM {'.'.join(map(str, llvm.llvm_version_info))}"


# libc functions that LLVM's memory intrinsics lower to.
_LIBC_SYMBOLS = ("memset", "memmove", "memcpy")


class Codegen:
    """The LLVM state of this process for one target."""

    # Pipeline pass names -> llvmlite's module pass manager methods.
    PASS_METHODS = {
        "always-inline": "add_always_inliner_pass",
        "sroa": "add_sroa_pass",
        "instcombine": "add_instruction_combine_pass",
        "simplifycfg": "add_simplify_cfg_pass",
        "dce": "add_dead_code_elimination_pass",
    }

    def __init__(self, spec: TargetSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._machines: dict[int, llvm.TargetMachine] = {}
        self._jit = None
        self._names = itertools.count()
        self._retired: list = []  # modules compiled, to be freed by release()
        # llvm.initialize() raises since llvmlite 0.45; these two are the supported calls.
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()

    def _machine(self, opt: int) -> llvm.TargetMachine:
        tm = self._machines.get(opt)
        if tm is None:
            s = self.spec
            tm = self._machines[opt] = llvm.Target.from_triple(s.triple).create_target_machine(
                cpu=s.cpu, features=s.features, opt=opt, reloc=s.reloc, codemodel=s.codemodel)
        return tm

    def emit_object(self, ir_text: str, pipeline: Pipeline, *, verify: bool = False) -> bytes:
        """LLVM IR text -> relocatable object bytes, through the pipeline's passes."""
        with self._lock:
            tm = self._machine(pipeline.codegen_opt)
            try:
                mod = llvm.parse_assembly(ir_text)
            except RuntimeError as exc:  # a lowering bug, never the user's input
                raise CompileError(f"internal error: generated IR does not parse: {exc}") from None
            mod.triple = self.spec.triple
            # Without the target's data layout ORC aborts the process.
            mod.data_layout = str(tm.target_data)
            if verify:
                try:
                    mod.verify()
                except RuntimeError as exc:
                    raise CompileError(f"internal error: generated IR is invalid: {exc}") from None
            if pipeline.passes:
                pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=0))
                mpm = llvm.create_new_module_pass_manager()
                for name in pipeline.passes:
                    getattr(mpm, self.PASS_METHODS[name])()
                mpm.run(mod, pb)
            obj = bytes(tm.emit_object(mod))
            # Freeing a big module takes a while: the worker does it after answering.
            self._retired.append(mod)
            return obj

    def release(self) -> None:
        """Free the modules of the objects emitted so far."""
        with self._lock:
            retired, self._retired = self._retired, []
        del retired

    def load_objects(self, objects: list[bytes], export: str, name_hint: str):
        """Link objects into this process; returns (tracker, address of `export`). The
        code stays mapped while the tracker is alive."""
        with self._lock:
            if self._jit is None:
                llvm.check_jit_execution()
                self._jit = llvm.create_lljit_compiler(self._machine(1))
            builder = llvm.JITLibraryBuilder()
            for obj in objects:
                builder.add_object_img(obj)
            for name, addr in _libc_addresses().items():
                builder.import_symbol(name, addr)
            builder.export_symbol(export)
            # Library names cannot be reused within one LLJIT.
            libname = f"{name_hint}-{next(self._names)}"
            try:
                tracker = builder.link(self._jit, libname)
            except RuntimeError as exc:
                raise CompileError(f"cannot load compiled code: {exc}") from None
            return tracker, tracker[export]


@cache
def codegen(spec: TargetSpec | None = None) -> Codegen:
    return Codegen(spec or TargetSpec.portable())


@cache
def _libc_addresses() -> dict[str, int]:
    libc = ctypes.CDLL(None)
    return {name: ctypes.cast(getattr(libc, name), ctypes.c_void_p).value for name in _LIBC_SYMBOLS}


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
