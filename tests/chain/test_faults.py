"""Faults under load: `ewasm node` killed with SIGKILL while four clients send token
transfers loses no acknowledged transaction (every receipt a client saw is there after a
restart, and the token's balances add up to what was mined); the node's memory after
10,000 transactions against after 1,000 (nightly: it must not grow without bound)."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from eth_account import Account

from chain.wrap import wrap_deploy

from .conftest import balance_data, sign, transfer_data
from .node import Node

FEE = dict(maxFeePerGas=10**10, maxPriorityFeePerGas=10**9, type=2)


def node_keys(node: Node, count: int) -> list[bytes]:
    return [bytes.fromhex(line.split("key 0x")[1].split()[0])
            for line in node.banner if "key 0x" in line][:count]


def deploy_token(node: Node, owner: bytes, token_wasm: bytes, holders: list[bytes]) -> str:
    def send(nonce: int, **fields) -> dict:
        raw = sign(owner, nonce=nonce, value=0, **FEE, **fields)
        h = node.rpc("eth_sendRawTransaction", "0x" + raw.hex())["result"]
        return node.rpc("eth_getTransactionReceipt", h)["result"]

    token = send(0, gas=2_000_000, data=wrap_deploy(token_wasm))["contractAddress"]
    for i, key in enumerate(holders):
        who = bytes.fromhex(Account.from_key(key).address[2:])
        assert send(1 + i, gas=200_000, to=bytes.fromhex(token[2:]),
                    data=transfer_data(who, 10**9))["status"] == "0x1"
    return token


def recipient(i: int) -> bytes:
    return bytes([0xB0 + i]) * 20


def test_sigkill_under_token_load_loses_no_acknowledged_transaction(tmp_path, token_wasm):
    db = tmp_path / "chain.db"
    node = Node(db)
    keys = node_keys(node, 5)
    token = deploy_token(node, keys[0], token_wasm, keys[1:])
    to = bytes.fromhex(token[2:])
    acknowledged: list[tuple[str, dict]] = []
    lock = threading.Lock()
    died = threading.Event()

    def client(i: int) -> None:
        key = keys[1 + i]
        for nonce in range(100_000):
            raw = sign(key, nonce=nonce, gas=200_000, to=to, value=0,
                       data=transfer_data(recipient(i), 1), **FEE)
            try:
                h = node.rpc("eth_sendRawTransaction", "0x" + raw.hex())["result"]
                receipt = node.rpc("eth_getTransactionReceipt", h)["result"]
            except Exception:  # the node is gone: stop
                died.set()
                return
            with lock:
                acknowledged.append((h, receipt))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while len(acknowledged) < 60 and time.monotonic() < deadline:  # under load first
        time.sleep(0.05)
    time.sleep(random.uniform(0, 1.0))
    node.kill()
    for t in threads:
        t.join(timeout=60)
    assert died.is_set() and len(acknowledged) >= 60

    node = Node(db)
    try:
        for h, receipt in acknowledged:
            assert node.rpc("eth_getTransactionReceipt", h)["result"] == receipt
        # Each recipient's tokens are exactly the transfers to it that were mined (some
        # mined ones may not have been acknowledged before the kill: never fewer).
        head = int(node.rpc("eth_blockNumber")["result"], 16)
        mined = [0] * 4
        for number in range(6, head + 1):
            block = node.rpc("eth_getBlockByNumber", hex(number), True)["result"]
            for tx in block["transactions"]:
                mined[int(tx["input"][10 + 64 - 2:10 + 64], 16) - 0xB0] += 1
        acked = [sum(1 for _, r in acknowledged if r["logs"][0]["topics"][2][-2:] ==
                     f"{0xB0 + i:02x}") for i in range(4)]
        for i in range(4):
            out = node.rpc("eth_call", {"to": token, "data": "0x" + balance_data(
                recipient(i)).hex()}, "latest")["result"]
            assert int(out, 16) == mined[i] >= acked[i]
        # The chain goes on.
        sender = Account.from_key(keys[1]).address
        nonce = int(node.rpc("eth_getTransactionCount", sender, "latest")["result"], 16)
        raw = sign(keys[1], nonce=nonce, gas=200_000, to=to, value=0,
                   data=transfer_data(recipient(0), 1), **FEE)
        h = node.rpc("eth_sendRawTransaction", "0x" + raw.hex())["result"]
        assert node.rpc("eth_getTransactionReceipt", h)["result"]["status"] == "0x1"
    finally:
        assert node.stop() == 0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def memory_after(tmp_path: Path, token_wasm: bytes, counts: tuple[int, ...]) -> list[int]:
    """The node's RSS (KiB) after each of `counts` token transfers (cumulative)."""
    node = Node(tmp_path / "chain.db")
    try:
        keys = node_keys(node, 5)
        to = bytes.fromhex(deploy_token(node, keys[0], token_wasm, keys[1:])[2:])
        out, sent = [], 0
        nonces = [0] * 4
        lock = threading.Lock()
        for target in counts:
            def client(i: int, n: int) -> None:
                for _ in range(n):
                    with lock:
                        nonce = nonces[i]
                        nonces[i] += 1
                    raw = sign(keys[1 + i], nonce=nonce, gas=200_000, to=to, value=0,
                               data=transfer_data(recipient(i), 1), **FEE)
                    h = node.rpc("eth_sendRawTransaction", "0x" + raw.hex())["result"]
                    assert node.rpc("eth_getTransactionReceipt", h)["result"]["status"] == "0x1"

            per = (target - sent) // 4
            threads = [threading.Thread(target=client, args=(i, per)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            sent += 4 * per
            out.append(rss_kib(node.proc.pid))
        return out
    finally:
        assert node.stop() == 0


@pytest.mark.nightly
def test_node_memory_after_10000_transactions_is_bounded(tmp_path, token_wasm):
    after_1k, after_10k = memory_after(tmp_path, token_wasm, (1_000, 10_000))
    print(f"node RSS: {after_1k // 1024} MiB after 1,000 transactions, "
          f"{after_10k // 1024} MiB after 10,000")
    # The caches are bounded (recent receipts, trie nodes, decoded nodes, accounts):
    # 9,000 more transactions may fill them, never grow the node by more than that.
    assert after_10k - after_1k < 128 * 1024
