"""Engine-made native support code: small fixed IR modules that this engine writes,
compiles once per process (through the compile workers, like contract code, and cached on
disk by the hash of their IR and target) and links in. Nothing here depends on a
contract; the IR is the engine's own (eei_native's functions, for one).
"""

from __future__ import annotations

import hashlib
import threading

from ..compiler import abi
from ..errors import CompileError

_lock = threading.Lock()
_loaded: dict[str, tuple[object, int] | str] = {}  # name -> (tracker, address) or why not


def load_support(name: str, ir_text: str, symbol: str) -> int:
    """The address of `symbol` in the support module `name` built from ir_text (built
    once per process). Raises CompileError (or OSError) when it cannot be built."""
    with _lock:
        hit = _loaded.get(name)
        if hit is None:
            try:
                hit = _build(name, ir_text, symbol)
            except (CompileError, OSError) as exc:
                hit = f"{type(exc).__name__}: {exc}"
            _loaded[name] = hit
    if isinstance(hit, str):
        raise CompileError(f"engine support code {name} is unavailable: {hit}")
    return hit[1]


def _build(name: str, ir_text: str, symbol: str) -> tuple[object, int]:
    from ..compiler.cache import ObjectCache
    from ..compiler.codegen import codegen, llvm_version
    from ..compiler.pipeline import OPTIMIZED
    from ..compiler.target import TargetSpec
    from ..compiler.workers import foreground

    spec = TargetSpec.portable()
    key = hashlib.sha256("\0".join((
        "ewasm-support", name, str(abi.ABI_VERSION), ir_text, spec.key(), OPTIMIZED.key(),
        llvm_version(),
    )).encode()).digest()
    try:
        cache = ObjectCache()
        obj = cache.get(key)
    except Exception:  # an unusable cache directory: compile without it
        cache, obj = None, None
    if obj is None:
        (obj,) = foreground().compile([ir_text], OPTIMIZED)
        if cache is not None:
            try:
                cache.put(key, obj)
            except Exception:
                pass
    tracker, address = codegen().load_objects([obj], symbol, f"support-{name}")
    if not address:
        raise CompileError(f"support code {name} has no symbol {symbol}")
    return tracker, address
