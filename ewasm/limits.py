"""The engine's implementation limits: one table of fixed numbers, checked when a module
is decoded and validated.

The WebAssembly spec lets an implementation refuse modules past its own limits (spec
appendix "Implementation Limitations"). This engine compiles every module ahead of time,
so whether a module is accepted must not depend on how fast the machine is: every shape
whose cost could grow without bound is refused here, by a number, before any compile
work starts. The limits also bound the memory that decoding hostile bytes can take.

Anchors (the "anchor:" comment on each field): V8's src/wasm/wasm-limits.h (kV8Max...),
and wasmparser's src/limits.rs (MAX_WASM_...), which wasmtime validates with and which
states that its limits are "agreed upon with other engines for consistency". No value
here is above an anchor's. Counts are of what the module itself declares: imported
functions, tables and globals count as imports, not as functions, tables or globals.

A module over a limit raises `DecodeLimitError` (a DecodeError: counts and sizes, found
while decoding, before anything of that size is allocated) or `ValidationLimitError` (a
ValidationError: properties of the code found by the validator); both are `LimitError`,
with `.limit` the field name below. `decode_module(..., limits=)` and
`validate_module(..., limits=)` take another table; the default is DEFAULT_LIMITS.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


def _limit(value: int, what: str) -> int:
    return field(default=value, metadata={"what": what})


@dataclass(frozen=True, slots=True)
class ImplementationLimits:
    # --- the module -----------------------------------------------------------------
    # anchor: kV8MaxWasmModuleSize = 1 GiB; wasmparser MAX_WASM_MODULE_SIZE = 1 GiB.
    # Baseline compile time is linear in the module: 1 MiB is ~4x the largest fixture.
    module_size: int = _limit(1 << 20, "module size in bytes")
    # anchor: kV8MaxWasmTypes = 1,000,000; MAX_WASM_TYPES = 1,000,000.
    types: int = _limit(1 << 16, "number of types")
    # anchor: kV8MaxWasmImports = 100,000; MAX_WASM_IMPORTS = 1,000,000.
    imports: int = _limit(1 << 16, "number of imports")
    # anchor: kV8MaxWasmExports = 100,000; MAX_WASM_EXPORTS = 1,000,000.
    exports: int = _limit(1 << 16, "number of exports")
    # Defined functions. anchor: kV8MaxWasmDefinedFunctions = 1,000,000; MAX_WASM_FUNCTIONS
    # = 1,000,000 (imports included). Each function has a fixed compile cost.
    functions: int = _limit(1 << 14, "number of functions")
    # Defined globals. anchor: kV8MaxWasmGlobals = 1,000,000; MAX_WASM_GLOBALS = 1,000,000.
    globals: int = _limit(1 << 16, "number of globals")
    # anchor: kV8MaxWasmDataSegments = 100,000; MAX_WASM_DATA_SEGMENTS = 100,000.
    data_segments: int = _limit(1 << 16, "number of data segments")
    # anchor: V8 none; MAX_WASM_ELEMENT_SEGMENTS = 100,000.
    elem_segments: int = _limit(1 << 16, "number of element segments")
    # All segments together. anchor: kV8MaxWasmTableInitEntries = 10,000,000 and
    # MAX_WASM_TABLE_ENTRIES = 10,000,000, each per segment.
    elem_entries: int = _limit(1 << 16, "number of element segment entries")
    # Initial size of a table, defined or imported. anchor: kV8MaxWasmTableSize =
    # 10,000,000; wasmparser none (2^32 - 1). The runtime allocates no bigger table
    # (runtime.externs.DEFAULT_MAX_TABLE_ELEMENTS), so it is refused here instead.
    table_size: int = _limit(1 << 20, "table size")
    # All data segments together. anchor: none in V8 or wasmparser (module size only).
    data_bytes: int = _limit(1 << 19, "data segment bytes")
    # anchor: none (module size only). Lowering and compiling are linear in it.
    module_instructions: int = _limit(1 << 19, "number of instructions in the module")
    # Parameters and declared locals of all functions. anchor: none; every local is a
    # stack slot in compiled code and a list entry while decoding.
    module_locals: int = _limit(1 << 17, "number of locals in the module")
    # Params and results of block, loop and if signatures, summed over the module. anchor:
    # none. Each is a branch-value slot in the compiled code: without this bound the
    # code grows as nesting depth x arity, superlinear in the module's size.
    block_values: int = _limit(1 << 16, "number of block signature values in the module")

    # --- a function type ------------------------------------------------------------
    # anchor: kV8MaxWasmFunctionParams = 1,000; MAX_WASM_FUNCTION_PARAMS = 1,000.
    type_params: int = _limit(1000, "number of parameters of a function type")
    # anchor: kV8MaxWasmFunctionReturns = 1,000; MAX_WASM_FUNCTION_RETURNS = 1,000.
    type_results: int = _limit(1000, "number of results of a function type")

    # --- a function body ------------------------------------------------------------
    # Bytes of a code entry (locals and instructions). anchor: kV8MaxWasmFunctionSize and
    # MAX_WASM_FUNCTION_SIZE = 7,654,321 today, 128 KiB in both until they were raised.
    function_size: int = _limit(128 * 1024, "function body size in bytes")
    # Parameters included, as wasmparser counts. anchor: kV8MaxWasmFunctionLocals =
    # 50,000; MAX_WASM_FUNCTION_LOCALS = 50,000.
    function_locals: int = _limit(50_000, "number of locals of a function (parameters included)")
    # Instructions of one body, its final `end` included. anchor: none (function size).
    function_instructions: int = _limit(1 << 16, "number of instructions in a function")
    # Label vector length (the default target not counted). anchor:
    # kV8MaxWasmFunctionBrTableSize = 65,520; MAX_WASM_BR_TABLE_SIZE = 7,654,321.
    br_table_targets: int = _limit(65_520, "number of br_table targets")
    # Blocks, loops and ifs open at once (the function body itself not counted).
    # anchor: none (V8 and wasmparser bound it by the function size only).
    nesting_depth: int = _limit(1024, "control nesting depth")
    # Operand stack height as the validation algorithm counts it. anchor: none. It is
    # part of each call's charge against the call-depth budget.
    stack_height: int = _limit(1 << 14, "operand stack height")

    def key(self) -> str:
        """A stable text form, for cache keys: a cached module was accepted under it."""
        return ",".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))

    @staticmethod
    def describe(name: str) -> str:
        """The human name of a limit, as error messages use it."""
        return _WHAT[name]

    def message(self, name: str) -> str:
        """'<what> exceeds the limit of <value>', the text of a LimitError."""
        return f"{_WHAT[name]} exceeds the limit of {getattr(self, name)}"


_WHAT = {f.name: f.metadata["what"] for f in fields(ImplementationLimits)}
LIMIT_NAMES: tuple[str, ...] = tuple(_WHAT)
DEFAULT_LIMITS = ImplementationLimits()

__all__ = ["DEFAULT_LIMITS", "LIMIT_NAMES", "ImplementationLimits"]
