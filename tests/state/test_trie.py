"""state.trie_store's trie, RLP and keccak against the references: py-trie's HexaryTrie
(roots and node encodings on random operations, deletions included), pyrlp, eth-hash."""

from __future__ import annotations

import random

import pytest
import rlp
from eth_hash.auto import keccak as eth_keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from trie import HexaryTrie

from evmc_bridge.constants import EMPTY_TRIE_ROOT
from state.trie_store import (
    RLPError,
    Trie,
    TrieNodeMissing,
    clear_node_cache,
    keccak,
    reachable,
    rlp_decode,
    rlp_encode,
    trie_get,
)


def test_keccak_is_eth_hash_keccak():
    for n in (0, 1, 31, 32, 135, 136, 137, 1000):
        data = bytes(random.getrandbits(8) for _ in range(n))
        assert keccak(data) == eth_keccak(data)


rlp_items = st.recursive(st.binary(max_size=70) | st.integers(0, 2**256),
                         lambda inner: st.lists(inner, max_size=5), max_leaves=20)


@given(rlp_items)
@settings(max_examples=300, deadline=None)
def test_rlp_matches_pyrlp(item):
    encoded = rlp_encode(item)
    assert encoded == rlp.encode(item)
    assert rlp_decode(encoded) == rlp.decode(encoded)


@pytest.mark.parametrize("bad", [b"", b"\x81", b"\xb8", b"\xb8\x05ab", b"\xc2\x01", b"\x01\x02",
                                 b"\xc3\x82\x01"])
def test_malformed_rlp_is_an_rlp_error(bad):
    with pytest.raises(RLPError):
        rlp_decode(bad)


def _ops(rng: random.Random, n: int, key_size: int | None) -> list[tuple[bytes, bytes]]:
    keys: list[bytes] = []
    out = []
    for _ in range(n):
        if keys and rng.random() < 0.3:
            key = rng.choice(keys)
            value = b"" if rng.random() < 0.6 else bytes(rng.getrandbits(8)
                                                         for _ in range(rng.randint(1, 40)))
        else:
            size = key_size or rng.randint(1, 4)
            key = bytes(rng.getrandbits(8) for _ in range(size))
            if rng.random() < 0.3 and keys:  # share a prefix with a key already there
                key = keys[-1][:rng.randint(0, size)] + key
                key = key[:size] if key_size else key
            keys.append(key)
            value = bytes(rng.getrandbits(8) for _ in range(rng.choice([1, 5, 33, 70])))
        out.append((key, value))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_roots_and_nodes_match_py_trie(seed):
    rng = random.Random(seed)
    key_size = [32, None, 1, 2][seed % 4]  # secure keys, and variable keys (prefixes)
    ours_db: dict[bytes, bytes] = {}
    ref = HexaryTrie({})
    ours = Trie(ours_db)
    for i, (key, value) in enumerate(_ops(rng, rng.randint(1, 120), key_size)):
        if value:
            ref[key] = value
        else:
            ref.delete(key)
        ours[key] = value
        if i % 7 == 0:  # the root is right at any point, not only at the end
            assert ours.root_hash == ref.root_hash
    assert ours.root_hash == ref.root_hash
    # Every node written is py-trie's too, and the final trie is whole in the map.
    assert set(ours_db) <= set(ref.db)
    kept = reachable(ours_db, [ours.root_hash])  # through the shapes cached when written
    clear_node_cache()
    assert reachable(ours_db, [ours.root_hash]) == kept  # through decoding the nodes
    for key in list(ref.db):
        if key in kept:
            assert kept[key] == ref.db[key]
    # A trie reopened from the map reads every key, and updates from there agree.
    reopened = Trie(ours_db, ours.root_hash)
    for key, value in _ops(random.Random(seed + 1000), 30, key_size):
        assert reopened.get(key) == ref.get(key)
        if value:
            ref[key] = value
        else:
            ref.delete(key)
        reopened[key] = value
    assert reopened.root_hash == ref.root_hash


def test_an_emptied_trie_has_the_empty_root():
    t = Trie({})
    for k in range(50):
        t[keccak(bytes([k]))] = b"v%d" % k
    for k in range(50):
        t.delete(keccak(bytes([k])))
    assert t.root_hash == EMPTY_TRIE_ROOT
    t.delete(b"absent")
    assert t.root_hash == EMPTY_TRIE_ROOT


def test_a_missing_node_is_trie_node_missing():
    db: dict[bytes, bytes] = {}
    t = Trie(db)
    for k in range(20):
        t[keccak(bytes([k]))] = b"x" * 40
    root = t.root_hash
    intact = dict(db)
    # Nodes are cached by hash (which names their content) once written or read: only a
    # node neither in the map nor in the cache is missing.
    clear_node_cache()
    db.pop(root)
    with pytest.raises(TrieNodeMissing):
        trie_get(db, root, keccak(bytes([3])))
    assert trie_get(intact, root, keccak(bytes([3]))) == b"x" * 40
    with pytest.raises(TrieNodeMissing):
        trie_get(intact, keccak(b"no such root"), keccak(bytes([3])))
