"""Block headers, receipts, blooms and the roots that commit to them (Yellow Paper §4.3,
EIP-1559's header, EIP-2718's typed receipts), as the consensus encodings define them,
so that a header hash here is the hash any client would compute for the same block.

Encoded with state.trie_store's RLP and keccak, checked against pyrlp's sedes encodings
and eth-bloom's filter in tests/chain/test_blocks.py: a block's hashing is on the node's
path for every transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from evmc_bridge.constants import EMPTY_OMMERS_HASH
from state.backend import Log
from state.trie_store import RLPError, Trie, keccak, rlp_bytes, rlp_decode, rlp_int, rlp_list

# Field sizes of a header, in order (None: any length; "int": a number).
_HEADER_SHAPE = (32, 32, 20, 32, 32, 32, 256, "int", "int", "int", "int", "int", None, 32,
                 8, "int")


class BlockDecodeError(ValueError):
    """Bytes that are not a header or receipt record of this chain's encoding."""


def bloom(logs: Iterable[Log]) -> bytes:
    """The 2048-bit logs bloom over every log's address and topics (Yellow Paper §4.3.1:
    three bits per item, from the low 11 bits of the first three byte pairs of its
    keccak)."""
    bits = 0
    for log in logs:
        for item in (log.address, *log.topics):
            h = keccak(item)
            bits |= ((1 << (((h[0] << 8) | h[1]) & 2047))
                     | (1 << (((h[2] << 8) | h[3]) & 2047))
                     | (1 << (((h[4] << 8) | h[5]) & 2047)))
    return bits.to_bytes(256, "big")


def union_bloom(blooms: Iterable[bytes]) -> bytes:
    """The bloom of every log of several blooms' (a block's, from its receipts')."""
    bits = 0
    for b in blooms:
        bits |= int.from_bytes(b, "big")
    return bits.to_bytes(256, "big")


def ordered_trie_root(items: Sequence[bytes]) -> bytes:
    """Root of the trie rlp(index) -> item (transactions and receipts roots)."""
    t = Trie({})
    for index, item in enumerate(items):
        t[rlp_int(index)] = item
    return t.root_hash


def _log_rlp(log: Log) -> bytes:
    return rlp_list((rlp_bytes(log.address), rlp_list(rlp_bytes(t) for t in log.topics),
                     rlp_bytes(log.data)))


def _fields(data: bytes, count: int, what: str) -> list:
    try:
        items = rlp_decode(data)
    except RLPError as exc:
        raise BlockDecodeError(f"not a {what}: {exc}") from None
    if not isinstance(items, list) or len(items) != count \
            or any(not isinstance(x, bytes) for x in items):
        raise BlockDecodeError(f"not a {what}: {count} strings expected")
    return items


@dataclass(frozen=True)
class Header:
    parent_hash: bytes
    coinbase: bytes
    state_root: bytes
    transactions_root: bytes
    receipts_root: bytes
    logs_bloom: bytes
    number: int
    gas_limit: int
    gas_used: int
    timestamp: int
    base_fee: int
    extra_data: bytes = b""
    difficulty: int = 0
    mix_hash: bytes = bytes(32)
    nonce: bytes = bytes(8)
    ommers_hash: bytes = EMPTY_OMMERS_HASH

    def encode(self) -> bytes:
        return self._encoded

    @cached_property
    def _encoded(self) -> bytes:
        values = (self.parent_hash, self.ommers_hash, self.coinbase, self.state_root,
                  self.transactions_root, self.receipts_root, self.logs_bloom,
                  self.difficulty, self.number, self.gas_limit, self.gas_used,
                  self.timestamp, self.extra_data, self.mix_hash, self.nonce, self.base_fee)
        out = []
        for value, shape in zip(values, _HEADER_SHAPE, strict=True):
            if shape == "int":
                if type(value) is not int or value < 0:
                    raise BlockDecodeError(f"a header number must be a non-negative int, "
                                           f"not {value!r}")
                out.append(rlp_int(value))
            else:
                if not isinstance(value, bytes) or (shape is not None and len(value) != shape):
                    raise BlockDecodeError(f"a header field of {shape} bytes, not {value!r}")
                out.append(rlp_bytes(value))
        return rlp_list(out)

    @cached_property
    def hash(self) -> bytes:
        return keccak(self._encoded)

    @classmethod
    def decode(cls, data: bytes) -> Header:
        items = _fields(data, 16, "header")
        for item, shape in zip(items, _HEADER_SHAPE, strict=True):
            if shape == "int" and item[:1] == b"\0":
                raise BlockDecodeError("not a header: a number with leading zeros")
            if isinstance(shape, int) and len(item) != shape:
                raise BlockDecodeError(f"not a header: a field of {len(item)} bytes, "
                                       f"not {shape}")
        (parent, ommers, coinbase, state_root, tx_root, receipts_root, logs_bloom, difficulty,
         number, gas_limit, gas_used, timestamp, extra, mix, nonce, base_fee) = items
        n = int.from_bytes
        header = cls(parent, coinbase, state_root, tx_root, receipts_root, logs_bloom,
                     n(number, "big"), n(gas_limit, "big"), n(gas_used, "big"),
                     n(timestamp, "big"), n(base_fee, "big"), extra, n(difficulty, "big"),
                     mix, nonce, ommers)
        header.__dict__["_encoded"] = bytes(data)  # decoded from these very bytes
        return header


@dataclass(frozen=True)
class Receipt:
    type: int
    status: int  # 1 success, 0 failure
    cumulative_gas_used: int
    gas_used: int
    logs: tuple[Log, ...]
    contract_address: bytes | None
    effective_gas_price: int
    sender: bytes
    to: bytes | None
    error: str = ""  # why it failed, for humans (not consensus)

    @cached_property
    def logs_bloom(self) -> bytes:
        return bloom(self.logs)

    def consensus_encoding(self) -> bytes:
        """EIP-2718: rlp([status, cumulativeGas, bloom, logs]), typed ones prefixed."""
        body = rlp_list((rlp_int(self.status), rlp_int(self.cumulative_gas_used),
                         rlp_bytes(self.logs_bloom),
                         rlp_list(_log_rlp(log) for log in self.logs)))
        return body if self.type == 0 else bytes([self.type]) + body

    def record(self) -> bytes:
        """Everything but the logs (stored apart, indexed for eth_getLogs)."""
        return rlp_list((rlp_int(self.type), rlp_int(self.status),
                         rlp_int(self.cumulative_gas_used), rlp_int(self.gas_used),
                         rlp_bytes(self.contract_address or b""),
                         rlp_int(self.effective_gas_price), rlp_bytes(self.sender),
                         rlp_bytes(self.to or b""), rlp_bytes(self.error.encode())))

    @classmethod
    def from_record(cls, data: bytes, logs: Iterable[Log]) -> Receipt:
        kind, status, cumulative, used, contract, price, sender, to, error = _fields(
            data, 9, "receipt record")
        n = int.from_bytes
        return cls(n(kind, "big"), n(status, "big"), n(cumulative, "big"), n(used, "big"),
                   tuple(logs), contract or None, n(price, "big"), sender, to or None,
                   error.decode(errors="replace"))


def next_base_fee(parent_gas_limit: int, parent_gas_used: int, parent_base_fee: int) -> int:
    """EIP-1559's base fee update: up to 12.5 % towards keeping blocks half full."""
    target = parent_gas_limit // 2
    if parent_gas_used == target:
        return parent_base_fee
    if parent_gas_used > target:
        delta = parent_base_fee * (parent_gas_used - target) // target // 8
        return parent_base_fee + max(1, delta)
    delta = parent_base_fee * (target - parent_gas_used) // target // 8
    return parent_base_fee - delta
