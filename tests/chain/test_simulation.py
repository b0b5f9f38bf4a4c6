"""Simulations (eth_call, eth_estimateGas): capped at the gas cap (the block gas limit by
default, geth's --rpc.gascap), stopped at the wall-clock limit (geth's --rpc.evmtimeout,
5 s by default) with a JSON-RPC error, and run on a read view: the chain mines and
answers other reads while one runs."""

from __future__ import annotations

import json
import threading

import pytest

import ewasm
from chain.chain import CALL_TIMEOUT, Chain, ChainConfig, ChainError, SimulationTimeout
from chain.rpc import Rpc
from chain.wrap import wrap_deploy

from .conftest import sign

# Loops on getBlockNumber, an EEI function of 2 gas: with gas to spare (a chain whose
# limits are 10**13 gas), it runs for hours.
SPIN = """(module (import "ethereum" "getBlockNumber" (func $n (result i64)))
  (memory 1) (export "memory" (memory 0))
  (func (export "main") (loop $l (drop (call $n)) (br $l))))"""

BIG = ChainConfig(gas_limit=10**13)
needs_time_limit = pytest.mark.xfail(not hasattr(ewasm, "time_limit"), strict=True,
                                     reason="the engine's ewasm.time_limit is not there yet")


def deploy(chain: Chain, code: bytes) -> bytes:
    r = chain.transaction(chain.send_transaction(chain.accounts[0].address, gas=1_000_000,
                                                 data=wrap_deploy(code))).receipt
    assert r.status == 1, r.error
    return r.contract_address


def test_the_gas_cap_bounds_calls_and_estimates(tmp_path, wat):
    with Chain(tmp_path / "c.db", gas_cap=200_000) as chain:
        assert chain.gas_cap == 200_000
        spin = deploy(chain, wat(SPIN))
        with pytest.raises(ChainError, match="out of gas"):
            chain.call(to=spin, gas=10**9)  # asked for more: run with the cap
        with pytest.raises(ChainError, match=r"gas required exceeds allowance \(200000\)"):
            chain.estimate_gas(sender=chain.accounts[0].address, to=spin)
    with Chain(tmp_path / "d.db") as chain:
        assert chain.gas_cap == chain.config.gas_limit and chain.call_timeout == CALL_TIMEOUT


@needs_time_limit
def test_a_simulation_past_the_time_limit_is_an_error(tmp_path, wat):
    with Chain(tmp_path / "c.db", BIG, call_timeout=0.3) as chain:
        spin = deploy(chain, wat(SPIN))
        with pytest.raises(SimulationTimeout, match=r"execution aborted \(timeout = 0.3s\)"):
            chain.call(to=spin)
        with pytest.raises(SimulationTimeout):
            chain.estimate_gas(sender=chain.accounts[0].address, to=spin)
        out = json.loads(Rpc(chain).handle_body(json.dumps({
            "jsonrpc": "2.0", "id": 1, "method": "eth_call",
            "params": [{"to": "0x" + spin.hex()}, "latest"]}).encode()))
        assert out["error"]["code"] == -32000 and "timeout" in out["error"]["message"]
        # The thread is free again: the next call runs normally.
        assert chain.call(to=chain.accounts[1].address) == b""


@needs_time_limit
def test_the_chain_mines_and_reads_while_a_simulation_runs(tmp_path, wat):
    with Chain(tmp_path / "c.db", BIG, call_timeout=3.0) as chain:
        spin = deploy(chain, wat(SPIN))
        started = threading.Event()

        def vm(host, revision, message, code, **options):
            started.set()
            return ewasm.execute(host, revision, message, code, **options)

        errors: list[Exception] = []

        def simulate() -> None:
            try:
                chain.call(to=spin, vm=vm)
            except Exception as exc:  # noqa: BLE001 - the timeout, looked at below
                errors.append(exc)

        sim = threading.Thread(target=simulate)
        sim.start()
        assert started.wait(30)
        alice = chain.accounts[1]
        head = chain.head()
        tx = chain.send_raw_transaction(sign(alice.key, nonce=0, gas=21000, to=b"\x07" * 20,
                                             value=9, gasPrice=10**10))
        assert chain.balance(b"\x07" * 20) == 9 and chain.head() == head + 1
        assert chain.transaction(tx).receipt.status == 1
        mined_while_running = sim.is_alive()
        sim.join(60)
        assert mined_while_running, "the transaction waited for the simulation"
        assert len(errors) == 1 and isinstance(errors[0], SimulationTimeout)


def test_code_sent_to_a_simulation_is_not_kept(tmp_path, wat):
    import importlib

    execute_module = importlib.import_module("ewasm.execute")
    # Creation code seen nowhere else: a constant makes it unique to this test.
    init = wrap_deploy(wat("""(module (import "ethereum" "finish" (func $f (param i32 i32)))
      (memory 1) (export "memory" (memory 0)) (data (i32.const 0) "\\2a\\17\\09\\77")
      (func (export "main") (call $f (i32.const 0) (i32.const 4))))"""))
    with Chain(tmp_path / "c.db") as chain:
        before = set(execute_module._cache)
        alice = chain.accounts[0].address
        for _ in range(2):
            chain.call(sender=alice, data=init)
        added = set(execute_module._cache) - before
        assert not added, "a simulation's code stayed in the process's cache"
        # A real deployment of the same code is prepared and kept as usual.
        r = chain.transaction(chain.send_transaction(alice, gas=1_000_000, data=init)).receipt
        assert r.status == 1, r.error
        assert set(execute_module._cache) - before
