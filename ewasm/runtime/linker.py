"""Loads object code into the process (through Codegen's ORC LLJIT).

The returned LoadedCode owns the ResourceTracker: when it is garbage-collected the code
is unloaded (unlike MCJIT, which leaks every module for the life of the process)."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

from ..compiler import abi
from ..compiler.codegen import codegen, unpack_objects


@dataclass
class LoadedCode:
    tracker: object  # keeps the code mapped
    funcs: int  # address of the (internal, wrapper) pointer table
    count: int  # number of defined functions
    # runtime.template's InstanceTemplate for this code, made by the first instance
    template: object = field(default=None, compare=False)

    def internal(self, i: int) -> int:
        return ctypes.c_void_p.from_address(self.funcs + 16 * i).value or 0

    def wrapper(self, i: int) -> int:
        return ctypes.c_void_p.from_address(self.funcs + 16 * i + 8).value or 0


def load_object(payload: bytes, count: int, name_hint: str) -> LoadedCode:
    tracker, funcs = codegen().load_objects(unpack_objects(payload), abi.FUNCS_SYMBOL, name_hint)
    return LoadedCode(tracker, funcs, count)
