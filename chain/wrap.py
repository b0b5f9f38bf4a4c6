"""`ewasm wrap-deploy`: creation code for a contract module.

Ewasm's deployment convention is that the creation code runs once and its `finish`
output is the code stored. Authors usually have only the runtime module, so this builds
the smallest creation module that returns it: the runtime bytes as a data segment, and a
`main` that calls `finish(0, len)`.
"""

from __future__ import annotations

from ewasm.encoder import uleb

from .loader import check_contract_code

_PAGE = 65536


def _section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + uleb(len(payload)) + payload


def _name(text: str) -> bytes:
    raw = text.encode()
    return uleb(len(raw)) + raw


def _i32_const(n: int) -> bytes:
    # sleb128 of a non-negative i32: the value's bits read as signed.
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40):
            out.append(byte)
            return b"\x41" + bytes(out)
        out.append(byte | 0x80)


def wrap_deploy(runtime: bytes, *, check: bool = True) -> bytes:
    """Creation code whose `finish` output is `runtime` (checked as a contract first)."""
    if check:
        check_contract_code(runtime)
    size = len(runtime)
    pages = max(1, -(-size // _PAGE))
    types = _section(1, uleb(2) + b"\x60\x02\x7f\x7f\x00" + b"\x60\x00\x00")
    imports = _section(2, uleb(1) + _name("ethereum") + _name("finish") + b"\x00\x00")
    functions = _section(3, uleb(1) + b"\x01")
    memory = _section(5, uleb(1) + b"\x00" + uleb(pages))
    exports = _section(7, uleb(2) + _name("memory") + b"\x02\x00" + _name("main") + b"\x00\x01")
    body = b"\x00" + _i32_const(0) + _i32_const(size) + b"\x10\x00" + b"\x0b"
    code = _section(10, uleb(1) + uleb(len(body)) + body)
    data = _section(11, uleb(1) + b"\x00" + _i32_const(0) + b"\x0b" + uleb(size) + runtime)
    return (b"\0asm\x01\x00\x00\x00" + types + imports + functions + memory + exports
            + code + data)
