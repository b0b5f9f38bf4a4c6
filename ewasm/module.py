"""The decoded form of a Wasm module: what the decoder builds and every later stage reads.

Instructions are kept as flat tuples ``(opcode, immediate, byte_offset)``: compact,
fast to walk, and each one knows where it came from in the binary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .types import FuncType, GlobalType, MemoryType, TableType

# An instruction: (opcode, immediate or None, offset of the opcode in the module bytes).
Instr = tuple[int, Any, int]

EXTERN_FUNC, EXTERN_TABLE, EXTERN_MEMORY, EXTERN_GLOBAL = 0, 1, 2, 3
EXTERN_NAMES = {EXTERN_FUNC: "func", EXTERN_TABLE: "table", EXTERN_MEMORY: "memory",
                EXTERN_GLOBAL: "global"}


@dataclass(frozen=True, slots=True)
class Import:
    module: str
    name: str
    kind: int
    # type index for functions; TableType / MemoryType / GlobalType otherwise
    desc: Any
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Export:
    name: str
    kind: int
    index: int
    offset: int = 0


@dataclass(slots=True)
class Global:
    type: GlobalType
    init: list[Instr]
    offset: int = 0


@dataclass(slots=True)
class Function:
    """A function defined by the module (not imported)."""

    type_index: int
    locals: list[int] = field(default_factory=list)  # declared locals, expanded
    body: list[Instr] = field(default_factory=list)
    offset: int = 0  # offset of the body in the module bytes


# Element segment modes.
ELEM_ACTIVE, ELEM_PASSIVE, ELEM_DECLARATIVE = 0, 1, 2


@dataclass(slots=True)
class ElemSegment:
    mode: int
    elem_type: int
    # Each item is a constant expression: [(REF_FUNC, idx, off)] or [(REF_NULL, t, off)]
    # (for the legacy encodings each function index becomes a ref.func expression).
    items: list[list[Instr]]
    table_index: int = 0
    offset_expr: list[Instr] | None = None
    offset: int = 0


DATA_ACTIVE, DATA_PASSIVE = 0, 1


@dataclass(slots=True)
class DataSegment:
    mode: int
    data: bytes
    memory_index: int = 0
    offset_expr: list[Instr] | None = None
    offset: int = 0


@dataclass(slots=True)
class CustomSection:
    name: str
    data: bytes
    offset: int = 0


@dataclass(slots=True)
class Module:
    types: list[FuncType] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    func_types: list[int] = field(default_factory=list)  # type index per *defined* function
    tables: list[TableType] = field(default_factory=list)
    memories: list[MemoryType] = field(default_factory=list)
    globals: list[Global] = field(default_factory=list)
    exports: list[Export] = field(default_factory=list)
    start: int | None = None
    elems: list[ElemSegment] = field(default_factory=list)
    data_count: int | None = None
    codes: list[Function] = field(default_factory=list)
    datas: list[DataSegment] = field(default_factory=list)
    customs: list[CustomSection] = field(default_factory=list)

    # --- index spaces (imports first, then definitions) ---------------------------
    def imported(self, kind: int) -> list[Import]:
        return [imp for imp in self.imports if imp.kind == kind]

    @property
    def num_imported_funcs(self) -> int:
        return sum(1 for imp in self.imports if imp.kind == EXTERN_FUNC)

    @property
    def num_imported_globals(self) -> int:
        return sum(1 for imp in self.imports if imp.kind == EXTERN_GLOBAL)

    def all_func_types(self) -> list[FuncType]:
        """The function type of every function index."""
        out = [self.types[imp.desc] for imp in self.imports if imp.kind == EXTERN_FUNC]
        out.extend(self.types[t] for t in self.func_types)
        return out

    def all_tables(self) -> list[TableType]:
        return [imp.desc for imp in self.imports if imp.kind == EXTERN_TABLE] + list(self.tables)

    def all_memories(self) -> list[MemoryType]:
        return [imp.desc for imp in self.imports if imp.kind == EXTERN_MEMORY] + list(
            self.memories
        )

    def all_global_types(self) -> list[GlobalType]:
        return [imp.desc for imp in self.imports if imp.kind == EXTERN_GLOBAL] + [
            g.type for g in self.globals
        ]
