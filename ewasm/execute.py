"""`execute`: EVMC's execute for Ewasm. Contract bytes and a message in, a Result out.

Never raises for anything a contract or its caller can cause: every failure becomes a
Result whose status and gas follow EVMC and Hera 0.6.0 (eei.md §1.6, §4).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from evmc_bridge import CallKind, Flags, Host, Message, Result, Revision, StatusCode
from evmc_bridge.forks import ForkRules, rules
from evmc_bridge.types import INT64_MAX

from . import eei, eei_native
from .api import ENGINE_USE_GAS, CompiledModule, compile, validate
from .compiler.cache import ReadOnlyCache
from .contract import (
    CONTRACT_FEATURES,
    EEI_SIGNATURES,
    WASM_VERSION_1,
    ContractValidationError,
    check_contract,
    has_wasm_preamble,
)
from .errors import (
    CompileError,
    HostResourceError,
    InvalidArgument,
    ResourceLimitError,
    Trap,
    TrapKind,
    WasmError,
)
from .module import EXTERN_FUNC, Module
from .runtime.externs import NativeFunc
from .runtime.instance import Instance
from .runtime.stack import NATIVE_SWITCH, run_on_big_stack
from .time_limit import _expired as _limits_expired
from .time_limit import interrupted

CVF = StatusCode.CONTRACT_VALIDATION_FAILURE
_EWASM_REVISIONS = frozenset(r for r in Revision if rules(r).ewasm)
_RULES = {r: rules(r) for r in _EWASM_REVISIONS}
_STATIC = int(Flags.STATIC)
EVM1_MODES = ("reject", "fallback")
# Enough Python frames for 1024 nested contract calls (each re-enters through ctypes,
# ~40 Python frames a level); the big execution stack (runtime.stack) holds them.
_RECURSION_FOR_NESTING = 200_000


# The EEI functions of eei_native run as native code (set False to run eei.py's for every
# function, e.g. to compare the two; clear the prepared cache after changing it).
USE_NATIVE_EEI = os.environ.get("EWASM_NATIVE_EEI", "1") != "0"

# Idle instances kept per prepared contract: one message's instance serves the next after
# a reset (wasmtime's pooling allocator); nested calls of one contract take more.
POOL_PER_CONTRACT = 2
_IDLE_MEMORY_BYTES = 64 * 1024

# Linear memory and tables, in 64 KiB pages, that the frames of one execution may hold at
# once (a published limit): each frame may grow only into what the frames below it leave, so a call chain
# costs the host at most this much memory, whatever its depth. Frames nest strictly (a
# caller cannot grow while its callee runs), so each frame's share is fixed when it starts
# and the total never exceeds the budget; the same on every machine.
MEMORY_BUDGET_PAGES = 4096  # 256 MiB


@dataclass(frozen=True, slots=True)
class _Prepared:
    compiled: CompiledModule
    externs: tuple  # one extern per import, in order
    main: int  # the function index of the export "main"
    min_pages: int  # the initial size of its memory and table, in pages of host memory
    needs_tx: bool  # imports a native getter of the transaction's context
    pool: list = field(default_factory=list, compare=False)  # idle Instances, reset on reuse

    def acquire(self, gas: int) -> Instance:
        """An instance as new, with `gas` on its counter: a pooled one reset, or a new one.
        A pooled instance of an older tier is dropped (new instances run tier-up code)."""
        code = self.compiled.load()  # also counts the use that triggers tier-up
        pool = self.pool
        while pool:
            try:
                instance = pool.pop()
            except IndexError:  # another thread took the last one
                break
            if instance.code is code:
                instance.reset(gas)
                return instance
        frame = eei_native.NativeFrame()
        instance = Instance(self.compiled, self.externs, gas_limit=gas, code=code,
                            native_ctx=ctypes.addressof(frame))
        instance.native_frame = frame
        return instance

    def release(self, instance: Instance) -> None:
        """Back to the pool, or freed now: a frame's memory never waits for the garbage
        collector (instances and their functions refer to each other), and an idle
        instance keeps no more than a small memory's pages."""
        memory = instance.memory
        if len(self.pool) < POOL_PER_CONTRACT:
            if memory is not None and memory.desc.size > _IDLE_MEMORY_BYTES:
                memory.reset()
            self.pool.append(instance)
        elif memory is not None:
            memory.free()


_cache_lock = threading.Lock()
_cache: OrderedDict[tuple[bool, bytes, bool, str], _Prepared | ContractValidationError] = \
    OrderedDict()
_cache_sizes: dict[tuple, int] = {}
CACHE_ENTRIES = 512
# What the prepared contracts of this process may hold, estimated from their code and
# object sizes (decoded module, loaded code, template, two pooled instances' pages).
CACHE_BYTES = 512 * 1024 * 1024
_cache_bytes = 0
_KEY_BYTES = 64 * 1024
_ephemeral = threading.local()


def _footprint(code: bytes, hit: _Prepared | ContractValidationError) -> int:
    if isinstance(hit, ContractValidationError):
        return len(code) + 1024
    obj = hit.compiled.object_code
    return 16 * len(code) + 2 * len(obj) + 2 * 64 * 1024 + 64 * 1024


def clear_cache() -> None:
    """Forget every prepared contract (tests, benchmarks: a cold start)."""
    global _cache_bytes
    with _cache_lock:
        _cache.clear()
        _cache_sizes.clear()
        _cache_bytes = 0


@contextmanager
def ephemeral_code() -> Iterator[None]:
    """Within the block, code this thread prepares for the first time is compiled for the
    block alone: never written to the disk cache, never kept in the process's cache, and
    dropped when the block ends (a simulation's sent code costs no disk and no lasting
    memory). Code already prepared is used as it is."""
    stack = getattr(_ephemeral, "stack", None)
    if stack is None:
        stack = _ephemeral.stack = []
    stack.append({})
    try:
        yield
    finally:
        stack.pop()


def prepare_contract(code: bytes, *, debug: bool = False, tier: str = "auto") -> _Prepared:
    """Check (ContractValidationError) and compile a contract; cached by code hash. tier:
    as ewasm.compile's ("auto": baseline first, optimised from the second call on)."""
    # Small code is its own key (its hash is cached on the bytes object, so a host that
    # hands over the same object each call pays nothing); large code is keyed by digest
    # so that the cache never holds more than CACHE_ENTRIES * _KEY_BYTES of keys.
    global _cache_bytes
    ident = code if len(code) <= _KEY_BYTES else hashlib.sha256(code).digest()
    key = (len(code) <= _KEY_BYTES, ident, debug, tier)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
    if hit is None:
        local = _ephemeral.stack[-1] if getattr(_ephemeral, "stack", None) else None
        if local is not None:
            hit = local.get(key)
            if hit is None:
                hit = local[key] = _prepare(code, debug, tier, persist=False)
        else:
            hit = _prepare(code, debug, tier)
            size = _footprint(code, hit)
            with _cache_lock:
                if len(_cache_sizes) != len(_cache):  # someone cleared _cache directly
                    for k in [k for k in _cache_sizes if k not in _cache]:
                        _cache_bytes -= _cache_sizes.pop(k)
                if key not in _cache:
                    _cache[key] = hit
                    _cache_sizes[key] = size
                    _cache_bytes += size
                while len(_cache) > 1 and (len(_cache) > CACHE_ENTRIES
                                           or _cache_bytes > CACHE_BYTES):
                    old, _ = _cache.popitem(last=False)
                    _cache_bytes -= _cache_sizes.pop(old, 0)
    if isinstance(hit, ContractValidationError):
        raise hit
    return hit


def _prepare(code: bytes, debug: bool, tier: str, *,
             persist: bool = True) -> _Prepared | ContractValidationError:
    try:
        module = _checked(code, debug)
    except ContractValidationError as exc:
        return exc
    compiled = compile(code, CONTRACT_FEATURES, engine_gas=True, module=module, tier=tier,
                       cache=True if persist else ReadOnlyCache())
    externs = []
    natives = eei_native.native_addresses() if USE_NATIVE_EEI else None
    for imp in module.imports:
        if imp.kind != EXTERN_FUNC:  # check_contract refuses these; be safe
            return ContractValidationError(f"import {imp.module}.{imp.name} is not a function")
        if (imp.module, imp.name) == ("ethereum", "useGas"):
            externs.append(ENGINE_USE_GAS)
        elif natives is not None and imp.module == "ethereum" and imp.name in natives:
            externs.append(NativeFunc(EEI_SIGNATURES[imp.name], natives[imp.name], imp.name))
        else:
            externs.append(eei.HOST_FUNCS[imp.module, imp.name])
    main = next(e.index for e in module.exports if e.name == "main" and e.kind == EXTERN_FUNC)
    min_pages = module.memories[0].limits.min if module.memories else 0
    if module.tables:  # a table costs host memory too: 32 bytes an entry
        min_pages += -(-module.tables[0].limits.min * 32 // 65536)
    needs_tx = any(isinstance(e, NativeFunc) and e.name in eei_native.TX_GETTERS
                   for e in externs)
    return _Prepared(compiled, tuple(externs), main, min_pages, needs_tx)


def _checked(code: bytes, debug: bool) -> Module:
    """The validated contract module, or ContractValidationError saying what and where."""
    if code[4:8] != WASM_VERSION_1:
        raise ContractValidationError(f"Wasm version {code[4:8].hex()} is not 1", offset=4)
    try:
        module = validate(code, CONTRACT_FEATURES)
    except WasmError as exc:  # DecodeError, ValidationError
        raise ContractValidationError(f"{type(exc).__name__}: {exc.message}", offset=exc.offset,
                                      func_index=exc.func_index) from None
    check_contract(module, debug=debug)
    return module


def execute(host: Host, revision: Revision, message: Message, code: bytes, *,
            sent_code: bytes | None = None, debug: bool = False,
            evm1_mode: str = "reject", tier: str = "auto") -> Result:
    """Run `code` for `message` against `host` (EVMC's execute for Ewasm).

    The code runs as given: metering is the caller's policy (gasmeter.MeteringPolicy
    meters at CREATE, as Hera). sent_code: the code as its sender gave it when `code` is
    a metered copy of it; `codeCopy` and `getCodeSize` see it (default: `code`). debug:
    allow the `debug` import namespace. evm1_mode: what to do with code that is not Wasm:
    "reject" (FAILURE) or "fallback" (REJECTED, so that the caller can run it on an EVM),
    as Hera's evm1mode option."""
    try:
        if revision not in _EWASM_REVISIONS:
            return Result.make(StatusCode.INTERNAL_ERROR,
                               message=f"revision {getattr(revision, 'name', revision)} "
                                       "predates Ewasm")
        if not 0 <= message.gas <= INT64_MAX:  # EVMC's int64_t: a host bug, never wrapped
            return Result.make(StatusCode.INTERNAL_ERROR,
                               message=f"message gas {message.gas} is outside EVMC's int64 "
                                       "range")
        if _limits_expired and interrupted():
            return Result.make(StatusCode.OUT_OF_GAS, message="the time limit was reached")
        if int(message.flags) & ~_STATIC:
            return Result.make(StatusCode.INTERNAL_ERROR,
                               message=f"unsupported message flags {int(message.flags)}")
        if evm1_mode not in EVM1_MODES:
            raise InvalidArgument(f"evm1_mode must be one of {EVM1_MODES}, not {evm1_mode!r}")
        if not has_wasm_preamble(code):
            if evm1_mode == "fallback":
                return Result.make(StatusCode.REJECTED, message="not Wasm code")
            return Result.make(StatusCode.FAILURE, message="not Wasm code (EVM code rejected)")
        try:
            prepared = prepare_contract(code, debug=debug, tier=tier)
        except ContractValidationError as exc:
            return Result.make(CVF, message=str(exc))
        # The frame stack lives on the thread that runs compiled code.
        shown = code if sent_code is None else sent_code
        if NATIVE_SWITCH:  # the call into compiled code switches stacks itself
            result = _run(host, message, shown, prepared, debug, _RULES[revision])
        else:
            result = run_on_big_stack(_run, host, message, shown, prepared, debug,
                                      _RULES[revision])
        if _limits_expired and interrupted():
            # However the frame ended once its gas was taken away (it may have read
            # the zeroed counter and returned), a fired limit ends it out of gas.
            return Result.make(StatusCode.OUT_OF_GAS, message="the time limit was reached")
        if message.kind in (CallKind.CREATE, CallKind.CREATE2) and result.ok:
            result = _check_deployed(result, debug)
        return result
    except Exception as exc:  # an engine or host bug: never an exception to the caller
        return Result.make(StatusCode.INTERNAL_ERROR,
                           message=f"internal error: {type(exc).__name__}: {exc}")


def _run(host: Host, message: Message, code: bytes, prepared: _Prepared,
         debug: bool, fork: ForkRules) -> Result:
    frame = eei.Frame(host, message, code, debug=debug, rules=fork)
    stack = eei.frames()
    if len(stack) > 8 and sys.getrecursionlimit() < _RECURSION_FOR_NESTING:
        sys.setrecursionlimit(_RECURSION_FOR_NESTING)
    used = 0
    for f in stack:
        used += f.pages
    share = MEMORY_BUDGET_PAGES - used
    stack.append(frame)
    try:
        if prepared.min_pages > share:
            return Result.make(StatusCode.FAILURE, message=(
                f"memory of {prepared.min_pages} pages exceeds the {share} pages left of the "
                f"execution's budget of {MEMORY_BUDGET_PAGES}"))
        try:
            instance = prepared.acquire(message.gas)
        except HostResourceError as exc:  # this machine's limit: never a contract result
            return Result.make(StatusCode.INTERNAL_ERROR, message=str(exc))
        except ResourceLimitError as exc:
            return Result.make(StatusCode.FAILURE, message=str(exc))
        table_pages = instance.table.pages if instance.table is not None else 0
        if instance.memory is not None:
            instance.memory.limit(share - table_pages)
        frame.memory = instance.memory
        frame.table_pages = table_pages
        frame.ctx = instance.ctx
        native = frame.native = instance.native_frame
        eei_native.fill(native, frame.msg.input, code, message.sender, message.recipient,
                        message.value)
        if prepared.needs_tx:
            eei_native.fill_tx(native, frame.tx)
        try:
            return _invoke_main(instance, prepared.main, fork.output_word_gas)
        finally:
            # Every exit: the instance is reset before its next use, whatever it left.
            frame.memory = frame.ctx = None
            prepared.release(instance)
    finally:
        stack.pop()


def _invoke_main(instance: Instance, main: int, output_word_gas: int) -> Result:
    """Run main; its end (finish, revert, trap, out of gas) as the Result. From after
    Byzantium, finish/revert pay output_word_gas per word of output once its range is
    checked (both EEI implementations: here, the same rule and numbers)."""
    try:
        if not instance.call_void(main):  # a native EEI function ended it (finish, ...)
            return eei_native.result_of(instance.native_frame, instance.memory,
                                        instance.ctx.gas, output_word_gas)
    except eei.Stop as stop:
        gas = instance.ctx.gas
        cost = output_word_gas * ((len(stop.output) + 31) >> 5)
        if cost > gas:
            return Result.make(StatusCode.OUT_OF_GAS,
                               message=eei_native.output_out_of_gas(cost, gas))
        return Result.make(stop.status, gas - cost, stop.output)
    except eei.Abort as abort:
        return Result.make(abort.status, message=str(abort))
    except Trap as trap:
        if trap.kind == TrapKind.OUT_OF_GAS:
            return Result.make(StatusCode.OUT_OF_GAS, message=str(trap))
        if trap.kind == TrapKind.NEGATIVE_GAS:
            return Result.make(StatusCode.ARGUMENT_OUT_OF_RANGE, message=str(trap))
        return Result.make(StatusCode.FAILURE, message=f"trap: {trap}")
    return Result.make(StatusCode.SUCCESS, instance.ctx.gas)


def _check_deployed(result: Result, debug: bool) -> Result:
    """A constructor's output is the code to deploy: Wasm output must be a contract.
    Checked, not compiled: the host may still meter it before it is stored."""
    out = result.output
    if out[:4] != b"\0asm" or len(out) < 8:
        return result  # not Wasm: stored as it is (Hera), e.g. EVM code or plain data
    try:
        _checked(out, debug)
    except ContractValidationError as exc:
        return Result.make(CVF, message=f"deployed code: {exc}")
    return result


__all__ = ["CompileError", "ephemeral_code", "execute", "prepare_contract"]
