"""The engine's run speed in one table: each workload unmetered and metered on this engine,
and on wasmtime, timed in interleaved rounds of one process (shared by bench_engine.py and
bench_metering.py).

Workloads: the kernels of ../shared/fixtures/bench/kernels (fib(30), sha256 and keccak256
of 1 MiB, fib_naive(30)), ecpairing.wasm's `main`, and each precompile contract of
../shared/fixtures/contracts/precompiles over all of its test vectors (one round runs every
vector once; outputs are checked against the vectors and against wasmtime's).

Metered: `gasmeter.inject` with the engine's inline counter. Unmetered: the module as it
is (the Rust precompiles still charge their own price through `useGas`). Contracts run
through `ewasm.execute` on a MockedHost, and on wasmtime through a Store, an instance and
Python host functions for the four EEI imports they use, both per vector.

Why interleaved: one process's unmetered time can sit in either of two modes (code
placement), so timing all unmetered runs and then all metered ones lands each median on
whichever mode that stretch caught. Rounds that run every configuration once each see the
same conditions; the table gives the median of the per-round times and the min.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import wasmtime

import ewasm
import gasmeter
from evmc_bridge import CallKind, Message, Revision, StatusCode
from evmc_bridge.mocked_host import MockedHost
from ewasm.compiler.cache import ObjectCache

MIB = 1 << 20
U32 = 0xFFFFFFFF
GAS_LIMIT = 1 << 62
CONTRACT_GAS = 1 << 40
PRECOMPILES = ["identity_rust", "sha256_rust", "sha256_nacl", "keccak256_rust",
               "keccak256_rhash", "blake2b_ref", "ecadd_rust", "ecpairing_rust",
               "ed25519verify_tweetnacl"]
_VECTOR_SET = {"identity": "identity", "sha256": "sha256", "keccak256": "keccak256",
               "ecadd": "ecadd", "ecpairing": "ecpairing", "blake2b": "blake2",
               "ed25519verify": "ed25519verify"}


@dataclass
class Workload:
    name: str
    plain: Callable[[], object]
    metered: Callable[[], object]
    wasmtime: Callable[[], object]
    times: dict[str, list[float]] = field(default_factory=lambda: {"plain": [], "metered": [],
                                                                   "wasmtime": []})
    group: str = "kernel"


# Vectors whose recorded output wasmtime (and so this engine) does not give.
VECTOR_NOTES: list[str] = []


class WrongResult(Exception):
    pass


def _check(name: str, got, want) -> None:
    if got != want:
        raise WrongResult(f"{name}: got {got!r}, expected {want!r}")


def kernel_workloads(shared: Path, cache: ObjectCache) -> list[Workload]:
    kdir = shared / "fixtures/bench/kernels"
    expected = json.loads((kdir / "expected.json").read_text())
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)

    def trio(path: Path):
        wasm = path.read_bytes()
        plain = ewasm.instantiate(ewasm.compile(wasm, cache=cache, tier="optimized"))
        metered = ewasm.instantiate(gasmeter.inject(wasm), cache=cache, gas_limit=GAS_LIMIT,
                                    tier="optimized")
        wt = wasmtime.Instance(store, wasmtime.Module(engine, wasm), []).exports(store)
        return plain, metered, wt

    kern, kern_m, wt = trio(kdir / "kernels.wasm")
    naive, naive_m, wt_naive = trio(kdir / "fib_naive.wasm")
    for inst in (kern, kern_m):
        inst.invoke("fill", MIB, 12345)
    wt["fill"](store, MIB, 12345)
    sha = expected["sha256"][str(MIB)]["return_u32"]
    kec = expected["keccak256"][str(MIB)]["return_u32"]
    fib = expected["fib"]["30"]
    cases = [("fib(30)", kern, kern_m, wt, "fib", 30, fib),
             ("sha256 1 MiB", kern, kern_m, wt, "sha256", MIB, sha),
             ("keccak256 1 MiB", kern, kern_m, wt, "keccak256", MIB, kec),
             ("fib_naive(30)", naive, naive_m, wt_naive, "fib", 30, fib)]
    out = []
    for name, a, b, w, fn, arg, want in cases:
        def ours(inst=a, fn=fn, arg=arg, want=want, name=name):
            _check(name, inst.invoke(fn, arg)[0] & U32, want & U32)

        def ours_m(inst=b, fn=fn, arg=arg, want=want, name=name):
            _check(name + " metered", inst.invoke(fn, arg)[0] & U32, want & U32)

        def theirs(w=w, fn=fn, arg=arg, want=want, name=name):
            _check(name + " wasmtime", w[fn](store, arg) & U32, want & U32)

        out.append(Workload(name, ours, ours_m, theirs))
    # ecpairing.wasm: a standalone pairing benchmark (no imports); main returns nothing.
    ec = (shared / "fixtures/bench/ewasm-benchmarking/wasm/ecpairing.wasm").read_bytes()
    ec_plain = ewasm.instantiate(ewasm.compile(ec, cache=cache, tier="optimized"))
    ec_metered = ewasm.instantiate(gasmeter.inject(ec), cache=cache, gas_limit=GAS_LIMIT,
                                   tier="optimized")
    ec_wt = wasmtime.Instance(store, wasmtime.Module(engine, ec), []).exports(store)
    out.append(Workload("ecpairing main", lambda: ec_plain.invoke("main"),
                        lambda: ec_metered.invoke("main"), lambda: ec_wt["main"](store),
                        group="ecpairing"))
    return out


class _Finish(Exception):
    pass


class WasmtimeContract:
    """A contract on wasmtime: the EEI imports the precompile contracts use, in Python."""

    def __init__(self, wasm: bytes) -> None:
        self.engine = wasmtime.Engine()
        self.module = wasmtime.Module(self.engine, wasm)
        self.linker = wasmtime.Linker(self.engine)
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        self.data = b""
        self.output = b""
        self.gas = 0
        self.mem = None

        def size() -> int:
            return len(self.data)

        def copy(dst: int, src: int, n: int) -> None:
            self.mem.write(self.store, self.data[src:src + n], dst)

        def finish(off: int, n: int) -> None:
            self.output = bytes(self.mem.read(self.store, off, off + n))
            raise _Finish

        def use_gas(amount: int) -> None:
            self.gas += amount

        defs = {"getCallDataSize": ([], [i32], size), "callDataCopy": ([i32, i32, i32], [], copy),
                "finish": ([i32, i32], [], finish), "useGas": ([i64], [], use_gas)}
        for imp in self.module.imports:
            params, results, fn = defs[imp.name]
            self.linker.define_func("ethereum", imp.name, wasmtime.FuncType(params, results), fn)

    def call(self, data: bytes) -> bytes:
        self.store = wasmtime.Store(self.engine)
        inst = self.linker.instantiate(self.store, self.module)
        self.mem = inst.exports(self.store)["memory"]
        self.data, self.output = data, b""
        try:
            inst.exports(self.store)["main"](self.store)
        except _Finish:  # wasmtime re-raises a host function's exception
            pass
        return self.output


def _vector_set(name: str) -> str:
    return _VECTOR_SET[name.rsplit("_", 1)[0]]


def _expected(set_name: str, vector: dict) -> bytes:
    """The vector's output. Hash digests are recomputed whole: two keccak256 vectors of the
    file carry wrong digests, and its BLAKE2b ones are cut to 32 bytes, the empty input's
    to nothing (see the fixtures' SOURCE.md)."""
    data = bytes.fromhex(vector["input"][2:])
    if set_name == "keccak256":
        from eth_hash.auto import keccak
        return keccak(data)
    if set_name == "blake2":
        return hashlib.blake2b(data).digest()
    return bytes.fromhex(vector["expected"][2:])


def _as_word(out: bytes, want: bytes) -> bytes:
    """A contract's output as the vectors store it: a 32-byte vector is the output cut or
    zero-padded to 32 bytes; a shorter one is the whole output."""
    if len(want) != 32:
        return out
    return (out + bytes(32))[:32]


def precompile_workloads(shared: Path) -> list[Workload]:
    pdir = shared / "fixtures/contracts/precompiles"
    vectors = json.loads((pdir / "test_vectors.json").read_text())
    address = b"\xb9" * 20
    out = []
    for name in PRECOMPILES:
        code = (pdir / f"{name}.wasm").read_bytes()
        metered_code = gasmeter.inject(code)
        set_name = _vector_set(name)
        inputs = [bytes.fromhex(v["input"][2:]) for v in vectors[set_name]]
        wt = WasmtimeContract(code)
        # wasmtime's outputs are the reference that every timed run is checked against;
        # where they differ from the file's vector, that is reported (an empty expected
        # output in the file means "not recorded").
        reference = [wt.call(data) for data in inputs]
        for data, v, ref in zip(inputs, vectors[set_name], reference, strict=True):
            want = _expected(set_name, v)
            if want and _as_word(ref, want) != want:
                VECTOR_NOTES.append(f"{name}: input of {len(data)} bytes gives "
                                    f"0x{ref.hex()}, the vector says 0x{want.hex()}")
        host = MockedHost()
        messages = [Message(kind=CallKind.CALL, gas=CONTRACT_GAS, recipient=address,
                            sender=b"\x22" * 20, code_address=address, input=data)
                    for data in inputs]

        def ours(code, tag, messages=messages, reference=reference, host=host):
            for msg, ref in zip(messages, reference, strict=True):
                r = ewasm.execute(host, Revision.BYZANTIUM, msg, code, tier="optimized")
                _check(tag, (r.status, r.output), (StatusCode.SUCCESS, ref))

        def theirs(wt=wt, inputs=inputs, reference=reference, name=name):
            for data, ref in zip(inputs, reference, strict=True):
                _check(name + " wasmtime", wt.call(data), ref)

        out.append(Workload(f"{name} ({len(inputs)} vectors)",
                            lambda ours=ours, c=code, n=name: ours(c, n),
                            lambda ours=ours, c=metered_code, n=name: ours(c, n + " metered"),
                            theirs, group="precompile"))
    return out


def measure(workloads: list[Workload], rounds: int) -> None:
    """Every configuration of every workload once per round, after one warm-up each."""
    for w in workloads:
        for kind in ("plain", "metered", "wasmtime"):
            getattr(w, kind)()
    for _ in range(rounds):
        for w in workloads:
            for kind in ("plain", "metered", "wasmtime"):
                fn = getattr(w, kind)
                # The garbage of the run before (wasmtime-py's stores, most) is collected
                # outside the clock: a collection inside a 0.1 ms contract call would
                # count against whichever configuration it fell in.
                gc.collect()
                gc.disable()
                t = time.perf_counter()
                fn()
                w.times[kind].append(time.perf_counter() - t)
                gc.enable()


def rows(workloads: list[Workload]) -> list[dict]:
    out = []
    for w in workloads:
        med = {k: statistics.median(v) for k, v in w.times.items()}
        low = {k: min(v) for k, v in w.times.items()}
        per_round = [m / p for m, p in zip(w.times["metered"], w.times["plain"], strict=True)]
        out.append({
            "workload": w.name, "group": w.group,
            "plain_ms": med["plain"] * 1e3, "metered_ms": med["metered"] * 1e3,
            "wasmtime_ms": med["wasmtime"] * 1e3,
            "vs_wasmtime": med["plain"] / med["wasmtime"],
            "vs_wasmtime_min": low["plain"] / low["wasmtime"],
            "metered_over_plain": med["metered"] / med["plain"],
            "metered_over_plain_min": low["metered"] / low["plain"],
            "metered_over_plain_per_round": statistics.median(per_round),
        })
    return out


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def print_table(table: list[dict]) -> None:
    print(f"{'workload':34} {'plain ms':>9} {'metered':>9} {'wasmtime':>9} "
          f"{'/wasmtime':>9} {'(min)':>6} {'met/plain':>9} {'(min)':>6} {'(rounds)':>8}")
    for r in table:
        print(f"{r['workload']:34} {r['plain_ms']:9.2f} {r['metered_ms']:9.2f} "
              f"{r['wasmtime_ms']:9.2f} {r['vs_wasmtime']:9.3f} {r['vs_wasmtime_min']:6.3f} "
              f"{r['metered_over_plain']:9.3f} {r['metered_over_plain_min']:6.3f} "
              f"{r['metered_over_plain_per_round']:8.3f}")
    kernels = [r for r in table if r["group"] == "kernel"]
    geo = geomean([r["vs_wasmtime"] for r in kernels])
    worst = max(kernels, key=lambda r: r["vs_wasmtime"])
    worst_m = max(kernels, key=lambda r: r["metered_over_plain"])
    ec = next((r for r in table if r["group"] == "ecpairing"), None)
    print(f"kernels / wasmtime: geomean {geo:.3f} (bar <= 1.0), worst {worst['vs_wasmtime']:.3f}"
          f" {worst['workload']} (bar <= 1.3)")
    if ec is not None:
        print(f"ecpairing main / wasmtime: {ec['vs_wasmtime']:.3f} (bar <= 1.0)")
    for note in VECTOR_NOTES:
        print(f"note: {note}")
    print(f"kernels metered / unmetered: worst {worst_m['metered_over_plain']:.3f} "
          f"{worst_m['workload']} (bar <= 1.10)")


def run(shared: Path, rounds: int, precompiles: bool = True) -> list[dict]:
    cache = ObjectCache(tempfile.mkdtemp(prefix="ewasm-bench-"))
    workloads = kernel_workloads(shared, cache)
    if precompiles:
        workloads += precompile_workloads(shared)
    measure(workloads, rounds)
    return rows(workloads)


def main(doc: str | None) -> tuple[object, Path, list[dict]] | int:
    """What both scripts start with: their arguments, then the table, printed. Returns
    (args, shared dir, table), or the exit status when inputs are missing (2) or a result
    is wrong (1)."""
    from harness import parse_args

    parsed = parse_args(doc)
    if parsed is None:
        return 2
    args, shared, _ = parsed
    try:
        table = run(shared, args.repeats)
    except WrongResult as exc:
        print(f"WRONG RESULT: {exc}", file=sys.stderr)
        return 1
    print_table(table)
    return args, shared, table
