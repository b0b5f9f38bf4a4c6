"""The engine's error hierarchy: every failure the engine reports is one of these.

Each error carries where it happened (byte offset into the module, function index,
instruction offset) so that a user can find the fault without a debugger.
"""

from __future__ import annotations

import enum


class WasmError(Exception):
    """Root of every error the engine raises for a bad module or a failed run."""

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        func_index: int | None = None,
    ) -> None:
        self.message = message
        self.offset = offset
        self.func_index = func_index
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.func_index is not None:
            where.append(f"function {self.func_index}")
        if self.offset is not None:
            where.append(f"offset {self.offset:#x}")
        return f"{self.message} ({', '.join(where)})" if where else self.message


class DecodeError(WasmError):
    """The bytes are not a well-formed Wasm binary (spec: assert_malformed)."""


class ValidationError(WasmError):
    """The module is well-formed but breaks the typing rules (spec: assert_invalid)."""


class LimitError(WasmError):
    """The module is over one of the engine's implementation limits (ewasm.limits).

    `.limit` is the name of the limit (a field of ImplementationLimits). Only its two
    subclasses are raised, so that handlers of DecodeError and ValidationError see it."""

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        offset: int | None = None,
        func_index: int | None = None,
    ) -> None:
        self.limit = limit
        super().__init__(message, offset=offset, func_index=func_index)


class DecodeLimitError(LimitError, DecodeError):
    """A count or size the decoder reads is over its limit (found before allocating it)."""


class ValidationLimitError(LimitError, ValidationError):
    """A property the validator computes (nesting, stack height, ...) is over its limit."""


class UnsupportedFeature(ValidationError):
    """The module is valid Wasm but uses a feature this engine configuration disables."""


class InvalidArgument(WasmError, ValueError):
    """A call into the engine's API with an argument out of its range (a tier name,
    a negative gas limit, an evm1 mode). Also a ValueError: it is a bad argument."""


class ExecutionEnded(WasmError):
    """A host function ended the frame: eei.Stop (finish, revert, selfDestruct) or
    eei.Abort (an EEI error). Raised inside a run; `execute` turns it into the Result.
    Every run ends with one, so it is built without WasmError's rendering."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.offset = self.func_index = None
        Exception.__init__(self, message)


class CompileError(WasmError):
    """The module cannot be compiled (e.g. a float instruction) or LLVM failed."""


class LinkError(WasmError):
    """An import is missing or has the wrong type (spec: assert_unlinkable)."""


class ResourceLimitError(WasmError):
    """The module asks for more than the engine allows (memory pages, table size)."""


class HostResourceError(ResourceLimitError):
    """The host could not give what the engine's limits allow (address space, memory):
    a property of this machine, never of the contract. An execution that meets it ends
    as a whole with EVMC_INTERNAL_ERROR, never as one frame's FAILURE (which would make
    the result depend on the machine)."""


class TrapKind(enum.IntEnum):
    """Why execution stopped. The numbers are the codes compiled code writes."""

    UNREACHABLE = 1
    MEMORY_OUT_OF_BOUNDS = 2
    INTEGER_DIVIDE_BY_ZERO = 3
    INTEGER_OVERFLOW = 4
    INDIRECT_CALL_TYPE_MISMATCH = 5
    UNDEFINED_ELEMENT = 6
    UNINITIALIZED_ELEMENT = 7
    CALL_STACK_EXHAUSTED = 8
    TABLE_OUT_OF_BOUNDS = 9
    OUT_OF_GAS = 10
    INVALID_CONVERSION_TO_INTEGER = 11
    HOST = 12
    NEGATIVE_GAS = 13


_TRAP_TEXT = {
    TrapKind.UNREACHABLE: "unreachable executed",
    TrapKind.MEMORY_OUT_OF_BOUNDS: "out of bounds memory access",
    TrapKind.INTEGER_DIVIDE_BY_ZERO: "integer divide by zero",
    TrapKind.INTEGER_OVERFLOW: "integer overflow",
    TrapKind.INDIRECT_CALL_TYPE_MISMATCH: "indirect call type mismatch",
    TrapKind.UNDEFINED_ELEMENT: "undefined element",
    TrapKind.UNINITIALIZED_ELEMENT: "uninitialized element",
    TrapKind.CALL_STACK_EXHAUSTED: "call stack exhausted",
    TrapKind.TABLE_OUT_OF_BOUNDS: "out of bounds table access",
    TrapKind.OUT_OF_GAS: "out of gas",
    TrapKind.INVALID_CONVERSION_TO_INTEGER: "invalid conversion to integer",
    TrapKind.HOST: "host function trapped",
    TrapKind.NEGATIVE_GAS: "negative gas amount",
}


class Trap(WasmError):
    """Execution stopped abnormally (spec: assert_trap, assert_exhaustion)."""

    def __init__(
        self,
        kind: TrapKind,
        message: str | None = None,
        *,
        func_index: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.kind = TrapKind(kind)
        super().__init__(message or _TRAP_TEXT[self.kind], func_index=func_index, offset=offset)

    @staticmethod
    def make(kind: int, *, func_index: int | None = None, offset: int | None = None) -> Trap:
        """Build the most specific Trap subclass for a trap code."""
        cls = _TRAP_CLASS.get(TrapKind(kind), Trap)
        if cls is Trap:
            return Trap(TrapKind(kind), func_index=func_index, offset=offset)
        return cls(func_index=func_index, offset=offset)


class CallStackExhausted(Trap):
    """Recursion went deeper than the engine's deterministic call-depth budget."""

    def __init__(self, *, func_index: int | None = None, offset: int | None = None) -> None:
        super().__init__(TrapKind.CALL_STACK_EXHAUSTED, func_index=func_index, offset=offset)


class OutOfGas(Trap):
    """The gas counter fell below zero."""

    def __init__(self, *, func_index: int | None = None, offset: int | None = None) -> None:
        super().__init__(TrapKind.OUT_OF_GAS, func_index=func_index, offset=offset)


_TRAP_CLASS: dict[TrapKind, type[Trap]] = {
    TrapKind.CALL_STACK_EXHAUSTED: CallStackExhausted,
    TrapKind.OUT_OF_GAS: OutOfGas,
}
