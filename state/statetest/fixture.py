"""Filled state tests (GeneralStateTests JSON) as typed values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak

from ..backend import Account
from ..transaction import BlockEnv, Transaction


def hex_bytes(text: str) -> bytes:
    text = text.strip()
    if text.startswith(("0x", "0X")):
        text = text[2:]
    return bytes.fromhex(text)


def hex_int(text: str | int) -> int:
    if isinstance(text, int):
        return text
    text = text.strip()
    if text in ("", "0x"):
        return 0
    return int(text, 16) if text.lower().startswith("0x") else int(text)


@lru_cache(maxsize=64)
def sender_of(secret_key: bytes) -> bytes:
    """The address of a secp256k1 secret key (one scalar multiplication, cached)."""
    from eth_keys import keys

    return keys.PrivateKey(secret_key).public_key.to_canonical_address()


def testeth_block_hash(number: int):
    """testeth's BLOCKHASH: keccak256 of the decimal number for the 256 blocks below."""
    def block_hash(n: int) -> bytes:
        return keccak(str(n).encode()) if number - 256 <= n < number else bytes(32)

    return block_hash


@dataclass(frozen=True)
class PostEntry:
    indexes: tuple[int, int, int]  # data, gas, value
    hash: bytes
    logs: bytes


@dataclass(frozen=True)
class StateTest:
    name: str
    path: Path
    env: BlockEnv
    pre: dict[bytes, Account]
    tx: dict[str, Any]  # the transaction matrix, as in the file
    posts: dict[str, list[PostEntry]]

    def transaction(self, indexes: tuple[int, int, int]) -> Transaction:
        d, g, v = indexes
        tx = self.tx
        to = tx.get("to", "")
        sender = (sender_of(hex_bytes(tx["secretKey"])) if tx.get("secretKey")
                  else hex_bytes(tx["sender"]))
        return Transaction(sender=sender, to=hex_bytes(to) if to else None,
                           nonce=hex_int(tx["nonce"]), gas_limit=hex_int(tx["gasLimit"][g]),
                           gas_price=hex_int(tx.get("gasPrice", "0x0")),
                           value=hex_int(tx["value"][v]), data=hex_bytes(tx["data"][d]))


def _account(raw: dict[str, Any]) -> Account:
    storage = {}
    for k, v in raw.get("storage", {}).items():
        value = hex_int(v)
        if value:
            storage[hex_int(k).to_bytes(32, "big")] = value.to_bytes(32, "big")
    return Account(nonce=hex_int(raw.get("nonce", "0x0")), balance=hex_int(raw["balance"]),
                   code=hex_bytes(raw.get("code", "")), storage=storage)


def parse_test(name: str, raw: dict[str, Any], path: Path) -> StateTest:
    e = raw["env"]
    number = hex_int(e["currentNumber"])
    env = BlockEnv(coinbase=hex_bytes(e["currentCoinbase"]), number=number,
                   timestamp=hex_int(e["currentTimestamp"]),
                   gas_limit=hex_int(e["currentGasLimit"]),
                   difficulty=hex_int(e.get("currentDifficulty", "0x0")),
                   block_hash=testeth_block_hash(number))
    pre = {hex_bytes(a): _account(acc) for a, acc in raw["pre"].items()}
    posts = {
        fork: [PostEntry((p["indexes"]["data"], p["indexes"]["gas"], p["indexes"]["value"]),
                         hex_bytes(p["hash"]), hex_bytes(p["logs"])) for p in entries]
        for fork, entries in raw.get("post", {}).items()
    }
    return StateTest(name, path, env, pre, raw["transaction"], posts)


def load_tests(path: Path) -> list[StateTest]:
    """Every test in one filled JSON file."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a state-test file (top level is not an object)")
    return [parse_test(name, raw, Path(path)) for name, raw in data.items()]
