"""ewasm: an Ewasm execution engine. Wasm is decoded, validated and compiled ahead of
time to native code through llvmlite, then run with bounds-checked memory."""

from .decoder import decode_module
from .errors import (
    CallStackExhausted,
    CompileError,
    DecodeError,
    LinkError,
    OutOfGas,
    ResourceLimitError,
    Trap,
    TrapKind,
    UnsupportedFeature,
    ValidationError,
    WasmError,
)
from .features import Features
from .module import Module

__all__ = [
    "CallStackExhausted",
    "CompileError",
    "DecodeError",
    "Features",
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
