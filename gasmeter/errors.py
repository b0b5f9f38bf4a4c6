"""gasmeter's errors. The root is a WasmError, so that a caller handling the engine's
errors for a module (decode, validate) handles metering's too."""

from __future__ import annotations

from ewasm.errors import WasmError


class MeteringError(WasmError):
    """Root of gasmeter's errors: the module cannot be metered soundly (what and where
    is in the message)."""


class CostTableError(MeteringError):
    """A cost table file is not a cost table."""
