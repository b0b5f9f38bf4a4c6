"""Big reservations of address space (linear memories, execution stacks), kept away from
the JIT's code.

The kernel places a mapping it is given no address for top-down from just below the main
thread's stack, where shared libraries and the JIT's code and data sections also go.
Reservations of 64 MiB (a memory) and 512 MiB (a stack) interleaved there, and kept alive
by pooling, can push one object's sections more than 2 GiB apart, past what their 32-bit
PC-relative relocations reach, and RuntimeDyld asserts in the host. So reservations are
asked for far below, from a cursor at 32 TiB; the address is a hint, and the kernel picks
another if it is taken.
"""

from __future__ import annotations

import ctypes
import mmap
import threading
from typing import Any

_FAR_BASE = 0x2000_0000_0000
_FAR_END = 0x4000_0000_0000
_GAP = 1 << 24  # between reservations: an overrun faults instead of reaching a neighbour
_MADV_DONTNEED = getattr(mmap, "MADV_DONTNEED", 4)
_lock = threading.Lock()
_cursor = _FAR_BASE
_libc: Any = None


def libc() -> Any:
    """The C library through ctypes, with errno kept (one handle for the runtime)."""
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]
        libc.mmap.restype = ctypes.c_void_p
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        libc.munmap.restype = ctypes.c_int
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        libc.madvise.restype = ctypes.c_int
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        libc.mprotect.restype = ctypes.c_int
        _libc = libc
    return _libc


def reserve(size: int) -> int:
    """The address of `size` bytes of zeroed, readable and writable memory, committed by
    the kernel only as it is touched (MAP_NORESERVE). OSError if none can be had."""
    global _cursor
    with _lock:
        hint = _cursor
        _cursor = hint + size + _GAP
        if _cursor > _FAR_END:  # reservations come and go: the kernel knows what is free
            _cursor = _FAR_BASE
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0)
    addr = libc().mmap(ctypes.c_void_p(hint), size, mmap.PROT_READ | mmap.PROT_WRITE, flags,
                     -1, 0)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        raise OSError(ctypes.get_errno(), f"cannot reserve {size} bytes")
    return addr


def map_private(addr: int, size: int, fd: int) -> None:
    """Map the first `size` bytes of file `fd` copy-on-write over [addr, addr + size),
    which must lie in a reservation: pages read from the file until written, then
    private; mapping again drops what was written (how an image is re-applied)."""
    flags = mmap.MAP_PRIVATE | getattr(mmap, "MAP_FIXED", 0x10)
    got = libc().mmap(ctypes.c_void_p(addr), size, mmap.PROT_READ | mmap.PROT_WRITE, flags,
                      fd, 0)
    if got != addr:
        raise OSError(ctypes.get_errno(), f"cannot map an image of {size} bytes")


def map_zero(addr: int, size: int) -> None:
    """Fresh zero pages over [addr, addr + size) of a reservation (undoes map_private)."""
    flags = (mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_FIXED", 0x10)
             | getattr(mmap, "MAP_NORESERVE", 0))
    got = libc().mmap(ctypes.c_void_p(addr), size, mmap.PROT_READ | mmap.PROT_WRITE, flags,
                      -1, 0)
    if got != addr:
        raise OSError(ctypes.get_errno(), f"cannot map {size} bytes of zero pages")


def release(addr: int, size: int) -> None:
    libc().munmap(ctypes.c_void_p(addr), size)


def discard(addr: int, size: int) -> None:
    """Give the pages back: they read as zero again, committed anew when touched."""
    libc().madvise(ctypes.c_void_p(addr), size, _MADV_DONTNEED)


# Up to this many bytes, clearing writes zeros (cheaper than the page faults that follow
# madvise); above it, the pages go back to the kernel.
CLEAR_IN_PLACE = 64 * 1024


def clear(addr: int, size: int) -> None:
    """Zero [addr, addr + size) of a reservation: in place when small, else by giving the
    pages back (they read as zero again, committed anew when touched)."""
    if size <= CLEAR_IN_PLACE:
        ctypes.memset(addr, 0, size)
    else:
        discard(addr, size)


def protect_none(addr: int, size: int) -> None:
    """Make the range inaccessible (a guard)."""
    if libc().mprotect(ctypes.c_void_p(addr), size, 0) != 0:
        raise OSError(ctypes.get_errno(), "mprotect failed")


def executable(code: bytes) -> int:
    """A private read-only, executable copy of `code` (engine-made machine code); never
    writable and executable at once."""
    size = max(mmap.PAGESIZE, len(code))
    addr = reserve(size)
    ctypes.memmove(addr, code, len(code))
    if libc().mprotect(ctypes.c_void_p(addr), size, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
        err = ctypes.get_errno()
        release(addr, size)
        raise OSError(err, "mprotect failed")
    return addr
