"""Filled state tests (GeneralStateTests JSON, ../shared/docs/state-tests.md §2) as typed
values: the block environment, the pre-state, the transaction matrix and the expected
post hashes per fork."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak

from ..backend import Account
from ..errors import NotAStateTest, StateTestError
from ..transaction import BlockEnv, Transaction


def hex_bytes(text: str) -> bytes:
    """Hex with or without 0x; "" and "0x" are empty."""
    text = text.strip()
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    if len(text) % 2:
        # Some fillers write odd-length hex; a leading zero is what testeth assumes.
        text = "0" + text
    return bytes.fromhex(text)


def hex_int(text: str | int) -> int:
    """The fixtures' numbers: 0x-hex strings (decimal tolerated), "" meaning 0."""
    if isinstance(text, int):
        return text
    text = text.strip()
    if text.startswith("0x:bigint "):
        # retesteth's spelling of a number wider than any field (a transaction that no
        # encoding can carry, e.g. a value of 2**256 + 1): the number itself.
        text = text[len("0x:bigint "):].strip()
    if text in ("", "0x", "0X"):
        return 0
    return int(text, 16) if text[:2] in ("0x", "0X") else int(text)


@lru_cache(maxsize=64)
def sender_of(secret_key: bytes) -> bytes:
    """The address of a secp256k1 secret key. Cached: the scalar multiplication costs far
    more than running most of these tests, and every test in the suite uses one key."""
    from eth_keys import keys

    return keys.PrivateKey(secret_key).public_key.to_canonical_address()


def testeth_block_hash(number: int) -> Callable[[int], bytes]:
    """testeth's BLOCKHASH: keccak256 of the decimal number for the 256 blocks below
    `number`, 32 zero bytes otherwise."""
    def block_hash(n: int) -> bytes:
        return keccak(str(n).encode()) if max(0, number - 256) <= n < number else bytes(32)

    return block_hash


@dataclass(frozen=True)
class TransactionMatrix:
    """`transaction` of a filled test: every (data[d], gasLimit[g], value[v]) is one tx."""

    data: tuple[bytes, ...]
    gas_limit: tuple[int, ...]
    value: tuple[int, ...]
    nonce: int
    gas_price: int
    to: bytes | None  # None: contract creation
    sender: bytes
    # EIP-1559 fields (None: a legacy or access-list transaction, priced by gas_price).
    max_fee: int | None = None
    max_priority_fee: int | None = None
    # EIP-2930: one access list per data entry (None: the transaction has none).
    access_lists: tuple[tuple[tuple[bytes, tuple[bytes, ...]], ...] | None, ...] = ()

    def build(self, indexes: tuple[int, int, int], base_fee: int = 0) -> Transaction:
        d, g, v = indexes
        for what, i, seq in (("data", d, self.data), ("gas", g, self.gas_limit),
                             ("value", v, self.value)):
            if not 0 <= i < len(seq):
                raise IndexError(f"post index {what}={i} outside the transaction's "
                                 f"{len(seq)} {what} entries")
        access_list = self.access_lists[d] if d < len(self.access_lists) else None
        price = self.gas_price
        if self.max_fee is not None:  # the effective price: never above the fee cap
            price = min(self.max_fee, base_fee + (self.max_priority_fee or 0))
        return Transaction(sender=self.sender, to=self.to, nonce=self.nonce,
                           gas_limit=self.gas_limit[g], gas_price=price,
                           value=self.value[v], data=self.data[d], max_fee=self.max_fee,
                           max_priority_fee=self.max_priority_fee,
                           access_list=access_list or ())


@dataclass(frozen=True)
class PostEntry:
    indexes: tuple[int, int, int]  # data, gas, value
    hash: bytes  # state root after the transaction
    logs: bytes  # keccak256(rlp(logs))


@dataclass(frozen=True)
class StateTest:
    name: str
    path: Path
    env: BlockEnv
    pre: dict[bytes, Account]
    transaction: TransactionMatrix
    posts: dict[str, list[PostEntry]]  # fork name as in the file -> entries

    def build_transaction(self, indexes: tuple[int, int, int]) -> Transaction:
        return self.transaction.build(indexes, self.env.base_fee)

    def cases(self, forks: set[str] | None = None) -> Iterator[tuple[str, int, PostEntry]]:
        """(fork, index into posts[fork], entry); forks compared case-insensitively."""
        for fork, entries in self.posts.items():
            if forks is None or fork.lower() in forks:
                for i, entry in enumerate(entries):
                    yield fork, i, entry


def parse_account(raw: dict[str, Any]) -> Account:
    storage = {}
    for k, v in (raw.get("storage") or {}).items():
        value = hex_int(v)
        if value:  # a zero slot is an absent slot
            storage[hex_int(k).to_bytes(32, "big")] = value.to_bytes(32, "big")
    return Account(nonce=hex_int(raw.get("nonce", "0x00")), balance=hex_int(raw["balance"]),
                   code=hex_bytes(raw.get("code") or ""), storage=storage)


def parse_env(raw: dict[str, Any]) -> BlockEnv:
    number = hex_int(raw["currentNumber"])
    return BlockEnv(coinbase=hex_bytes(raw["currentCoinbase"]), number=number,
                    timestamp=hex_int(raw["currentTimestamp"]),
                    gas_limit=hex_int(raw["currentGasLimit"]),
                    difficulty=hex_int(raw.get("currentDifficulty", "0x00")),
                    block_hash=testeth_block_hash(number),
                    base_fee=hex_int(raw.get("currentBaseFee", "0x00")))


def parse_transaction(raw: dict[str, Any]) -> TransactionMatrix:
    if raw.get("secretKey"):
        sender = sender_of(hex_bytes(raw["secretKey"]))
    elif raw.get("sender"):  # newer fixtures may name the sender instead
        sender = hex_bytes(raw["sender"])
    else:
        raise NotAStateTest("transaction has neither secretKey nor sender")
    to = (raw.get("to") or "").strip()
    max_fee = raw.get("maxFeePerGas")
    tip = raw.get("maxPriorityFeePerGas")
    lists = raw.get("accessLists")
    return TransactionMatrix(
        data=tuple(hex_bytes(d) for d in raw["data"]),
        gas_limit=tuple(hex_int(g) for g in raw["gasLimit"]),
        value=tuple(hex_int(v) for v in raw["value"]),
        nonce=hex_int(raw["nonce"]), gas_price=hex_int(raw.get("gasPrice", "0x00")),
        to=hex_bytes(to) if to not in ("", "0x") else None, sender=sender,
        max_fee=None if max_fee is None else hex_int(max_fee),
        max_priority_fee=None if tip is None else hex_int(tip),
        access_lists=() if lists is None else tuple(parse_access_list(a) for a in lists))


def parse_access_list(raw: list[dict[str, Any]] | None
                      ) -> tuple[tuple[bytes, tuple[bytes, ...]], ...] | None:
    """[{address, storageKeys}] as (address, keys); None stays None (no list)."""
    if raw is None:
        return None
    return tuple((hex_bytes(e["address"]),
                  tuple(hex_int(k).to_bytes(32, "big") for k in e.get("storageKeys") or ()))
                 for e in raw)


def parse_post(raw: dict[str, Any]) -> PostEntry:
    idx = raw["indexes"]
    return PostEntry((int(idx["data"]), int(idx["gas"]), int(idx["value"])),
                     hex_bytes(raw["hash"]), hex_bytes(raw["logs"]))


def parse_test(name: str, raw: dict[str, Any], path: Path) -> StateTest:
    posts = {fork: [parse_post(p) for p in entries]
             for fork, entries in (raw.get("post") or {}).items()}
    return StateTest(name=name, path=Path(path), env=parse_env(raw["env"]),
                     pre={hex_bytes(a): parse_account(acc) for a, acc in raw["pre"].items()},
                     transaction=parse_transaction(raw["transaction"]), posts=posts)


def looks_like_state_tests(data: Any) -> bool:
    return (isinstance(data, dict) and bool(data)
            and all(isinstance(t, dict) and {"env", "pre", "transaction", "post"} <= t.keys()
                    for t in data.values()))


def load_tests(path: Path | str) -> list[StateTest]:
    """Every test in one filled JSON file; NotAStateTest if it is some other JSON."""
    path = Path(path)
    data = json.loads(path.read_text())
    if not looks_like_state_tests(data):
        raise NotAStateTest(f"{path}: not a filled state-test file (expected "
                            "{name: {env, pre, transaction, post}})")
    try:
        return [parse_test(name, raw, path) for name, raw in data.items()]
    except (KeyError, TypeError, ValueError, StateTestError) as exc:
        raise StateTestError(f"{path}: malformed state test: {type(exc).__name__}: {exc}") \
            from exc
