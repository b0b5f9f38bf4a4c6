"""Executes a wast2json command list against the engine and tallies the outcome.

Every command counts once: passed, failed, or skipped with a reason. The only reasons
to skip are text-format modules (.wat syntax checks, which exercise a text parser this
binary engine does not have) and modules that use float instructions, which the
compiler does not support yet (Ewasm forbids floats)."""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ewasm
from ewasm.types import (
    F32,
    F64,
    FUNCREF,
    I32,
    I64,
    FuncType,
    GlobalType,
    Limits,
    MemoryType,
    TableType,
)

from .wast import convert, features_for

_TYPES = {"i32": I32, "i64": I64, "f32": F32, "f64": F64}
_MASK = {"i32": 0xFFFFFFFF, "i64": 0xFFFFFFFFFFFFFFFF, "f32": 0xFFFFFFFF,
         "f64": 0xFFFFFFFFFFFFFFFF}
TEXT_SKIP = "text-format module: exercises the .wat parser, not the engine"


@dataclass
class FileResult:
    name: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)
    skip_reasons: Counter = field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.skip_reasons[reason] += 1


class _Skipped:
    """Stands for a module that could not be compiled because it uses floats."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def spectest_module() -> dict[str, Any]:
    def typed(*params: int) -> ewasm.HostFunc:
        return ewasm.HostFunc(FuncType(params, ()), lambda *a: None)

    return {
        "print": typed(), "print_i32": typed(I32), "print_i64": typed(I64),
        "print_f32": typed(F32), "print_f64": typed(F64), "print_i32_f32": typed(I32, F32),
        "print_f64_f64": typed(F64, F64),
        "global_i32": ewasm.Global(GlobalType(I32, False), 666),
        "global_i64": ewasm.Global(GlobalType(I64, False), 666),
        "global_f32": ewasm.Global(GlobalType(F32, False),
                                   struct.unpack("<I", struct.pack("<f", 666.6))[0]),
        "global_f64": ewasm.Global(GlobalType(F64, False),
                                   struct.unpack("<Q", struct.pack("<d", 666.6))[0]),
        "table": ewasm.Table(TableType(FUNCREF, Limits(10, 20))),
        "memory": ewasm.Memory(MemoryType(Limits(1, 2))),
    }


def _is_nan(bits: int, ty: str) -> tuple[bool, bool]:
    """(is a NaN, is the canonical NaN) for a float bit pattern."""
    if ty == "f32":
        exp, frac, quiet = (bits >> 23) & 0xFF, bits & 0x7FFFFF, 1 << 22
        return exp == 0xFF and frac != 0, exp == 0xFF and frac == quiet
    exp, frac, quiet = (bits >> 52) & 0x7FF, bits & ((1 << 52) - 1), 1 << 51
    return exp == 0x7FF and frac != 0, exp == 0x7FF and frac == quiet


def _matches(got: int, want: dict) -> bool:
    ty, value = want["type"], want.get("value")
    bits = got & _MASK.get(ty, 0xFFFFFFFFFFFFFFFF)
    if ty in ("f32", "f64") and isinstance(value, str) and value.startswith("nan:"):
        is_nan, canonical = _is_nan(bits, ty)
        if value == "nan:canonical":
            return canonical
        quiet = 1 << (22 if ty == "f32" else 51)
        return is_nan and bool(bits & quiet)
    return bits == int(value)


class Runner:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.features = features_for(path)
        self.registry: dict[str, Any] = {"spectest": spectest_module()}
        self.skipped_modules: dict[str, str] = {}  # registered names of float modules
        self.named: dict[str, Any] = {}
        self.current: Any = None

    def run(self, name: str) -> FileResult:
        result = FileResult(name)
        wasm_dir, commands = convert(self.path)
        self.wasm_dir = wasm_dir
        for cmd in commands:
            where = f"{name}:{cmd.get('line')}"
            try:
                outcome = self.command(cmd)
            except Exception as exc:  # a failure of the engine, reported with its place
                outcome = f"unexpected {type(exc).__name__}: {exc}"
            if outcome is True:
                result.passed += 1
            elif isinstance(outcome, _Skipped):
                result.skip(outcome.reason)
            else:
                result.failed += 1
                result.failures.append(f"{where} {cmd['type']}: {outcome}")
        return result

    # --- modules -------------------------------------------------------------------
    def _wasm(self, cmd: dict) -> bytes:
        return (self.wasm_dir / cmd["filename"]).read_bytes()

    def _instantiate(self, wasm: bytes) -> Any:
        module = ewasm.validate(wasm, self.features)
        for imp in module.imports:
            if imp.module in self.skipped_modules:
                return _Skipped(self.skipped_modules[imp.module])
        try:
            compiled = ewasm.compile(wasm, self.features)
        except ewasm.CompileError as exc:
            if getattr(exc, "float_instruction", None):
                # Link errors must still be reported for such modules.
                ewasm.resolve_imports(module, self.registry)
                return _Skipped(f"module uses float instruction {exc.float_instruction}")
            raise
        return ewasm.instantiate(compiled, self.registry)

    def command(self, cmd: dict) -> Any:
        kind = cmd["type"]
        if kind == "module":
            inst = self._instantiate(self._wasm(cmd))
            self.current = inst
            if cmd.get("name"):
                self.named[cmd["name"]] = inst
            return inst if isinstance(inst, _Skipped) else True
        if kind == "register":
            inst = self.named[cmd["name"]] if cmd.get("name") else self.current
            if isinstance(inst, _Skipped):
                self.skipped_modules[cmd["as"]] = inst.reason
                return inst
            self.registry[cmd["as"]] = inst.exports
            self.skipped_modules.pop(cmd["as"], None)
            return True
        if kind in ("assert_malformed", "assert_invalid"):
            if cmd.get("module_type") == "text":
                return _Skipped(TEXT_SKIP)
            want = ewasm.DecodeError if kind == "assert_malformed" else ewasm.ValidationError
            try:
                ewasm.validate(self._wasm(cmd), self.features)
            except want:
                return True
            except ewasm.WasmError as exc:
                return f"expected {want.__name__} ({cmd.get('text')}), got {type(exc).__name__}: {exc}"
            return f"expected {want.__name__} ({cmd.get('text')}), module was accepted"
        if kind == "assert_unlinkable":
            return self._expect_failure(cmd, ewasm.LinkError, "a link error")
        if kind in ("assert_uninstantiable", "assert_trap") and "action" not in cmd:
            return self._expect_failure(cmd, ewasm.Trap, "instantiation to trap")
        if kind == "action":
            got = self.action(cmd["action"])
            return got if isinstance(got, _Skipped) else True
        if kind in ("assert_return", "assert_trap", "assert_exhaustion"):
            try:
                got = self.action(cmd["action"])
            except ewasm.CallStackExhausted:
                return True if kind == "assert_exhaustion" else "unexpected exhaustion"
            except ewasm.Trap as trap:
                if kind == "assert_trap":
                    return True
                return f"unexpected trap {trap.kind.name}: {trap}"
            if isinstance(got, _Skipped):
                return got
            if kind != "assert_return":
                return f"expected a trap ({cmd.get('text')}), got {got}"
            want = cmd.get("expected", [])
            if len(got) != len(want) or not all(map(_matches, got, want)):
                return f"expected {[w.get('value') for w in want]}, got {got}"
            return True
        return f"unknown command type {kind}"

    def _expect_failure(self, cmd: dict, error: type, what: str) -> Any:
        try:
            got = self._instantiate(self._wasm(cmd))
        except error:
            return True
        if isinstance(got, _Skipped):
            return got
        return f"expected {what} ({cmd.get('text')}), the module instantiated"

    def action(self, action: dict) -> Any:
        inst = self.named[action["module"]] if action.get("module") else self.current
        if isinstance(inst, _Skipped):
            return inst
        ext = inst.exports[action["field"]]
        if action["type"] == "get":
            return [ext.value]
        args = [int(a["value"]) & _MASK[a["type"]] for a in action.get("args", [])]
        return ext(*args)


def run_file(path: Path, name: str) -> FileResult:
    return Runner(path).run(name)


