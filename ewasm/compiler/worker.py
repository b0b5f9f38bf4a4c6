"""A compile worker process: IR texts in on stdin, object bytes out on stdout.

Started by workers.WorkerPool as `python -I -c BOOT PATHS SPEC NICE` and kept for many
requests. A request is a frame list [pipeline key, IR text, ...]; the answer is
[b"ok", object, ...] or [b"error", message]. Frames are a little-endian u32 count, then
for each item a u64 length and the bytes. The worker ends when its stdin closes (the
host closed the pool, or died).

Every LLVM step that could abort runs here: an assertion, abort or crash inside LLVM
ends this process, and the host sees a closed stream instead of dying with it."""

from __future__ import annotations

import struct
import sys
from typing import BinaryIO

# At most this many items in one frame list, and bytes in one item: a corrupt stream
# must not make either side allocate without bound.
MAX_ITEMS = 1 << 16
MAX_ITEM_BYTES = 1 << 32


def write_frames(out: BinaryIO, items: list[bytes]) -> None:
    out.write(struct.pack("<I", len(items)))
    for item in items:
        out.write(struct.pack("<Q", len(item)))
        out.write(item)
    out.flush()


def _read_exact(inp: BinaryIO, n: int) -> bytes:
    data = inp.read(n)
    if len(data) != n:
        raise EOFError("worker stream ended early")
    return data


def read_frames(inp: BinaryIO) -> list[bytes]:
    (n,) = struct.unpack("<I", _read_exact(inp, 4))
    if n > MAX_ITEMS:
        raise EOFError("worker stream is corrupt")
    items = []
    for _ in range(n):
        (length,) = struct.unpack("<Q", _read_exact(inp, 8))
        if length > MAX_ITEM_BYTES:
            raise EOFError("worker stream is corrupt")
        items.append(_read_exact(inp, length))
    return items


def main(argv: list[str]) -> int:
    import json
    import os
    import resource

    from ..errors import CompileError
    from .codegen import Codegen
    from .pipeline import PIPELINES
    from .target import TargetSpec

    spec = TargetSpec(**json.loads(argv[0]))
    nice = int(argv[1])
    if nice:
        os.nice(nice)
    # An LLVM abort must not leave a core file per hostile module.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    pipelines = {p.key(): p for p in PIPELINES.values()}
    codegen = Codegen(spec)
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            request = read_frames(inp)
        except EOFError:
            return 0
        pipeline = pipelines[request[0].decode()]
        verify = request[1] == b"1"
        try:
            objects = [codegen.emit_object(t.decode(), pipeline, verify=verify)
                       for t in request[2:]]
        except CompileError as exc:
            write_frames(out, [b"error", str(exc).encode()])
            codegen.release()
            continue
        write_frames(out, [b"ok", *objects])
        del objects
        codegen.release()


# The bootstrap run with `python -I -c`: -I keeps the current directory, the user's site
# directory and PYTHON* variables out of sys.path; the host's import path is passed
# explicitly, so the worker imports exactly the engine the host runs.
BOOT = ("import json, sys; sys.path[:0] = json.loads(sys.argv[1]); "
        "from ewasm.compiler.worker import main; sys.exit(main(sys.argv[2:]))")
