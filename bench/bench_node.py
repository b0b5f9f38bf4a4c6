"""Load on the local chain: token transfers from concurrent JSON-RPC clients.

Starts `ewasm node` on a fresh database (a subprocess, free localhost port), deploys the
project's token (fixtures/contracts/token.wat, metered as the node does by default), gives
each client's account tokens, then has N clients send M signed transfers each over HTTP
(eth_sendRawTransaction, then eth_getTransactionReceipt). Checks that every transfer was
mined with status 1 and the token balances add up; prints transactions per second.

    python bench/bench_node.py [--transfers 1000] [--clients 4] [--no-metering]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from eth_account import Account

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chain.wrap import wrap_deploy  # noqa: E402
from tests.chain.conftest import balance_data, sign, transfer_data  # noqa: E402
from tests.chain.node import Node  # noqa: E402


def wat2wasm(path: Path) -> bytes:
    tool = shutil.which("wat2wasm") or str(Path(sys.executable).parent / "wat2wasm")
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "m.wasm"
        subprocess.run([tool, str(path), "-o", str(out)], check=True)
        return out.read_bytes()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transfers", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--no-metering", action="store_true")
    args = ap.parse_args()
    per_client = -(-args.transfers // args.clients)

    with tempfile.TemporaryDirectory() as d:
        extra = ["--no-metering"] if args.no_metering else []
        node = Node(Path(d) / "chain.db", *extra)
        try:
            keys = [bytes.fromhex(line.split("key 0x")[1].split()[0])
                    for line in node.banner if "key 0x" in line]
            owner = keys[0]
            senders = keys[1:1 + args.clients]
            token_code = wat2wasm(ROOT / "fixtures/contracts/token.wat")
            fee = dict(maxFeePerGas=10**10, maxPriorityFeePerGas=10**9, type=2)

            def send(key: bytes, nonce: int, **fields) -> dict:
                raw = sign(key, nonce=nonce, **fee, **fields)
                h = node.rpc("eth_sendRawTransaction", "0x" + raw.hex())
                if "error" in h:
                    raise RuntimeError(h["error"])
                return node.rpc("eth_getTransactionReceipt", h["result"])["result"]

            r = send(owner, 0, gas=2_000_000, data=wrap_deploy(token_code), value=0)
            token = bytes.fromhex(r["contractAddress"][2:])
            for i, key in enumerate(senders):  # fund each client with tokens
                to = Account.from_key(key).address
                r = send(owner, 1 + i, gas=200_000, to=token,
                         data=transfer_data(bytes.fromhex(to[2:]), 10**9))
                assert r["status"] == "0x1", r

            failures: list[str] = []
            mined = [0] * len(senders)

            def client(i: int) -> None:
                key = senders[i]
                for n in range(per_client):
                    to = bytes([0xA0 + i]) * 20
                    try:
                        r = send(key, n, gas=200_000, to=token, data=transfer_data(to, 1))
                    except Exception as exc:  # report, do not hide
                        failures.append(f"client {i} tx {n}: {exc}")
                        return
                    if r is None or r["status"] != "0x1":
                        failures.append(f"client {i} tx {n}: {r}")
                        return
                    mined[i] += 1

            threads = [threading.Thread(target=client, args=(i,)) for i in range(len(senders))]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start
            total = sum(mined)
            for i in range(len(senders)):
                out = node.rpc("eth_call", {"to": "0x" + token.hex(),
                                            "data": "0x" + balance_data(
                                                bytes([0xA0 + i]) * 20).hex()}, "latest")
                if int(out["result"], 16) != mined[i]:
                    failures.append(f"recipient {i}: balance {out['result']} != {mined[i]}")
            print(f"{total} token transfers from {len(senders)} clients in {elapsed:.2f} s: "
                  f"{total / elapsed:.0f} tx/s (metering {'off' if args.no_metering else 'on'})")
            for f in failures:
                print("FAILED:", f)
            return 1 if failures or total != per_client * len(senders) else 0
        finally:
            node.stop()


if __name__ == "__main__":
    sys.exit(main())
