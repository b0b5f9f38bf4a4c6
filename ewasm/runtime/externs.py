"""The runtime objects a module imports and exports: Memory, Table, Global, HostFunc.

Each owns the native structure that compiled code reads through the context, so that
several instances can share one memory, table or global cell.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import weakref
from collections.abc import Callable
from typing import Any

from ..compiler import abi
from ..errors import HostResourceError, ResourceLimitError
from ..types import MAX_PAGES, PAGE_SIZE, FuncType, GlobalType, Limits, MemoryType, TableType
from . import vmem
from .values import from_carrier, to_carrier

DEFAULT_MAX_MEMORY_PAGES = 1024  # 64 MiB: the engine's default cap, whatever a module declares
DEFAULT_MAX_TABLE_ELEMENTS = 1 << 20
_CLEAR_IN_PLACE = vmem.CLEAR_IN_PLACE  # smaller tables are plain arrays


class Memory:
    """A linear memory. The whole capped size is reserved once (lazily committed by the
    kernel), so the base never moves and growing only raises the accessible size."""

    def __init__(self, type: MemoryType, *, max_pages: int = DEFAULT_MAX_MEMORY_PAGES) -> None:
        self.type = type
        declared_max = type.limits.max if type.limits.max is not None else MAX_PAGES
        self.limit_pages = min(declared_max, max_pages, MAX_PAGES)
        if type.limits.min > self.limit_pages:
            raise ResourceLimitError(
                f"memory of {type.limits.min} pages exceeds the engine limit of "
                f"{self.limit_pages} pages"
            )
        reserve = max(self.limit_pages * PAGE_SIZE, mmap.PAGESIZE)
        try:
            base = vmem.reserve(reserve)  # away from the JIT's sections (see vmem)
        except OSError as exc:
            raise HostResourceError(f"cannot reserve {reserve} bytes of memory: {exc}") from None
        self._release = weakref.finalize(self, vmem.release, base, reserve)
        # Slicing a c_char array reads bytes and assigns bytes, as an mmap would.
        self._mm = (ctypes.c_char * reserve).from_address(base)
        self.desc = abi.MemoryDesc(base, type.limits.min * PAGE_SIZE, self.limit_pages)
        self._image: MemoryImage | None = None  # mapped at the start, see reset_to_image

    @property
    def size(self) -> int:
        """Current size in pages."""
        return self.desc.size // PAGE_SIZE

    @property
    def data_size(self) -> int:
        return self.desc.size

    def reset(self) -> None:
        """Back to its initial size with every byte zero (an instance reused for another
        run). Small memories are cleared in place; a large one gives its pages back to
        the kernel, which maps zero pages on the next touch."""
        used = self.desc.size
        if self._image is not None:  # its pages would come back from the file, not zero
            vmem.map_zero(self.desc.base, self._image.size)
            self._image = None
        vmem.clear(self.desc.base, used)
        self.desc.size = self.type.limits.min * PAGE_SIZE
        self.desc.max_pages = self.limit_pages

    def reset_to_image(self, image: MemoryImage) -> None:
        """As reset(), then the image's bytes at the start, mapped copy-on-write: the
        cost does not grow with the image (wasmtime's memory-init-cow)."""
        used = self.desc.size
        span = image.size
        if used > span:  # what lies past the image is cleared as reset() would
            vmem.clear(self.desc.base + span, used - span)
        vmem.map_private(self.desc.base, span, image.fd)
        self._image = image
        self.desc.size = self.type.limits.min * PAGE_SIZE
        self.desc.max_pages = self.limit_pages

    def limit(self, pages: int) -> None:
        """Refuse growth past `pages` (at most the reserved size) until the next reset:
        a share of a budget that several memories draw on."""
        self.desc.max_pages = max(0, min(pages, self.limit_pages))

    def free(self) -> None:
        """Give the memory back to the system now, not when the garbage collector finds
        it. For an owner that knows nothing will touch it again; any later access is out
        of bounds (size 0), never a use of unmapped memory."""
        self.desc.size = self.desc.max_pages = 0
        self.desc.base = None
        self._mm = (ctypes.c_char * 0)()
        self._release()

    def grow(self, delta: int) -> int:
        """Grow by delta pages; the old size in pages, or -1 when refused."""
        old = self.size
        if delta < 0 or old + delta > self.desc.max_pages:
            return -1
        self.desc.size = (old + delta) * PAGE_SIZE
        return old

    def read(self, address: int, length: int) -> bytes:
        self._check(address, length)
        return self._mm[address : address + length]

    def write(self, address: int, data: bytes) -> None:
        self._check(address, len(data))
        # Not a slice assignment: a c_char array's copies byte by byte.
        ctypes.memmove(self.desc.base + address, data, len(data))

    def _check(self, address: int, length: int) -> None:
        if address < 0 or length < 0 or address + length > self.desc.size:
            from ..errors import Trap, TrapKind

            raise Trap(TrapKind.MEMORY_OUT_OF_BOUNDS)

    def current_type(self) -> MemoryType:
        """The type used for import matching: the current size is the minimum."""
        return MemoryType(Limits(self.size, self.type.limits.max))


class MemoryImage:
    """A memory's initial bytes (its data segments) as a sealed in-memory file, mapped
    copy-on-write by every instance: only pages that hold data take memory, once."""

    def __init__(self, writes: list[tuple[int, bytes]], size: int) -> None:
        self.size = size  # page-aligned; covers every write
        self.fd = os.memfd_create("ewasm-memory-image", getattr(os, "MFD_CLOEXEC", 1))
        weakref.finalize(self, os.close, self.fd)
        os.ftruncate(self.fd, size)
        for offset, data in writes:  # in segment order: a later one overwrites
            os.pwrite(self.fd, data, offset)


class Table:
    """A funcref table: an array of 32-byte elements (see abi.TableElem)."""

    def __init__(self, type: TableType, *, max_elements: int = DEFAULT_MAX_TABLE_ELEMENTS) -> None:
        self.type = type
        n = type.limits.min
        if n > max_elements:
            raise ResourceLimitError(f"table of {n} elements exceeds the engine limit")
        size = max(n, 1) * abi.ELEM_SIZE
        if size <= _CLEAR_IN_PLACE:
            self._elems = (abi.TableElem * max(n, 1))()
            base = ctypes.addressof(self._elems)
        else:
            # A big table costs pages only where entries are written (as a memory does).
            try:
                base = vmem.reserve(size)
            except OSError as exc:
                raise HostResourceError(f"cannot reserve {size} bytes of table: {exc}") \
                    from None
            self._release = weakref.finalize(self, vmem.release, base, size)
            self._elems = None
        self.desc = abi.TableDesc(base, n, n)
        # The instances whose functions entries may name (each keeps its own alive).
        self._instances: list[Any] = []

    @property
    def size(self) -> int:
        return self.desc.size

    def reset(self) -> None:
        """Every element null again, at the initial size (an instance reused)."""
        size = self.desc.max * abi.ELEM_SIZE
        if self._elems is not None:  # not a reservation: madvise would not zero it
            ctypes.memset(self.desc.elems, 0, size)
        else:
            vmem.clear(self.desc.elems, size)
        self.desc.size = self.type.limits.min

    @property
    def pages(self) -> int:
        """The table's size in Wasm pages of host memory (what it may cost)."""
        return -(-self.desc.max * abi.ELEM_SIZE // PAGE_SIZE)

    def current_type(self) -> TableType:
        return TableType(self.type.elem_type, Limits(self.size, self.type.limits.max))

    def get(self, index: int) -> Any:
        if not 0 <= index < self.size:
            from ..errors import Trap, TrapKind

            raise Trap(TrapKind.TABLE_OUT_OF_BOUNDS)
        # The native entry is the truth (compiled code's table.set/init/copy write it).
        elem = abi.TableElem.from_address(self.desc.elems + index * abi.ELEM_SIZE)
        if not elem.sig:
            return None
        for instance in self._instances:
            owner = instance.owner_of(elem.wrapper or 0, elem.vmctx or 0)
            if owner is not None:
                return owner
        return None


class Global:
    """A global variable: one 8-byte cell that compiled code reads and writes directly."""

    def __init__(self, type: GlobalType, value: int = 0) -> None:
        self.type = type
        self._cell = ctypes.c_uint64(0)
        self._owner = None
        self.value = value

    @classmethod
    def view(cls, type: GlobalType, address: int, owner: Any) -> Global:
        """A Global over a cell that `owner` holds (an instance's own globals live in one
        array; their Global objects are made only when asked for)."""
        g = cls.__new__(cls)
        g.type = type
        g._cell = ctypes.c_uint64.from_address(address)
        g._owner = owner  # keeps the cell's memory alive
        return g

    @property
    def address(self) -> int:
        return ctypes.addressof(self._cell)

    @property
    def value(self) -> int:
        return from_carrier(self._cell.value, self.type.valtype)

    @value.setter
    def value(self, v: int) -> None:
        self._cell.value = to_carrier(v, self.type.valtype)


class NativeFunc:
    """A host function in native code that this engine made (eei_native), with the wrapper
    ABI. Its context is the importing instance's `native_ctx`, so that one function serves
    every instance, each with its own frame."""

    __slots__ = ("type", "address", "name")

    def __init__(self, type: FuncType, address: int, name: str) -> None:
        self.type = type
        self.address = address
        self.name = name

    def __call__(self, *args: int) -> list[int]:
        raise TypeError(f"native host function {self.name} is called only from compiled code")


class HostFunc:
    """A function implemented in Python, with its Wasm type (checked when linking)."""

    def __init__(self, type: FuncType, fn: Callable[..., Any], *,
                 reenters: bool = True) -> None:
        """reenters=False promises that fn never calls back into compiled code (nothing
        it calls runs Wasm): its calls then skip the bookkeeping of the caller's
        call-depth budget that a nested call needs."""
        self.type = type
        self.fn = fn
        self.reenters = reenters
        self._trampoline = None  # built on first use by runtime.calls
        # A unique address standing for this function's context: never an instance's.
        self._vmctx = ctypes.c_int64(0)

    def __call__(self, *args: int) -> list[int]:
        res = self.fn(*args)
        if res is None:
            return []
        if isinstance(res, (tuple, list)):
            return list(res)
        return [res]
