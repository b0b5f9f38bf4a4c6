"""The Python side of libewasm.so: what the embedded library's C entry points call.

`libewasm.so` (built by `apps.libewasm.build`) holds the C `evmc_vm` and its function
pointers; each one calls into here through cffi's embedding API with the GIL taken. A VM
instance is an integer handle into `_vms` (no Python object pointer crosses into C). The
C host's function table becomes a Python `Host` (`CHost`) so that `ewasm.execute` runs
unchanged, under gasmeter's metering policy when `metering=true` (init code and the code
a CREATE returns are metered; CALL code runs as the host stored it). Whatever goes wrong
on this side becomes EVMC_INTERNAL_ERROR with no gas left, never an exception across the
ABI.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ewasm
import gasmeter
from evmc_bridge import cabi
from evmc_bridge.errors import BadMessageError, EvmcError
from evmc_bridge.types import (
    AccessStatus,
    Message,
    Result,
    Revision,
    StatusCode,
    StorageStatus,
    TxContext,
)
from ewasm.compiler.cache import CacheError, check_directory, parse_size

_ZERO_ADDRESS = bytes(20)
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass
class VMOptions:
    metering: bool = False
    debug: bool = False
    # Hera's evm1mode for code that is not Wasm: "reject" (FAILURE), "fallback" (REJECTED,
    # for a host that runs its own EVM: this library's default), or "evm" (run it here on
    # py-evm, state.evm, against the same host: a frame of either VM's code nests through
    # the host's call, as in the Ewasm testnet's clients).
    evm1mode: str = "fallback"


EVM1_MODES = ("reject", "fallback", "evm")


_vms: dict[int, VMOptions] = {}
_vms_lock = threading.Lock()
_handles = itertools.count(1)
ffi: Any = None
lib: Any = None


def bind(ffi_: Any, lib_: Any) -> None:
    """Called once by the library's init code with its cffi module."""
    global ffi, lib
    ffi, lib = ffi_, lib_
    cabi.check_layout(ffi)


def create() -> int:
    handle = next(_handles)
    with _vms_lock:
        _vms[handle] = VMOptions()
    return handle


def destroy(handle: int) -> None:
    with _vms_lock:
        _vms.pop(handle, None)


OPTIONS = ("metering", "debug", "evm1mode", "cache-dir", "cache-max-size")
# EVMC's evmc_capabilities flags.
CAPABILITY_EVM1, CAPABILITY_EWASM = 1, 2


def capabilities(handle: int) -> int:
    """EVMC's get_capabilities: Ewasm always; EVM1 as well when evm1mode=evm, in which the
    VM runs EVM code itself (a host may then send it every frame)."""
    options = _vms.get(handle)
    if options is not None and options.evm1mode == "evm":
        return CAPABILITY_EWASM | CAPABILITY_EVM1
    return CAPABILITY_EWASM



def set_option(handle: int, name: str, value: str | None) -> int:
    """EVMC's set_option: the name is checked first, then the value (None: C's NULL).

    cache-dir and cache-max-size are process-wide, as the compile cache is: the
    directory must pass the cache's checks (this user's, not writable by group or
    others; created 0700 if missing), the size is bytes or a number with K, M, G or T."""
    options = _vms.get(handle)
    if options is None or name not in OPTIONS:
        return cabi.SET_OPTION_INVALID_NAME
    if value is None:
        return cabi.SET_OPTION_INVALID_VALUE
    if name in ("metering", "debug"):
        text = value.strip().lower()
        if text not in _TRUE | _FALSE:
            return cabi.SET_OPTION_INVALID_VALUE
        setattr(options, name, text in _TRUE)
        return cabi.SET_OPTION_SUCCESS
    if name == "evm1mode":
        text = value.strip().lower()
        if text not in EVM1_MODES:
            return cabi.SET_OPTION_INVALID_VALUE
        options.evm1mode = text
        return cabi.SET_OPTION_SUCCESS
    if name == "cache-dir":
        # Native code is loaded from it: the same rules as EWASM_CACHE_DIR's.
        try:
            if not value:
                raise CacheError("empty cache directory")
            check_directory(value)
        except CacheError:
            return cabi.SET_OPTION_INVALID_VALUE
        if not os.access(value, os.W_OK):
            return cabi.SET_OPTION_INVALID_VALUE
        # The compile cache is process-wide (its directory is read per compile).
        os.environ["EWASM_CACHE_DIR"] = value
    elif name == "cache-max-size":
        try:
            size = parse_size(value)
        except ValueError:
            return cabi.SET_OPTION_INVALID_VALUE
        os.environ["EWASM_CACHE_MAX_SIZE"] = str(size)
    return cabi.SET_OPTION_SUCCESS


def execute(handle: int, host_iface: Any, context: Any, revision: int, msg: Any,
            code: Any, code_size: int, out: Any) -> None:
    """Fill `out` (an evmc_result*) for one execution; output is malloc'ed for release."""
    try:
        result = _execute(handle, host_iface, context, revision, msg, code, code_size)
    except Exception as exc:  # a bug here must not cross the ABI
        result = Result.make(StatusCode.INTERNAL_ERROR,
                             message=f"{type(exc).__name__}: {exc}")
    _fill_result(out, result)


_REVISIONS = frozenset(int(r) for r in Revision)
# The metering policy every VM handle with metering=true shares (Hera's: at CREATE).
METERING = gasmeter.MeteringPolicy()


def _execute(handle: int, host_iface: Any, context: Any, revision: int, msg: Any,
             code: Any, code_size: int) -> Result:
    options = _vms.get(handle)
    if options is None:
        return Result.make(StatusCode.INTERNAL_ERROR, message="unknown or destroyed VM")
    if host_iface == ffi.NULL or msg == ffi.NULL:
        return Result.make(StatusCode.INTERNAL_ERROR, message="NULL argument")
    bad = (_bad_span("code", code, code_size)
           or _bad_span("msg->input_data", msg.input_data, msg.input_size)
           or _bad_span("msg->code", msg.code, msg.code_size))
    if bad:
        return Result.make(StatusCode.INTERNAL_ERROR, message=bad)
    if revision not in _REVISIONS:
        return Result.make(StatusCode.INTERNAL_ERROR, message=f"unknown revision {revision}")
    try:
        message = cabi.message_from_c(ffi, msg)
    except BadMessageError as exc:
        return Result.make(StatusCode.INTERNAL_ERROR, message=f"bad argument: {exc}")
    rev = Revision(revision)
    code_bytes = cabi.get_bytes(ffi, code, code_size) if code_size else b""
    host = CHost(host_iface, context)
    if options.evm1mode == "evm" and code_bytes[:4] != b"\0asm":
        # The host's dispatch rule (state.host): a `\\0asm` prefix is Wasm, anything else
        # EVM code. Imported here: only a VM set to run EVM code pays for py-evm.
        from state.evm import execute_evm

        result = execute_evm(host, rev, message, code_bytes)
    else:
        mode = "reject" if options.evm1mode == "reject" else "fallback"
        result = gasmeter.execute_metered(METERING if options.metering else None,
                                          ewasm.execute, host, rev, message, code_bytes,
                                          debug=options.debug, evm1_mode=mode)
    if host.error is not None and result.status != StatusCode.INTERNAL_ERROR:
        # A host callback the engine did not see fail (e.g. a NULL member) still fails
        # the execution.
        return Result.make(StatusCode.INTERNAL_ERROR, message=host.error)
    return result


# No buffer that crosses the ABI is this large: a Wasm module addresses 4 GiB, and a
# size above it is a host bug (a negative length cast to size_t), not data to read.
MAX_SPAN = 1 << 32


def _bad_span(what: str, pointer: Any, size: int) -> str | None:
    """Why a pointer and size from the C side must not be read (None: they may be). A
    NULL pointer with a size, or an implausible size, would make the read crash the
    host process; the execution ends as EVMC_INTERNAL_ERROR instead."""
    if size and pointer == ffi.NULL:
        return f"{what} is NULL with a size of {size}"
    if size > MAX_SPAN:
        return f"{what} has an implausible size of {size}"
    return None


def _fill_result(out: Any, result: Result) -> None:
    out.status_code = int(result.status)
    out.gas_left = result.gas_left
    out.gas_refund = result.gas_refund
    if result.create_address != _ZERO_ADDRESS:  # the C side zeroed the result
        out.create_address.bytes[0:20] = result.create_address
    if result.output:
        buf = lib.malloc(len(result.output))
        if buf == ffi.NULL:
            out.status_code = int(StatusCode.OUT_OF_MEMORY)
            out.gas_left = out.gas_refund = 0
            out.output_data, out.output_size = ffi.NULL, 0
            return
        ffi.memmove(buf, result.output, len(result.output))
        out.output_data = ffi.cast("const uint8_t*", buf)
        out.output_size = len(result.output)
    else:
        out.output_data, out.output_size = ffi.NULL, 0


class HostFunctionMissing(EvmcError):
    """The C host left a host interface member the contract needs NULL."""


class HostMisuse(EvmcError):
    """The C host answered with a pointer and size that cannot be read (NULL with a
    size, or an implausible size)."""


class CHost:
    """evmc_bridge.Host over a C host's `evmc_host_interface` and context."""

    def __init__(self, iface: Any, context: Any):
        self.iface = iface
        self.ctx = context
        self.error: str | None = None

    def _check(self, what: str, pointer: Any, size: int) -> None:
        bad = _bad_span(what, pointer, size)
        if bad is not None:
            self.error = f"host returned {bad}"
            raise HostMisuse(self.error)

    def _fn(self, name: str) -> Any:
        fn = getattr(self.iface, name)
        if fn == ffi.NULL:
            self.error = f"host interface member {name} is NULL"
            raise HostFunctionMissing(self.error)
        return fn

    @staticmethod
    def _address(address: bytes) -> Any:
        a = ffi.new("evmc_address*")
        a.bytes[0:20] = address
        return a

    @staticmethod
    def _word(word: bytes) -> Any:
        w = ffi.new("evmc_bytes32*")
        w.bytes[0:32] = word
        return w

    def account_exists(self, address: bytes) -> bool:
        return bool(self._fn("account_exists")(self.ctx, self._address(address)))

    def get_storage(self, address: bytes, key: bytes) -> bytes:
        r = self._fn("get_storage")(self.ctx, self._address(address), self._word(key))
        return cabi.get_bytes(ffi, r.bytes, 32)

    def set_storage(self, address: bytes, key: bytes, value: bytes) -> StorageStatus:
        status = self._fn("set_storage")(self.ctx, self._address(address), self._word(key),
                                         self._word(value))
        try:
            return StorageStatus(status)
        except ValueError:
            return StorageStatus.MODIFIED

    def get_balance(self, address: bytes) -> int:
        r = self._fn("get_balance")(self.ctx, self._address(address))
        return cabi.u256(ffi, r)

    def get_code_size(self, address: bytes) -> int:
        return int(self._fn("get_code_size")(self.ctx, self._address(address)))

    def get_code_hash(self, address: bytes) -> bytes:
        r = self._fn("get_code_hash")(self.ctx, self._address(address))
        return cabi.get_bytes(ffi, r.bytes, 32)

    def copy_code(self, address: bytes, offset: int, size: int) -> bytes:
        if size <= 0:
            return b""
        buf = ffi.new("uint8_t[]", size)
        n = self._fn("copy_code")(self.ctx, self._address(address), offset, buf, size)
        return cabi.get_bytes(ffi, buf, min(int(n), size))  # never past our buffer

    def selfdestruct(self, address: bytes, beneficiary: bytes) -> bool:
        return bool(self._fn("selfdestruct")(self.ctx, self._address(address),
                                             self._address(beneficiary)))

    def call(self, message: Message) -> Result:
        msg, keep = cabi.message_to_c(ffi, message)
        res = self._fn("call")(self.ctx, msg)
        try:
            self._check("call result output_data", res.output_data, res.output_size)
            return cabi.result_from_c(ffi, res)
        finally:
            if res.release != ffi.NULL:
                res.release(ffi.addressof(res))
            del keep

    def get_tx_context(self) -> TxContext:
        ctx = self._fn("get_tx_context")(self.ctx)
        # Sizes in bytes: what reading the arrays would touch.
        self._check("tx context blob_hashes", ctx.blob_hashes, ctx.blob_hashes_count * 32)
        self._check("tx context initcodes", ctx.initcodes,
                    ctx.initcodes_count * ffi.sizeof("struct evmc_tx_initcode"))
        return cabi.tx_context_from_c(ffi, ctx)

    def get_block_hash(self, number: int) -> bytes:
        r = self._fn("get_block_hash")(self.ctx, number)
        return cabi.get_bytes(ffi, r.bytes, 32)

    def emit_log(self, address: bytes, data: bytes, topics: Sequence[bytes]) -> None:
        t = ffi.new("evmc_bytes32[]", max(1, len(topics)))
        for i, topic in enumerate(topics):
            t[i].bytes[0:32] = topic
        d = ffi.from_buffer(data) if data else ffi.NULL
        self._fn("emit_log")(self.ctx, self._address(address), d, len(data), t, len(topics))

    def access_account(self, address: bytes) -> AccessStatus:
        fn = self.iface.access_account
        if fn == ffi.NULL:  # Ewasm's gas does not depend on it (Hera never calls it)
            return AccessStatus.WARM
        return AccessStatus(fn(self.ctx, self._address(address)) & 1)

    def access_storage(self, address: bytes, key: bytes) -> AccessStatus:
        fn = self.iface.access_storage
        if fn == ffi.NULL:
            return AccessStatus.WARM
        return AccessStatus(fn(self.ctx, self._address(address), self._word(key)) & 1)
