"""The fixed code-generation target. Every setting is explicit so that the same input
gives the same object bytes on any machine of the architecture: the host CPU and its
features are never consulted."""

from __future__ import annotations

import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class TargetSpec:
    triple: str
    cpu: str
    features: str = ""
    # Static: code refers to symbols by absolute address, which the JIT fills in at link
    # time. PIC would compute the GOT's address in every function's prologue (three
    # instructions and a register on each call: fib(30) ran 12% slower, bench_engine).
    reloc: str = "static"
    # Large: every reference between an object's sections is 64-bit. The JIT (RuntimeDyld
    # with its section memory manager) places an object's code, cold code and read-only
    # data in separate blocks, which a long-running process's mappings can push more than
    # 2 GiB apart; a 32-bit PC-relative relocation across them asserts in the host.
    # Kernel run speed is unchanged (bench_engine).
    codemodel: str = "large"

    @classmethod
    def portable(cls) -> TargetSpec:
        machine = platform.machine().lower()
        if machine in ("aarch64", "arm64"):
            # LLVM does not take the large code model with PIC here; ADRP reaches 4 GiB.
            return cls("aarch64-unknown-linux-gnu", "generic", reloc="pic", codemodel="small")
        # Baseline x86-64: runs on every x86-64 machine.
        return cls("x86_64-unknown-linux-gnu", "x86-64")

    def key(self) -> str:
        return f"{self.triple}|{self.cpu}|{self.features}|{self.reloc}|{self.codemodel}"
