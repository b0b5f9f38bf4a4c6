"""Differential fuzzing of the compiler: generated modules on wasmtime and on each tier.

tests/ewasm/smith.py has the generator profiles (wasm-smith's flags, and the "stress"
profile's own shaped modules), the comparison and a command line that reruns one case by
its id, e.g.

    python -m tests.ewasm.smith default 123 --tier baseline --wat

Each test runs a batch of consecutive cases of one profile on one tier and fails with
every disagreement in the batch, each naming its case. The default run compares >= 500
run modules per tier (plus validation verdicts on invalid ones); `-m nightly` runs
>= 20,000 per tier on other seeds. Per-batch counts go to the test's user properties and
to `smith-stats/*.json` beside the generated modules under pytest's base temp directory.
"""

from __future__ import annotations

import inspect
import json

import pytest
import wasmtime

import ewasm
from ewasm.types import VALTYPE_NAMES
from tests.ewasm import smith

BATCH = 25
# Modules per profile. "invalid" modules are only validated, the others are run.
DEFAULT_COUNTS = {"default": 150, "safe": 125, "nested": 75, "wide": 50, "imports": 75,
                  "stress": 50, "invalid": 100}
NIGHTLY_COUNTS = {"default": 6000, "safe": 5000, "nested": 3000, "wide": 2000,
                  "imports": 3000, "stress": 1500, "invalid": 3000}
NIGHTLY_BASE = 1_000_000  # nightly cases are other seeds than the default run's
AUTO_COUNTS = {"default": 25, "safe": 25}

# Cases whose disagreement is a known engine bug: {"profile/index": reason}. Each runs as
# its own strict xfail test, and is left out of its batch.
KNOWN: dict[str, str] = {}


def _batches(counts: dict[str, int], base: int = 0):
    for name, n in counts.items():
        for start in range(base, base + n, BATCH):
            yield name, start, min(start + BATCH, base + n)


def _params(counts: dict[str, int], tiers, base: int = 0, marks=()):
    return [pytest.param(tier, name, start, stop, marks=marks,
                         id=f"{tier}-{name}-{start}-{stop}")
            for tier in tiers for name, start, stop in _batches(counts, base)]


@pytest.fixture(scope="session")
def smith_dir(request, tmp_path_factory):
    """Shared by the xdist workers: a module generated for one tier is reused by the other."""
    root = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):
        root = root.parent
    return root


def _run(request, smith_dir, tier: str, name: str, start: int, stop: int) -> smith.Stats:
    profile = smith.PROFILES[name]
    indices = [i for i in range(start, stop) if f"{name}/{i}" not in KNOWN]
    stats, bad = smith.run_batch(profile, indices, tier, smith_dir / "smith-modules")
    record = {"tier": tier, "profile": name, "start": start, "stop": stop,
              "has_tiers": smith.HAS_TIERS, **stats.as_dict()}
    request.node.user_properties.append(("differential", record))
    out = smith_dir / "smith-stats"
    out.mkdir(exist_ok=True)
    (out / f"{tier}-{name}-{start}.json").write_text(json.dumps(record))
    print(f"{tier} {name}[{start}:{stop}]: {stats.summary()}")

    assert not bad, f"{len(bad)} disagreement(s) with wasmtime:\n" + "\n".join(map(str, bad))
    # Nothing may have been skipped unnoticed: every case generated or refused by smith,
    # and each profile's cases do what the profile is for.
    assert stats.generated + stats.smith_gave_up == len(indices)
    assert stats.smith_gave_up <= len(indices) // 5, stats.summary()
    if profile.run:
        assert stats.compared >= stats.generated * 0.9, stats.summary()
        assert stats.calls >= stats.compared, stats.summary()
    else:
        assert stats.rejected_by_both > 0, stats.summary()
    return stats


@pytest.mark.parametrize(("tier", "name", "start", "stop"),
                         _params(DEFAULT_COUNTS, smith.TIERS))
def test_differential(request, smith_dir, tier, name, start, stop):
    _run(request, smith_dir, tier, name, start, stop)


@pytest.mark.parametrize(("tier", "name", "start", "stop"),
                         _params(NIGHTLY_COUNTS, smith.TIERS, NIGHTLY_BASE,
                                 marks=[pytest.mark.nightly, pytest.mark.timeout(3600)]))
def test_differential_nightly(request, smith_dir, tier, name, start, stop):
    _run(request, smith_dir, tier, name, start, stop)


@pytest.mark.parametrize(("tier", "name", "start", "stop"), _params(AUTO_COUNTS, ["auto"]))
def test_differential_auto_tier_up(request, smith_dir, tier, name, start, stop):
    """tier="auto": round 0 on the baseline code, later rounds on the optimised code the
    background compile swapped in."""
    _run(request, smith_dir, tier, name, start, stop)


if KNOWN:
    @pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(strict=True,
                                                                              reason=r))
                                      for c, r in KNOWN.items()])
    @pytest.mark.parametrize("tier", smith.TIERS)
    def test_known_disagreement(smith_dir, case, tier):
        name, index = case.split("/")
        d = smith.run_case(smith.PROFILES[name], int(index), tier, smith.Stats(),
                           cache_dir=smith_dir / "smith-modules")
        assert d is None, str(d)


def test_tiers_are_really_compared():
    """Once ewasm.compile has tiers, both run (no silent fallback to one code): the
    harness checks each CompiledModule's tier, see smith.run_case."""
    params = inspect.signature(ewasm.compile).parameters
    assert smith.HAS_TIERS == ("tier" in params)
    assert smith.TIERS == ("baseline", "optimized")


def test_seeds_are_deterministic():
    p = smith.PROFILES["default"]
    assert smith.seed_bytes(p, 7) == smith.seed_bytes(p, 7)
    assert smith.seed_bytes(p, 7) != smith.seed_bytes(p, 8)
    assert p.seed_min <= len(smith.seed_bytes(p, 7)) <= p.seed_max
    # Pinned: a changed derivation would silently give every case id another module.
    assert smith.seed_bytes(p, 0)[:8].hex() == "05bd1717f875e7df"
    assert len(smith.seed_bytes(p, 0)) == 41913


PROBE = """
(module
  (memory (export "mem") 1 1)
  (global (export "g") (mut i64) (i64.const 5))
  (table (export "t") 3 funcref)
  (elem (i32.const 0) func $div)
  (func (export "f") (param i32 i64) (result i32 i64)
    (i32.store (i32.const 8) (i32.add (local.get 0) (i32.const 1)))
    (global.set 0 (i64.add (global.get 0) (local.get 1)))
    (i32.add (local.get 0) (i32.const 1))
    (global.get 0))
  (func $div (export "div") (param i32) (result i32)
    (i32.div_u (i32.const 1) (local.get 0))))
"""


@pytest.mark.parametrize("tier", smith.TIERS)
def test_harness_agrees_and_can_disagree(wat, monkeypatch, tier):
    """The comparison passes on a correct run and reports a wrong result, a wrong trap, a
    wrong memory byte and a wrong global (the engine side tampered with)."""
    wasm = wat(PROBE)
    profile = smith.PROFILES["default"]
    stats = smith.Stats()
    assert smith.run_case(profile, -1, tier, stats, wasm) is None
    fresh = len(smith.FRESH_ROUNDS)
    assert (stats.compared, stats.instantiations, stats.calls, stats.returns) == (
        1, smith.ROUNDS - fresh + 2 * fresh, 2 * smith.ROUNDS, 2 * smith.ROUNDS - 1)
    assert stats.traps == 1 and stats.trap_kinds == {"INTEGER_DIVIDE_BY_ZERO": 1}

    call, state = smith.EngineSide.call, smith.EngineSide.state

    def wrong_result(self, name, args):
        out = call(self, name, args)
        return smith.Outcome(out.kind, tuple(v + 1 for v in out.values), out.traps, out.text)

    def wrong_trap(self, name, args):
        out = call(self, name, args)
        if out.kind != "trap":
            return out
        return smith.Outcome("trap", traps=frozenset({ewasm.TrapKind.UNREACHABLE}))

    def wrong_state(key):
        def tampered(self, exports, tables=False):
            st = state(self, exports, tables)
            if key == "mem":
                kind, pages, data = st["mem"]
                st["mem"] = (kind, pages, data[:8] + bytes([data[8] ^ 1]) + data[9:])
            elif key == "g":
                st["g"] = ("global", st["g"][1] - 1)
            elif tables:
                kind, size, view = st["t"]
                st["t"] = (kind, size, (None, *view[1:]))
            return st
        return tampered

    for attr, fake, expect in (("call", wrong_result, "returned"),
                               ("call", wrong_trap, "UNREACHABLE"),
                               ("state", wrong_state("mem"), "memory 'mem' differs"),
                               ("state", wrong_state("g"), "global 'g'"),
                               ("state", wrong_state("t"), "table 't' element 0")):
        with monkeypatch.context() as m:
            m.setattr(smith.EngineSide, attr, fake)
            d = smith.run_case(profile, -1, tier, smith.Stats(), wasm)
        assert d is not None and expect in d.what, (attr, d)


def test_rejections_must_agree(wat):
    """A module wasmtime rejects and this engine accepts is a disagreement, and so is
    the converse; both rejecting is counted."""
    stats = smith.Stats()
    invalid = wat("(module (func (result i32) (i64.const 0)))", "--no-check")
    assert smith.run_case(smith.PROFILES["invalid"], -1, smith.TIERS[0], stats,
                          invalid) is None
    assert stats.rejected_by_both == 1

    valid = wat(PROBE)
    with pytest.MonkeyPatch.context() as m:
        def refuse(wasm, tier):
            raise ewasm.ValidationError("refused for the test")
        m.setattr(smith, "compile_engine", refuse)
        d = smith.run_case(smith.PROFILES["default"], -1, smith.TIERS[0], smith.Stats(), valid)
    assert d is not None and "ewasm rejects a module wasmtime accepts" in d.what, d

    real = smith.compile_engine
    with pytest.MonkeyPatch.context() as m:
        m.setattr(smith, "compile_engine", lambda wasm, tier: real(valid, tier))
        d = smith.run_case(smith.PROFILES["default"], -1, smith.TIERS[0], smith.Stats(),
                           invalid)
    assert d is not None and "wasmtime rejects the module" in d.what, d


TABLE_PROBE = """
(module
  (table (export "t") 4 funcref)
  (func $a (result i32) i32.const 1)
  (func $b (param i32) (result i32) local.get 0)
  (elem $e func $a $b)
  (elem (i32.const 0) func $a)
  (func (export "init") (table.init $e (i32.const 2) (i32.const 0) (i32.const 2)))
  (func (export "copy") (table.copy (i32.const 0) (i32.const 2) (i32.const 2))))
"""


def _api_table_view(table: ewasm.Table) -> tuple:
    out = []
    for i in range(table.size):
        f = table.get(i)
        out.append(None if f is None else (
            tuple(VALTYPE_NAMES[t] for t in f.type.params),
            tuple(VALTYPE_NAMES[t] for t in f.type.results)))
    return tuple(out)


@pytest.mark.parametrize("tier", smith.TIERS)
def test_table_contents_after_bulk_table_ops(wat, tier):
    """What compiled code sees in a table after table.init / table.copy matches wasmtime
    (the view the differential harness compares on every smith module)."""
    wasm = wat(TABLE_PROBE)
    a, b = smith.WasmtimeSide(wasmtime.Module(smith.wasmtime_engine(), wasm)), \
        smith.EngineSide(smith.compile_engine(wasm, tier))
    assert a.instantiate().kind == b.instantiate().kind == "ok"
    for name in ("init", "copy"):
        assert a.call(name, ()).agrees(b.call(name, ()))
        want = a.state([("t", "table")], tables=True)["t"]
        assert want == b.state([("t", "table")], tables=True)["t"]
    assert want[2] == (((), ("i32",)), (("i32",), ("i32",))) * 2


@pytest.mark.parametrize("tier", smith.TIERS)
def test_table_get_after_bulk_table_ops(wat, tier):
    """The embedding API's Table.get agrees with wasmtime's table.get after table.init and
    table.copy run in compiled code."""
    wasm = wat(TABLE_PROBE)
    a = smith.WasmtimeSide(wasmtime.Module(smith.wasmtime_engine(), wasm))
    b = smith.EngineSide(smith.compile_engine(wasm, tier))
    a.instantiate(), b.instantiate()
    a.call("init", ()), b.call("init", ())
    want = a.state([("t", "table")], tables=True)["t"][2]
    assert _api_table_view(b.instance.exports["t"]) == want
