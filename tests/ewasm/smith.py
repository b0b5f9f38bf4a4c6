"""Differential fuzzing: generated modules run on wasmtime and on this engine, compared.

A case is (profile, index). The seed bytes fed to `wasm-tools smith` are derived from the
pair with SHA-256/SHAKE-256 (the "stress" profile's own generator from a splitmix64
stream seeded the same way), so a case is reproducible by its id on any machine:

    python -m tests.ewasm.smith default 123                # every tier, prints the verdict
    python -m tests.ewasm.smith default 123 --tier baseline --wat    # ... and the module
    python -m tests.ewasm.smith default 123 -o case.wasm   # write the module (for shrinking)
    python -m tests.ewasm.smith default 0:500 --tier optimized        # a range of cases
    python -m tests.ewasm.smith summary BASETEMP/smith-stats   # totals of a pytest run

Every module is compiled by wasmtime and by this engine (cache=False). A module one
rejects must be rejected by the other (this engine with a DecodeError/ValidationError).
When both accept it, both instantiate it (with identical imports, if any: host functions
that log their calls and answer from their arguments, fresh memories, globals and
tables) and call every exported function in export order with each round's arguments
(see ROUNDS). After every instantiation and every call the outcomes must agree (the same
results, or traps of corresponding kinds: TRAP_CODES), and so must the state: every
exported or imported memory's size and bytes, global's value, table's size (and, after
each round's last call, every table element's function type), and the host-call log.
Call-stack exhaustion on both sides agrees, whatever the depth, and ends the round.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmtime

import ewasm
from ewasm import TrapKind
from ewasm.limits import DEFAULT_LIMITS
from ewasm.types import FUNCREF, VALTYPE_NAMES

# --- generation ---------------------------------------------------------------------------

# Everything the engine does not implement is switched off; what it implements (Wasm 1.0,
# sign extension, multi-value, mutable globals, non-trapping float-to-int, bulk memory) is
# left on. No float types or instructions at all (the engine decodes and validates floats
# but does not compile them). `--ensure-termination` puts a fuel global in every function
# prologue and loop header (the module traps with `unreachable` when it runs out), so
# every run ends; every memory has a maximum of at most 4 pages so that `memory.grow`
# means the same on both engines (wasmtime's cap is 4 GiB, this engine's 64 MiB).
COMMON_FLAGS: tuple[str, ...] = (
    "--allow-floats", "false",
    "--simd-enabled", "false",
    "--relaxed-simd-enabled", "false",
    "--reference-types-enabled", "false",
    "--gc-enabled", "false",
    "--exceptions-enabled", "false",
    "--threads-enabled", "false",
    "--shared-everything-threads-enabled", "false",
    "--memory64-enabled", "false",
    "--tail-call-enabled", "false",
    "--custom-page-sizes-enabled", "false",
    "--wide-arithmetic-enabled", "false",
    "--extended-const-enabled", "false",
    "--custom-descriptors-enabled", "false",
    "--compact-imports-enabled", "false",
    "--bulk-memory-enabled", "true",
    "--multi-value-enabled", "true",
    "--sign-extension-ops-enabled", "true",
    "--saturating-float-to-int-enabled", "true",
    "--max-memories", "1",
    "--max-tables", "1",
    "--max-memory32-bytes", str(4 * 65536),
    "--memory-max-size-required", "true",
    "--export-everything", "true",
    "--allow-start-export", "true",
)


@dataclass(frozen=True)
class Profile:
    """A wasm-smith configuration and the range of seed lengths fed to it."""

    name: str
    flags: tuple[str, ...]
    seed_min: int  # bytes of seed: longer seeds give bigger modules
    seed_max: int
    run: bool = True  # False: only the accept/reject verdicts are compared
    doc: str = ""
    generator: str = "smith"  # or "stress": this module's own shaped modules

    def smith_args(self) -> list[str]:
        return [*COMMON_FLAGS, *self.flags]


FUEL = ("--ensure-termination", "--fuel", "1000", "--max-imports", "0")

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "default",
            (*FUEL, "--min-types", "2", "--min-funcs", "3", "--min-memories", "1",
             "--max-funcs", "40", "--max-instructions", "1500", "--max-globals", "40",
             "--max-types", "40", "--max-type-size", "1000", "--max-table-elements", "2000",
             "--max-elements", "200", "--max-data-segments", "20",
             "--max-element-segments", "20"),
            1_000, 48_000,
            doc="every integer instruction, mixed module shapes; most calls trap",
        ),
        Profile(
            # wasm-smith guards loads, stores, divisions and conversions so that they do
            # not trap, and leaves out `unreachable`: calls run further and return values.
            "safe",
            (*FUEL, "--disallow-traps", "true", "--min-types", "2", "--min-funcs", "3",
             "--min-memories", "1", "--max-funcs", "40", "--max-instructions", "1500",
             "--max-globals", "40", "--max-types", "40", "--max-table-elements", "2000"),
            1_000, 48_000,
            doc="as default, with traps avoided by construction",
        ),
        Profile(
            # Only control instructions and locals: blocks nest hundreds deep and
            # br_tables get hundreds of targets (the label depth bounds them).
            "nested",
            (*FUEL, "--allowed-instructions", "control,variable", "--min-types", "1",
             "--min-funcs", "1", "--max-funcs", "4", "--max-instructions", "12000",
             "--max-types", "8", "--max-table-elements", "64"),
            60_000, 200_000,
            doc="deep block nesting (to ~400) and big br_tables (to ~500 targets)",
        ),
        Profile(
            # Few functions, long bodies, wide multi-value types: many live values, big
            # frames, blocks with many results.
            "wide",
            (*FUEL, "--allowed-instructions", "numeric,variable,parametric,control,memory",
             "--min-types", "1", "--min-funcs", "1", "--min-memories", "1",
             "--max-funcs", "6", "--max-instructions", "6000", "--max-types", "12",
             "--max-type-size", "1000", "--max-globals", "20", "--max-table-elements", "64"),
            40_000, 160_000,
            doc="long bodies, many live values, wide multi-value signatures",
        ),
        Profile(
            # Imported functions (host functions that log their calls and answer from
            # their arguments), memories, globals and tables, built alike for both engines.
            # Over-long LEB128s everywhere (valid, and wasm-smith's way to test decoders).
            "imports",
            ("--ensure-termination", "--fuel", "1000", "--min-imports", "1",
             "--max-imports", "12", "--min-types", "2", "--min-funcs", "3",
             "--max-funcs", "24", "--max-instructions", "1000", "--max-globals", "20",
             "--max-types", "24", "--max-table-elements", "500",
             "--min-uleb-size", "5"),
            1_000, 32_000,
            doc="host function calls and imported memory, globals and table; every "
                "LEB128 over-long (5 bytes), for the decoder",
        ),
        Profile(
            "stress", (), 0, 0, generator="stress",
            doc="shaped modules (see stress_wat): nests up to the engine's 1024 limit, "
                "br_tables up to its 65,520-target limit, hundreds of locals, 48-value "
                "blocks, recursion to exhaustion",
        ),
        Profile(
            # Function bodies may be raw seed bytes: mostly invalid modules, for the
            # decoder's and validator's verdicts against wasmparser's. Never run (no fuel).
            "invalid",
            ("--allow-invalid-funcs", "true", "--max-imports", "0", "--min-types", "1",
             "--min-funcs", "1", "--max-funcs", "8", "--max-instructions", "200",
             "--max-table-elements", "64"),
            500, 8_000,
            run=False,
            doc="invalid function bodies: accept/reject verdicts only",
        ),
    )
}


def tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    raise FileNotFoundError(f"{name} (a test dependency) is not installed")


def seed_bytes(profile: Profile, index: int) -> bytes:
    """The deterministic seed of case (profile, index)."""
    head = hashlib.sha256(f"ewasm-differential/{profile.name}/{index}".encode()).digest()
    span = profile.seed_max - profile.seed_min
    length = profile.seed_min + int.from_bytes(head[:8], "little") % (span + 1)
    return hashlib.shake_256(head).digest(length)


_tools_version: str | None = None


def tools_version() -> str:
    global _tools_version
    if _tools_version is None:
        _tools_version = subprocess.run([tool("wasm-tools"), "--version"], capture_output=True,
                                        text=True, check=True).stdout.strip()
    return _tools_version


def generate(profile: Profile, index: int, cache_dir: Path | None = None) -> bytes | None:
    """The module of case (profile, index), or None when wasm-smith gives up on the seed
    (its exit code 2, which its documentation allows). With cache_dir, modules are kept
    there under a key of the wasm-tools version, the flags and the seed (the two tiers'
    tests share them, maybe from different xdist workers)."""
    if profile.generator == "stress":
        seed_data = f"stress-{STRESS_VERSION}/{index}".encode()
    else:
        seed_data = seed_bytes(profile, index)
    path = None
    if cache_dir is not None:
        key = hashlib.sha256("\0".join([tools_version(), *profile.smith_args()]).encode()
                             + seed_data).hexdigest()[:24]
        path = cache_dir / f"{profile.name}-{index}-{key}"
        if path.with_suffix(".wasm").exists():
            return path.with_suffix(".wasm").read_bytes()
        if path.with_suffix(".none").exists():
            return None
    if profile.generator == "stress":
        wasm = stress_module(index)
        if path is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(wasm)
            os.replace(tmp, path.with_suffix(".wasm"))
        return wasm
    with tempfile.TemporaryDirectory(prefix="ewasm-smith-") as d:
        seed, out = Path(d, "seed"), Path(d, "out.wasm")
        seed.write_bytes(seed_data)
        proc = subprocess.run([tool("wasm-tools"), "smith", *profile.smith_args(), str(seed),
                               "-o", str(out)], capture_output=True, text=True)
        if proc.returncode not in (0, 2):
            raise RuntimeError(f"wasm-tools smith failed on {profile.name}/{index}: "
                               f"{proc.stderr.strip()}")
        wasm = out.read_bytes() if proc.returncode == 0 else None
    if path is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(wasm or b"")
        os.replace(tmp, path.with_suffix(".wasm" if wasm is not None else ".none"))
    return wasm


# The engine's feature set, in wasmparser's names: the exact-feature validator consulted
# when wasmtime (which cannot turn reference types off) accepts what this engine refuses.
ENGINE_FEATURES = "mvp,sign-extension,multi-value,mutable-global,saturating-float-to-int," \
                  "bulk-memory"


def wasmparser_accepts(wasm: bytes) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix="ewasm-smith-") as d:
        p = Path(d, "m.wasm")
        p.write_bytes(wasm)
        proc = subprocess.run([tool("wasm-tools"), "validate", f"--features={ENGINE_FEATURES}",
                               str(p)], capture_output=True, text=True)
        return proc.returncode == 0, proc.stderr.strip()


# --- shaped modules -----------------------------------------------------------------------
# wasm-smith ends function bodies early whatever --max-instructions says (its nesting
# stays under ~400 and its br_tables under ~500 targets), so the "stress" profile is
# generated here, from the same kind of seed: deep block nests with big br_tables, deep
# if/else nests, hundreds of locals in long straight-line code, deep loop nests, long
# call chains through direct and indirect calls, recursion to exhaustion and wide
# multi-value blocks. Every shape terminates by construction.

STRESS_VERSION = "3"  # part of the module cache key: bump when the generator changes
_MASK64 = (1 << 64) - 1


class Rng:
    """splitmix64: the same stream on every Python version."""

    def __init__(self, seed: int) -> None:
        self.state = seed & _MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.next() % n

    def between(self, lo: int, hi: int) -> int:
        return lo + self.below(hi - lo + 1)

    def choice(self, seq: Any) -> Any:
        return seq[self.below(len(seq))]

    def chance(self, p: float) -> bool:
        return self.next() < int(p * (1 << 64))

    def const(self, t: str) -> int:
        """An interesting constant of type t (signed)."""
        bits = 64 if t == "i64" else 32
        pick = self.below(6)
        if pick == 0:
            v = self.between(-4, 8)
        elif pick == 1:
            v = 1 << self.below(bits)
        elif pick == 2:
            v = (1 << self.below(bits)) - 1
        else:
            v = self.next()
        return _wrap(v, t)


_SAFE_BIN = ("add", "sub", "mul", "and", "or", "xor", "shl", "shr_s", "shr_u", "rotl", "rotr")
_CMP = ("eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u")


def _shape_br_table(r: Rng, k: int) -> list[str]:
    """A block nest with one br_table carrying a value out to one of its levels; every
    level's exit applies its own operation, so the result tells which level was left."""
    depth = r.between(20, 1000)
    n = r.between(depth, 16000) if r.chance(0.5) else r.between(1, depth)
    at_limit = r.chance(0.1)
    if at_limit:  # at the engine's limits (ewasm.limits): still accepted
        depth, n = DEFAULT_LIMITS.nesting_depth, DEFAULT_LIMITS.br_table_targets
    # At the limit, labels of one LEB byte keep the body under its size limit, and the
    # default label among them too: a far one makes the optimised tier's instcombine take
    # ~15 s on this body (superlinear in the targets; reported, not a wrong result).
    span = min(depth, 128) if at_limit else depth
    labels = " ".join(str(r.below(span)) for _ in range(n))
    out = [f'(func (export "s{k}_br_table") (param i32 i64) (result i32)']
    out += ["block (result i32)"] * depth
    out += ["local.get 0", f"i32.const {r.const('i32')}", "i32.mul",
            "local.get 0", f"i32.const {r.const('i32')}", "i32.xor",
            f"i32.const {n + r.between(1, 4)}", "i32.rem_u",
            f"br_table {labels} {r.below(span)}"]
    for _ in range(depth):
        out += ["end", f"i32.const {r.const('i32')}",
                f"i32.{r.choice(('add', 'xor', 'mul', 'rotl', 'sub'))}"]
    out.append(")")
    return ["\n".join(out)]


def _cond(r: Rng) -> str:
    pick = r.below(3)
    if pick == 0:
        return f"local.get 0 i32.const {1 << r.below(32)} i32.and"
    if pick == 1:
        return f"local.get 1 i64.const {r.const('i64')} i64.{r.choice(_CMP)}"
    return f"local.get 0 i32.const {r.const('i32')} i32.{r.choice(_CMP)}"


def _leaf64(r: Rng) -> str:
    return r.choice((f"i64.const {r.const('i64')}",
                     f"local.get 1 i64.const {r.const('i64')} i64.add",
                     f"local.get 0 i64.extend_i32_s i64.const {r.const('i64')} i64.mul"))


def _shape_if(r: Rng, k: int) -> list[str]:
    """An if/else nest, each level nesting in its then or its else arm."""
    depth = r.between(20, 1000)
    if r.chance(0.1):
        depth = DEFAULT_LIMITS.nesting_depth
    out = [f'(func (export "s{k}_if") (param i32 i64) (result i64)']
    sides = []
    for _ in range(depth):
        out += [_cond(r), "if (result i64)"]
        side = r.chance(0.5)
        sides.append(side)
        if not side:  # nest in the else arm
            out += [_leaf64(r), "else"]
    out.append(_leaf64(r))
    for side in reversed(sides):
        if side:
            out += ["else", _leaf64(r)]
        out += ["end", f"i64.const {r.const('i64')}", f"i64.{r.choice(('xor', 'add', 'mul'))}"]
    out.append(")")
    return ["\n".join(out)]


class _Locals:
    def __init__(self, r: Rng, n32: int, n64: int) -> None:
        self.r = r
        self.i32 = [0, *range(2, 2 + n32)]
        self.i64 = [1, *range(2 + n32, 2 + n32 + n64)]

    def get(self, t: str) -> str:
        return f"local.get {self.r.choice(self.i32 if t == 'i32' else self.i64)}"


def _expr(r: Rng, loc: _Locals, t: str, depth: int = 0) -> str:
    """A non-trapping expression of type t over the locals, memory and global $g
    (memory accesses are masked into the first 32 KiB of the one-page memory)."""
    other = "i64" if t == "i32" else "i32"
    pick = r.below(12) if depth < 3 else 0
    if pick == 0:
        return loc.get(t)
    if pick == 1:
        return f"{t}.const {r.const(t)}"
    sub = lambda ty=t: _expr(r, loc, ty, depth + 1)  # noqa: E731
    if pick in (2, 3, 4):
        return f"{sub()} {sub()} {t}.{r.choice(_SAFE_BIN)}"
    if pick == 5:
        op = r.choice(("div_u", "rem_u", "rem_s"))
        return f"{sub()} {sub()} {t}.const 1 {t}.or {t}.{op}"
    if pick == 6:
        op = r.choice(("clz", "ctz", "popcnt", "extend8_s", "extend16_s"))
        return f"{sub()} {t}.{op}"
    if pick == 7:
        if t == "i32":
            return r.choice((f"{sub('i64')} i32.wrap_i64", f"{sub()} i32.eqz",
                             f"{sub('i64')} {sub('i64')} i64.{r.choice(_CMP)}"))
        return f"{sub('i32')} i64.extend_i32_{r.choice('su')}"
    if pick == 8:
        return f"{sub()} {sub()} {sub('i32')} select"
    if pick == 9:
        width = {"i32": ("", "8_s", "8_u", "16_s", "16_u"),
                 "i64": ("", "8_s", "8_u", "16_s", "16_u", "32_s", "32_u")}[t]
        return (f"{sub('i32')} i32.const 0x7ff8 i32.and {t}.load{r.choice(width)} "
                f"offset={r.below(64)}")
    if pick == 10:
        g = "global.get $g"
        return g if t == "i64" else f"{g} i32.wrap_i64"
    return f"{sub(other)} {sub(other)} {other}.{r.choice(_SAFE_BIN)} " + (
        f"{other}.const 0 {other}.ne" if t == "i32" else "i64.extend_i32_u")


def _shape_locals(r: Rng, k: int) -> list[str]:
    """Hundreds of locals, long straight-line code over them, stores to memory and the
    global: many live values for the register allocators."""
    n32, n64 = r.between(4, 300), r.between(4, 300)
    loc = _Locals(r, n32, n64)
    out = [f'(func (export "s{k}_locals") (param i32 i64) (result i64)',
           f"(local {' '.join(['i32'] * n32)}) (local {' '.join(['i64'] * n64)})"]
    for _ in range(r.between(50, 400)):
        pick = r.below(10)
        if pick < 7:
            t = r.choice(("i32", "i64"))
            dst = r.choice(loc.i32[1:] if t == "i32" else loc.i64[1:])
            out.append(f"{_expr(r, loc, t)} local.set {dst}")
        elif pick < 9:
            t = r.choice(("i32", "i64"))
            width = r.choice(("", "8", "16") if t == "i32" else ("", "8", "16", "32"))
            out.append(f"{_expr(r, loc, 'i32')} i32.const 0x7ff8 i32.and {_expr(r, loc, t)} "
                       f"{t}.store{width} offset={r.below(64)}")
        else:
            out.append(f"{_expr(r, loc, 'i64')} global.set $g")
    out.append("i64.const 0")
    for i in loc.i64:
        out.append(f"local.get {i} i64.xor")
    for i in loc.i32[:: max(1, len(loc.i32) // 64)]:
        out.append(f"local.get {i} i64.extend_i32_u i64.add")
    out.append(")")
    return ["\n".join(out)]


def _shape_loops(r: Rng, k: int) -> list[str]:
    """A loop nest (counted loops, at most ~20,000 innermost iterations in all) with an
    early exit out of the whole nest."""
    depth = r.between(2, 48)
    counts, total = [], 1
    for _ in range(depth):
        c = r.choice((1, 1, 1, 2, 2, 3, 5)) if total < 4000 else 1
        counts.append(c)
        total *= c
    acc = 2 + depth
    out = [f'(func (export "s{k}_loops") (param i32 i64) (result i64)',
           f"(local {' '.join(['i32'] * depth)} i64)", "local.get 1", f"local.set {acc}",
           "block"]
    for d, c in enumerate(counts):
        out += [f"i32.const {c}", f"local.set {2 + d}", "loop"]
    out += [f"local.get {acc}", f"i64.const {r.const('i64')}", "i64.mul",
            f"local.get {2 + r.below(depth)}", "i64.extend_i32_u", "i64.add",
            "local.get 0", "i64.extend_i32_s", "i64.xor", f"local.set {acc}",
            f"local.get {acc}", f"i64.const {(1 << r.between(4, 14)) - 1}", "i64.and",
            f"i64.const {r.below(16)}", "i64.eq", f"br_if {depth}"]
    for d in reversed(range(depth)):
        out += [f"local.get {2 + d}", "i32.const 1", "i32.sub", f"local.tee {2 + d}",
                "br_if 0", "end"]
    out += ["end", f"local.get {acc})"]
    return ["\n".join(out)]


def _shape_calls(r: Rng, k: int) -> list[str]:
    """A chain of functions calling the next directly or through the table (now and then
    at an index computed from the argument: null, out of range or of another type), and
    a recursion that goes only ~1000 deep unless the argument is >= 2^30, when it runs
    the call-depth budget out on both engines."""
    n = r.between(10, 60)
    fields = [f"(type $s{k}t (func (param i32 i64) (result i64)))",
              f"(type $s{k}u (func (param i32 i64) (result i32)))"]
    for j in range(n):
        body = []
        if j == n - 1:
            body.append(f"local.get 1 i64.const {r.const('i64')} i64.add")
        else:
            body += [f"local.get 0 i32.const {r.const('i32')} i32.add",
                     f"local.get 1 i64.const {r.const('i64')} i64.xor"]
            if r.chance(0.6):
                body.append(f"call $s{k}c{j + 1}")
            else:
                index = f"i32.const {j + 1}"
                if r.chance(0.15):
                    index = f"local.get 0 i32.const {r.below(8)} i32.and {index} i32.add"
                body.append(f"{index} call_indirect (type $s{k}t)")
            body.append(f"i64.const {r.const('i64')} i64.{r.choice(('add', 'mul', 'xor'))}")
        export = f' (export "s{k}_calls")' if j == 0 else ""
        fields.append(f"(func $s{k}c{j}{export} (type $s{k}t) {' '.join(body)})")
    fields.append(f"(func $s{k}odd (type $s{k}u) local.get 0)")
    # Table: the chain, then one function of another type, then nulls.
    elems = " ".join(f"$s{k}c{j}" for j in range(n))
    fields.append(f"(table {n + 1 + r.below(4)} funcref)")
    fields.append(f"(elem (i32.const 0) func {elems} $s{k}odd)")
    fields.append(
        f"(func $s{k}rec (param i32 i64) (result i64)"
        f" local.get 0 i32.eqz if (result i64) local.get 1 else"
        f" local.get 0 i32.const 1 i32.sub local.get 1 i64.const 3 i64.mul i64.const 1 i64.add"
        f" call $s{k}rec i64.const 1 i64.add end)")
    fields.append(
        f'(func (export "s{k}_rec") (param i32 i64) (result i64)'
        f" local.get 0 local.get 0 i32.const 1023 i32.and"
        f" local.get 0 i32.const 0x40000000 i32.ge_u select local.get 1 call $s{k}rec)")
    return fields


def _shape_multi(r: Rng, k: int) -> list[str]:
    """Blocks, calls and branches carrying up to 48 values of mixed types."""
    m = r.between(2, 48)
    ts = [r.choice(("i32", "i64")) for _ in range(m)]
    sig = f"(param {' '.join(ts)}) (result {' '.join(ts)})"
    fields = [f"(type $s{k}mv (func {sig}))"]
    # The helper returns its parameters permuted within each type, each changed.
    by_type = {t: [i for i, u in enumerate(ts) if u == t] for t in ("i32", "i64")}
    perm = {t: sorted(v, key=lambda _: r.next()) for t, v in by_type.items()}
    body = []
    seen = {"i32": 0, "i64": 0}
    for t in ts:
        src = perm[t][seen[t]]
        seen[t] += 1
        body.append(f"local.get {src} {t}.const {r.const(t)} {t}.{r.choice(_SAFE_BIN)}")
    fields.append(f"(func $s{k}h (type $s{k}mv) {' '.join(body)})")
    push = []
    for t in ts:
        src = "local.get 0" if t == "i32" else "local.get 1"
        push.append(f"{src} {t}.const {r.const(t)} {t}.{r.choice(('add', 'xor', 'mul'))}")
    inner = [f"call $s{k}h", f"local.get 0 i32.const {1 << r.below(8)} i32.and br_if 0",
             f"call $s{k}h"]
    fields.append(
        f'(func (export "s{k}_multi") (param i32 i64) (result {" ".join(ts)})'
        f" {' '.join(push)} block (type $s{k}mv) {' '.join(inner)} end"
        f" block (type $s{k}mv) call $s{k}h local.get 1 i64.eqz br_if 0 call $s{k}h end"
        f" call $s{k}h)")
    return fields


SHAPES: dict[str, Callable[[Rng, int], list[str]]] = {
    "br_table": _shape_br_table,
    "if": _shape_if,
    "locals": _shape_locals,
    "loops": _shape_loops,
    "multi": _shape_multi,
    "calls": _shape_calls,  # last: its recursion may end the round
}


def stress_wat(index: int) -> str:
    """The text of stress case `index`: two to four different shapes."""
    seed = int.from_bytes(hashlib.sha256(f"ewasm-stress/{index}".encode()).digest()[:8],
                          "little")
    r = Rng(seed)
    names = list(SHAPES)
    chosen = [n for n in names if r.chance(0.5)] or [r.choice(names)]
    fields = ['(memory (export "mem") 1 1)',
              f'(global $g (export "g") (mut i64) (i64.const {r.const("i64")}))']
    for k, name in enumerate(chosen):
        fields += SHAPES[name](r, k)
    return "(module\n" + "\n".join(fields) + "\n)\n"


def stress_module(index: int) -> bytes:
    with tempfile.TemporaryDirectory(prefix="ewasm-stress-") as d:
        src, out = Path(d, "m.wat"), Path(d, "m.wasm")
        src.write_text(stress_wat(index))
        proc = subprocess.run([tool("wasm-tools"), "parse", str(src), "-o", str(out)],
                              capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"stress/{index} does not assemble: {proc.stderr.strip()}")
        return out.read_bytes()


# --- the engines ----------------------------------------------------------------------------

HAS_TIERS = "tier" in inspect.signature(ewasm.compile).parameters
TIERS = ("baseline", "optimized")  # each compared on every case; "auto" on a sample
TIER_UP_TIMEOUT = 120.0


def compile_engine(wasm: bytes, tier: str) -> ewasm.CompiledModule:
    """ewasm.compile with the tier, once the API has tiers (before that, the default
    compile, which is the optimised code, stands in for every tier)."""
    kwargs: dict[str, Any] = {"tier": tier} if HAS_TIERS else {}
    return ewasm.compile(wasm, cache=False, **kwargs)


_wt_engine: wasmtime.Engine | None = None


def wasmtime_engine() -> wasmtime.Engine:
    """One wasmtime engine per process, with the proposals this engine lacks turned off
    (reference types cannot be: wasmtime's component-model-async needs them)."""
    global _wt_engine
    if _wt_engine is None:
        cfg = wasmtime.Config()
        for flag in ("wasm_simd", "wasm_relaxed_simd", "wasm_threads", "wasm_tail_call",
                     "wasm_gc", "wasm_function_references", "wasm_exceptions",
                     "wasm_memory64", "wasm_multi_memory", "wasm_custom_page_sizes",
                     "wasm_wide_arithmetic", "wasm_stack_switching"):
            setattr(cfg, flag, False)
        cfg.wasm_bulk_memory = True
        cfg.wasm_multi_value = True
        cfg.parallel_compilation = False  # pytest-xdist already uses every core
        _wt_engine = wasmtime.Engine(cfg)
    return _wt_engine


# wasmtime's trap codes and the TrapKinds they correspond to. call_indirect past the end
# of the table is UNDEFINED_ELEMENT here and TABLE_OUT_OF_BOUNDS in wasmtime.
TRAP_CODES: dict[Any, frozenset[TrapKind]] = {
    wasmtime.TrapCode.UNREACHABLE: frozenset({TrapKind.UNREACHABLE}),
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: frozenset({TrapKind.MEMORY_OUT_OF_BOUNDS}),
    wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: frozenset({TrapKind.INTEGER_DIVIDE_BY_ZERO}),
    wasmtime.TrapCode.INTEGER_OVERFLOW: frozenset({TrapKind.INTEGER_OVERFLOW}),
    wasmtime.TrapCode.BAD_CONVERSION_TO_INTEGER:
        frozenset({TrapKind.INVALID_CONVERSION_TO_INTEGER}),
    wasmtime.TrapCode.INDIRECT_CALL_TO_NULL: frozenset({TrapKind.UNINITIALIZED_ELEMENT}),
    wasmtime.TrapCode.BAD_SIGNATURE: frozenset({TrapKind.INDIRECT_CALL_TYPE_MISMATCH}),
    wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS:
        frozenset({TrapKind.TABLE_OUT_OF_BOUNDS, TrapKind.UNDEFINED_ELEMENT}),
    wasmtime.TrapCode.STACK_OVERFLOW: frozenset({TrapKind.CALL_STACK_EXHAUSTED}),
}


@dataclass(frozen=True)
class Outcome:
    """What one step (an instantiation or a call) did: returned values, or trapped."""

    kind: str  # "ok", "trap", "error"
    values: tuple[int, ...] = ()
    traps: frozenset[TrapKind] = frozenset()  # the TrapKinds this outcome stands for
    text: str = ""

    @property
    def exhausted(self) -> bool:
        return self.kind == "trap" and TrapKind.CALL_STACK_EXHAUSTED in self.traps

    def agrees(self, other: Outcome) -> bool:
        if self.kind != other.kind:
            return False
        if self.kind == "ok":
            return self.values == other.values
        if self.kind == "trap":
            return bool(self.traps & other.traps)
        return False  # an error that is no trap is never an agreement

    def __str__(self) -> str:
        if self.kind == "ok":
            return f"returned {list(self.values)}"
        if self.kind == "trap":
            return f"trapped {'/'.join(k.name for k in sorted(self.traps))} ({self.text})"
        return f"raised {self.text}"


def _wasmtime_outcome(fn: Callable[[], Any]) -> tuple[Outcome, Any]:
    try:
        res = fn()
    except wasmtime.Trap as trap:
        code = trap.trap_code
        kinds = TRAP_CODES.get(code, frozenset())
        first = str(trap).splitlines()[0] if str(trap) else repr(code)
        return Outcome("trap", traps=kinds, text=f"wasmtime {code}: {first}"), None
    except wasmtime.WasmtimeError as exc:
        return Outcome("error", text=f"wasmtime error: {str(exc).splitlines()[0]}"), None
    if res is None or isinstance(res, wasmtime.Instance):
        values: tuple[int, ...] = ()
    elif isinstance(res, list | tuple):
        values = tuple(res)
    else:
        values = (res,)
    return Outcome("ok", values), res


def _engine_outcome(fn: Callable[[], Any]) -> tuple[Outcome, Any]:
    try:
        res = fn()
    except ewasm.Trap as trap:
        return Outcome("trap", traps=frozenset({trap.kind}), text=str(trap)), None
    except ewasm.WasmError as exc:
        return Outcome("error", text=f"{type(exc).__name__}: {exc}"), None
    except Exception as exc:  # never a valid answer from the engine
        return Outcome("error", text=f"untyped {type(exc).__name__}: {exc}"), None
    if isinstance(res, ewasm.Instance):
        return Outcome("ok"), res
    return Outcome("ok", tuple(res)), res


# --- imports ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportSpec:
    """One import, as both engines' providers are built from it."""

    key: str  # "import <k> <module>.<name>": its name in the watched state
    kind: str  # "func", "memory", "global", "table"
    params: tuple[str, ...] = ()  # func
    results: tuple[str, ...] = ()
    limits: tuple[int, int | None] = (0, None)  # memory, table
    valtype: str = ""  # global
    mutable: bool = False
    value: int = 0


def import_specs(module: wasmtime.Module) -> list[ImportSpec]:
    specs = []
    for k, imp in enumerate(module.imports):
        t = imp.type
        key = f"import {k} {imp.module}.{imp.name}"
        if isinstance(t, wasmtime.FuncType):
            specs.append(ImportSpec(key, "func", tuple(map(str, t.params)),
                                    tuple(map(str, t.results))))
        elif isinstance(t, wasmtime.MemoryType):
            specs.append(ImportSpec(key, "memory", limits=(t.limits.min, t.limits.max)))
        elif isinstance(t, wasmtime.TableType):
            specs.append(ImportSpec(key, "table", limits=(t.limits.min, t.limits.max)))
        elif isinstance(t, wasmtime.GlobalType):
            vt = str(t.content)
            specs.append(ImportSpec(key, "global", valtype=vt, mutable=t.mutable,
                                    value=_wrap(0x9E3779B97F4A7C15 * (k + 1), vt)))
        else:
            raise AssertionError(f"unexpected import type {t}")
    return specs


def _wrap(x: int, t: str) -> int:
    bits = 64 if t == "i64" else 32
    x &= (1 << bits) - 1
    return x - (1 << bits) if x >> (bits - 1) else x


def host_results(spec: ImportSpec, args: tuple[int, ...]) -> list[int]:
    """What host function `spec` returns for args: a mix of the arguments and its name."""
    h = int.from_bytes(hashlib.sha256(spec.key.encode()).digest()[:8], "little")
    acc = sum((j + 3) * a for j, a in enumerate(args))
    return [_wrap(h * (i + 1) + acc * 0x5851F42D4C957F2D + i, t)
            for i, t in enumerate(spec.results)]


_WT_VALTYPES = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64}
_EW_VALTYPES = {name: code for code, name in VALTYPE_NAMES.items()}


class WasmtimeSide:
    def __init__(self, module: wasmtime.Module, specs: list[ImportSpec] = ()) -> None:
        self.module = module
        self.specs = specs
        self.store: wasmtime.Store | None = None
        self.instance: wasmtime.Instance | None = None
        self.host_calls: list[tuple[str, tuple[int, ...]]] = []

    def _provide(self, spec: ImportSpec) -> Any:
        store = self.store
        if spec.kind == "func":
            ft = wasmtime.FuncType([_WT_VALTYPES[t]() for t in spec.params],
                                   [_WT_VALTYPES[t]() for t in spec.results])

            def fn(*args: int) -> Any:
                self.host_calls.append((spec.key, args))
                res = host_results(spec, args)
                return None if not res else res[0] if len(res) == 1 else res
            return wasmtime.Func(store, ft, fn)
        lo, hi = spec.limits
        if spec.kind == "memory":
            return wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(lo, hi)))
        if spec.kind == "table":
            return wasmtime.Table(store, wasmtime.TableType(wasmtime.ValType.funcref(),
                                                            wasmtime.Limits(lo, hi)), None)
        gt = wasmtime.GlobalType(_WT_VALTYPES[spec.valtype](), spec.mutable)
        return wasmtime.Global(store, gt, spec.value)

    def instantiate(self) -> Outcome:
        self.store = wasmtime.Store(wasmtime_engine())
        provided = [self._provide(spec) for spec in self.specs]
        out, inst = _wasmtime_outcome(
            lambda: wasmtime.Instance(self.store, self.module, provided))
        self.instance = inst
        self.exports = {spec.key: ext for spec, ext in zip(self.specs, provided, strict=True)}
        if inst is not None:
            self.exports.update(inst.exports(self.store))
        return out

    def call(self, name: str, args: tuple[int, ...]) -> Outcome:
        fn = self.exports[name]
        return _wasmtime_outcome(lambda: fn(self.store, *args))[0]

    def state(self, exports: Iterable[tuple[str, str]], tables: bool = False
              ) -> dict[str, Any]:
        st: dict[str, Any] = {}
        for name, kind in exports:
            ext = self.exports[name]
            if kind == "memory":
                st[name] = ("memory", ext.size(self.store),
                            bytes(ext.read(self.store, 0, ext.data_len(self.store))))
            elif kind == "global":
                st[name] = ("global", ext.value(self.store))
            elif kind == "table":
                n = ext.size(self.store)
                st[name] = ("table", n, self._table_view(ext, n) if tables else None)
        st["host calls"] = ("host calls", tuple(self.host_calls))
        return st

    def _table_view(self, table: wasmtime.Table, n: int) -> tuple[Any, ...]:
        view = []
        for i in range(n):
            f = table.get(self.store, i)
            if not isinstance(f, wasmtime.Func):
                view.append(None)
            else:
                ft = f.type(self.store)
                view.append((tuple(map(str, ft.params)), tuple(map(str, ft.results))))
        return tuple(view)


class EngineSide:
    def __init__(self, compiled: ewasm.CompiledModule, specs: list[ImportSpec] = ()) -> None:
        self.compiled = compiled
        self.specs = specs
        self.instance: ewasm.Instance | None = None
        self.host_calls: list[tuple[str, tuple[int, ...]]] = []
        self.positional = False

    def _provide(self, spec: ImportSpec) -> Any:
        if spec.kind == "func":
            ft = ewasm.FuncType(tuple(_EW_VALTYPES[t] for t in spec.params),
                                tuple(_EW_VALTYPES[t] for t in spec.results))

            def fn(*args: int) -> list[int]:
                self.host_calls.append((spec.key, args))
                return host_results(spec, args)
            return ewasm.HostFunc(ft, fn)
        limits = ewasm.Limits(*spec.limits)
        if spec.kind == "memory":
            return ewasm.Memory(ewasm.MemoryType(limits))
        if spec.kind == "table":
            return ewasm.Table(ewasm.TableType(FUNCREF, limits))
        return ewasm.Global(ewasm.GlobalType(_EW_VALTYPES[spec.valtype], spec.mutable),
                            spec.value)

    def instantiate(self) -> Outcome:
        provided = [self._provide(spec) for spec in self.specs]
        imports: dict[str, dict[str, Any]] = {}
        for imp, ext in zip(self.compiled.module.imports, provided, strict=True):
            imports.setdefault(imp.module, {})[imp.name] = ext
        if sum(map(len, imports.values())) == len(provided):
            out, inst = _engine_outcome(lambda: ewasm.instantiate(self.compiled, imports,
                                                                  cache=False))
        else:
            # The same module.name imported twice (valid Wasm, and wasm-smith does it):
            # ewasm.instantiate's name-keyed imports cannot tell them apart, so the
            # externs go in by position, as ewasm.instantiate would pass them on.
            self.positional = True
            out, inst = _engine_outcome(lambda: ewasm.Instance(self.compiled, provided))
        self.instance = inst
        self.exports = {spec.key: ext for spec, ext in zip(self.specs, provided, strict=True)}
        if inst is not None:
            self.exports.update(inst.exports)
        return out

    def call(self, name: str, args: tuple[int, ...]) -> Outcome:
        fn = self.exports[name]
        return _engine_outcome(lambda: fn(*args))[0]

    def state(self, exports: Iterable[tuple[str, str]], tables: bool = False
              ) -> dict[str, Any]:
        st: dict[str, Any] = {}
        for name, kind in exports:
            ext = self.exports[name]
            if kind == "memory":
                st[name] = ("memory", ext.size, ext.read(0, ext.data_size))
            elif kind == "global":
                st[name] = ("global", ext.value)
            elif kind == "table":
                st[name] = ("table", ext.size, native_table_view(ext) if tables else None)
        st["host calls"] = ("host calls", tuple(self.host_calls))
        return st


def native_table_view(table: ewasm.Table) -> tuple[Any, ...]:
    """Each element's function type (None for null) as compiled code sees it: from the
    native elements, not Table.get (whose Python-side record is stale once compiled code
    has run table.init or table.copy; see test_differential.py)."""
    from ewasm.compiler import abi
    from ewasm.runtime import instance as runtime_instance

    by_id = {sid: ft for ft, sid in runtime_instance._sig_ids.items()}
    n = table.size
    elems = (abi.TableElem * max(n, 1)).from_address(table.desc.elems)
    view = []
    for i in range(n):
        sig = elems[i].sig
        if not sig:
            view.append(None)
        else:
            ft = by_id[sig]
            view.append((tuple(VALTYPE_NAMES[t] for t in ft.params),
                         tuple(VALTYPE_NAMES[t] for t in ft.results)))
    return tuple(view)


def _state_diff(want: dict[str, Any], got: dict[str, Any]) -> str | None:
    for name in want:
        w, g = want[name], got.get(name)
        if w == g:
            continue
        if w[0] == "table" and g is not None and w[1] == g[1] and w[2] and g[2]:
            at = next(i for i, (a, b) in enumerate(zip(w[2], g[2], strict=True)) if a != b)
            return f"table {name!r} element {at}: wasmtime {w[2][at]}, ewasm {g[2][at]}"
        if w[0] == "memory" and g is not None:
            if w[1] != g[1]:
                return f"memory {name!r}: wasmtime {w[1]} pages, ewasm {g[1]} pages"
            at = next(i for i, (a, b) in enumerate(zip(w[2], g[2], strict=True)) if a != b)
            return (f"memory {name!r} differs first at byte {at:#x}: wasmtime "
                    f"{w[2][at:at + 8].hex()}, ewasm {g[2][at:at + 8].hex()}")
        return f"{w[0]} {name!r}: wasmtime {w[1:]}, ewasm {g[1:] if g else None}"
    return None


# --- argument rounds ----------------------------------------------------------------------

I32_VALUES = (0, 1, -1, 7, 0x7FFFFFFF, -0x80000000, 65535, 255, 3, 16, -8)
I64_VALUES = (0, 1, -1, 7, 0x7FFFFFFFFFFFFFFF, -0x8000000000000000, 1 << 32, 255, 3, 64,
              -0x100000001)
# Round 0 passes zeros, rounds 1 and 2 fixed values by parameter position. Rounds 0 and 1
# call every export in order on one instance (state carries from call to call); round 2
# calls each on a fresh instance (with fresh fuel: a module that ran out of fuel early in
# a round traps on every later call).
ROUNDS = 3
FRESH_ROUNDS = frozenset({2})


def arguments(round_no: int, params: Iterable[Any]) -> tuple[int, ...]:
    out = []
    for j, t in enumerate(params):
        values = I64_VALUES if str(t) == "i64" else I32_VALUES
        out.append(0 if round_no == 0 else values[(5 * round_no + 3 * j) % len(values)])
    return tuple(out)


# --- one case ---------------------------------------------------------------------------


@dataclass
class Stats:
    generated: int = 0
    smith_gave_up: int = 0
    compared: int = 0  # accepted by both and run
    accepted_unrun: int = 0  # accepted by both, profile without fuel: not run
    rejected_by_both: int = 0
    instantiations: int = 0
    calls: int = 0
    returns: int = 0  # calls that returned on both sides
    traps: int = 0  # steps (instantiations or calls) where both trapped
    exhausted: int = 0  # of which: call-stack exhaustion on both sides
    positional_links: int = 0  # instantiations with duplicate import names (see EngineSide)
    trap_kinds: Counter = field(default_factory=Counter)
    compile_seconds: float = 0.0
    slowest_compile: tuple[float, str] = (0.0, "")

    def add(self, other: Stats) -> None:
        for f in ("generated", "smith_gave_up", "compared", "accepted_unrun",
                  "rejected_by_both", "instantiations", "calls", "returns", "traps",
                  "exhausted", "positional_links", "compile_seconds"):
            setattr(self, f, getattr(self, f) + getattr(other, f))
        self.trap_kinds.update(other.trap_kinds)
        self.slowest_compile = max(self.slowest_compile, other.slowest_compile)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON, and xdist's report serialisation)."""
        d = {f: getattr(self, f) for f in ("generated", "smith_gave_up", "compared",
                                          "accepted_unrun", "rejected_by_both",
                                          "instantiations", "calls", "returns", "traps",
                                          "exhausted", "positional_links")}
        d["trap_kinds"] = dict(self.trap_kinds)
        d["compile_seconds"] = round(self.compile_seconds, 3)
        d["slowest_compile"] = [round(self.slowest_compile[0], 3), self.slowest_compile[1]]
        return d

    def summary(self) -> str:
        kinds = ", ".join(f"{k}={n}" for k, n in sorted(self.trap_kinds.items()))
        return (f"generated={self.generated} (smith gave up on {self.smith_gave_up}) "
                f"compared={self.compared} accepted_unrun={self.accepted_unrun} "
                f"rejected_by_both={self.rejected_by_both} "
                f"instantiations={self.instantiations} calls={self.calls} "
                f"(returned={self.returns}) "
                f"traps={self.traps} (exhausted={self.exhausted}; {kinds}) "
                f"compile={self.compile_seconds:.1f}s slowest={self.slowest_compile[0]:.2f}s "
                f"({self.slowest_compile[1]})")


@dataclass
class Disagreement:
    case: str
    tier: str
    what: str

    def __str__(self) -> str:
        profile, index = self.case.split("/")
        return (f"{self.case} [{self.tier}]: {self.what}\n    reproduce: python -m "
                f"tests.ewasm.smith {profile} {index} --tier {self.tier} --wat")


def _compile_verdicts(wasm: bytes, tier: str) -> tuple[Any, Any, float]:
    try:
        wt: Any = wasmtime.Module(wasmtime_engine(), wasm)
    except wasmtime.WasmtimeError as exc:
        wt = exc
    t0 = time.perf_counter()
    try:
        ew: Any = compile_engine(wasm, tier)
    except Exception as exc:
        ew = exc
    return wt, ew, time.perf_counter() - t0


def run_case(profile: Profile, index: int, tier: str, stats: Stats,
             wasm: bytes | None = None, cache_dir: Path | None = None) -> Disagreement | None:
    """Generate case (profile, index) and compare wasmtime with this engine's tier.

    tier "auto": round 0 runs the baseline code, then the optimised code is awaited and
    the later rounds run it (the tier-up swap between instances)."""
    case = f"{profile.name}/{index}"

    def bad(what: str) -> Disagreement:
        return Disagreement(case, tier, what)

    if wasm is None:
        wasm = generate(profile, index, cache_dir)
    if wasm is None:
        stats.smith_gave_up += 1
        return None
    stats.generated += 1
    wt, ew, seconds = _compile_verdicts(wasm, tier)
    stats.compile_seconds += seconds
    stats.slowest_compile = max(stats.slowest_compile, (seconds, f"{case} {tier}"))

    if isinstance(ew, Exception) and not isinstance(ew, ewasm.WasmError):
        return bad(f"ewasm.compile raised an untyped {type(ew).__name__}: {ew}")
    if isinstance(wt, Exception):
        if isinstance(ew, ewasm.DecodeError | ewasm.ValidationError):
            stats.rejected_by_both += 1
            return None
        verdict = (f"validates it (then {type(ew).__name__}: {ew})"
                   if isinstance(ew, ewasm.WasmError) else "compiles it")
        return bad(f"wasmtime rejects the module ({str(wt).splitlines()[0]}) but ewasm "
                   f"{verdict}")
    if isinstance(ew, ewasm.CompileError):
        msg = str(ew)
        if "float" in msg and profile.name == "invalid":
            # A raw body may well be valid float code: validated, not compiled. Fine.
            stats.accepted_unrun += 1
            return None
        if "float" in msg or "not supported" in msg or "unsupported" in msg:
            return bad(f"generator configuration bug: the engine refuses the module: {msg}")
        return bad(f"ewasm.compile failed: {msg}")
    if isinstance(ew, ewasm.WasmError):
        ok, why = wasmparser_accepts(wasm)
        if not ok and isinstance(ew, ewasm.DecodeError | ewasm.ValidationError):
            # Valid only with a proposal this engine lacks (wasmtime has reference types).
            stats.rejected_by_both += 1
            return None
        return bad(f"ewasm rejects a module wasmtime accepts: {type(ew).__name__}: {ew}")
    if HAS_TIERS:
        got_tier = getattr(ew.tier, "value", ew.tier)
        if got_tier != ("baseline" if tier == "auto" else tier):
            return bad(f"compiled with tier={tier!r}, the CompiledModule is {got_tier!r}")
    if not profile.run:
        stats.accepted_unrun += 1
        return None

    stats.compared += 1
    exports = [(e.name, _extern_kind(e.type)) for e in wt.exports]
    funcs = [(name, e.type) for e, (name, kind) in zip(wt.exports, exports, strict=True)
             if kind == "func"]
    specs = import_specs(wt)
    watched = [(n, k) for n, k in exports if k in ("memory", "global", "table")]
    watched += [(spec.key, spec.kind) for spec in specs if spec.kind != "func"]
    for round_no in range(ROUNDS):
        if round_no == 1 and tier == "auto" and HAS_TIERS:
            if not ew.wait_optimized(TIER_UP_TIMEOUT):
                return bad(f"tier-up to the optimised code failed: {ew.tier_up_error}")
        fresh = round_no in FRESH_ROUNDS
        pair = None
        for k, (name, ftype) in enumerate(funcs):
            if pair is None or fresh:
                pair, d = _instantiate(wt, ew, watched, stats, f"round {round_no}",
                                       tables=round_no == 0 and k == 0)
                if d is not None:
                    return bad(d)
                if pair is None:  # both trapped instantiating: nothing to call
                    break
            a, b = pair
            args = arguments(round_no, ftype.params)
            want, got = a.call(name, args), b.call(name, args)
            where = f"round {round_no}, call {name!r}{args}"
            stats.calls += 1
            if want.exhausted or got.exhausted:
                if want.exhausted and got.exhausted:
                    stats.traps += 1
                    stats.exhausted += 1
                    stats.trap_kinds[TrapKind.CALL_STACK_EXHAUSTED.name] += 1
                    break  # the state after exhaustion may legitimately differ: stop
                return bad(f"{where}: wasmtime {want}, ewasm {got} (one-sided call-stack "
                           f"exhaustion)")
            if not want.agrees(got):
                return bad(f"{where}: wasmtime {want}, ewasm {got}")
            if want.kind == "trap":
                stats.traps += 1
                stats.trap_kinds[min(got.traps).name] += 1
            else:
                stats.returns += 1
            # Table contents are compared after each round's last call (they cost a call
            # into wasmtime per element); memories and globals after every call.
            last = k == len(funcs) - 1
            diff = _state_diff(a.state(watched, last), b.state(watched, last))
            if diff:
                return bad(f"{where} ({want}): state differs after the call: {diff}")
        else:
            if not funcs:
                _, d = _instantiate(wt, ew, watched, stats, f"round {round_no}", True)
                if d is not None:
                    return bad(d)
    return None


def _instantiate(wt: wasmtime.Module, ew: ewasm.CompiledModule, watched: list[tuple[str, str]],
                 stats: Stats, where: str, tables: bool = False
                 ) -> tuple[tuple[WasmtimeSide, EngineSide] | None, str | None]:
    """Instantiate on both sides and compare: ((a, b), None) when both succeeded with the
    same state, (None, None) when both trapped alike, (None, why) on a disagreement."""
    specs = import_specs(wt)
    a, b = WasmtimeSide(wt, specs), EngineSide(ew, specs)
    want, got = a.instantiate(), b.instantiate()
    where = f"{where}, instantiation"
    stats.instantiations += 1
    stats.positional_links += b.positional
    if not want.agrees(got):
        return None, f"{where}: wasmtime {want}, ewasm {got}"
    if want.kind == "trap":
        stats.traps += 1
        stats.trap_kinds[min(got.traps).name] += 1
        if want.exhausted:
            stats.exhausted += 1
        # What the segments wrote before the trap stays in imported memories and tables.
        imported = [(n, k) for n, k in watched if n.startswith("import ")]
        diff = _state_diff(a.state(imported, True), b.state(imported, True))
        return None, f"{where} ({want}): {diff}" if diff else None
    diff = _state_diff(a.state(watched, tables), b.state(watched, tables))
    if diff:
        return None, f"{where}: {diff}"
    return (a, b), None


def _extern_kind(t: Any) -> str:
    if isinstance(t, wasmtime.FuncType):
        return "func"
    if isinstance(t, wasmtime.MemoryType):
        return "memory"
    if isinstance(t, wasmtime.GlobalType):
        return "global"
    if isinstance(t, wasmtime.TableType):
        return "table"
    return type(t).__name__


def run_batch(profile: Profile, indices: Iterable[int], tier: str,
              cache_dir: Path | None = None) -> tuple[Stats, list[Disagreement]]:
    stats = Stats()
    bad: list[Disagreement] = []
    for index in indices:
        try:
            d = run_case(profile, index, tier, stats, cache_dir=cache_dir)
        except Exception as exc:  # a harness crash still names its case
            d = Disagreement(f"{profile.name}/{index}", tier,
                             f"harness error {type(exc).__name__}: {exc}")
        if d is not None:
            bad.append(d)
    return stats, bad


# --- command line -------------------------------------------------------------------------


def summarise(stats_dir: Path) -> str:
    """Totals per tier of a pytest run's smith-stats/*.json (see test_differential.py)."""
    import json

    totals: dict[str, Counter] = {}
    kinds: dict[str, Counter] = {}
    for f in sorted(stats_dir.glob("*.json")):
        rec = json.loads(f.read_text())
        t = totals.setdefault(rec["tier"], Counter())
        for key, value in rec.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and \
                    key not in ("start", "stop"):
                t[key] += value
        t[f"modules[{rec['profile']}]"] += rec["generated"]
        kinds.setdefault(rec["tier"], Counter()).update(rec["trap_kinds"])
    lines = []
    for tier, t in totals.items():
        lines.append(f"{tier}: " + " ".join(f"{k}={round(v, 1)}" for k, v in sorted(t.items())))
        lines.append(f"{tier} traps: " + " ".join(f"{k}={v}" for k, v in
                                                  sorted(kinds[tier].items())))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["summary"]:
        print(summarise(Path(argv[1])))
        return 0
    p = argparse.ArgumentParser(prog="python -m tests.ewasm.smith", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile", choices=sorted(PROFILES))
    p.add_argument("index", help="a case index, or a range START:STOP")
    p.add_argument("--tier", choices=(*TIERS, "auto"), action="append")
    p.add_argument("--wat", action="store_true", help="print the module's text")
    p.add_argument("-o", "--output", help="write the module here")
    p.add_argument("--wasm", help="run this module file instead of generating one")
    ns = p.parse_args(argv)
    profile = PROFILES[ns.profile]
    if ":" in ns.index:
        start, stop = (int(x) for x in ns.index.split(":"))
        indices = range(start, stop)
    else:
        indices = range(int(ns.index), int(ns.index) + 1)
    failed = 0
    for tier in ns.tier or TIERS:
        stats = Stats()
        t0 = time.perf_counter()
        for index in indices:
            wasm = Path(ns.wasm).read_bytes() if ns.wasm else generate(profile, index)
            if wasm is not None and len(indices) == 1:
                if ns.output:
                    Path(ns.output).write_bytes(wasm)
                if ns.wat:
                    print(subprocess.run([tool("wasm-tools"), "print"], input=wasm,
                                         capture_output=True).stdout.decode())
            d = run_case(profile, index, tier, stats, wasm)
            if d is not None:
                failed += 1
                print(d)
        print(f"[{tier}{'' if HAS_TIERS else ' (no tiers in this API yet: default compile)'}]"
              f" {stats.summary()} in {time.perf_counter() - t0:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("EWASM_CACHE_DIR", tempfile.mkdtemp(prefix="ewasm-smith-cache-"))
    sys.exit(main())
