"""Wasm module -> LLVM IR text: the entry point of the lowering.

The IR is written as text rather than through llvmlite.ir objects: the builder objects
cost several microseconds each, and a 128 KB contract has ~50k instructions.

The translation is direct (see function.py): the Wasm operand stack is simulated at
compile time as a list of SSA values; locals and branch values live in allocas that SROA
promotes to SSA registers. Every trap is an explicit branch to the function's single trap
block, which records (trap code, function index, byte offset) in the context and returns
a status. Layouts come from abi.py.

The pieces: function.py lowers one function body (calls.py and gas.py lower its calls
and its inline gas counter), split.py lowers a huge one as several LLVM functions on the
baseline tier and group.py several small ones as one, wrapper.py writes the wrappers of
escaping functions, and partition.py splits the module into partitions and assembles
each partition's text (with, on the baseline tier, its call table: abi.CTX_CALLS).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..module import Module
from . import partition as _partition
from .calls import ret_type
from .function import (
    BODY_INSTRUCTIONS_PER_UNIT,
    CALL_BASE_COST,
    GAS_REGISTER_MAX_INSTRUCTIONS,
    INLINE_LIMIT,
    TRAP_CODE_SHIFT,
    ModuleLowering,
)
from .partition import assign_partitions

__all__ = [
    "BASELINE_MAX_PARTITIONS", "BASELINE_PARTITION_INSTRUCTIONS", "BODY_INSTRUCTIONS_PER_UNIT",
    "CALL_BASE_COST", "GAS_REGISTER_MAX_INSTRUCTIONS", "INLINE_LIMIT", "MAX_PARTITIONS",
    "PARTITION_INSTRUCTIONS", "TRAP_CODE_SHIFT", "ModuleLowering", "assign_partitions",
    "lower_baseline", "lower_module", "lower_partitions", "partition_count", "partition_plan", "ret_type",
]

# Modules above this many instructions are split into partitions compiled in parallel.
# The count depends only on the module (and the tier), so the object bytes never depend
# on the machine. The baseline tier splits finer: its compile time is what a caller waits
# for, and it inlines nothing across partitions anyway.
PARTITION_INSTRUCTIONS = 16384
MAX_PARTITIONS = 4
BASELINE_PARTITION_INSTRUCTIONS = 2048
BASELINE_MAX_PARTITIONS = 8


def partition_plan(module: Module, baseline: bool = False) -> list[list]:
    """What each partition holds. The optimising tier packs functions (their indices)
    into partitions of about equal size; the baseline tier cuts its units (functions,
    and the segments of split functions: partition.baseline_units) into runs of about
    equal weight (partition.contiguous_partitions)."""
    nimp = module.num_imported_funcs
    # Read from this module's globals at call time (tests patch PARTITION_INSTRUCTIONS).
    if baseline:
        return _partition.contiguous_partitions(module, BASELINE_PARTITION_INSTRUCTIONS,
                                                BASELINE_MAX_PARTITIONS, nimp)
    k = _partition.partition_count_for(module, PARTITION_INSTRUCTIONS, MAX_PARTITIONS)
    return assign_partitions(module, k, nimp)


def partition_count(module: Module, baseline: bool = False) -> int:
    return len(partition_plan(module, baseline))


def lower_module(module: Module, gas_import: int | None = None,
                 partitions: int | None = None) -> list[str]:
    """The module as LLVM IR texts, one per partition (deterministic for a module)."""
    return list(lower_partitions(module, gas_import, partitions))


def lower_baseline(module: Module, gas_import: int | None = None,
                   bins: list[list] | None = None) -> Iterator[str]:
    """The baseline tier's partition texts, each lowered when it is asked for (see
    partition.lower_baseline_partitions); `bins` defaults to partition_plan(module, True)."""
    yield from _partition.lower_baseline_partitions(
        module, gas_import, bins if bins is not None else partition_plan(module, True))


def lower_partitions(module: Module, gas_import: int | None = None,
                     partitions: int | None = None, *,
                     inline_copies: bool = True,
                     bins: list[list[int]] | None = None) -> Iterator[str]:
    """The partitions' IR texts, in order, each as soon as it is lowered (see
    partition.lower_partitions); `bins` (a partition_plan) or `partitions` (a count for
    assign_partitions) default to partition_plan(module)."""
    if bins is None and partitions is None:
        bins = partition_plan(module)
    yield from _partition.lower_partitions(module, gas_import, partitions or len(bins),
                                           inline_copies=inline_copies, bins=bins)
