"""InstanceTemplate: what every instance of one loaded code shares, computed once (the
anchor is wasmtime's InstancePre).

Building an instance must cost about the same whatever the module holds, or a contract
with thousands of functions, globals, elements or data segments would make each call
cost far more time than its gas pays for. So everything that does not depend on the
instance is made here once per loaded code, as native images; an instance copies them
with a few C-speed operations:

* function types and signature ids (per type, and the ids array compiled code reads);
* element segments as images of TableElem entries, with the context of the instance's
  own functions filled in by one strided copy (`array` slice assignment); only items
  that name an import are set one by one;
* the initial values of the module's own globals, when they are constants;
* data segments: one read-only buffer each, shared by every instance, and the image of
  their descriptors; when there are many, the initial memory as a file that every
  instance maps copy-on-write (its cost does not grow with the segments).
"""

from __future__ import annotations

import ctypes
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..compiler import abi
from ..module import Module
from ..opcodes import F32_CONST, F64_CONST, I32_CONST, I64_CONST, REF_FUNC, REF_NULL
from ..types import FuncType
from .externs import MemoryImage
from .values import to_carrier

if TYPE_CHECKING:
    from .linker import LoadedCode

_CONSTS = (I32_CONST, I64_CONST, F32_CONST, F64_CONST)


@dataclass(slots=True)
class ElemImage:
    """One element segment's entries, ready to copy (None: items that are not plain
    ref.func / ref.null, built per instance)."""

    words: array | None  # 4 x u64 per item: internal, wrapper, vmctx (0: own), sig
    own: bool  # some item names one of the module's own functions
    imports: tuple[tuple[int, int], ...]  # (item, imported function index)
    count: int


class InstanceTemplate:
    def __init__(self, module: Module, code: LoadedCode) -> None:
        from .instance import signature_id  # the process-wide signature registry

        m = module
        self.func_types: list[FuncType] = m.all_func_types()
        self.nimp = m.num_imported_funcs
        self.type_sigs = [signature_id(t) for t in m.types]
        self.func_sigs = [self.type_sigs[t] for t in m.func_types]  # defined functions
        self.sig_ids = array("q", self.type_sigs or [0]).tobytes()
        self.global_types = [g.type for g in m.globals]
        inits = [g.init[0] for g in m.globals]
        if all(op in _CONSTS for op, _, _ in inits):
            self.global_image: bytes | None = array("Q", [
                to_carrier(imm, g.type.valtype) if op in (I32_CONST, I64_CONST) else imm
                for (op, imm, _), g in zip(inits, m.globals, strict=True)] or [0]).tobytes()
        else:
            self.global_image = None  # global.get of an import: per instance
        self.elems = [self._elem_image(seg.items, code) for seg in m.elems]
        self.data_bufs = [ctypes.create_string_buffer(seg.data, max(len(seg.data), 1))
                          for seg in m.datas]
        descs = (abi.SegDesc * max(len(m.datas), 1))()
        for k, (seg, buf) in enumerate(zip(m.datas, self.data_bufs, strict=True)):
            descs[k] = abi.SegDesc(ctypes.addressof(buf), len(seg.data))
        self.data_descs = bytes(descs)
        # How later instances initialise in a few native copies, set by the first
        # instance when the module allows it (see FastInit).
        self.fast_init: FastInit | None = None
        self.fast_checked = False

    def _elem_image(self, items: list, code: LoadedCode) -> ElemImage:
        words = array("Q", bytes(32 * len(items)))
        own, imports = False, []
        nimp = self.nimp
        for j, expr in enumerate(items):
            op, imm, _ = expr[0]
            if op == REF_NULL:
                continue
            if op != REF_FUNC:
                return ElemImage(None, False, (), len(items))
            if imm < nimp:
                imports.append((j, imm))
                continue
            i = imm - nimp
            words[4 * j] = code.internal(i)
            words[4 * j + 1] = code.wrapper(i)
            words[4 * j + 3] = self.func_sigs[i]
            own = True
        return ElemImage(words, own, tuple(imports), len(items))


@dataclass(slots=True)
class FastInit:
    """A Wasm 1.0 module (no bulk memory: segments are applied once and never read
    again) whose segments all have constant offsets into its own table and memory: its
    whole initial table and memory, as images. An instance then initialises, and resets,
    with one copy of the table (its own context filled in by a strided copy) and one
    mapping of the memory image (or a copy per segment when there are few)."""

    table_words: array | None  # entries [table_start, ...) of the initial table: 4 x u64
    # per entry, own contexts 0; every other entry is null (and nothing in a Wasm 1.0
    # module writes a table after instantiation)
    table_start: int
    table_own: bool
    table_imports: tuple[tuple[int, int], ...]  # (entry, imported function index)
    writes: list[tuple[int, bytes]]  # the data segments, in order
    image: MemoryImage | None


def template_of(module: Module, code: LoadedCode) -> InstanceTemplate:
    """The template of `code` (built on first use, kept with the code)."""
    t = code.template
    if t is None:
        t = code.template = InstanceTemplate(module, code)
    return t
