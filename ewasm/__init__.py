"""ewasm: an Ewasm execution engine. Wasm is decoded, validated and compiled ahead of
time to native code through llvmlite, then run with bounds-checked memory."""

from .api import CompiledModule, compile, instantiate, resolve_imports, validate
from .contract import ContractValidationError, check_contract
from .decoder import decode_module
from .errors import (
    CallStackExhausted,
    CompileError,
    DecodeError,
    HostResourceError,
    InvalidArgument,
    LimitError,
    LinkError,
    OutOfGas,
    ResourceLimitError,
    Trap,
    TrapKind,
    UnsupportedFeature,
    ValidationError,
    WasmError,
)
from .execute import ephemeral_code, execute, prepare_contract
from .features import Features
from .module import Module
from .runtime.externs import Global, HostFunc, Memory, Table
from .runtime.instance import Func, Instance
from .time_limit import TimeLimit, time_limit
from .types import FuncType, GlobalType, Limits, MemoryType, TableType

__all__ = [
    "CompiledModule",
    "Func",
    "FuncType",
    "Global",
    "GlobalType",
    "HostFunc",
    "Instance",
    "Limits",
    "Memory",
    "MemoryType",
    "Table",
    "TableType",
    "TimeLimit",
    "time_limit",
    "compile",
    "check_contract",
    "ContractValidationError",
    "ephemeral_code",
    "execute",
    "prepare_contract",
    "instantiate",
    "resolve_imports",
    "validate",
    "CallStackExhausted",
    "CompileError",
    "DecodeError",
    "HostResourceError",
    "InvalidArgument",
    "Features",
    "LimitError",
    "LinkError",
    "Module",
    "OutOfGas",
    "ResourceLimitError",
    "Trap",
    "TrapKind",
    "UnsupportedFeature",
    "ValidationError",
    "WasmError",
    "decode_module",
]
