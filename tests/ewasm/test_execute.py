"""ewasm.execute's checks of what its caller hands it."""

from __future__ import annotations

import pytest

import ewasm
from evmc_bridge import CallKind, Message, Revision, StatusCode
from evmc_bridge.mocked_host import MockedHost

TRIVIAL = "(module (memory 1) (export \"memory\" (memory 0)) (func (export \"main\")))"


@pytest.mark.parametrize("gas", [2**63, 2**64 - 1, 2**64 + 1000, -1])
def test_gas_outside_int64_is_refused_not_wrapped(wat, gas):
    # c_int64 would mask 2**64 + 1000 to 1000 gas: refused as a host error instead.
    msg = Message(kind=CallKind.CALL, gas=gas)
    result = ewasm.execute(MockedHost(), Revision.BYZANTIUM, msg, wat(TRIVIAL))
    assert result.status == StatusCode.INTERNAL_ERROR
    assert "int64" in result.message or "negative" in result.message


def test_gas_at_the_int64_limit_runs(wat):
    msg = Message(kind=CallKind.CALL, gas=2**63 - 1)
    result = ewasm.execute(MockedHost(), Revision.BYZANTIUM, msg, wat(TRIVIAL))
    assert result.status == StatusCode.SUCCESS and result.gas_left == 2**63 - 1
