"""Block headers, receipts, blooms and the roots that commit to them (Yellow Paper §4.3,
EIP-1559's header, EIP-2718's typed receipts), as the consensus encodings define them,
so that a header hash here is the hash any client would compute for the same block.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import rlp
from eth_bloom import BloomFilter
from eth_hash.auto import keccak
from rlp.sedes import Binary, CountableList, List, big_endian_int, binary
from trie import HexaryTrie

from evmc_bridge.constants import EMPTY_OMMERS_HASH
from state.backend import Log
from state.root import LOG_SEDES

_HASH = Binary.fixed_length(32)
_ADDRESS = Binary.fixed_length(20)
_BLOOM = Binary.fixed_length(256)
_HEADER = List([_HASH, _HASH, _ADDRESS, _HASH, _HASH, _HASH, _BLOOM, big_endian_int,
                big_endian_int, big_endian_int, big_endian_int, big_endian_int, binary,
                _HASH, Binary.fixed_length(8), big_endian_int])
_RECEIPT = List([big_endian_int, big_endian_int, _BLOOM, CountableList(LOG_SEDES)])
# What the chain keeps beside the consensus receipt to answer eth_getTransactionReceipt.
_RECEIPT_RECORD = List([big_endian_int, big_endian_int, big_endian_int, big_endian_int,
                        binary, big_endian_int, _ADDRESS, binary, binary])



def bloom(logs: Iterable[Log]) -> bytes:
    """The 2048-bit logs bloom over every log's address and topics (eth-bloom)."""
    f = BloomFilter()
    for log in logs:
        f.add(log.address)
        for topic in log.topics:
            f.add(topic)
    return int(f).to_bytes(256, "big")


def ordered_trie_root(items: Sequence[bytes]) -> bytes:
    """Root of the trie rlp(index) -> item (transactions and receipts roots)."""
    t = HexaryTrie({})
    for index, item in enumerate(items):
        t[rlp.encode(index)] = item
    return t.root_hash


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
        return rlp.encode([self.parent_hash, self.ommers_hash, self.coinbase, self.state_root,
                           self.transactions_root, self.receipts_root, self.logs_bloom,
                           self.difficulty, self.number, self.gas_limit, self.gas_used,
                           self.timestamp, self.extra_data, self.mix_hash, self.nonce,
                           self.base_fee], _HEADER)

    @property
    def hash(self) -> bytes:
        return keccak(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> Header:
        (parent, ommers, coinbase, state_root, tx_root, receipts_root, logs_bloom, difficulty,
         number, gas_limit, gas_used, timestamp, extra, mix, nonce, base_fee) = rlp.decode(
            data, _HEADER)
        return cls(parent, coinbase, state_root, tx_root, receipts_root, logs_bloom, number,
                   gas_limit, gas_used, timestamp, base_fee, extra, difficulty, mix, nonce,
                   ommers)


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

    @property
    def logs_bloom(self) -> bytes:
        return bloom(self.logs)

    def consensus_encoding(self) -> bytes:
        """EIP-2718: rlp([status, cumulativeGas, bloom, logs]), typed ones prefixed."""
        body = rlp.encode([self.status, self.cumulative_gas_used, self.logs_bloom,
                           [[log.address, list(log.topics), log.data] for log in self.logs]],
                          _RECEIPT)
        return body if self.type == 0 else bytes([self.type]) + body

    def record(self) -> bytes:
        """Everything but the logs (stored apart, indexed for eth_getLogs)."""
        return rlp.encode([self.type, self.status, self.cumulative_gas_used, self.gas_used,
                           self.contract_address or b"", self.effective_gas_price, self.sender,
                           self.to or b"", self.error.encode()], _RECEIPT_RECORD)

    @classmethod
    def from_record(cls, data: bytes, logs: Iterable[Log]) -> Receipt:
        kind, status, cumulative, used, contract, price, sender, to, error = rlp.decode(
            data, _RECEIPT_RECORD)
        return cls(kind, status, cumulative, used, tuple(logs), contract or None, price,
                   sender, to or None, error.decode(errors="replace"))


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
