"""evmc_bridge: the bottom layer, the vocabulary every other layer speaks.

`types` holds EVMC 12's message, result, transaction context, status codes, revisions,
call kinds and flags as Python values; `abc` the map of the system's interfaces (Host,
VM, CodeLoader, CostRules, StateBackend, BlockStore), each with its contract;
`constants` the shared values (zero values, empty roots, the gas schedule); `forks` the
rules of each revision as data; `errors` this layer's errors. `cabi` is EVMC ABI 12 in
C; `load_vm` loads any EVMC VM library and drives it from Python with the engine's
`execute` signature. The engine as an EVMC VM for C hosts is apps.libewasm.
"""

from .abc import VM, CodeLoader, CostRules, Host
from .errors import EvmcError, EvmcLoadError, EvmcOptionError, UnknownRevisionError
from .types import (
    ZERO_ADDRESS,
    ZERO_BYTES32,
    AccessStatus,
    CallKind,
    Capability,
    Flags,
    Message,
    Result,
    Revision,
    StatusCode,
    StorageStatus,
    TxContext,
)


def __getattr__(name: str):
    # cffi and the host callbacks load only when a native VM is wanted.
    if name in ("load_vm", "LoadedVM"):
        from . import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'evmc_bridge' has no attribute {name!r}")


__all__ = [
    "EvmcError",
    "EvmcLoadError",
    "EvmcOptionError",
    "LoadedVM",
    "load_vm",
    "ZERO_ADDRESS",
    "ZERO_BYTES32",
    "AccessStatus",
    "CallKind",
    "Capability",
    "CodeLoader",
    "CostRules",
    "Flags",
    "Host",
    "Message",
    "Result",
    "Revision",
    "StatusCode",
    "StorageStatus",
    "TxContext",
    "UnknownRevisionError",
    "VM",
]
