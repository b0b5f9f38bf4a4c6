"""evmc_bridge: the EVMC face of the engine.

`types` holds EVMC 12's message, result, transaction context, status codes, revisions,
call kinds and flags as Python values; `host` the host interface as a Protocol. The
engine's entry point `ewasm.execute(host, revision, message, code)` speaks these types.
"""

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

__all__ = [
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
]
