"""evmc_bridge: the EVMC face of the engine.

`types` holds EVMC 12's message, result, transaction context, status codes, revisions,
call kinds and flags as Python values; `host` the host interface as a Protocol. The
engine's entry point `ewasm.execute(host, revision, message, code)` speaks these types.
`cabi` is EVMC ABI 12 in C; `build` makes libewasm.so (the engine as a loadable EVMC VM,
`python -m evmc_bridge build --output DIR`); `load_vm` loads any EVMC VM library and
drives it from Python with the engine's `execute` signature.
"""

from .errors import EvmcError, EvmcLoadError, EvmcOptionError, UnknownRevisionError
from .host import Host
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
    "Flags",
    "Host",
    "Message",
    "Result",
    "Revision",
    "StatusCode",
    "StorageStatus",
    "TxContext",
    "UnknownRevisionError",
]
