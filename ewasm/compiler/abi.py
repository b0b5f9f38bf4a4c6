"""The contract between compiled code and the runtime: one module owns every layout.

Compiled code reaches every runtime address through the context pointer passed to each
function, so object bytes contain no process addresses and are cacheable by content.

    VMContext (8-byte fields)                MemoryDesc           TableDesc
      +0  memory    -> MemoryDesc              +0 base ptr          +0 elems ptr
      +8  globals   -> ptr[n] (global cells)   +8 size (bytes)      +8 size (elements)
     +16  table     -> TableDesc              +16 max pages        +16 max elements
     +24  imports   -> ImportEntry[n]
     +32  sig_ids   -> i64[n types]            ImportEntry          TableElem (32 bytes)
     +40  elem_segs -> SegDesc[n]               +0 fn (wrapper ABI)  +0 fn (internal ABI)
     +48  data_segs -> SegDesc[n]               +8 vmctx             +8 fn (wrapper ABI)
     +56  gas (i64)                                                 +16 vmctx
     +64  budget (i64)                         SegDesc              +24 sig id (0 = null)
     +72  trap code (i32), +76 trap func (i32)  +0 data ptr
     +80  trap offset (i64)                     +8 length
     +88  calls     -> ptr[n partitions] (baseline tier: each partition's call table)

Two calling conventions:
* internal: ``{i32 status, results...} @f<N>(ptr ctx, i64 budget, params...)``
  (plain ``i32`` when there are no results). Used for calls inside one instance. The C
  calling convention: FastISel lowers its arguments itself, while `fastcc` arguments
  fall back to SelectionDAG in every function, which the baseline tier pays per function.
* wrapper: ``i32 @w<N>(ptr callee_ctx, ptr caller_ctx, ptr values)`` with C linkage:
  arguments in, results out, through an array of 8-byte slots. Used by the runtime
  (Python entry), for imports, and for table calls that cross instances.

Call tables (the baseline tier only): its code names no symbol. With the large code
model (target.py) FastISel cannot materialise a symbol's address, and every block that
calls a function by name fell back to SelectionDAG, which doubled the baseline's code
generation time. Each partition has a table of what its code calls (functions, its
helpers), `calls` in the context points at the table of those tables (CALLS_SYMBOL), and
a call loads its callee from there. Every entry into compiled code from outside is a
wrapper, and a baseline wrapper stores CALLS_SYMBOL's address in the callee's context
first, so the runtime never sets the field.
"""

from __future__ import annotations

import ctypes

ABI_VERSION = 5  # bump whenever compiled code or its calling convention changes

# A trap site's code and byte offset travel packed in one i64: offset in the low bits
# (module sizes are far below 2^40), code above.
TRAP_CODE_SHIFT = 40

CTX_MEMORY = 0
CTX_GLOBALS = 8
CTX_TABLE = 16
CTX_IMPORTS = 24
CTX_SIG_IDS = 32
CTX_ELEM_SEGS = 40
CTX_DATA_SEGS = 48
CTX_GAS = 56
CTX_BUDGET = 64
CTX_TRAP_CODE = 72
CTX_TRAP_FUNC = 76
CTX_TRAP_OFFSET = 80
CTX_CALLS = 88
CTX_SIZE = 96

MEM_BASE = 0
MEM_SIZE = 8
MEM_MAX_PAGES = 16
MEM_DESC_SIZE = 24

TABLE_ELEMS = 0
TABLE_SIZE = 8
TABLE_MAX = 16
TABLE_DESC_SIZE = 24

ELEM_FN = 0
ELEM_WRAPPER = 8
ELEM_VMCTX = 16
ELEM_SIG = 24
ELEM_SIZE = 32

SEG_PTR = 0
SEG_LEN = 8
SEG_DESC_SIZE = 16

IMPORT_FN = 0
IMPORT_VMCTX = 8
IMPORT_SIZE = 16

# Status codes returned by every compiled function.
STATUS_OK = 0
STATUS_TRAP = 1  # details in the context's trap fields
STATUS_HOST = 2  # a host function raised; the runtime holds the exception

# Symbol the object exports: a table of (internal fn, wrapper fn) per defined function.
FUNCS_SYMBOL = "ewasm_funcs"
# Symbol of the baseline tier's table of partition call tables (see CTX_CALLS).
CALLS_SYMBOL = "ewasm_calls"


class VMContext(ctypes.Structure):
    _fields_ = [
        ("memory", ctypes.c_void_p),
        ("globals", ctypes.c_void_p),
        ("table", ctypes.c_void_p),
        ("imports", ctypes.c_void_p),
        ("sig_ids", ctypes.c_void_p),
        ("elem_segs", ctypes.c_void_p),
        ("data_segs", ctypes.c_void_p),
        ("gas", ctypes.c_int64),
        ("budget", ctypes.c_int64),
        ("trap_code", ctypes.c_int32),
        ("trap_func", ctypes.c_int32),
        ("trap_offset", ctypes.c_int64),
        ("calls", ctypes.c_void_p),
    ]


class MemoryDesc(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("size", ctypes.c_uint64), ("max_pages", ctypes.c_uint64)]


class TableDesc(ctypes.Structure):
    _fields_ = [("elems", ctypes.c_void_p), ("size", ctypes.c_uint64), ("max", ctypes.c_uint64)]


class TableElem(ctypes.Structure):
    _fields_ = [
        ("fn", ctypes.c_void_p),
        ("wrapper", ctypes.c_void_p),
        ("vmctx", ctypes.c_void_p),
        ("sig", ctypes.c_int64),
    ]


class SegDesc(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("len", ctypes.c_uint64)]


class ImportEntry(ctypes.Structure):
    _fields_ = [("fn", ctypes.c_void_p), ("vmctx", ctypes.c_void_p)]


# The C signature of every wrapper-ABI function.
WRAPPER_CFUNC = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def _check_layout() -> None:
    assert ctypes.sizeof(VMContext) == CTX_SIZE
    assert VMContext.budget.offset == CTX_BUDGET
    assert VMContext.trap_offset.offset == CTX_TRAP_OFFSET
    assert VMContext.calls.offset == CTX_CALLS
    assert ctypes.sizeof(MemoryDesc) == MEM_DESC_SIZE
    assert ctypes.sizeof(TableDesc) == TABLE_DESC_SIZE
    assert ctypes.sizeof(TableElem) == ELEM_SIZE
    assert ctypes.sizeof(SegDesc) == SEG_DESC_SIZE
    assert ctypes.sizeof(ImportEntry) == IMPORT_SIZE


_check_layout()
