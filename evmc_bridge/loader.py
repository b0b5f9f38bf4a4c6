"""Load any EVMC VM shared library and drive it from Python (a Python node using a native
VM, or this engine tested through its own C ABI).

    vm = evmc_bridge.load_vm("libewasm.so", metering="true")
    result = vm.execute(host, Revision.LONDON, message, code)   # a Python Host

cffi in ABI mode (no compiler needed): ctypes cannot implement host callbacks that return
structs by value, cffi's callbacks can. The host context handed to C is an integer handle
into a registry of live executions (EVMC's Go binding does the same), so no Python object
pointer crosses into C. A host method that raises is answered with a zero value in C, and
its exception is raised from `execute` once the VM returns.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cffi

from . import cabi
from .abc import Host
from .errors import EvmcError, EvmcLoadError, EvmcOptionError
from .types import Message, Result, Revision

_ffi = cffi.FFI()
_ffi.cdef(cabi.CDEF)
cabi.check_layout(_ffi)


def create_function_names(path: str | os.PathLike) -> list[str]:
    """EVMC's loader rule: basename, drop a leading `lib` and everything from the first
    `.`, `-` to `_`, prefix `evmc_create_`; then the plain `evmc_create`."""
    name = Path(path).name
    if name.startswith("lib"):
        name = name[3:]
    name = name.split(".", 1)[0].replace("-", "_")
    return [f"evmc_create_{name}", "evmc_create"] if name else ["evmc_create"]


# --- live executions: handle -> (host, first exception) -----------------------------------
_executions: dict[int, list] = {}
_executions_lock = threading.Lock()
_next_handle = itertools.count(1)


def _addr(p: Any) -> bytes:
    return bytes(_ffi.buffer(p.bytes, 20))


def _word(p: Any) -> bytes:
    return bytes(_ffi.buffer(p.bytes, 32))


def _callback(ctype: str) -> Callable:
    """An ffi.callback whose Python exceptions are recorded for `execute` to raise."""

    def decorate(fn: Callable) -> Any:
        def onerror(exc_type, exc, tb):
            ctx = _current_ctx.value if hasattr(_current_ctx, "value") else None
            entry = _executions.get(ctx) if ctx is not None else None
            if entry is not None and entry[1] is None:
                entry[1] = exc
            return None  # cffi answers zero (a zeroed struct for struct returns)

        return _ffi.callback(ctype, fn, onerror=onerror)

    return decorate


# The handle of the execution whose callback is running, for onerror (which gets no args).
_current_ctx = threading.local()


def _enter(ctx: Any) -> Host:
    handle = int(_ffi.cast("uintptr_t", ctx))
    _current_ctx.value = handle
    return _executions[handle][0]


@_callback("bool(struct evmc_host_context*, const evmc_address*)")
def _account_exists(ctx, address):
    return bool(_enter(ctx).account_exists(_addr(address)))


@_callback("evmc_bytes32(struct evmc_host_context*, const evmc_address*, const evmc_bytes32*)")
def _get_storage(ctx, address, key):
    out = _ffi.new("evmc_bytes32*")
    out.bytes[0:32] = _enter(ctx).get_storage(_addr(address), _word(key))
    return out[0]


@_callback("int32_t(struct evmc_host_context*, const evmc_address*, const evmc_bytes32*, "
           "const evmc_bytes32*)")
def _set_storage(ctx, address, key, value):
    return int(_enter(ctx).set_storage(_addr(address), _word(key), _word(value)))


@_callback("evmc_uint256be(struct evmc_host_context*, const evmc_address*)")
def _get_balance(ctx, address):
    out = _ffi.new("evmc_uint256be*")
    cabi.set_u256(out, _enter(ctx).get_balance(_addr(address)))
    return out[0]


@_callback("size_t(struct evmc_host_context*, const evmc_address*)")
def _get_code_size(ctx, address):
    return _enter(ctx).get_code_size(_addr(address))


@_callback("evmc_bytes32(struct evmc_host_context*, const evmc_address*)")
def _get_code_hash(ctx, address):
    out = _ffi.new("evmc_bytes32*")
    out.bytes[0:32] = _enter(ctx).get_code_hash(_addr(address))
    return out[0]


@_callback("size_t(struct evmc_host_context*, const evmc_address*, size_t, uint8_t*, size_t)")
def _copy_code(ctx, address, offset, buf, size):
    data = _enter(ctx).copy_code(_addr(address), offset, size)[:size]
    _ffi.memmove(buf, data, len(data))
    return len(data)


@_callback("bool(struct evmc_host_context*, const evmc_address*, const evmc_address*)")
def _selfdestruct(ctx, address, beneficiary):
    return bool(_enter(ctx).selfdestruct(_addr(address), _addr(beneficiary)))


# Outputs of results handed to the VM, freed by _release_output when the VM releases them.
_outputs: dict[int, Any] = {}
_outputs_lock = threading.Lock()


@_ffi.callback("void(const struct evmc_result*)")
def _release_output(result):
    with _outputs_lock:
        _outputs.pop(int(_ffi.cast("uintptr_t", result.output_data)), None)


@_callback("struct evmc_result(struct evmc_host_context*, const struct evmc_message*)")
def _call(ctx, msg):
    host = _enter(ctx)
    result = host.call(cabi.message_from_c(_ffi, msg))
    _current_ctx.value = int(_ffi.cast("uintptr_t", ctx))  # nested executions moved it
    out = _ffi.new("struct evmc_result*")
    out.status_code = int(result.status)
    out.gas_left = result.gas_left
    out.gas_refund = result.gas_refund
    out.create_address.bytes[0:20] = result.create_address
    if result.output:
        buf = _ffi.new("uint8_t[]", result.output)
        with _outputs_lock:
            _outputs[int(_ffi.cast("uintptr_t", buf))] = buf
        out.output_data = buf
        out.output_size = len(result.output)
        out.release = _release_output
    return out[0]


@_callback("struct evmc_tx_context(struct evmc_host_context*)")
def _get_tx_context(ctx):
    out = _ffi.new("struct evmc_tx_context*")
    cabi.tx_context_to_c(_ffi, _enter(ctx).get_tx_context(), out)
    return out[0]


@_callback("evmc_bytes32(struct evmc_host_context*, int64_t)")
def _get_block_hash(ctx, number):
    out = _ffi.new("evmc_bytes32*")
    out.bytes[0:32] = _enter(ctx).get_block_hash(number)
    return out[0]


@_callback("void(struct evmc_host_context*, const evmc_address*, const uint8_t*, size_t, "
           "const evmc_bytes32[], size_t)")
def _emit_log(ctx, address, data, size, topics, count):
    payload = bytes(_ffi.buffer(data, size)) if size else b""
    _enter(ctx).emit_log(_addr(address), payload,
                         tuple(_word(topics[i]) for i in range(count)))


@_callback("int32_t(struct evmc_host_context*, const evmc_address*)")
def _access_account(ctx, address):
    return int(_enter(ctx).access_account(_addr(address)))


@_callback("int32_t(struct evmc_host_context*, const evmc_address*, const evmc_bytes32*)")
def _access_storage(ctx, address, key):
    return int(_enter(ctx).access_storage(_addr(address), _word(key)))


def _transient(host: Host, name: str) -> Callable:
    fn = getattr(host, name, None)
    if fn is None:
        raise NotImplementedError(f"{type(host).__name__} has no {name} (EIP-1153 transient "
                                  "storage), which this VM asked for")
    return fn


@_callback("evmc_bytes32(struct evmc_host_context*, const evmc_address*, const evmc_bytes32*)")
def _get_transient_storage(ctx, address, key):
    out = _ffi.new("evmc_bytes32*")
    out.bytes[0:32] = _transient(_enter(ctx), "get_transient_storage")(_addr(address),
                                                                        _word(key))
    return out[0]


@_callback("void(struct evmc_host_context*, const evmc_address*, const evmc_bytes32*, "
           "const evmc_bytes32*)")
def _set_transient_storage(ctx, address, key, value):
    _transient(_enter(ctx), "set_transient_storage")(_addr(address), _word(key), _word(value))


_HOST_INTERFACE = _ffi.new("struct evmc_host_interface*")
for _name, _fn in [("account_exists", _account_exists), ("get_storage", _get_storage),
                   ("set_storage", _set_storage), ("get_balance", _get_balance),
                   ("get_code_size", _get_code_size), ("get_code_hash", _get_code_hash),
                   ("copy_code", _copy_code), ("selfdestruct", _selfdestruct),
                   ("call", _call), ("get_tx_context", _get_tx_context),
                   ("get_block_hash", _get_block_hash), ("emit_log", _emit_log),
                   ("access_account", _access_account), ("access_storage", _access_storage),
                   ("get_transient_storage", _get_transient_storage),
                   ("set_transient_storage", _set_transient_storage)]:
    setattr(_HOST_INTERFACE, _name, _fn)
# Transient storage (EIP-1153): a Host without get/set_transient_storage makes execute
# raise NotImplementedError (never a NULL call in the VM).


class LoadedVM:
    """An EVMC VM from a shared library, with the engine's `execute` signature."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        try:
            self._lib = _ffi.dlopen(self.path)
        except OSError as exc:
            raise EvmcLoadError(f"cannot open {path}: {exc}") from None
        create = None
        for symbol in create_function_names(path):
            _ffi.cdef(f"struct evmc_vm* {symbol}(void);", override=True)
            try:
                create = getattr(self._lib, symbol)
                break
            except AttributeError:
                continue
        if create is None:
            raise EvmcLoadError(f"{path}: no {' or '.join(create_function_names(path))}")
        vm = create()
        if vm == _ffi.NULL:
            raise EvmcLoadError(f"{path}: the VM creation function returned NULL")
        if vm.abi_version != cabi.ABI_VERSION:
            if vm.destroy != _ffi.NULL:
                vm.destroy(vm)
            raise EvmcLoadError(f"{path}: EVMC ABI version {vm.abi_version}, this bridge "
                                f"speaks {cabi.ABI_VERSION}")
        self._vm = vm
        self.name = _ffi.string(vm.name).decode() if vm.name != _ffi.NULL else ""
        self.version = _ffi.string(vm.version).decode() if vm.version != _ffi.NULL else ""

    @property
    def capabilities(self) -> int:
        return int(self._vm.get_capabilities(self._vm))

    def _live(self) -> Any:
        if self._vm is None:
            raise EvmcError(f"VM {self.name} is closed")
        return self._vm

    def set_option(self, name: str, value: str) -> None:
        vm = self._live()
        if vm.set_option == _ffi.NULL:
            raise EvmcOptionError(f"VM {self.name} takes no options ({name!r} given)")
        code = vm.set_option(vm, name.encode(), str(value).encode())
        if code == cabi.SET_OPTION_INVALID_NAME:
            raise EvmcOptionError(f"VM {self.name}: unknown option {name!r}")
        if code == cabi.SET_OPTION_INVALID_VALUE:
            raise EvmcOptionError(f"VM {self.name}: invalid value {value!r} for {name!r}")
        if code != cabi.SET_OPTION_SUCCESS:
            raise EvmcOptionError(f"VM {self.name}: set_option({name!r}) failed ({code})")

    def execute(self, host: Host, revision: Revision, message: Message,
                code: bytes) -> Result:
        vm = self._live()
        msg, keep = cabi.message_to_c(_ffi, message)
        code_buf = _ffi.from_buffer(code) if code else _ffi.NULL
        handle = next(_next_handle)
        entry = [host, None]
        with _executions_lock:
            _executions[handle] = entry
        saved = getattr(_current_ctx, "value", None)
        try:
            res = vm.execute(vm, _HOST_INTERFACE, _ffi.cast("struct evmc_host_context*",
                                                           handle),
                             int(revision), msg, code_buf, len(code))
            try:
                result = cabi.result_from_c(_ffi, res)
            finally:
                if res.release != _ffi.NULL:
                    res.release(_ffi.addressof(res))
        finally:
            with _executions_lock:
                _executions.pop(handle, None)
            _current_ctx.value = saved
            del keep, code_buf
        if entry[1] is not None:
            raise entry[1]
        return result

    def close(self) -> None:
        if self._vm is not None:
            vm, self._vm = self._vm, None
            if vm.destroy != _ffi.NULL:
                vm.destroy(vm)

    def __enter__(self) -> LoadedVM:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_vm(path: str | os.PathLike, **options: str | bool) -> LoadedVM:
    """Load an EVMC VM library (EVMC's symbol rules, ABI check) and apply the options
    through set_option, in order (`cache_dir=` is passed as `cache-dir`)."""
    vm = LoadedVM(path)
    try:
        for name, value in options.items():
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            vm.set_option(re.sub("_", "-", name), text)
    except BaseException:
        vm.close()
        raise
    return vm
