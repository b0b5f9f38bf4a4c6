"""The trie node store: every node of the account trie and of each storage trie, by keccak
of its encoding, in the state database's trie_nodes table.

Nodes are never pruned, as in an archive node: a root over pending changes is py-trie's
HexaryTrie working on `PendingNodes`, which reads committed nodes from the table (through
a bounded cache) and holds the nodes it writes until the commit keeps the reachable ones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, MutableMapping

import rlp

# The cache is only a cache: dropped whole when it passes this size.
NODE_CACHE_LIMIT = 100_000


class TrieNodeStore:
    """The committed nodes: read from the table and cached, written inside the caller's
    transaction, remembered once that transaction has committed."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._cache: dict[bytes, bytes] = {}

    def load(self, node_hash: bytes) -> bytes:
        """The committed node, through the cache; KeyError if there is none."""
        node = self._cache.get(node_hash)
        if node is None:
            row = self._db.execute("SELECT node FROM trie_nodes WHERE hash = ?",
                                   (node_hash,)).fetchone()
            if row is None:
                raise KeyError(node_hash)
            if len(self._cache) >= NODE_CACHE_LIMIT:
                self._cache.clear()
            node = self._cache[node_hash] = row[0]
        return node

    def pending(self) -> PendingNodes:
        """A fresh node map for a HexaryTrie over the committed nodes."""
        return PendingNodes(self)

    def write(self, nodes: Mapping[bytes, bytes]) -> None:
        """Insert the nodes; the caller's transaction makes them committed."""
        self._db.executemany("INSERT OR IGNORE INTO trie_nodes VALUES (?, ?)", nodes.items())

    def committed(self, nodes: Mapping[bytes, bytes]) -> None:
        """The nodes written by a transaction that has committed: the next commit's paths
        start with them, so they go to the cache."""
        if len(self._cache) + len(nodes) >= NODE_CACHE_LIMIT:
            self._cache.clear()
        self._cache.update(nodes)


class PendingNodes(MutableMapping):
    """The node map HexaryTrie works on: committed nodes from the store, new ones held in
    `new` until a commit writes the reachable ones."""

    def __init__(self, store: TrieNodeStore) -> None:
        self._store = store
        self.new: dict[bytes, bytes] = {}

    def __getitem__(self, key: bytes) -> bytes:
        node = self.new.get(key)
        return self._store.load(key) if node is None else node

    def __setitem__(self, key: bytes, node: bytes) -> None:
        self.new[key] = node

    def __delitem__(self, key: bytes) -> None:
        # A non-pruning HexaryTrie never deletes, and committed nodes may be shared by
        # several tries (two contracts with the same slot), so none is ever removed.
        raise NotImplementedError("trie nodes are never deleted")

    def __iter__(self) -> Iterator[bytes]:
        raise NotImplementedError("the node table is not iterated")

    def __len__(self) -> int:
        raise NotImplementedError("the node table is not counted")


def reachable(new: Mapping[bytes, bytes], roots: Iterable[bytes]) -> dict[bytes, bytes]:
    """The nodes of `new` reachable from the roots through nodes of `new` (a node not in
    it is committed already, and so is everything below it)."""
    keep: dict[bytes, bytes] = {}
    stack = list(roots)
    while stack:
        node_hash = stack.pop()
        node = new.get(node_hash)
        if node is None or node_hash in keep:
            continue
        keep[node_hash] = node
        items = rlp.decode(node)
        if len(items) == 17:  # a branch: children by hash, or embedded (under 32 bytes,
            # so holding no hash); a secure trie's branches carry no value
            stack.extend(c for c in items[:16] if isinstance(c, bytes) and len(c) == 32)
        elif len(items) == 2 and not items[0][0] & 0x20:  # an extension, not a leaf
            child = items[1]
            if isinstance(child, bytes) and len(child) == 32:
                stack.append(child)
    return keep


__all__ = ["NODE_CACHE_LIMIT", "PendingNodes", "TrieNodeStore", "reachable"]
