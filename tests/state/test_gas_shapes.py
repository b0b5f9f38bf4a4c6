"""The adversarial gas shapes of bench/bench_gas_time.py (issue 19), at small sizes and
budgets, through apply_transaction: each ends as it must (status, operations made, the
results it saw, its callees real contracts), so that the bench keeps measuring what it
says. No timing here; `-m nightly` runs them at the bench's full sizes."""

from __future__ import annotations

import hashlib

import pytest

from evmc_bridge import StatusCode
from evmc_bridge.constants import MAX_CODE_SIZE_EIP170
from ewasm.contract import EEI_SIGNATURES
from ewasm.limits import DEFAULT_LIMITS
from ewasm.types import I32, I64
from gasmeter import MeteringPolicy
from tests.state import gas_shapes as g

SMALL_BUDGET = 120_000
FULL_BUDGET = 400_000


def params(shape: g.Shape, wat, *, full: bool, budget: int) -> g.Params:
    size = 48 * 1024 if full else None  # create_cold: a few pieces, not the bench's largest
    p = g.Params(budget=budget, wat2wasm=wat, full=full, salt=7, initcode_bytes=size)
    return g.Params(budget=g.budget_for(shape, p), wat2wasm=wat, full=full, salt=7,
                    initcode_bytes=size)


def _cases(nightly: bool) -> list:
    marks = [pytest.mark.nightly, pytest.mark.timeout(1800)] if nightly else []
    return [pytest.param(name, marks=marks + ([pytest.mark.xfail(reason=s.xfail, strict=True)]
                                               if s.xfail else []))
            for name, s in g.SHAPES.items()]


class Recording(MeteringPolicy):
    """The metering policy, keeping the hash of every init code it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.init_codes: list[bytes] = []

    def init_code(self, code: bytes) -> bytes:
        self.init_codes.append(hashlib.sha256(code).digest())
        return super().init_code(code)


def check_shape(name: str, wat, *, full: bool, budget: int) -> None:
    shape = g.SHAPES[name]
    p = params(shape, wat, full=full, budget=budget)
    s = shape.build(p)
    for address, account in s.accounts.items():  # as the chain would store them
        assert len(account.code) <= MAX_CODE_SIZE_EIP170, address.hex()
    loader = Recording()
    r = g.run(s, p.budget, loader=loader)
    assert g.problems(s, r) == []
    # The loop runs until little more than its reserve is left: the budget is spent.
    assert r.gas_used >= p.budget // 3, f"{r.gas_used} of {p.budget}"
    for address, status in s.probes:
        out = g.probe(s, address)
        assert out.status == status, f"probe {address.hex()}: {out.status!r} {out.error}"
    if shape.group == "create":
        n, _ = r.counters()
        assert len(loader.init_codes) == n
        if name == "create_cold":  # every CREATE meets init code it has not seen
            assert len(set(loader.init_codes)) == n


@pytest.mark.parametrize("name", _cases(nightly=False))
def test_shape_at_small_size(name, wat):
    check_shape(name, wat, full=False, budget=SMALL_BUDGET)


@pytest.mark.parametrize("name", _cases(nightly=True))
def test_shape_at_full_size(name, wat):
    check_shape(name, wat, full=True, budget=FULL_BUDGET)


def test_every_eei_function_has_a_shape():
    assert set(g.EEI) == set(EEI_SIGNATURES)  # the shapes' table is the EEI's
    assert g.covered_eei() == set(EEI_SIGNATURES)


def test_shape_signatures_match_the_eei():
    types = {"i32": I32, "i64": I64}
    for name, (params_, result) in g.EEI.items():
        ft = EEI_SIGNATURES[name]
        assert tuple(types[t] for t in params_.split()) == ft.params, name
        assert tuple(types[t] for t in result.split()) == ft.results, name


def test_heavy_callees_fill_eip170(wat):
    """At full size the heavy callees are as big as a stored contract may be."""
    p = g.Params(budget=SMALL_BUDGET, wat2wasm=wat)
    n, code = g.elements_callee(p)
    assert n >= 23_000
    stored = g.stored(code, "elements")
    assert MAX_CODE_SIZE_EIP170 - 200 < len(stored) <= MAX_CODE_SIZE_EIP170
    s = g.shape_call_data_segments(p)
    assert s.notes["segments"] >= 2_600
    assert MAX_CODE_SIZE_EIP170 - 100 < len(s.accounts[g.TARGET].code) <= MAX_CODE_SIZE_EIP170


def test_cold_init_code_is_the_largest_the_chain_accepts():
    largest = g.largest_init_code()
    init, mark = g.cold_init_code(largest, salt=3)
    assert largest - 1024 < len(init) <= largest
    # Within every limit once metered too (what the engine decodes and compiles).
    assert len(MeteringPolicy().init_code(init)) <= DEFAULT_LIMITS.module_size
    # The marker the caller rewrites is the first instruction of main's body.
    assert init[mark - 1] == 0x42 and init[mark + 9] == 0x7F


def test_a_shape_that_fails_its_work_is_reported(wat):
    """problems() sees a callee that no longer does its part (here: every call fails)."""
    s = g.SHAPES["eei_finish"].build(g.Params(budget=SMALL_BUDGET, wat2wasm=wat, full=False))
    s.accounts[g.TARGET] = g.Account(code=g.stored(wat(g.module(
        [], "unreachable")), "trap"))
    r = g.run(s, SMALL_BUDGET)
    assert any("results [1] seen" in p for p in g.problems(s, r))
    assert g.probe(s, g.TARGET).status == StatusCode.FAILURE
