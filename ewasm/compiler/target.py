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
    reloc: str = "pic"
    codemodel: str = "small"

    @classmethod
    def portable(cls) -> TargetSpec:
        machine = platform.machine().lower()
        if machine in ("aarch64", "arm64"):
            return cls("aarch64-unknown-linux-gnu", "generic")
        # Baseline x86-64: runs on every x86-64 machine.
        return cls("x86_64-unknown-linux-gnu", "x86-64")

    def key(self) -> str:
        return f"{self.triple}|{self.cpu}|{self.features}|{self.reloc}|{self.codemodel}"
