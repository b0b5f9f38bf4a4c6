"""gasmeter's errors. The root is a WasmError, so that a caller handling the engine's
errors for a module (decode, validate) handles metering's too."""

from __future__ import annotations

from ewasm.errors import WasmError


class MeteringError(WasmError):
    """Root of gasmeter's errors: the module cannot be metered soundly (what and where
    is in the message)."""


class CostTableError(MeteringError):
    """A cost table file is not a cost table."""


class MissingCostError(MeteringError):
    """The cost table does not price an instruction the module uses: it names no cost for
    it (a float, or anything under a table whose default is None), or no per-unit cost
    for one whose work grows with a run-time operand (`memory.fill` needs
    `memory.fill.per_byte`). `.instruction` is its name, `.key` the missing entry."""

    def __init__(self, message: str, *, instruction: str, key: str,
                 offset: int | None = None, func_index: int | None = None) -> None:
        self.instruction = instruction
        self.key = key
        super().__init__(message, offset=offset, func_index=func_index)
