"""`ewasm wrap-deploy`: creation code for a contract module.

Ewasm's deployment convention is that the creation code runs once and its `finish`
output is the code stored. Authors usually have only the runtime module, so this builds
the smallest creation module that returns it: the runtime bytes as a data segment, and a
`main` that calls `finish(0, len)`.
"""

from __future__ import annotations

from ewasm.encoder import encode_module
from ewasm.module import (
    DATA_ACTIVE,
    EXTERN_FUNC,
    EXTERN_MEMORY,
    DataSegment,
    Export,
    Function,
    Import,
    Module,
)
from ewasm.opcodes import CALL, END, I32_CONST
from ewasm.types import I32, FuncType, Limits, MemoryType

from .loader import check_contract_code

_PAGE = 65536


def wrap_deploy(runtime: bytes, *, check: bool = True) -> bytes:
    """Creation code whose `finish` output is `runtime` (checked as a contract first)."""
    if check:
        check_contract_code(runtime)
    size = len(runtime)
    module = Module(
        types=[FuncType((I32, I32), ()), FuncType((), ())],
        imports=[Import("ethereum", "finish", EXTERN_FUNC, 0)],
        func_types=[1],
        memories=[MemoryType(Limits(max(1, -(-size // _PAGE))))],
        exports=[Export("memory", EXTERN_MEMORY, 0), Export("main", EXTERN_FUNC, 1)],
        codes=[Function(1, [], [(I32_CONST, 0, 0), (I32_CONST, size, 0), (CALL, 0, 0),
                                (END, None, 0)])],
        datas=[DataSegment(DATA_ACTIVE, runtime, 0, [(I32_CONST, 0, 0), (END, None, 0)])],
    )
    return encode_module(module)
