"""Loads object code into the process with LLVM's ORC LLJIT.

The returned LoadedCode owns the ResourceTracker: when it is garbage-collected the code
is unloaded (unlike MCJIT, which leaks every module for the life of the process)."""

from __future__ import annotations

import ctypes
import itertools
import threading
from dataclasses import dataclass
from functools import cache

import llvmlite.binding as llvm

from ..compiler import abi
from ..compiler.codegen import unpack_objects
from ..compiler.target import TargetSpec, target_machine
from ..errors import CompileError

_lock = threading.Lock()
_counter = itertools.count()

# libc functions that LLVM's memory intrinsics lower to.
_LIBC_SYMBOLS = ("memset", "memmove", "memcpy")


@cache
def _lljit():
    llvm.check_jit_execution()
    return llvm.create_lljit_compiler(target_machine(TargetSpec.portable()))


@cache
def _libc_addresses() -> dict[str, int]:
    libc = ctypes.CDLL(None)
    return {name: ctypes.cast(getattr(libc, name), ctypes.c_void_p).value for name in _LIBC_SYMBOLS}


@dataclass
class LoadedCode:
    tracker: object  # keeps the code mapped
    funcs: int  # address of the (internal, wrapper) pointer table
    count: int  # number of defined functions

    def internal(self, i: int) -> int:
        return ctypes.c_void_p.from_address(self.funcs + 16 * i).value or 0

    def wrapper(self, i: int) -> int:
        return ctypes.c_void_p.from_address(self.funcs + 16 * i + 8).value or 0


def load_object(payload: bytes, count: int, name_hint: str) -> LoadedCode:
    objects = unpack_objects(payload)
    with _lock:
        jit = _lljit()
        builder = llvm.JITLibraryBuilder()
        for obj in objects:
            builder.add_object_img(obj)
        for name, addr in _libc_addresses().items():
            builder.import_symbol(name, addr)
        builder.export_symbol(abi.FUNCS_SYMBOL)
        # Library names cannot be reused within one LLJIT.
        libname = f"{name_hint}-{next(_counter)}"
        try:
            tracker = builder.link(jit, libname)
        except RuntimeError as exc:
            raise CompileError(f"cannot load compiled code: {exc}") from None
        return LoadedCode(tracker, tracker[abi.FUNCS_SYMBOL], count)
