"""The compile tiers: which LLVM passes and which code-generation level make each one.

Both tiers compile the same IR for each instruction (lower.py), so they compute the same
results, gas, traps and trap offsets; they differ in what LLVM does with it, and in how
the baseline tier cuts the module into LLVM functions and partitions.

* BASELINE runs no IR pass and code generation at level 0 (FastISel, the fast register
  allocator). Every step is linear in the IR, and the IR is linear in the Wasm, so the
  time to the first result is bounded by the module's size whatever its shape. Its
  partitions are runs of functions of about equal weight, and a huge function is cut
  into segments (split.py), so that both workers share any module. Its IR stays in
  what FastISel selects (SelectionDAG costs several times more per block): calls go
  through call tables instead of naming a symbol, which the large code model would
  make FastISel refuse (abi.CTX_CALLS), rotations are shifts, and small functions are
  lowered in groups, one LLVM function each (group.py), against LLVM's price per
  function.
* OPTIMIZED is the light pipeline of shared/docs/compiler-design.md: on Wasm that a
  producer already optimised, these passes give O2's run speed at a fraction of its
  compile time, but their time is not bounded by the input's size (SimplifyCFG on deep
  nesting, register allocation on many live values). It is compiled in the background
  and swapped in for later instances.

The pass list is defined here once: the cache key is made from the pipeline actually run.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Tier(StrEnum):
    BASELINE = "baseline"
    OPTIMIZED = "optimized"


@dataclass(frozen=True)
class Pipeline:
    tier: Tier
    passes: tuple[str, ...]  # new pass manager passes, in order (see Codegen.PASS_METHODS)
    codegen_opt: int  # the target machine's optimisation level (0: FastISel)

    def key(self) -> str:
        return f"{self.tier.value}:{','.join(self.passes)}:O{self.codegen_opt}"


BASELINE = Pipeline(Tier.BASELINE, (), 0)
OPTIMIZED = Pipeline(Tier.OPTIMIZED, ("always-inline", "sroa", "instcombine", "simplifycfg",
                                      "dce"), 1)
PIPELINES = {p.tier: p for p in (BASELINE, OPTIMIZED)}


def pipeline(tier: Tier | str) -> Pipeline:
    return PIPELINES[Tier(tier)]
