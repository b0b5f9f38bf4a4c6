"""End to end: `ewasm node` in a subprocess, driven by unmodified web3.py (deploy the
token, transfer, read, receipts, logs by topic, an out-of-gas transaction), bad input over
HTTP, and a SIGKILL while transactions stream in."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from chain.wrap import wrap_deploy

from .conftest import SUPPLY, TRANSFER_TOPIC, sign
from .node import Node

ERC20_ABI = [
    {"type": "function", "name": "totalSupply", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "transfer", "stateMutability": "nonpayable",
     "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "event", "name": "Transfer", "anonymous": False,
     "inputs": [{"name": "from", "type": "address", "indexed": True},
                {"name": "to", "type": "address", "indexed": True},
                {"name": "value", "type": "uint256", "indexed": False}]},
]
LOOP_WAT = """(module (import "ethereum" "useGas" (func $g (param i64)))
  (memory 1) (export "memory" (memory 0))
  (func (export "main") (loop $l (br $l))))"""


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = Node(tmp_path_factory.mktemp("node") / "chain.db")
    yield n
    assert n.stop() == 0


@pytest.fixture(scope="module")
def w3(node):
    return Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60}))


def test_web3_deploys_transfers_reads_and_finds_logs(node, w3, token_wasm):
    assert w3.is_connected()
    assert w3.eth.chain_id == 1337
    alice, bob, carol = w3.eth.accounts[:3]
    assert node.banner[2].startswith("  (0) 0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266")

    factory = w3.eth.contract(abi=ERC20_ABI, bytecode=wrap_deploy(token_wasm))
    tx = factory.constructor().transact({"from": alice})
    deployed = w3.eth.wait_for_transaction_receipt(tx)
    assert deployed.status == 1 and deployed.contractAddress
    token = w3.eth.contract(address=deployed.contractAddress, abi=ERC20_ABI)
    assert len(w3.eth.get_code(token.address)) > len(token_wasm)  # stored metered

    assert token.functions.totalSupply().call({"from": alice}) == SUPPLY
    # Alice's first transaction mints the supply to her, then moves 1000 to Bob.
    receipt = w3.eth.wait_for_transaction_receipt(
        token.functions.transfer(bob, 1000).transact({"from": alice}))
    assert receipt.status == 1
    assert 21000 < receipt.gasUsed < 200_000
    assert receipt.gasUsed == w3.eth.get_block(receipt.blockNumber).gasUsed
    (event,) = token.events.Transfer().process_receipt(receipt)
    assert (event.args["from"], event.args.to, event.args.value) == (alice, bob, 1000)

    # Alice -> Bob -> Carol; read through eth_call.
    w3.eth.wait_for_transaction_receipt(
        token.functions.transfer(carol, 300).transact({"from": bob}))
    assert token.functions.balanceOf(alice).call() == SUPPLY - 1000
    assert token.functions.balanceOf(bob).call() == 700
    assert token.functions.balanceOf(carol).call() == 300

    # Logs by topic: every Transfer, then only those to Carol.
    all_logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest",
                                "topics": ["0x" + TRANSFER_TOPIC.hex()]})
    assert len(all_logs) == 2
    to_carol = w3.eth.get_logs({"fromBlock": 0, "address": token.address,
                                "topics": ["0x" + TRANSFER_TOPIC.hex(), None,
                                           "0x" + "00" * 12 + carol[2:].lower()]})
    assert len(to_carol) == 1
    assert token.events.Transfer().process_log(to_carol[0]).args.value == 300

    # A transfer above the balance: eth_call reports the revert reason.
    with pytest.raises(ContractLogicError, match="insufficient balance"):
        token.functions.transfer(alice, 10**6).call({"from": carol})


def test_out_of_gas_is_mined_failed_and_charged(node, w3, wat):
    alice = w3.eth.accounts[4]
    factory = w3.eth.contract(abi=[], bytecode=wrap_deploy(wat(LOOP_WAT)))
    address = w3.eth.wait_for_transaction_receipt(
        factory.constructor().transact({"from": alice})).contractAddress
    before = w3.eth.get_balance(alice)
    tx = w3.eth.send_transaction({"from": alice, "to": address, "gas": 150_000})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    assert receipt.status == 0
    assert receipt.gasUsed == 150_000
    assert w3.eth.get_balance(alice) == before - 150_000 * receipt.effectiveGasPrice
    with pytest.raises(Web3RPCError, match="gas required exceeds allowance"):
        w3.eth.estimate_gas({"from": alice, "to": address})


def test_signed_raw_transactions_of_both_types(node, w3):
    account = Account.from_key(node_key(node, 5))
    nonce = w3.eth.get_transaction_count(account.address)
    to = "0x" + "77" * 20
    legacy = account.sign_transaction({"nonce": nonce, "gasPrice": w3.eth.gas_price,
                                       "gas": 21000, "to": to, "value": 5,
                                       "chainId": 1337})
    r1 = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(legacy.raw_transaction))
    fee = w3.eth.get_block("latest").baseFeePerGas * 2 + 10**9
    dynamic = account.sign_transaction({"nonce": nonce + 1, "maxFeePerGas": fee,
                                        "maxPriorityFeePerGas": 10**9, "gas": 21000,
                                        "to": to, "value": 6, "chainId": 1337, "type": 2})
    r2 = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(dynamic.raw_transaction))
    assert (r1.status, r1.type, r2.status, r2.type) == (1, 0, 1, 2)
    assert w3.eth.get_balance(to) == 11
    tx = w3.eth.get_transaction(r2.transactionHash)
    assert tx["from"] == account.address and tx.maxFeePerGas == fee and tx.value == 6
    block = w3.eth.get_block(r2.blockNumber, full_transactions=True)
    assert block.transactions[0].hash == r2.transactionHash
    assert w3.eth.get_block(block.hash).number == r2.blockNumber
    history = w3.eth.fee_history(3, "latest", [50])
    assert len(history.baseFeePerGas) == 4 and len(history.reward) == 3


def node_key(node: Node, index: int) -> str:
    line = node.banner[2 + index]
    return line.split("key ")[1].split()[0]


# --- bad input ----------------------------------------------------------------------------
def _error(response) -> dict:
    assert "error" in response, response
    return response["error"]


def test_bad_requests_get_json_rpc_errors_and_the_node_keeps_serving(node, w3, token_wasm):
    key = node_key(node, 6)
    sender = Account.from_key(key).address
    head = int(node.rpc("eth_blockNumber")["result"], 16)

    assert _error(node.rpc("", raw=b"{not json"))["code"] == -32700
    assert _error(node.rpc("eth_noSuchMethod"))["code"] == -32601
    assert _error(node.rpc("eth_getBalance", 12, "latest"))["code"] == -32602
    assert _error(node.rpc("eth_getBalance", "0xzz", "latest"))["code"] == -32602
    assert _error(node.rpc("eth_getBalance", "1234", "latest"))["code"] == -32602
    assert _error(node.rpc("eth_getBlockByNumber", "0x01", False))["code"] == -32602
    assert _error(node.rpc("eth_getBalance"))["code"] == -32602
    assert _error(node.rpc("", raw=b"[]"))["code"] == -32600
    assert _error(node.rpc("", raw=b'"hello"'))["code"] == -32600
    # A batch answers each member, errors included.
    batch = node.rpc("", raw=json.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 2, "method": "nope"},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_blockNumber", "params": []},
    ]).encode())
    assert [r["id"] for r in batch] == [1, 2, 3]
    assert batch[0]["result"] == "0x539" and batch[1]["error"]["code"] == -32601
    # 10 MB body.
    big = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":["' + b"a" * 10_000_000 \
        + b'"]}'
    assert _error(node.rpc("", raw=big))["code"] == -32600
    # Raw transactions: garbage, a bad signature, nonce too low and too high, no funds,
    # gas above the block limit.
    assert "transaction" in _error(node.rpc("eth_sendRawTransaction", "0x02c0"))["message"]
    nonce = int(node.rpc("eth_getTransactionCount", sender, "latest")["result"], 16)
    good = dict(nonce=nonce, gas=21000, to=bytes(20), value=1, maxFeePerGas=10**11,
                maxPriorityFeePerGas=10**9, type=2)
    raw = bytearray(sign(bytes.fromhex(key[2:]), **good))
    raw[-5] ^= 0xFF  # inside s: another (or no) signer
    # Either no signer can be recovered, or a stranger without funds signed it.
    message = _error(node.rpc("eth_sendRawTransaction", "0x" + raw.hex()))["message"]
    assert "signature" in message or "insufficient funds" in message
    for change, message in [({"nonce": nonce + 3}, "nonce too high"),
                            ({"value": 10**30}, "insufficient funds"),
                            ({"gas": 40_000_000}, "exceeds block gas limit")]:
        raw = sign(bytes.fromhex(key[2:]), **(good | change))
        assert message in _error(node.rpc("eth_sendRawTransaction", "0x" + raw.hex()))["message"]
    ok = sign(bytes.fromhex(key[2:]), **good)
    assert node.rpc("eth_sendRawTransaction", "0x" + ok.hex())["result"]
    low = sign(bytes.fromhex(key[2:]), **(good | {"value": 2}))
    assert "nonce too low" in _error(node.rpc("eth_sendRawTransaction", "0x" + low.hex()))[
        "message"]
    # Invalid Wasm in a deploy: refused by eth_sendTransaction's estimate; mined as a
    # failed receipt when sent with a gas limit.
    bad = "0x0061736d01000000" + "01ff"
    assert "validation" in _error(node.rpc("eth_sendTransaction",
                                           {"from": sender, "data": bad}))["message"]
    tx = node.rpc("eth_sendTransaction", {"from": sender, "data": bad, "gas": "0x30d40"})
    receipt = node.rpc("eth_getTransactionReceipt", tx["result"])["result"]
    assert receipt["status"] == "0x0" and receipt["contractAddress"] is None
    # Still serving, and exactly the two valid transactions were mined.
    assert int(node.rpc("eth_blockNumber")["result"], 16) == head + 2
    assert w3.eth.get_balance(sender) > 0


# --- crash --------------------------------------------------------------------------------
def test_sigkill_while_transactions_stream_in_loses_nothing_acknowledged(tmp_path):
    db = tmp_path / "chain.db"
    node = Node(db)
    keys = [bytes.fromhex(node_key(node, i)[2:]) for i in range(4)]
    acknowledged: list[tuple[str, dict]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(i: int) -> None:
        key = keys[i]
        sender = Account.from_key(key).address
        nonce = int(node.rpc("eth_getTransactionCount", sender, "latest")["result"], 16)
        while not stop.is_set():
            raw = sign(key, nonce=nonce, gas=21000, to=bytes([0x90 + i]) * 20,
                       value=1000 + nonce, maxFeePerGas=10**10, maxPriorityFeePerGas=10**9,
                       type=2)
            try:
                h = node.rpc("eth_sendRawTransaction", "0x" + raw.hex())["result"]
                receipt = node.rpc("eth_getTransactionReceipt", h)["result"]
            except Exception:
                return  # the node died
            with lock:
                acknowledged.append((h, receipt))
            nonce += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(random.uniform(1.5, 3.0))
    node.kill()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert len(acknowledged) > 10

    node = Node(db)
    try:
        head = int(node.rpc("eth_blockNumber")["result"], 16)
        assert head >= len(acknowledged)
        for h, receipt in acknowledged:
            again = node.rpc("eth_getTransactionReceipt", h)["result"]
            assert again == receipt
        # Balances add up: each recipient holds exactly the values sent to it in mined
        # transactions, each sender its genesis balance less value and fees.
        spent: dict[str, int] = {}
        received: dict[str, int] = {}
        for number in range(1, head + 1):
            block = node.rpc("eth_getBlockByNumber", hex(number), True)["result"]
            (tx,) = block["transactions"]
            r = node.rpc("eth_getTransactionReceipt", tx["hash"])["result"]
            assert r["status"] == "0x1"
            cost = int(tx["value"], 16) + int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16)
            spent[tx["from"]] = spent.get(tx["from"], 0) + cost
            received[tx["to"]] = received.get(tx["to"], 0) + int(tx["value"], 16)
        for address, value in received.items():
            assert int(node.rpc("eth_getBalance", address, "latest")["result"], 16) == value
        for address, cost in spent.items():
            balance = int(node.rpc("eth_getBalance", address, "latest")["result"], 16)
            assert balance == 10_000 * 10**18 - cost
        # The chain continues where it stopped.
        sender = Account.from_key(keys[0]).address
        nonce = int(node.rpc("eth_getTransactionCount", sender, "latest")["result"], 16)
        raw = sign(keys[0], nonce=nonce, gas=21000, to=bytes(20), value=1,
                   maxFeePerGas=10**10, maxPriorityFeePerGas=10**9, type=2)
        h = node.rpc("eth_sendRawTransaction", "0x" + raw.hex())["result"]
        assert node.rpc("eth_getTransactionReceipt", h)["result"]["blockNumber"] == hex(head + 1)
    finally:
        assert node.stop() == 0
