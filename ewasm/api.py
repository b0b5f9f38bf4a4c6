"""The embedding API: validate, compile (with the object cache), instantiate."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Mapping
from typing import Any

from .compiler import abi
from .compiler.cache import ObjectCache
from .compiler.codegen import PASSES, compile_module
from .compiler.target import TargetSpec, llvm_version
from .decoder import decode_module
from .errors import CompileError, DecodeError, LinkError
from .features import Features
from .module import EXTERN_FUNC, EXTERN_GLOBAL, EXTERN_MEMORY, EXTERN_NAMES, EXTERN_TABLE, Module
from .runtime.externs import DEFAULT_MAX_MEMORY_PAGES, Global, HostFunc, Memory, Table
from .runtime.instance import Func, Instance
from .runtime.linker import LoadedCode, load_object
from .types import I64, FuncType, Limits
from .validator import validate_module

COMPILER_VERSION = "ewasm-aot-1"
GAS_IMPORT = ("ethereum", "useGas")
USE_GAS_TYPE = FuncType((I64,), ())
ARTEFACT_MAGIC = b"EWASMART"
_ARTEFACT_HEADER = struct.Struct("<8sI32sQQ")  # magic, format, key, wasm length, object length


def validate(wasm: bytes, features: Features | None = None) -> Module:
    """Decode and validate; raises DecodeError or ValidationError."""
    features = features or Features.all()
    module = decode_module(wasm, features)
    validate_module(module, features)
    return module


def engine_gas_import(module: Module) -> int | None:
    """Function index of an `ethereum.useGas: [i64] -> []` import, if the module has one."""
    k = 0
    for imp in module.imports:
        if imp.kind != EXTERN_FUNC:
            continue
        if (imp.module, imp.name) == GAS_IMPORT and module.types[imp.desc] == USE_GAS_TYPE:
            return k
        k += 1
    return None


def cache_key(wasm: bytes, features: Features, spec: TargetSpec,
              engine_gas: bool = False) -> bytes:
    h = hashlib.sha256()
    for part in (
        f"engine_gas={int(engine_gas)}",
        f"abi={abi.ABI_VERSION}",
        f"compiler={COMPILER_VERSION}",
        llvm_version(),
        spec.key(),
        f"features={features.key()}",
        f"passes={','.join(PASSES)}",
    ):
        h.update(part.encode() + b"\0")
    h.update(hashlib.sha256(wasm).digest())
    return h.digest()


class CompiledModule:
    """A validated module and its native code; instantiate it any number of times."""

    def __init__(self, wasm: bytes, module: Module, object_code: bytes, key: bytes,
                 features: Features, engine_gas: bool = False) -> None:
        # True when `ethereum.useGas` is the engine's own inline counter in this code.
        self.engine_gas = engine_gas
        self.wasm = wasm
        self.module = module
        self.object_code = object_code
        self.cache_key = key
        self.features = features
        self.code_hash = hashlib.sha256(wasm).digest()
        self._loaded: LoadedCode | None = None

    def load(self) -> LoadedCode:
        if self._loaded is None:
            self._loaded = load_object(self.object_code, len(self.module.func_types),
                                       self.code_hash.hex()[:16])
        return self._loaded

    @property
    def exports(self) -> dict[str, str]:
        return {e.name: EXTERN_NAMES[e.kind] for e in self.module.exports}

    def serialize(self) -> bytes:
        """The compiled artefact: the module bytes and its object code, deterministic."""
        head = _ARTEFACT_HEADER.pack(ARTEFACT_MAGIC, 1, self.cache_key, len(self.wasm),
                                     len(self.object_code))
        return head + self.wasm + self.object_code

    @classmethod
    def deserialize(cls, data: bytes, features: Features | None = None) -> CompiledModule:
        features = features or Features.all()
        if len(data) < _ARTEFACT_HEADER.size:
            raise DecodeError("compiled artefact is truncated", offset=len(data))
        magic, fmt, key, wlen, olen = _ARTEFACT_HEADER.unpack_from(data)
        if magic != ARTEFACT_MAGIC or fmt != 1:
            raise DecodeError("not a compiled ewasm artefact", offset=0)
        body = data[_ARTEFACT_HEADER.size:]
        if len(body) != wlen + olen:
            raise DecodeError("compiled artefact is truncated", offset=len(data))
        wasm, obj = body[:wlen], body[wlen:]
        if cache_key(wasm, features, TargetSpec.portable()) != key:
            raise CompileError("artefact was compiled by another engine version or target")
        return cls(wasm, decode_module(wasm, features, skip_bodies=True), obj, key, features)


def compile(
    wasm: bytes,
    features: Features | None = None,
    *,
    cache: ObjectCache | bool | None = True,
    engine_gas: bool = False,
) -> CompiledModule:
    """Decode, validate and compile to native code, or take the code from the cache.

    With engine_gas, an `ethereum.useGas: [i64] -> []` import is compiled as the
    engine's inline gas counter (see Instance.gas_left) instead of a host call."""
    features = features or Features.all()
    wasm = bytes(wasm)
    spec = TargetSpec.portable()
    key = cache_key(wasm, features, spec, engine_gas)
    store = ObjectCache() if cache is True else (cache or None)
    if store is not None:
        obj = store.get(key)
        if obj is not None:
            # The key covers the exact bytes: they were validated when the entry was made.
            return CompiledModule(wasm, decode_module(wasm, features, skip_bodies=True), obj,
                                  key, features, engine_gas)
    module = validate(wasm, features)
    try:
        obj = compile_module(module, spec,
                             gas_import=engine_gas_import(module) if engine_gas else None)
    except CompileError:
        raise
    except Exception as exc:  # a compiler bug must still surface as a typed error
        raise CompileError(f"internal compiler error: {type(exc).__name__}: {exc}") from exc
    if store is not None:
        store.put(key, obj)
    return CompiledModule(wasm, module, obj, key, features, engine_gas)


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
            raise ValueError("gas_limit must not be negative")
        imports = _with_engine_gas(module, imports)
    # Link errors are reported before paying for compilation.
    externs = resolve_imports(module, imports)
    if compiled is None or compiled.engine_gas != engine_gas:
        wasm = compiled.wasm if compiled is not None else bytes(module_or_bytes)
        compiled = compile(wasm, features or (compiled.features if compiled else None),
                           cache=cache, engine_gas=engine_gas)
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
