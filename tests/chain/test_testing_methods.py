"""The testing methods of Hardhat's and Anvil's nodes, through web3.py against `ewasm node`:
snapshots, mining, time, automine and interval mining, state edits, impersonation, state
queries at older blocks, and the host-side tracers (debug_traceCall, debug_traceTransaction).
"""

from __future__ import annotations

import time

import pytest
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3RPCError

from chain.chain import TRACE_TRANSACTIONS

from .conftest import selector, word
from .node import Node
from .test_deploy import DEPLOYED_TOPIC, FIXTURES

COUNT, INCREMENT, OWNER = (selector(s) for s in ("count()", "increment()", "owner()"))


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = Node(tmp_path_factory.mktemp("testing") / "chain.db")
    yield n
    assert n.stop() == 0


@pytest.fixture(scope="module")
def w3(node):
    return Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60}))


@pytest.fixture(scope="module")
def creation(wat):
    return wat((FIXTURES / "counter.deploy.wat").read_text())


def rpc(w3: Web3, method: str, *params):
    out = w3.provider.make_request(method, list(params))
    if "error" in out:
        raise Web3RPCError(str(out["error"]))
    return out["result"]


def deploy_counter(w3: Web3, creation: bytes, sender: str) -> str:
    tx = w3.eth.send_transaction({"from": sender, "data": "0x" + creation.hex()})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    assert receipt.status == 1
    return receipt.contractAddress


def count(w3: Web3, address: str, block="latest") -> int:
    return int.from_bytes(w3.eth.call({"to": address, "data": "0x" + COUNT.hex()}, block),
                          "big")


def increment(w3: Web3, address: str, sender: str):
    return w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": sender, "to": address, "data": "0x" + INCREMENT.hex()}))


def test_snapshot_and_revert(w3, creation):
    alice, bob = w3.eth.accounts[:2]
    counter = deploy_counter(w3, creation, alice)
    head, balance = w3.eth.block_number, w3.eth.get_balance(alice)
    newcomer = Web3.to_checksum_address("0x" + "4e" * 20)
    sid = rpc(w3, "evm_snapshot")
    r1 = increment(w3, counter, alice)
    increment(w3, counter, bob)
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
        {"from": alice, "to": newcomer, "value": 5}))  # creates an account
    assert count(w3, counter) == 44 and w3.eth.block_number == head + 3
    later = rpc(w3, "evm_snapshot")
    assert rpc(w3, "evm_revert", sid) is True
    assert w3.eth.block_number == head
    assert count(w3, counter) == 42
    assert w3.eth.get_balance(alice) == balance
    assert w3.eth.get_balance(newcomer) == 0
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction_receipt(r1.transactionHash)
    # Reverting ends that snapshot and every later one.
    assert rpc(w3, "evm_revert", sid) is False
    assert rpc(w3, "evm_revert", later) is False
    # The chain goes on from the snapshot's block, with the snapshot's nonces.
    r = increment(w3, counter, alice)
    assert r.blockNumber == head + 1 and count(w3, counter) == 43
    assert w3.eth.get_block(head + 1).stateRoot != w3.eth.get_block(head).stateRoot


def test_mining_blocks_on_request(w3):
    head = w3.eth.block_number
    assert rpc(w3, "evm_mine") == "0x0"
    assert w3.eth.block_number == head + 1
    assert w3.eth.get_block("latest").transactions == []
    rpc(w3, "hardhat_mine", "0x5", "0x10")
    assert w3.eth.block_number == head + 6
    stamps = [w3.eth.get_block(n).timestamp for n in range(head + 2, head + 7)]
    assert [b - a for a, b in zip(stamps, stamps[1:], strict=False)] == [16] * 4
    rpc(w3, "anvil_mine", "0x2")
    assert w3.eth.block_number == head + 8
    # Each block links to the one before and keeps the state root.
    last = w3.eth.get_block(head + 8)
    assert last.parentHash == w3.eth.get_block(head + 7).hash
    assert last.stateRoot == w3.eth.get_block(head).stateRoot
    with pytest.raises(Web3RPCError, match="blocks to mine"):
        rpc(w3, "hardhat_mine", hex(10**9))


def test_time_moves_forward_on_request(w3):
    # Blocks mined faster than one a second run ahead of the clock (timestamps only go
    # up), so the offset is measured against the clock, not the last block.
    now = int(time.time())
    offset = rpc(w3, "evm_increaseTime", 3600)
    assert offset >= 3600
    rpc(w3, "evm_mine")
    assert w3.eth.get_block("latest").timestamp >= now + 3600
    target = w3.eth.get_block("latest").timestamp + 1000
    rpc(w3, "evm_setNextBlockTimestamp", target)
    rpc(w3, "evm_mine")
    assert w3.eth.get_block("latest").timestamp == target
    rpc(w3, "evm_mine")
    assert w3.eth.get_block("latest").timestamp > target  # time goes on from there
    with pytest.raises(Web3RPCError, match="lower than or equal"):
        rpc(w3, "evm_setNextBlockTimestamp", target)
    rpc(w3, "evm_mine", target + 5000)  # evm_mine(timestamp), as Hardhat's
    assert w3.eth.get_block("latest").timestamp == target + 5000


def test_automine_off_pools_transactions_until_a_block_is_mined(w3, creation):
    alice, carol = w3.eth.accounts[0], w3.eth.accounts[2]
    counter = deploy_counter(w3, creation, alice)
    assert rpc(w3, "hardhat_getAutomine") is True
    assert rpc(w3, "evm_setAutomine", False) is True
    try:
        head = w3.eth.block_number
        nonce = w3.eth.get_transaction_count(carol)
        h1 = w3.eth.send_transaction({"from": carol, "to": counter,
                                      "data": "0x" + INCREMENT.hex(), "gas": 200_000})
        h2 = w3.eth.send_transaction({"from": carol, "to": counter,
                                      "data": "0x" + INCREMENT.hex(), "gas": 200_000})
        assert w3.eth.block_number == head
        assert w3.eth.get_transaction(h1).blockNumber is None
        assert w3.eth.get_transaction_count(carol, "pending") == nonce + 2
        assert w3.eth.get_transaction_count(carol) == nonce
        assert count(w3, counter) == 42
        rpc(w3, "evm_mine")
        r1, r2 = (w3.eth.get_transaction_receipt(h) for h in (h1, h2))
        assert r1.blockNumber == r2.blockNumber == head + 1
        assert (r1.transactionIndex, r2.transactionIndex) == (0, 1)
        assert r2.cumulativeGasUsed == r1.gasUsed + r2.gasUsed
        assert w3.eth.get_block(head + 1).gasUsed == r2.cumulativeGasUsed
        assert r2.logs[0].logIndex == 1 and count(w3, counter) == 44
        # Interval mining: a block every 0.2 s mines what waits, without evm_mine.
        assert rpc(w3, "evm_setIntervalMining", 200) is True
        h3 = w3.eth.send_transaction({"from": carol, "to": counter,
                                      "data": "0x" + INCREMENT.hex(), "gas": 200_000})
        receipt = w3.eth.wait_for_transaction_receipt(h3, timeout=30, poll_latency=0.05)
        assert receipt.status == 1 and count(w3, counter) == 45
    finally:
        rpc(w3, "evm_setIntervalMining", 0)
        rpc(w3, "evm_setAutomine", True)
    h = w3.eth.send_transaction({"from": carol, "to": counter, "data": "0x" + INCREMENT.hex()})
    assert w3.eth.get_transaction_receipt(h).status == 1  # mined at once again


@pytest.mark.parametrize("prefix", ["hardhat", "anvil"])
def test_state_edits(w3, creation, wat, prefix):
    alice = w3.eth.accounts[0]
    someone = Web3.to_checksum_address("0x" + ("5a" if prefix == "hardhat" else "5b") * 20)
    assert rpc(w3, f"{prefix}_setBalance", someone, hex(12345)) is True
    assert w3.eth.get_balance(someone) == 12345
    runtime = wat((FIXTURES / "counter.wat").read_text())
    target = Web3.to_checksum_address("0x" + ("c0" if prefix == "hardhat" else "c1") * 20)
    rpc(w3, f"{prefix}_setCode", target, "0x" + runtime.hex())
    assert bytes(w3.eth.get_code(target)) == runtime
    assert count(w3, target) == 0
    rpc(w3, f"{prefix}_setStorageAt", target, "0x1", "0x" + word(7).hex())
    assert count(w3, target) == 7
    assert bytes(w3.eth.get_storage_at(target, 1)) == word(7)
    rpc(w3, f"{prefix}_setNonce", someone, "0x9")
    assert w3.eth.get_transaction_count(someone) == 9
    with pytest.raises(Web3RPCError, match="cannot lower the nonce"):  # as Hardhat
        rpc(w3, f"{prefix}_setNonce", someone, "0x8")
    assert w3.eth.get_transaction_count(someone) == 9
    # Edits are state: the next block's root commits to them.
    root = w3.eth.get_block("latest").stateRoot
    rpc(w3, "evm_mine")
    assert w3.eth.get_block("latest").stateRoot != root
    with pytest.raises(Web3RPCError, match="length"):
        rpc(w3, f"{prefix}_setStorageAt", target, "0x1", "0x07")
    increment(w3, target, alice)  # edited code runs as any other
    assert count(w3, target) == 8


def test_impersonation(w3):
    stranger = Web3.to_checksum_address("0x" + "d0" * 20)
    rpc(w3, "hardhat_setBalance", stranger, hex(10**18))
    with pytest.raises(Web3RPCError, match="unknown account"):
        w3.eth.send_transaction({"from": stranger, "to": stranger, "value": 1})
    assert rpc(w3, "hardhat_impersonateAccount", stranger) is True
    payee = Web3.to_checksum_address("0x" + "d1" * 20)
    h = w3.eth.send_transaction({"from": stranger, "to": payee, "value": 77})
    receipt = w3.eth.wait_for_transaction_receipt(h)
    assert receipt.status == 1 and receipt["from"] == stranger
    assert w3.eth.get_transaction(h)["from"] == stranger
    assert w3.eth.get_balance(payee) == 77
    assert rpc(w3, "anvil_stopImpersonatingAccount", stranger) is True
    with pytest.raises(Web3RPCError, match="unknown account"):
        w3.eth.send_transaction({"from": stranger, "to": stranger, "value": 1})


def test_state_at_older_blocks(w3, creation):
    alice = w3.eth.accounts[0]
    before_deploy = w3.eth.block_number
    counter = deploy_counter(w3, creation, alice)
    deployed = w3.eth.block_number
    increment(w3, counter, alice)
    assert count(w3, counter) == 43
    assert count(w3, counter, deployed) == 42
    assert bytes(w3.eth.get_code(counter, before_deploy)) == b""
    assert bytes(w3.eth.get_code(counter, deployed)) == bytes(w3.eth.get_code(counter))
    assert bytes(w3.eth.get_storage_at(counter, 1, deployed)) == word(42)
    assert w3.eth.get_balance(alice, before_deploy) > w3.eth.get_balance(alice)
    assert w3.eth.estimate_gas({"from": alice, "to": counter,
                                "data": "0x" + INCREMENT.hex()}, deployed) > 21000
    with pytest.raises(Web3RPCError, match="header not found"):
        w3.eth.get_balance(alice, w3.eth.block_number + 10)


def test_debug_trace_call_lists_host_calls_and_profiles(w3, creation):
    alice = w3.eth.accounts[0]
    counter = deploy_counter(w3, creation, alice)
    call = {"from": alice, "to": counter, "data": "0x" + INCREMENT.hex()}
    trace = rpc(w3, "debug_traceCall", call, "latest", {"tracer": "eeiTracer"})
    assert trace["failed"] is False and int(trace["returnValue"], 16) == 43
    names = [c["name"] for c in trace["calls"]]
    assert "get_storage" in names and "set_storage" in names and "emit_log" in names
    store = next(c for c in trace["calls"] if c["name"] == "set_storage")
    assert store["args"]["key"] == "0x" + word(1).hex()
    assert store["args"]["value"] == "0x" + word(43).hex()
    assert store["depth"] == 0 and store["result"] in ("MODIFIED", "ASSIGNED")
    gas = [c["gasBefore"] for c in trace["calls"] if c["gasBefore"] is not None]
    assert gas and gas == sorted(gas, reverse=True)  # gas only goes down
    (frame,) = trace["frames"]
    assert frame["to"] == counter.lower() and frame["status"] == "SUCCESS"
    assert 0 < frame["gasUsed"] < frame["gas"]
    profile = rpc(w3, "debug_traceCall", call, "latest", {"tracer": "profiler"})
    assert profile["hostFunctions"]["set_storage"]["calls"] == 1
    assert profile["contracts"][counter.lower()]["gasUsed"] == frame["gasUsed"]
    with pytest.raises(Web3RPCError, match="unknown tracer"):
        rpc(w3, "debug_traceCall", call, "latest", {"tracer": "prestateTracer"})
    assert count(w3, counter) == 42  # traced calls change nothing


@pytest.mark.xfail(not TRACE_TRANSACTIONS, strict=True,
                   reason="replaying a mined transaction with a tracer needs "
                          "state.transaction.apply_transaction(vm=...)")
def test_debug_trace_transaction_replays_with_the_tracer(w3, creation):
    alice = w3.eth.accounts[0]
    counter = deploy_counter(w3, creation, alice)
    r = increment(w3, counter, alice)
    trace = rpc(w3, "debug_traceTransaction", "0x" + bytes(r.transactionHash).hex())
    assert trace["gas"] == r.gasUsed and trace["failed"] is False
    assert [c["args"]["value"] for c in trace["calls"] if c["name"] == "set_storage"] == \
        ["0x" + word(43).hex()]
    deploy_trace = rpc(w3, "debug_traceTransaction",
                       "0x" + bytes(w3.eth.get_block(w3.eth.block_number - 1)
                                    .transactions[0]).hex(), {"tracer": "eeiTracer"})
    logs = [c for c in deploy_trace["calls"] if c["name"] == "emit_log"]
    assert logs and logs[0]["args"]["topics"][0] == "0x" + DEPLOYED_TOPIC.hex()
