"""ObjectCache: compiled objects in a content-addressed directory.

An entry is written to a temporary file and renamed into place (atomic), and carries a
header with its key, its length and a SHA-256 of the payload: a corrupt or truncated
entry is detected on read and treated as a miss, never run."""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from pathlib import Path

import platformdirs

MAGIC = b"EWASMOBJ"
FORMAT = 1
_HEADER = struct.Struct("<8sI32sQ32s")  # magic, format, key, payload length, payload sha256


def default_cache_dir() -> Path:
    env = os.environ.get("EWASM_CACHE_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_cache_dir("ewasm")) / "objects"


def pack_entry(key: bytes, payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, FORMAT, key, len(payload), hashlib.sha256(payload).digest()) + payload


def unpack_entry(key: bytes, blob: bytes) -> bytes | None:
    """The payload if the blob is a whole, intact entry for this key; else None."""
    if len(blob) < _HEADER.size:
        return None
    magic, fmt, k, length, digest = _HEADER.unpack_from(blob)
    payload = blob[_HEADER.size :]
    if magic != MAGIC or fmt != FORMAT or k != key or length != len(payload):
        return None
    if hashlib.sha256(payload).digest() != digest:
        return None
    return payload


class ObjectCache:
    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    def path(self, key: bytes) -> Path:
        h = key.hex()
        return self.directory / h[:2] / f"{h}.obj"

    def get(self, key: bytes) -> bytes | None:
        p = self.path(key)
        try:
            blob = p.read_bytes()
        except OSError:
            return None
        payload = unpack_entry(key, blob)
        if payload is None:
            # Corrupt or truncated: drop it so the next write replaces it.
            try:
                p.unlink()
            except OSError:
                pass
        return payload

    def put(self, key: bytes, payload: bytes) -> None:
        p = self.path(key)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(pack_entry(key, payload))
                os.replace(tmp, p)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            # A cache that cannot be written is only slower, never wrong.
            pass
