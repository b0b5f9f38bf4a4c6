"""Shared chain-test material: the token contract and its ABI, signing helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from eth_hash.auto import keccak

TOKEN_WAT = Path(__file__).resolve().parents[2] / "fixtures" / "contracts" / "token.wat"
TRANSFER_TOPIC = keccak(b"Transfer(address,address,uint256)")
SUPPLY = 10**12
CHAIN_ID = 1337


def selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


def word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def transfer_data(to: bytes, amount: int) -> bytes:
    return selector("transfer(address,uint256)") + bytes(12) + to + word(amount)


def balance_data(who: bytes) -> bytes:
    return selector("balanceOf(address)") + bytes(12) + who


def sign(key: bytes, **fields) -> bytes:
    fields.setdefault("chainId", CHAIN_ID)
    return bytes(Account.sign_transaction(fields, key).raw_transaction)


@pytest.fixture(scope="session")
def token_wasm(wat) -> bytes:
    return wat(TOKEN_WAT.read_text())
