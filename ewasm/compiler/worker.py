"""A compile worker process: IR texts in on stdin, object bytes out on stdout.

    python -m ewasm.compiler.worker TRIPLE CPU FEATURES RELOC CODEMODEL OPT VERIFY

Frames are a little-endian u32 count, then for each item a u64 length and the bytes.
Used by codegen.compile_module to compile partitions of a big module in parallel,
since llvmlite serialises every LLVM call within one process."""

from __future__ import annotations

import struct
import sys
from typing import BinaryIO


def write_frames(out: BinaryIO, items: list[bytes]) -> None:
    out.write(struct.pack("<I", len(items)))
    for item in items:
        out.write(struct.pack("<Q", len(item)))
        out.write(item)
    out.flush()


def read_frames(inp: BinaryIO) -> list[bytes]:
    head = inp.read(4)
    if len(head) != 4:
        raise EOFError("worker stream ended early")
    (n,) = struct.unpack("<I", head)
    items = []
    for _ in range(n):
        (length,) = struct.unpack("<Q", inp.read(8))
        data = inp.read(length)
        if len(data) != length:
            raise EOFError("worker stream ended early")
        items.append(data)
    return items


def main(argv: list[str]) -> int:
    from .codegen import compile_ir
    from .target import TargetSpec

    triple, cpu, features, reloc, codemodel, opt, verify = argv
    spec = TargetSpec(triple, cpu, features, reloc, codemodel, int(opt))
    texts = read_frames(sys.stdin.buffer)
    objects = [compile_ir(t.decode(), spec, verify=verify == "1") for t in texts]
    write_frames(sys.stdout.buffer, objects)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
