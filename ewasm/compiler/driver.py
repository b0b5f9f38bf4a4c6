"""compile_module: a decoded, validated module -> object payload for one tier.

Lowering (Python, linear in the module) runs here; LLVM runs in worker processes
(workers.py). The module is split into partitions whose number depends only on the
module, so the bytes are the same whether the partitions compile in parallel or not."""

from __future__ import annotations

from ..errors import CompileError
from ..module import Module
from .codegen import pack_objects
from .lower import lower_module, partition_count
from .pipeline import BASELINE, Pipeline, Tier
from .workers import WorkerPool, foreground


def compile_module(
    module: Module,
    pipeline: Pipeline = BASELINE,
    *,
    gas_import: int | None = None,
    pool: WorkerPool | None = None,
    verify: bool = False,
    timeout: float | None = None,
) -> bytes:
    pool = pool or foreground()
    # Workers boot (~0.1 s) while this process lowers the module.
    pool.warm()
    try:
        texts = lower_module(module, gas_import,
                             partition_count(module, pipeline.tier is Tier.BASELINE))
    except CompileError:
        raise
    except RecursionError:
        raise CompileError("internal compiler error: lowering recursed too deeply") from None
    return pack_objects(pool.compile(texts, pipeline, verify=verify, timeout=timeout))
