"""The chain end of the metering policy (Hera's): code is metered once, at CREATE.

A contract deployed with metering on is stored metered and each later call runs the
stored code as it is, charged exactly what the same stored bytes cost on a chain that
meters nothing; init code that copies itself out sees itself as it was sent."""

from __future__ import annotations

from pathlib import Path

import pytest

import gasmeter
from chain.chain import Chain
from chain.wrap import wrap_deploy
from ewasm.contract import CONTRACT_FEATURES

from .conftest import transfer_data

SELF_COPY = Path(__file__).resolve().parents[2] / "fixtures" / "evmc" / "self_copy.wat"


def _deploy(chain: Chain, init: bytes) -> tuple[bytes, int]:
    tx_hash = chain.send_transaction(chain.accounts[0].address, data=init)
    receipt = chain.transaction(tx_hash).receipt
    assert receipt.status == 1, receipt.error
    return receipt.contract_address, receipt.gas_used


def _transfer_gas(chain: Chain, token: bytes) -> int:
    alice, bob = chain.accounts[0].address, chain.accounts[1].address
    receipt = chain.transaction(chain.send_transaction(
        alice, to=token, data=transfer_data(bob, 7))).receipt
    assert receipt.status == 1, receipt.error
    return receipt.gas_used


@pytest.fixture
def metered_runtime(token_wasm) -> bytes:
    return gasmeter.inject(token_wasm, features=CONTRACT_FEATURES)


def test_a_deployed_contract_is_metered_once(tmp_path, token_wasm, metered_runtime):
    with Chain(tmp_path / "on.db") as on:
        token, deploy_gas = _deploy(on, wrap_deploy(token_wasm))
        assert on.code(token) == metered_runtime
        gas_on = [_transfer_gas(on, token) for _ in range(2)]
    with Chain(tmp_path / "off.db", metering=False) as off:
        # The same stored bytes on a chain that meters nothing: the same charge per call.
        stored, _ = _deploy(off, wrap_deploy(metered_runtime))
        assert off.code(stored) == metered_runtime
        gas_off = [_transfer_gas(off, stored) for _ in range(2)]
        unmetered, deploy_gas_free = _deploy(off, wrap_deploy(token_wasm))
        gas_free = _transfer_gas(off, unmetered)
    assert gas_on == gas_off
    assert gas_free < gas_on[0]  # metering charges: a second metering would charge more
    # The init code ran metered: beyond the deposit of the longer stored code, it cost gas.
    deposit = 200 * (len(metered_runtime) - len(token_wasm))
    assert deploy_gas - deploy_gas_free > deposit


def test_init_code_copies_itself_as_it_was_sent(tmp_path, wat):
    init = wat(SELF_COPY.read_text())
    with Chain(tmp_path / "c.db") as chain:
        address, _ = _deploy(chain, init)
        assert chain.code(address) == gasmeter.inject(init, features=CONTRACT_FEATURES)
