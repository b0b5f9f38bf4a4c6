"""The fixed code-generation target. Every setting is explicit so that the same input
gives the same object bytes on any machine of the architecture: the host CPU and its
features are never consulted."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from functools import cache

import llvmlite
import llvmlite.binding as llvm


@dataclass(frozen=True)
class TargetSpec:
    triple: str
    cpu: str
    features: str = ""
    reloc: str = "pic"
    codemodel: str = "small"
    opt: int = 1  # codegen level; IR passes are chosen separately (see codegen.PASSES)

    @classmethod
    def portable(cls) -> TargetSpec:
        machine = platform.machine().lower()
        if machine in ("aarch64", "arm64"):
            return cls("aarch64-unknown-linux-gnu", "generic")
        # Baseline x86-64: runs on every x86-64 machine.
        return cls("x86_64-unknown-linux-gnu", "x86-64")

    def key(self) -> str:
        return f"{self.triple}|{self.cpu}|{self.features}|{self.reloc}|{self.codemodel}|O{self.opt}"


def llvm_version() -> str:
    return f"llvmlite {llvmlite.__version__} / LLVM {'.'.join(map(str, llvm.llvm_version_info))}"


@cache
def _initialise() -> None:
    # llvm.initialize() raises since llvmlite 0.45; these two are the supported calls.
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


@cache
def target_machine(spec: TargetSpec) -> llvm.TargetMachine:
    _initialise()
    target = llvm.Target.from_triple(spec.triple)
    return target.create_target_machine(
        cpu=spec.cpu,
        features=spec.features,
        opt=spec.opt,
        reloc=spec.reloc,
        codemodel=spec.codemodel,
    )
