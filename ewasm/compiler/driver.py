"""compile_module: a decoded, validated module -> object payload for one tier.

Lowering (Python, linear in the module) runs here; LLVM runs in worker processes
(workers.py). The module is split into partitions whose number depends only on the
module, so the bytes are the same whether the partitions compile in parallel or not."""

from __future__ import annotations

from ..errors import CompileError
from ..module import Module
from .codegen import pack_objects
from .lower import lower_baseline, lower_partitions, partition_plan
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
    baseline = pipeline.tier is Tier.BASELINE
    bins = partition_plan(module, baseline)
    k = len(bins)
    # The baseline tier's partitions are lowered one by one while workers compile the
    # previous ones.
    texts = (lower_baseline(module, gas_import, bins) if baseline
             else lower_partitions(module, gas_import, bins=bins))
    try:
        return pack_objects(pool.compile(texts, pipeline, count=k, verify=verify,
                                         timeout=timeout))
    except RecursionError:
        raise CompileError("internal compiler error: lowering recursed too deeply") from None
