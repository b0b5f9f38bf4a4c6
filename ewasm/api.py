"""The embedding API: validate, compile (with the object cache), instantiate."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .compiled import (
    GAS_IMPORT,
    USE_GAS_TYPE,
    CompiledModule,
    cache_key,
    engine_gas_import,
)
from .compiler.cache import ObjectCache
from .compiler.driver import compile_module
from .compiler.pipeline import BASELINE, OPTIMIZED, Tier
from .compiler.target import TargetSpec
from .decoder import decode_module
from .errors import CompileError, InvalidArgument, LinkError
from .features import Features
from .module import EXTERN_FUNC, EXTERN_GLOBAL, EXTERN_MEMORY, EXTERN_TABLE, Module
from .runtime.externs import DEFAULT_MAX_MEMORY_PAGES, Global, HostFunc, Memory, Table
from .runtime.instance import Func, Instance
from .types import Limits
from .validator import validate_module

TIERS = ("auto", Tier.BASELINE.value, Tier.OPTIMIZED.value)


def validate(wasm: bytes, features: Features | None = None) -> Module:
    """Decode and validate; raises DecodeError or ValidationError."""
    features = features or Features.all()
    module = decode_module(wasm, features)
    validate_module(module, features)
    return module


def compile(
    wasm: bytes,
    features: Features | None = None,
    *,
    cache: ObjectCache | bool | None = True,
    engine_gas: bool = False,
    tier: str = "auto",
    module: Module | None = None,
) -> CompiledModule:
    """Decode, validate and compile to native code, or take the code from the cache.

    tier: "baseline" (compile time linear in the module's size), "optimized" (the
    optimising pipeline, run to completion before returning), or "auto": the optimised
    code if the cache has it, else the baseline now and the optimised code in the
    background once the module is instantiated a second time (CompiledModule.tier_up,
    wait_optimized). With engine_gas, an `ethereum.useGas: [i64] -> []` import is
    compiled as the engine's inline gas counter (see Instance.gas_left). module: the
    result of validate(wasm, features) when the caller has it already."""
    if tier not in TIERS:
        raise InvalidArgument(f"tier must be one of {TIERS}, not {tier!r}")
    features = features or Features.all()
    wasm = bytes(wasm)
    spec = TargetSpec.portable()
    store = ObjectCache() if cache is True else (cache or None)
    wanted = [OPTIMIZED] if tier == "optimized" else [BASELINE] if tier == "baseline" \
        else [OPTIMIZED, BASELINE]
    if store is not None:
        for pipe in wanted:
            key = cache_key(wasm, features, spec, engine_gas, pipe)
            obj = store.get(key)
            if obj is not None:
                # The key covers the exact bytes: they were validated when the entry was made.
                return CompiledModule(wasm, decode_module(wasm, features, skip_bodies=True), obj,
                                      key, features, engine_gas, pipe.tier, cache=store,
                                      auto_tier_up=tier == "auto")
    pipe = wanted[-1]
    if module is None:
        module = validate(wasm, features)
    try:
        obj = compile_module(module, pipe,
                             gas_import=engine_gas_import(module) if engine_gas else None)
    except CompileError:
        raise
    except Exception as exc:  # a compiler bug must still surface as a typed error
        raise CompileError(f"internal compiler error: {type(exc).__name__}: {exc}") from exc
    key = cache_key(wasm, features, spec, engine_gas, pipe)
    if store is not None:
        store.put(key, obj)
    return CompiledModule(wasm, module, obj, key, features, engine_gas, pipe.tier, cache=store,
                          auto_tier_up=tier == "auto")


Extern = Func | HostFunc | Memory | Table | Global | Callable[..., Any]


def resolve_imports(module: Module, imports: Mapping[str, Mapping[str, Any]] | None) -> list[Any]:
    """Match each import to a provided extern, checking kinds and types (LinkError)."""
    imports = imports or {}
    types = module.types
    out: list[Any] = []
    for imp in module.imports:
        where = f"{imp.module}.{imp.name}"
        ext = imports.get(imp.module, {}).get(imp.name)
        if ext is None:
            raise LinkError(f"unknown import {where}", offset=imp.offset)
        if imp.kind == EXTERN_FUNC:
            want = types[imp.desc]
            if isinstance(ext, Func | HostFunc):
                if ext.type != want:
                    raise LinkError(f"incompatible import type for {where}: expected {want}, "
                                    f"got {ext.type}", offset=imp.offset)
            elif callable(ext) and not isinstance(ext, Memory | Table | Global):
                ext = HostFunc(want, ext)
            else:
                raise LinkError(f"incompatible import type for {where}: expected a function",
                                offset=imp.offset)
        elif imp.kind == EXTERN_MEMORY:
            if not isinstance(ext, Memory):
                raise LinkError(f"incompatible import type for {where}: expected a memory",
                                offset=imp.offset)
            _check_limits(ext.current_type().limits, imp.desc.limits, where, imp.offset)
        elif imp.kind == EXTERN_TABLE:
            if not isinstance(ext, Table) or ext.type.elem_type != imp.desc.elem_type:
                raise LinkError(f"incompatible import type for {where}: expected a table",
                                offset=imp.offset)
            _check_limits(ext.current_type().limits, imp.desc.limits, where, imp.offset)
        elif imp.kind == EXTERN_GLOBAL:
            if not isinstance(ext, Global) or ext.type != imp.desc:
                raise LinkError(f"incompatible import type for {where}: expected a global "
                                f"of type {imp.desc}", offset=imp.offset)
        out.append(ext)
    return out


def _check_limits(have: Limits, want: Limits, where: str, offset: int) -> None:
    ok = have.min >= want.min and (
        want.max is None or (have.max is not None and have.max <= want.max)
    )
    if not ok:
        raise LinkError(f"incompatible import type for {where}: limits {have} do not match "
                        f"{want}", offset=offset)


def instantiate(
    module_or_bytes: CompiledModule | bytes,
    imports: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    features: Features | None = None,
    max_memory_pages: int = DEFAULT_MAX_MEMORY_PAGES,
    cache: ObjectCache | bool | None = True,
    gas_limit: int | None = None,
    tier: str = "auto",
) -> Instance:
    """Bind a module to its imports and run its initialisation and start function.

    With gas_limit, `ethereum.useGas` (if imported) is the engine's own counter, starting
    at gas_limit; read Instance.gas_used / gas_left. Running out raises ewasm.OutOfGas."""
    engine_gas = gas_limit is not None
    if isinstance(module_or_bytes, CompiledModule):
        compiled = module_or_bytes
        module = compiled.module
    else:
        compiled = None
        module = validate(bytes(module_or_bytes), features)
    if engine_gas:
        if gas_limit < 0:
            raise InvalidArgument(f"gas_limit must not be negative, got {gas_limit}")
        imports = _with_engine_gas(module, imports)
    # Link errors are reported before paying for compilation.
    externs = resolve_imports(module, imports)
    if compiled is None or compiled.engine_gas != engine_gas:
        wasm = compiled.wasm if compiled is not None else bytes(module_or_bytes)
        compiled = compile(wasm, features or (compiled.features if compiled else None),
                           cache=cache, engine_gas=engine_gas, tier=tier,
                           module=module if compiled is None else None)
    return Instance(compiled, externs, max_memory_pages=max_memory_pages, gas_limit=gas_limit)


def _engine_use_gas(amount: int) -> None:  # pragma: no cover - compiled inline instead
    raise AssertionError("ethereum.useGas is compiled inline when a gas limit is set")


# Stands in for `ethereum.useGas` when the engine's own counter is compiled inline.
ENGINE_USE_GAS = HostFunc(USE_GAS_TYPE, _engine_use_gas)


def _with_engine_gas(module: Module, imports):
    if engine_gas_import(module) is None:
        return imports
    merged = {k: dict(v) for k, v in (imports or {}).items()}
    merged.setdefault(GAS_IMPORT[0], {})[GAS_IMPORT[1]] = ENGINE_USE_GAS
    return merged
