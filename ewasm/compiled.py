"""CompiledModule: a validated module and its native code, in one of two tiers; the cache
key; the compiled artefact format; background tier-up.

A module compiled with tier "auto" starts on the baseline tier (linear compile time) and
is recompiled by the optimising tier in a low-priority background worker once it is
instantiated a second time (or when `tier_up()` asks). Instances created after that run
the optimised code; instances already running keep theirs. Both tiers come from the same
IR, so results, gas and traps do not depend on which one ran."""

from __future__ import annotations

import collections
import hashlib
import os
import struct
import threading

from .compiler import abi
from .compiler.cache import ObjectCache
from .compiler.codegen import llvm_version
from .compiler.driver import compile_module
from .compiler.pipeline import OPTIMIZED, Pipeline, Tier, pipeline
from .compiler.target import TargetSpec
from .compiler.workers import background
from .decoder import decode_module
from .errors import CompileError, DecodeError
from .features import Features
from .limits import DEFAULT_LIMITS
from .module import EXTERN_FUNC, EXTERN_NAMES, Module
from .runtime.linker import LoadedCode, load_object
from .types import I64, FuncType
from .validator import validate_module

COMPILER_VERSION = "ewasm-aot-3"
ARTEFACT_MAGIC = b"EWASMART"
ARTEFACT_FORMAT = 2
# magic, format, tier (0 baseline, 1 optimized), engine gas, key, wasm length, object length
_ARTEFACT_HEADER = struct.Struct("<8sIBB2x32sQQ")
_TIER_CODES = {Tier.BASELINE: 0, Tier.OPTIMIZED: 1}
# The background compile of one module may take this long before it is abandoned (the
# module then stays on the baseline tier: only speed depends on it, never results).
TIER_UP_TIMEOUT = float(os.environ.get("EWASM_TIER_UP_TIMEOUT", "300"))
TIER_UP_QUEUE = 64
# The import the engine compiles as its own inline gas counter (with engine_gas).
GAS_IMPORT = ("ethereum", "useGas")
USE_GAS_TYPE = FuncType((I64,), ())


def cache_key(wasm: bytes, features: Features, spec: TargetSpec, engine_gas: bool = False,
              pipe: Pipeline = OPTIMIZED) -> bytes:
    h = hashlib.sha256()
    for part in (
        f"engine_gas={int(engine_gas)}",
        f"abi={abi.ABI_VERSION}",
        f"compiler={COMPILER_VERSION}",
        llvm_version(),
        spec.key(),
        f"features={features.key()}",
        # A cached module was accepted under these limits; a hit skips re-validating.
        f"limits={DEFAULT_LIMITS.key()}",
        f"pipeline={pipe.key()}",
    ):
        h.update(part.encode() + b"\0")
    h.update(hashlib.sha256(wasm).digest())
    return h.digest()


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


class CompiledModule:
    """A validated module and its native code; instantiate it any number of times."""

    def __init__(self, wasm: bytes, module: Module, object_code: bytes, key: bytes,
                 features: Features, engine_gas: bool = False,
                 tier: Tier | str = Tier.OPTIMIZED, *, cache: ObjectCache | None = None,
                 auto_tier_up: bool = False) -> None:
        # True when `ethereum.useGas` is the engine's own inline counter in this code.
        self.engine_gas = engine_gas
        self.wasm = wasm
        self.module = module
        self.features = features
        self.code_hash = hashlib.sha256(wasm).digest()
        self._lock = threading.Lock()
        self._tier = Tier(tier)
        self._object_code = object_code
        self._key = key
        self._loaded: LoadedCode | None = None
        self._cache = cache
        self._auto = auto_tier_up and self._tier is Tier.BASELINE
        self._loads = 0
        self._tier_up_started = False
        self._tier_up_done = threading.Event()
        if self._tier is Tier.OPTIMIZED:
            self._tier_up_done.set()
        self.tier_up_error: str | None = None

    # --- the current code ---------------------------------------------------------------
    @property
    def tier(self) -> Tier:
        return self._tier

    @property
    def object_code(self) -> bytes:
        return self._object_code

    @property
    def cache_key(self) -> bytes:
        return self._key

    def load(self) -> LoadedCode:
        """The current tier's code, loaded into the process (once per tier)."""
        with self._lock:
            self._loads += 1
            start = self._auto and self._loads == 2
            if self._loaded is None:
                self._loaded = load_object(self._object_code, len(self.module.func_types),
                                           self.code_hash.hex()[:16])
            loaded = self._loaded
        if start:
            self.tier_up()
        return loaded

    def _install(self, tier: Tier, obj: bytes, key: bytes) -> None:
        with self._lock:
            self._tier, self._object_code, self._key = tier, obj, key
            self._loaded = None  # the next instance loads the new code

    # --- tier-up ----------------------------------------------------------------------
    def tier_up(self) -> None:
        """Queue the optimising compile in the background (no-op once started)."""
        with self._lock:
            if self._tier_up_started or self._tier is Tier.OPTIMIZED:
                return
            self._tier_up_started = True
        _tier_up_queue().submit(self)

    def wait_optimized(self, timeout: float | None = None) -> bool:
        """Start tier-up if needed and wait for it; True once the optimised code is in."""
        self.tier_up()
        self._tier_up_done.wait(timeout)
        return self._tier is Tier.OPTIMIZED

    def _run_tier_up(self) -> None:
        try:
            key = cache_key(self.wasm, self.features, TargetSpec.portable(), self.engine_gas,
                            OPTIMIZED)
            obj = self._cache.get(key) if self._cache is not None else None
            if obj is None:
                module = self.module
                if any(not fn.body for fn in module.codes):  # decoded without bodies
                    module = decode_module(self.wasm, self.features)
                obj = compile_module(module, OPTIMIZED, pool=background(),
                                     gas_import=engine_gas_import(module) if self.engine_gas
                                     else None, timeout=TIER_UP_TIMEOUT)
                if self._cache is not None:
                    self._cache.put(key, obj)
            self._install(Tier.OPTIMIZED, obj, key)
        except CompileError as exc:
            self.tier_up_error = str(exc)
        except Exception as exc:  # a compiler bug: stay on the baseline tier
            self.tier_up_error = f"internal compiler error: {type(exc).__name__}: {exc}"
        finally:
            self._tier_up_done.set()

    # --- the artefact -----------------------------------------------------------------
    @property
    def exports(self) -> dict[str, str]:
        return {e.name: EXTERN_NAMES[e.kind] for e in self.module.exports}

    def serialize(self) -> bytes:
        """The compiled artefact: the module bytes and its object code, deterministic."""
        with self._lock:
            tier, key, obj = self._tier, self._key, self._object_code
        head = _ARTEFACT_HEADER.pack(ARTEFACT_MAGIC, ARTEFACT_FORMAT, _TIER_CODES[tier],
                                     int(self.engine_gas), key, len(self.wasm), len(obj))
        return head + self.wasm + obj

    @classmethod
    def deserialize(cls, data: bytes, features: Features | None = None, *,
                    verify: bool = False) -> CompiledModule:
        """An artefact from `serialize` back as a CompiledModule.

        Trusted input only: the artefact's object code is linked and run as it is, like
        wasmtime's `unsafe Module::deserialize`. The header check catches an artefact of
        another engine version or target, not a forged one (its key is a public function
        of the Wasm it carries), so `ewasm run` refuses artefacts without
        `--allow-precompiled`. verify=True re-derives the code instead: the Wasm is
        validated and compiled again on the artefact's tier, and the artefact is refused
        (CompileError) unless its object code is the same bytes (compiles are
        deterministic); that costs a full compile."""
        features = features or Features.all()
        if len(data) < _ARTEFACT_HEADER.size:
            raise DecodeError("compiled artefact is truncated", offset=len(data))
        magic, fmt, tier_code, gas, key, wlen, olen = _ARTEFACT_HEADER.unpack_from(data)
        if magic != ARTEFACT_MAGIC or fmt != ARTEFACT_FORMAT:
            raise DecodeError("not a compiled ewasm artefact of this engine", offset=0)
        tiers = {v: k for k, v in _TIER_CODES.items()}
        if tier_code not in tiers or gas > 1:
            raise DecodeError("compiled artefact header is malformed", offset=8)
        body = data[_ARTEFACT_HEADER.size:]
        if len(body) != wlen + olen:
            raise DecodeError("compiled artefact is truncated", offset=len(data))
        wasm, obj = body[:wlen], body[wlen:]
        tier = tiers[tier_code]
        if cache_key(wasm, features, TargetSpec.portable(), bool(gas), pipeline(tier)) != key:
            raise CompileError("artefact was compiled by another engine version or target")
        if verify:
            module = decode_module(wasm, features)
            validate_module(module, features)
            again = compile_module(module, pipeline(tier),
                                   gas_import=engine_gas_import(module) if gas else None)
            if again != obj:
                raise CompileError("artefact's native code is not what this engine compiles "
                                   "from its Wasm: refusing it")
            return cls(wasm, module, obj, key, features, bool(gas), tier)
        return cls(wasm, decode_module(wasm, features, skip_bodies=True), obj, key, features,
                   bool(gas), tier)


class _TierUpQueue:
    """One background thread compiling queued modules in order; a full queue drops the
    oldest request (that module stays on the baseline tier)."""

    def __init__(self) -> None:
        self._pending: collections.deque[CompiledModule] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, compiled: CompiledModule) -> None:
        with self._cond:
            self._pending.append(compiled)
            while len(self._pending) > TIER_UP_QUEUE:
                dropped = self._pending.popleft()
                dropped.tier_up_error = "tier-up queue full"
                dropped._tier_up_done.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="ewasm-tier-up",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    if not self._cond.wait(timeout=30):
                        if not self._pending:
                            self._thread = None
                            return
                compiled = self._pending.popleft()
            compiled._run_tier_up()


_queue: _TierUpQueue | None = None
_queue_lock = threading.Lock()


def _tier_up_queue() -> _TierUpQueue:
    global _queue
    with _queue_lock:
        if _queue is None:
            _queue = _TierUpQueue()
        return _queue
