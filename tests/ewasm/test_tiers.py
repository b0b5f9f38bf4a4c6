"""Compile tiers and compile safety: both tiers agree, tier-up swaps code in, nothing
LLVM does can kill the host, hostile shapes neither crash nor overflow the stack."""

from __future__ import annotations

import collections
import hashlib
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import ewasm
import ewasm.compiled
import gasmeter
from evmc_bridge import Message, Revision, StatusCode
from evmc_bridge.mocked_host import MockedHost
from ewasm.compiled import cache_key
from ewasm.compiler.cache import ObjectCache
from ewasm.compiler.pipeline import BASELINE, OPTIMIZED, Pipeline, Tier
from ewasm.compiler.target import TargetSpec
from ewasm.compiler.workers import WorkerPool, foreground
from tests.ewasm import adversarial

# x86 has no rdrand on the baseline CPU: LLVM's instruction selection reports a fatal
# "Cannot select" and aborts the process it runs in.
ABORTING_IR = """declare {i32, i32} @llvm.x86.rdrand.32()
define i32 @f() {
entry:
  %r = call {i32, i32} @llvm.x86.rdrand.32()
  %v = extractvalue {i32, i32} %r, 0
  ret i32 %v
}
"""
TRIVIAL_IR = "define i32 @g() {\nentry:\n  ret i32 1\n}\n"

needs_x86 = pytest.mark.skipif(TargetSpec.portable().triple.split("-")[0] != "x86_64",
                               reason="the aborting IR uses an x86 intrinsic")


@needs_x86
@pytest.mark.parametrize("pipeline", [BASELINE, OPTIMIZED], ids=lambda p: p.tier.value)
def test_llvm_abort_in_a_worker_is_a_compile_error(pipeline):
    pool = foreground()
    with pytest.raises(ewasm.CompileError, match="SIGABRT"):
        pool.compile([ABORTING_IR], pipeline)
    # The host lives on, and the pool replaces the dead worker.
    assert pool.compile([TRIVIAL_IR], pipeline)[0][:4] == b"\x7fELF"


def test_a_worker_killed_mid_compile_is_a_compile_error(shared):
    wasm = shared("fixtures", "bench", "ewasm-benchmarking", "wasm", "ecpairing.wasm").read_bytes()
    module = ewasm.validate(wasm)
    from ewasm.compiler.driver import compile_module

    pool = WorkerPool(1, TargetSpec.portable())
    outcome: list = []

    def compile_it():
        try:
            outcome.append(compile_module(module, OPTIMIZED, pool=pool))
        except ewasm.CompileError as exc:
            outcome.append(exc)

    t = threading.Thread(target=compile_it)
    t.start()
    deadline = time.monotonic() + 60
    while not pool._busy and time.monotonic() < deadline:
        time.sleep(0.005)
    for w in list(pool._busy):
        os.kill(w.proc.pid, signal.SIGKILL)
    t.join()
    pool.close()
    assert isinstance(outcome[0], ewasm.CompileError), outcome
    assert "SIGKILL" in str(outcome[0])


def _kernel_results(compiled) -> tuple:
    inst = ewasm.instantiate(compiled)
    inst.invoke("fill", 4096, 12345)
    out = (inst.invoke("fib", 20), inst.invoke("sha256", 4096), inst.invoke("keccak256", 4096))
    memory = inst.exports["memory"]
    return out, memory.read(0, memory.data_size)


def test_tiers_agree_on_the_kernels(shared):
    kdir = shared("fixtures", "bench", "kernels")
    wasm = (kdir / "kernels.wasm").read_bytes()
    expected = json.loads((kdir / "expected.json").read_text())
    base = ewasm.compile(wasm, cache=False, tier="baseline")
    opt = ewasm.compile(wasm, cache=False, tier="optimized")
    assert (base.tier, opt.tier) == (Tier.BASELINE, Tier.OPTIMIZED)
    assert base.object_code != opt.object_code
    (b_res, b_mem), (o_res, o_mem) = _kernel_results(base), _kernel_results(opt)
    assert b_res == o_res
    assert b_res[0] == [expected["fib"]["20"]]
    assert b_res[1][0] & 0xFFFFFFFF == expected["sha256"]["4096"]["return_u32"]
    assert b_mem == o_mem


# Contract -> its vector set (shared/fixtures/contracts/SOURCE.md).
VECTOR_SETS = {"identity_rust": "identity", "sha256_rust": "sha256",
               "keccak256_rust": "keccak256", "ecadd_rust": "ecadd",
               "ecpairing_rust": "ecpairing", "sha256_nacl": "sha256",
               "keccak256_rhash": "keccak256", "blake2b_ref": "blake2",
               "ed25519verify_tweetnacl": "ed25519verify"}


def _keccak(data: bytes) -> bytes:
    from Crypto.Hash import keccak

    return keccak.new(digest_bits=256, data=data).digest()


ORACLES = {"identity_rust": bytes, "sha256_rust": lambda d: hashlib.sha256(d).digest(),
           "sha256_nacl": lambda d: hashlib.sha256(d).digest(), "keccak256_rust": _keccak,
           "keccak256_rhash": _keccak}


def _vectors(shared):
    pdir = shared("fixtures", "contracts", "precompiles")
    vectors = json.loads((pdir / "test_vectors.json").read_text())
    cases = []
    for stem, name in VECTOR_SETS.items():
        # The first two of each set (the last two keccak256 vectors are known wrong); an
        # empty expectation is a state-test artefact, not the contract's output.
        for v in [v for v in vectors[name] if v["expected"] != "0x"][:2]:
            cases.append((pdir / f"{stem}.wasm", bytes.fromhex(v["input"][2:]),
                          bytes.fromhex(v["expected"][2:])))
    return cases


def _on_both_tiers(code: bytes, **message) -> list[tuple]:
    """(status, gas left, output) of one execute on each tier, baseline first."""
    out = []
    for tier in ("baseline", "optimized"):
        r = ewasm.execute(MockedHost(), Revision.BYZANTIUM, Message(**message), code, tier=tier)
        out.append((r.status, r.gas_left, r.output))
    return out


def test_tiers_agree_on_the_precompile_contracts(shared):
    cases = _vectors(shared)
    assert len(cases) >= 10
    for path, data, _expected in cases:  # the vectors' expectations are storage words
        code = gasmeter.MeteringPolicy().meter(path.read_bytes())  # as a chain stores it
        results = _on_both_tiers(code, gas=10**12, input=data)
        assert results[0] == results[1], path.name
        assert results[0][0] == StatusCode.SUCCESS, (path.name, results[0])
        oracle = ORACLES.get(path.stem)
        if oracle is not None:
            assert results[0][2] == oracle(data), path.name


def test_auto_tier_up_swaps_the_code_for_later_instances(wat, tmp_path):
    wasm = wat('(module (func (export "f") (param i32) (result i32) '
               '(i32.mul (local.get 0) (i32.const 3))))')
    cache = ObjectCache(tmp_path)
    compiled = ewasm.compile(wasm, cache=cache)
    assert compiled.tier == Tier.BASELINE
    first = ewasm.instantiate(compiled)
    assert first.invoke("f", 5) == [15]
    ewasm.instantiate(compiled)  # the second instantiation queues the tier-up
    assert compiled.wait_optimized(120), compiled.tier_up_error
    assert compiled.tier == Tier.OPTIMIZED
    later = ewasm.instantiate(compiled)
    assert later.invoke("f", 7) == [21]
    assert first.invoke("f", 6) == [18]  # the running instance keeps its code
    spec = TargetSpec.portable()
    for pipe in (BASELINE, OPTIMIZED):
        assert cache.path(cache_key(wasm, ewasm.Features(), spec, False, pipe)).is_file()
    # A new process (here: a new compile) finds the optimised code in the cache.
    assert ewasm.compile(wasm, cache=cache).tier == Tier.OPTIMIZED


def test_a_failed_tier_up_keeps_the_baseline(wat, monkeypatch):
    def refuse(*args, **kwargs):
        raise ewasm.CompileError("optimiser refused")

    monkeypatch.setattr(ewasm.compiled, "compile_module", refuse)
    compiled = ewasm.compile(wat('(module (func (export "f") (result i32) (i32.const 9)))'),
                             cache=False)
    assert not compiled.wait_optimized(60)
    assert compiled.tier == Tier.BASELINE
    assert compiled.tier_up_error == "optimiser refused"
    assert ewasm.instantiate(compiled).invoke("f") == [9]


def test_cache_key_comes_from_the_pipeline_run():
    wasm, f, spec = b"\0asm\1\0\0\0", ewasm.Features(), TargetSpec.portable()
    keys = {cache_key(wasm, f, spec, False, p) for p in (BASELINE, OPTIMIZED)}
    fewer = Pipeline(Tier.OPTIMIZED, OPTIMIZED.passes[:-1], OPTIMIZED.codegen_opt)
    keys.add(cache_key(wasm, f, spec, False, fewer))
    assert len(keys) == 3


def test_a_metered_artefact_loads_back(shared):
    import gasmeter

    wasm = gasmeter.inject((shared("fixtures", "bench", "kernels", "kernels.wasm")).read_bytes())
    for tier in ("baseline", "optimized"):
        compiled = ewasm.compile(wasm, cache=False, engine_gas=True, tier=tier)
        again = ewasm.CompiledModule.deserialize(compiled.serialize())
        assert (again.engine_gas, again.tier) == (True, compiled.tier)
        runs = []
        for c in (compiled, again):
            inst = ewasm.instantiate(c, gas_limit=10**9)
            runs.append((inst.invoke("fib", 15), inst.gas_used))
        assert runs[0] == runs[1] and runs[0][1] > 0


def test_compile_workers_do_not_import_from_the_current_directory(tmp_path):
    planted = tmp_path / "ewasm"
    planted.mkdir()
    marker = tmp_path / "planted-code-ran"
    (planted / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    script = ("import ewasm; "
              "i = ewasm.instantiate(bytes.fromhex('0061736d01000000010401600000030201000a040102000b'),"
              " cache=False); print('ok')")
    env = dict(os.environ, PYTHONPATH=str(Path(ewasm.__file__).resolve().parent.parent))
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, "
                          f"{env['PYTHONPATH']!r}); {script}"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr
    assert not marker.exists()


ADVERSARIAL_KB = 6


@pytest.mark.parametrize("family", sorted(adversarial.FAMILIES))
def test_adversarial_contracts_run_alike_on_both_tiers(family):
    code = adversarial.sized(family, ADVERSARIAL_KB * 1024)
    assert ewasm.check_contract(ewasm.validate(code)) is None
    code = gasmeter.MeteringPolicy().meter(code)
    results = _on_both_tiers(code, gas=10**8)
    assert results[0] == results[1]
    if family.startswith("recursion"):  # runs out of gas or of call depth, never crashes
        assert results[0][0] in (StatusCode.OUT_OF_GAS, StatusCode.FAILURE), results[0]
    else:
        assert results[0][0] == StatusCode.SUCCESS, results[0]
        assert 0 < results[0][1] <= 10**8


@pytest.mark.parametrize("family", ["recursion_loads", "recursion_divs"])
@pytest.mark.parametrize("tier", ["baseline", "optimized"])
def test_deep_recursion_of_long_functions_traps_instead_of_overflowing(family, tier):
    # Long bodies: the baseline tier's frames are big; the budget must still trip first.
    inst = ewasm.instantiate(adversarial.sized(family, 64 * 1024), cache=False, tier=tier)
    with pytest.raises(ewasm.CallStackExhausted):
        inst.invoke("main")


@pytest.mark.parametrize("family", sorted(f for f in adversarial.FAMILIES
                                          if not f.startswith("recursion")))
def test_adversarial_modules_leave_the_same_memory_on_both_tiers(family):
    wasm = adversarial.sized(family, ADVERSARIAL_KB * 1024)
    memories = []
    for tier in ("baseline", "optimized"):
        inst = ewasm.instantiate(ewasm.compile(wasm, cache=False, tier=tier))
        inst.invoke("main")
        memory = inst.exports["memory"]
        memories.append(memory.read(0, memory.data_size))
    assert memories[0] == memories[1]


# --- split functions (compiler/split.py) ------------------------------------------------
# The baseline tier cuts functions of more than SPLIT_MIN instructions into segments of
# SEGMENT. Tests cut every function into segments of a few instructions, so that every
# construct spans cuts: blocks, loops and ifs entered from other segments, branch values,
# the operand stack across cuts, traps, calls and returns from any segment.
def _cut_every(monkeypatch, tmp_path, n: int) -> None:
    from ewasm.compiler import split

    monkeypatch.setattr(split, "SEGMENT", n)
    monkeypatch.setattr(split, "SPLIT_MIN", 0)
    # Neither the object cache nor the contract cache may hand back uncut code.
    monkeypatch.setenv("EWASM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(importlib.import_module("ewasm.execute"), "_cache",
                        collections.OrderedDict())


@pytest.fixture(params=[1, 3, 16])
def tiny_segments(request, monkeypatch, tmp_path):
    _cut_every(monkeypatch, tmp_path, request.param)
    return request.param


def test_split_kernels_agree_with_the_optimised_tier(shared, tiny_segments):
    kdir = shared("fixtures", "bench", "kernels")
    wasm = (kdir / "kernels.wasm").read_bytes()
    base = ewasm.compile(wasm, cache=False, tier="baseline")
    opt = ewasm.compile(wasm, cache=False, tier="optimized")
    assert _kernel_results(base) == _kernel_results(opt)


@pytest.mark.parametrize("family", sorted(adversarial.FAMILIES))
def test_split_adversarial_contracts_run_alike_on_both_tiers(family, tiny_segments):
    code = gasmeter.MeteringPolicy().meter(adversarial.sized(family, 3 * 1024))
    results = _on_both_tiers(code, gas=10**8)
    assert results[0] == results[1]
    if not family.startswith("recursion"):
        assert results[0][0] == StatusCode.SUCCESS, results[0]


@pytest.mark.parametrize("family", sorted(f for f in adversarial.FAMILIES
                                          if not f.startswith("recursion")))
def test_split_adversarial_modules_leave_the_same_memory(family, tiny_segments):
    wasm = adversarial.sized(family, 3 * 1024)
    memories = []
    for tier in ("baseline", "optimized"):
        inst = ewasm.instantiate(ewasm.compile(wasm, cache=False, tier=tier))
        inst.invoke("main")
        memory = inst.exports["memory"]
        memories.append(memory.read(0, memory.data_size))
    assert memories[0] == memories[1]


def test_split_precompile_contracts_run_alike_on_both_tiers(shared, monkeypatch, tmp_path):
    _cut_every(monkeypatch, tmp_path, 5)
    for path, data, _expected in _vectors(shared)[::2]:
        code = gasmeter.MeteringPolicy().meter(path.read_bytes())
        results = _on_both_tiers(code, gas=10**12, input=data)
        assert results[0] == results[1], path.name
        assert results[0][0] == StatusCode.SUCCESS, (path.name, results[0])


def test_a_huge_function_is_cut_into_segments_over_the_partitions():
    from ewasm.compiler import split
    from ewasm.compiler.lower import lower_baseline, lower_module, partition_plan

    module = ewasm.validate(adversarial.sized("straight_line", 64 * 1024))
    n = split.segment_count(module.codes[0])
    assert split.is_split(module.codes[0]) and n > 8
    plan = partition_plan(module, baseline=True)
    assert len(plan) == 8 and sum(map(len, plan)) == n + 1  # the segments and the driver
    texts = list(lower_baseline(module))
    assert texts == list(lower_baseline(module))  # deterministic
    defined = [t.count("define internal i32 @f0.s") + t.count("define i32 @f0.s") for t in texts]
    assert sum(defined) == n and max(defined) < n
    # The whole function on the optimising tier.
    assert "@f0.s" not in "".join(lower_module(module))
