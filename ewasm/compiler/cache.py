"""ObjectCache: compiled objects in a content-addressed directory, trusted only when this
installation wrote them.

A hit is native code that the runtime links and calls without re-validating the module,
so an entry must prove that this engine made it. The cache key is a public function of
the Wasm bytes and a plain digest only catches accidents, so:

- every entry carries an HMAC-SHA256 over its key, length and payload under a secret of
  this installation (`installation_secret`): 32 random bytes in a file of mode 0600
  outside the cache directory (`EWASM_CACHE_KEY_FILE`, default `cache.key` in the user's
  config directory), created atomically and never opened through a symbolic link. An
  entry someone else wrote (a shared directory, a CI cache restored from another
  machine, a planted file) fails the check, is deleted and recompiled, never run;
- the cache directory must belong to the user and not be writable by group or others
  (`check_directory`; libewasm's `cache-dir` option applies the same rules): CacheError
  otherwise, before anything is read from it. A location that cannot be created or
  opened at all (read-only, missing) only turns the cache off, with a warning: a cache
  that cannot be used is slower, never wrong;
- the cache is an LRU bounded in bytes (`EWASM_CACHE_MAX_SIZE`, default 1 GiB as
  wasmtime's cache): a hit refreshes the entry's mtime, and a write that takes the
  directory past the bound deletes the least recently used entries.

An entry is written to a temporary file and renamed into place (atomic); a truncated or
damaged one fails the same check as a forged one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
import struct
import tempfile
import threading
import time
import warnings
from pathlib import Path

import platformdirs

from ..errors import WasmError

MAGIC = b"EWASMOBJ"
FORMAT = 2  # 1: SHA-256 of the payload only (forgeable; such entries are recompiled)
_HEADER = struct.Struct("<8sI32sQ32s")  # magic, format, key, payload length, HMAC
_MAC_CONTEXT = b"ewasm object cache entry\0"
SECRET_BYTES = 32
# The on-disk bound when neither EWASM_CACHE_MAX_SIZE nor max_size= says otherwise
# (wasmtime's cache uses the same default soft limit).
DEFAULT_MAX_SIZE = 1 << 30
# A write past the bound trims the cache to this fraction of it, so that the next few
# writes do not each rescan the directory.
_LOW_WATER = 0.9
# A process rescans the directory after writing this fraction of the bound since its
# last scan, so that other processes' writes are noticed too.
_RESCAN_FRACTION = 16
# A hit refreshes an entry's mtime (its LRU age) at most this often.
TOUCH_INTERVAL = 60.0
# Temporary files older than this were left by a writer that died; a trim removes them.
_STALE_TMP = 3600.0
_ENTRY_NAME = re.compile(r"[0-9a-f]{64}\.obj")


class CacheError(WasmError):
    """The cache directory, its size option or the installation secret cannot be
    trusted (wrong owner, writable by others, a link, a bad value)."""


class CacheUnavailable(CacheError):
    """The cache directory or the secret's file cannot be created or opened (a read-only
    or missing location). An ObjectCache then works without the disk, as a cache that
    cannot be written is only slower, never wrong; `check_directory` raises it."""


# --- configuration ----------------------------------------------------------------------
def default_cache_dir() -> Path:
    env = os.environ.get("EWASM_CACHE_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_cache_dir("ewasm")) / "objects"


def default_key_file() -> Path:
    env = os.environ.get("EWASM_CACHE_KEY_FILE")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir("ewasm")) / "cache.key"


_SIZE = re.compile(r"\s*(\d+)\s*([kmgt]?)(i?b)?\s*", re.I)


def parse_size(text: str) -> int:
    """Bytes from "1073741824", "512M", "1GiB", "64k" (powers of 1024); ValueError else."""
    m = _SIZE.fullmatch(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (bytes, or a number with K, M, G or T)")
    return int(m[1]) << (10 * " kmgt".index(m[2].lower() or " "))


def default_max_size() -> int:
    env = os.environ.get("EWASM_CACHE_MAX_SIZE")
    if not env:
        return DEFAULT_MAX_SIZE
    try:
        return parse_size(env)
    except ValueError as exc:
        raise CacheError(f"EWASM_CACHE_MAX_SIZE: {exc}") from None


# --- directory and secret checks ----------------------------------------------------------
def _euid() -> int | None:
    return os.geteuid() if hasattr(os, "geteuid") else None


def _check_dir_stat(st: os.stat_result, path: Path, what: str) -> None:
    if not stat.S_ISDIR(st.st_mode):
        raise CacheError(f"{what} {path} is not a directory")
    euid = _euid()
    if euid is None:  # no POSIX ownership to check
        return
    if st.st_uid != euid:
        raise CacheError(f"{what} {path} belongs to uid {st.st_uid}, not to this user "
                         f"(uid {euid}); native code is loaded from it, so it must be yours")
    if st.st_mode & 0o022:
        who = " and ".join(w for bit, w in ((0o020, "group"), (0o002, "others"))
                           if st.st_mode & bit)
        raise CacheError(f"{what} {path} is writable by {who} (mode "
                         f"{stat.S_IMODE(st.st_mode):04o}); native code is loaded from it: "
                         f"`chmod go-w {path}` or choose a private directory")


def _open_checked_dir(path: Path, what: str) -> int:
    """A descriptor of `path` (created 0700 if missing) once it passes the checks."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise CacheUnavailable(f"{what} {path}: {exc.strerror or exc}") from None
    try:
        _check_dir_stat(os.fstat(fd), path, what)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_directory(path: Path | str) -> Path:
    """`path`, created (mode 0700) if missing, once it is a directory that belongs to
    this user and that neither group nor others can write; CacheError otherwise."""
    p = Path(path)
    os.close(_open_checked_dir(p, "cache directory"))
    return p


_secrets: dict[str, bytes] = {}
_secrets_lock = threading.Lock()


def installation_secret(key_file: Path | str | None = None) -> bytes:
    """The secret that authenticates cache entries, created on first use.

    The file must be a regular file of this user, of mode 0600 (no access for group or
    others), in a directory that passes `check_directory`; it is opened relative to
    that directory without following links, and created by linking a complete
    temporary file into place, so two processes starting at once agree on one secret."""
    path = Path(os.path.abspath(key_file if key_file is not None else default_key_file()))
    with _secrets_lock:
        known = _secrets.get(str(path))
        if known is not None:
            return known
        dfd = _open_checked_dir(path.parent, "cache key directory")
        try:
            secret = _read_secret(dfd, path)
            if secret is None:
                secret = _create_secret(dfd, path)
        finally:
            os.close(dfd)
        _secrets[str(path)] = secret
        return secret


def _read_secret(dfd: int, path: Path) -> bytes | None:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path.name, flags, dir_fd=dfd)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a symbolic link
        raise CacheError(f"cache key file {path}: {exc.strerror or exc} (a link or not "
                         "readable); refusing it") from None
    try:
        st = os.fstat(fd)
        euid = _euid()
        if not stat.S_ISREG(st.st_mode):
            raise CacheError(f"cache key file {path} is not a regular file; refusing it")
        if euid is not None and st.st_uid != euid:
            raise CacheError(f"cache key file {path} belongs to uid {st.st_uid}, not to "
                             f"this user (uid {euid}); refusing it")
        if euid is not None and st.st_mode & 0o077:
            raise CacheError(f"cache key file {path} has mode "
                             f"{stat.S_IMODE(st.st_mode):04o}; it must be 0600 "
                             f"(`chmod 600 {path}`)")
        data = os.read(fd, SECRET_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != SECRET_BYTES:
        raise CacheError(f"cache key file {path} does not hold a {SECRET_BYTES}-byte key; "
                         "delete it to make a new one (the cache is then recompiled)")
    return data


def _create_secret(dfd: int, path: Path) -> bytes:
    tmp = f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
        try:
            os.write(fd, secrets.token_bytes(SECRET_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            # link() never replaces: a secret another process created first wins.
            os.link(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except FileExistsError:
            pass
    except OSError as exc:
        raise CacheUnavailable(f"cannot create the cache key file {path}: "
                               f"{exc.strerror or exc}") from None
    finally:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
    secret = _read_secret(dfd, path)
    if secret is None:
        raise CacheError(f"the cache key file {path} vanished while it was created")
    return secret


# --- entries --------------------------------------------------------------------------------
def _mac(secret: bytes, key: bytes, payload: bytes) -> bytes:
    m = hmac.new(secret, _MAC_CONTEXT + key + struct.pack("<Q", len(payload)), hashlib.sha256)
    m.update(payload)
    return m.digest()


def pack_entry(key: bytes, payload: bytes, secret: bytes) -> bytes:
    return _HEADER.pack(MAGIC, FORMAT, key, len(payload), _mac(secret, key, payload)) + payload


def unpack_entry(key: bytes, blob: bytes, secret: bytes) -> bytes | None:
    """The payload if the blob is a whole entry for this key that this installation
    wrote (its HMAC checks out); else None."""
    return _verified(key, blob[:_HEADER.size], blob[_HEADER.size:], secret)


def _verified(key: bytes, head: bytes, payload: bytes, secret: bytes) -> bytes | None:
    if len(head) != _HEADER.size:
        return None
    magic, fmt, k, length, mac = _HEADER.unpack(head)
    if magic != MAGIC or fmt != FORMAT or k != key or length != len(payload):
        return None
    if not hmac.compare_digest(_mac(secret, key, payload), mac):
        return None
    return payload


class _Usage:
    """What one process knows of a cache directory's size: the total at its last scan
    plus what it wrote since."""

    __slots__ = ("total", "since_scan")

    def __init__(self) -> None:
        self.total: int | None = None
        self.since_scan = 0


_usage: dict[str, _Usage] = {}
_usage_lock = threading.Lock()


class ObjectCache:
    def __init__(self, directory: Path | str | None = None, *, max_size: int | None = None,
                 key_file: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.max_size = default_max_size() if max_size is None else max_size
        if self.max_size < 0:
            raise CacheError(f"cache max_size must not be negative, got {self.max_size}")
        self.key_file = Path(key_file) if key_file is not None else default_key_file()
        self._secret: bytes | None = None
        self.unavailable: str | None = None  # why the cache works without the disk

    def _ready(self) -> bytes | None:
        """Check the directory and load the secret (once per cache object); None when the
        cache cannot use the disk. CacheError when it must not."""
        if self._secret is None and self.unavailable is None:
            try:
                check_directory(self.directory)
                home = self.directory.resolve()
                key = Path(os.path.abspath(self.key_file))
                if key.parent.resolve().is_relative_to(home):
                    # A copy of the cache (a restored CI cache) would bring its own key.
                    raise CacheError(f"cache key file {key} is inside the cache directory "
                                     f"{self.directory}; it must live outside it")
                self._secret = installation_secret(key)
            except CacheUnavailable as exc:
                self.unavailable = str(exc)
                _warn_once(f"the compile cache is off: {exc}")
        return self._secret

    def path(self, key: bytes) -> Path:
        h = key.hex()
        return self.directory / h[:2] / f"{h}.obj"

    def get(self, key: bytes) -> bytes | None:
        secret = self._ready()
        if secret is None:
            return None
        p = self.path(key)
        found = _read_entry(p, self.max_size + _HEADER.size)
        if found is None:
            return None
        head, body, mtime = found
        payload = _verified(key, head, body, secret)
        if payload is None:
            # Damaged, from another installation, or forged: drop it so the next write
            # replaces it.
            try:
                p.unlink()
            except OSError:
                pass
            return None
        if mtime < time.time() - TOUCH_INTERVAL:
            try:
                os.utime(p)  # the entry's LRU age
            except OSError:
                pass
        return payload

    def put(self, key: bytes, payload: bytes) -> None:
        secret = self._ready()
        if secret is None:
            return
        entry = pack_entry(key, payload, secret)
        if len(entry) > self.max_size:
            return  # would not fit even alone
        p = self.path(key)
        try:
            p.parent.mkdir(mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(entry)
                os.replace(tmp, p)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            # A cache that cannot be written is only slower, never wrong.
            return
        self._account(len(entry), p)

    # --- the bound ------------------------------------------------------------------
    def _account(self, written: int, keep: Path) -> None:
        with _usage_lock:
            u = _usage.setdefault(str(self.directory.resolve()), _Usage())
            if u.total is not None:
                u.total += written
                u.since_scan += written
            scan = (u.total is None or u.total > self.max_size
                    or u.since_scan * _RESCAN_FRACTION > self.max_size)
        if scan:
            self.trim(keep=keep)

    def entries(self) -> list[tuple[int, int, Path]]:
        """(mtime ns, size, path) of every entry file; stale temporary files removed."""
        out: list[tuple[int, int, Path]] = []
        now = time.time()
        try:
            subdirs = [d for d in os.scandir(self.directory)
                       if len(d.name) == 2 and d.is_dir(follow_symlinks=False)]
        except OSError:
            return out
        for sub in subdirs:
            try:
                files = list(os.scandir(sub.path))
            except OSError:
                continue
            for f in files:
                try:
                    st = f.stat(follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                if f.name.startswith(".tmp-"):
                    if st.st_mtime < now - _STALE_TMP:
                        _unlink(f.path)
                    else:
                        out.append((st.st_mtime_ns, st.st_size, Path(f.path)))
                elif _ENTRY_NAME.fullmatch(f.name):
                    out.append((st.st_mtime_ns, st.st_size, Path(f.path)))
        return out

    def size(self) -> int:
        """Bytes the cache directory's entries take now."""
        return sum(size for _, size, _ in self.entries())

    def trim(self, *, keep: Path | None = None) -> int:
        """Delete least recently used entries until the cache is within its bound (to
        a little under it, when it was over); returns the bytes left."""
        found = self.entries()
        total = sum(size for _, size, _ in found)
        if total > self.max_size:
            target = int(self.max_size * _LOW_WATER)
            for _, size, path in sorted(found, key=lambda e: e[0]):
                if total <= target:
                    break
                if path == keep or path.name.startswith(".tmp-"):
                    continue  # the entry just written; a write in progress
                if _unlink(path):
                    total -= size
        with _usage_lock:
            u = _usage.setdefault(str(self.directory.resolve()), _Usage())
            u.total, u.since_scan = total, 0
        return total


_warned: set[str] = set()


def _warn_once(text: str) -> None:
    if text not in _warned:
        _warned.add(text)
        warnings.warn(text, RuntimeWarning, stacklevel=4)


def _unlink(path: str | Path) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return True  # another process evicted it first
    except OSError:
        return False


def _read_entry(path: Path, limit: int) -> tuple[bytes, bytes, float] | None:
    """The header, the rest and the mtime of a regular file of at most `limit` bytes,
    read without following a link or blocking on a FIFO (and without copying the
    payload once more to split it off); None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            head = f.read(_HEADER.size)
            rest = f.read(st.st_size + 1)  # +1: a file still growing reads as too long
    except OSError:
        return None
    finally:
        os.close(fd)
    return head, rest, st.st_mtime


class ReadOnlyCache(ObjectCache):
    """An ObjectCache that reads but never writes: for code that must not outlive its use
    (simulations: code sent with eth_call is compiled for one answer, not kept)."""

    def put(self, key: bytes, payload: bytes) -> None:
        return None
