"""ByteReader: the module bytes plus a position; every read knows its offset.

LEB128 reads enforce the spec's length and range limits: an N-bit integer takes at
most ceil(N/7) bytes, and the unused bits of the last byte must be zero (unsigned)
or a sign extension (signed).
"""

from __future__ import annotations

from .errors import DecodeError


class ByteReader:
    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def eof(self) -> bool:
        return self.pos >= self.end

    def fail(self, message: str, offset: int | None = None) -> DecodeError:
        return DecodeError(message, offset=self.pos if offset is None else offset)

    def byte(self) -> int:
        pos = self.pos
        if pos >= self.end:
            raise self.fail("unexpected end of section or function")
        self.pos = pos + 1
        return self.data[pos]

    def bytes(self, n: int) -> bytes:
        pos = self.pos
        if n > self.end - pos:
            raise self.fail("unexpected end of section or function (length out of bounds)")
        self.pos = pos + n
        return self.data[pos : pos + n]

    def u32(self) -> int:
        data, pos, end = self.data, self.pos, self.end
        if pos < end:
            b = data[pos]
            if b < 0x80:
                self.pos = pos + 1
                return b
        return self._uleb(32)

    def _uleb(self, bits: int) -> int:
        data, end = self.data, self.end
        start = pos = self.pos
        result = shift = 0
        max_bytes = (bits + 6) // 7
        while True:
            if pos >= end:
                raise self.fail("unexpected end (unterminated integer)", start)
            b = data[pos]
            pos += 1
            if pos - start == max_bytes:
                # Last permitted byte: continuation bit and unused bits must be clear.
                if b & 0x80:
                    raise self.fail("integer representation too long", start)
                if b >> (bits - shift):
                    raise self.fail("integer too large", start)
                result |= b << shift
                break
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        self.pos = pos
        return result

    def u64(self) -> int:
        return self._uleb(64)

    def sleb(self, bits: int) -> int:
        data, end = self.data, self.end
        start = pos = self.pos
        result = shift = 0
        max_bytes = (bits + 6) // 7
        while True:
            if pos >= end:
                raise self.fail("unexpected end (unterminated integer)", start)
            b = data[pos]
            pos += 1
            if pos - start == max_bytes:
                if b & 0x80:
                    raise self.fail("integer representation too long", start)
                # The bits beyond the value's width must all equal its sign bit.
                used = bits - shift  # bits of this byte that belong to the value
                rest = b >> (used - 1)  # sign bit and the unused bits above it
                if rest not in (0, (0x7F >> (used - 1))):
                    raise self.fail("integer too large", start)
                result |= (b & 0x7F) << shift
                shift += 7
                break
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        self.pos = pos
        if result & (1 << (shift - 1)):
            result -= 1 << shift
        return result

    def name(self) -> str:
        n = self.u32()
        start = self.pos
        raw = self.bytes(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail("malformed UTF-8 encoding", start + exc.start) from None
