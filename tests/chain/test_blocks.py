"""Headers, receipts and blooms against the references: pyrlp's sedes encodings (the
consensus formats written with pyrlp, independently) and eth-bloom's filter."""

from __future__ import annotations

import random

import pytest
import rlp
from eth_bloom import BloomFilter
from eth_hash.auto import keccak
from rlp.sedes import Binary, CountableList, List, big_endian_int, binary
from trie import HexaryTrie

from chain.blocks import BlockDecodeError, Header, Receipt, bloom, ordered_trie_root, union_bloom
from state.backend import Log

_H, _A = Binary.fixed_length(32), Binary.fixed_length(20)
HEADER = List([_H, _H, _A, _H, _H, _H, Binary.fixed_length(256), big_endian_int,
               big_endian_int, big_endian_int, big_endian_int, big_endian_int, binary, _H,
               Binary.fixed_length(8), big_endian_int])
RECEIPT = List([big_endian_int, big_endian_int, Binary.fixed_length(256),
                CountableList(List([_A, CountableList(_H), binary]))])


def rand(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def logs(rng: random.Random) -> tuple[Log, ...]:
    return tuple(Log(rand(rng, 20), tuple(rand(rng, 32) for _ in range(rng.randint(0, 4))),
                     rand(rng, rng.choice([0, 1, 32, 100]))) for _ in range(rng.randint(0, 5)))


@pytest.mark.parametrize("seed", range(20))
def test_headers_receipts_and_blooms_match_the_references(seed):
    rng = random.Random(seed)
    the_logs = logs(rng)
    reference = BloomFilter()
    for log in the_logs:
        reference.add(log.address)
        for t in log.topics:
            reference.add(t)
    assert bloom(the_logs) == int(reference).to_bytes(256, "big")
    cut = rng.randint(0, len(the_logs))  # a block's bloom, from its receipts'
    assert union_bloom([bloom(the_logs[:cut]), bloom(the_logs[cut:])]) == bloom(the_logs)
    numbers = [rng.choice([0, 1, 127, 128, 255, 256, 2**64, rng.getrandbits(70)])
               for _ in range(6)]
    h = Header(rand(rng, 32), rand(rng, 20), rand(rng, 32), rand(rng, 32), rand(rng, 32),
               bloom(the_logs), numbers[0], numbers[1], numbers[2], numbers[3], numbers[4],
               rand(rng, rng.choice([0, 5, 32])), numbers[5], rand(rng, 32), rand(rng, 8))
    expected = rlp.encode([h.parent_hash, h.ommers_hash, h.coinbase, h.state_root,
                           h.transactions_root, h.receipts_root, h.logs_bloom, h.difficulty,
                           h.number, h.gas_limit, h.gas_used, h.timestamp, h.extra_data,
                           h.mix_hash, h.nonce, h.base_fee], HEADER)
    assert h.encode() == expected and h.hash == keccak(expected)
    assert Header.decode(expected) == h
    for kind in (0, 1, 2):
        r = Receipt(kind, rng.randint(0, 1), numbers[1], numbers[2], the_logs,
                    rng.choice([None, rand(rng, 20)]), numbers[3], rand(rng, 20),
                    rng.choice([None, rand(rng, 20)]), rng.choice(["", "revert: x"]))
        body = rlp.encode([r.status, r.cumulative_gas_used, r.logs_bloom,
                           [[x.address, list(x.topics), x.data] for x in the_logs]], RECEIPT)
        assert r.consensus_encoding() == (body if kind == 0 else bytes([kind]) + body)
        assert Receipt.from_record(r.record(), the_logs) == r
    items = [rand(rng, rng.randint(1, 200)) for _ in range(rng.randint(0, 300))]
    reference_trie = HexaryTrie({})
    for i, item in enumerate(items):
        reference_trie[rlp.encode(i)] = item
    assert ordered_trie_root(items) == reference_trie.root_hash


def test_bytes_that_are_no_header_are_refused():
    h = Header(bytes(32), bytes(20), bytes(32), bytes(32), bytes(32), bytes(256), 1, 2, 3, 4, 5)
    for bad in (b"", b"\xc0", h.encode()[:-1], rlp.encode([b"x"] * 16),
                rlp.encode([b"\x00\x01"] + list(rlp.decode(h.encode()))[1:])):
        with pytest.raises(BlockDecodeError):
            Header.decode(bad)
    with pytest.raises(BlockDecodeError):
        Header(b"short", bytes(20), bytes(32), bytes(32), bytes(32), bytes(256), 1, 2, 3, 4,
               5).encode()
