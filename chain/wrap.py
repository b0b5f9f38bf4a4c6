"""`ewasm wrap-deploy`: creation code for a contract module, and the rule that tells a
runtime module from a creation module in a deployment.

Ewasm's deployment convention is that the creation code runs once and its `finish`
output is the code stored. Authors often have only the runtime module, so this builds
the smallest creation module that returns it: the runtime bytes as a data segment, and a
`main` that calls `finish(0, len)`.

The rule (`deployment_code`), for `ewasm deploy` and for eth_sendTransaction, eth_call and
eth_estimateGas without a recipient: a module that carries a Wasm module in a data
segment (its runtime: what solc's Ewasm creation code, and this wrapper, hold) is
creation code and runs as sent, constructor and all; any other valid Ewasm contract is a
runtime module and is deployed wrapped. Data that is no Ewasm contract is sent as it is,
for the chain to refuse with its reason. A factory whose runtime embeds a child's code
looks like creation code by that rule: wrap it first (`ewasm wrap-deploy`, or
`ewasm deploy --runtime`); a wrapped module is creation code and is never wrapped twice.
eth_sendRawTransaction is never touched: its data is signed.
"""

from __future__ import annotations

from ewasm.contract import has_wasm_preamble
from ewasm.decoder import decode_module
from ewasm.encoder import encode_module
from ewasm.errors import WasmError
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
RUNTIME, CREATION, OTHER = "runtime", "creation", "other"


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


def deployment_kind(code: bytes) -> str:
    """CREATION, RUNTIME or OTHER, by the rule in this module's docstring."""
    if not has_wasm_preamble(code):
        return OTHER
    try:
        module = decode_module(code)
    except WasmError:
        return OTHER
    if any(has_wasm_preamble(bytes(seg.data)) for seg in module.datas):
        return CREATION
    try:
        check_contract_code(code)
    except WasmError:
        return OTHER
    return RUNTIME


def deployment_code(code: bytes) -> bytes:
    """The creation code a deployment of `code` runs: `code` itself unless it is a
    runtime module, which is wrapped."""
    return wrap_deploy(code, check=False) if deployment_kind(code) == RUNTIME else code
