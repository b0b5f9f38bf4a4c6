"""The Merkle Patricia trie: its node encoding, an incremental trie over a node map, and the
node store that keeps every node of the account trie and of each storage trie, by keccak
of its encoding, in the state database's trie_log and trie_nodes tables.

`Trie` is a hexary Merkle Patricia trie (Yellow Paper appendix D) written for the state
root's hot path: nodes are Python lists loaded from the node map on first use, updates
mutate them in place and only mark them dirty, and `root_hash` encodes and hashes each
dirty node once, writing to the node map only the nodes of the final trie (never the
intermediate nodes that a later update replaces). Its roots and node encodings are
py-trie's HexaryTrie's (tests/state/test_trie.py holds them equal on random operations);
it costs a fraction of py-trie's per-node Python work (no sedes, no nibble tuples, one
hash per node).

Nodes are never pruned, as in an archive node: a root over pending changes is a Trie over
`PendingNodes`, which reads committed nodes from the table (through a bounded cache) and
holds the nodes it writes until the commit keeps the reachable ones. Every committed root
stays readable (`trie_get`), which is what answers state queries at older blocks.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from eth_hash.auto import keccak as _eth_keccak

from evmc_bridge.constants import EMPTY_TRIE_ROOT

# The caches are only caches: dropped whole when they pass these sizes.
NODE_CACHE_LIMIT = 100_000
DECODED_CACHE_LIMIT = 20_000
# Decoded nodes by hash, shared by every trie of the process: a node's hash names its
# content, so an entry is never stale. Entries are immutable; a trie copies what it changes.
_DECODED: dict[bytes, tuple] = {}


# --- keccak --------------------------------------------------------------------------------
def _make_keccak() -> Callable[[bytes], bytes]:
    """keccak256, through pycryptodome's C sponge directly when it is there: eth-hash's
    wrapper builds two Python objects per hash (~8 us); a reused per-thread state is ~2 us,
    and tries hash every node they write. eth-hash's keccak otherwise."""
    try:
        from Crypto.Hash.keccak import _raw_keccak_lib as lib
        from Crypto.Util._raw_api import ffi
        if ffi is None or not hasattr(lib, "keccak_reset"):
            return _eth_keccak
    except Exception:  # another pycryptodome layout, or none: the portable one
        return _eth_keccak
    local = threading.local()

    def keccak256(data: bytes) -> bytes:
        try:
            state, out, buf = local.parts
        except AttributeError:
            handle = ffi.new("void **")
            if lib.keccak_init(handle, 64, 24):  # capacity 2 x 32 bytes, 24 rounds
                raise MemoryError("keccak state") from None
            out = ffi.new("uint8_t[32]")
            state, buf = ffi.gc(handle[0], lib.keccak_destroy), ffi.buffer(out)
            local.parts = state, out, buf
        lib.keccak_reset(state)
        lib.keccak_absorb(state, data, len(data))
        lib.keccak_digest(state, out, 32, 1)  # 0x01: Keccak's padding, not SHA-3's
        return buf[:]

    if keccak256(b"") != _eth_keccak(b""):  # never trust a private interface blindly
        return _eth_keccak
    return keccak256


keccak = _make_keccak()


# --- RLP -----------------------------------------------------------------------------------
class RLPError(ValueError):
    """Bytes that are not one well-formed RLP item."""


def _length_prefix(n: int, short: int, long: int) -> bytes:
    if n < 56:
        return bytes((short + n,))
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((long + len(size),)) + size


def rlp_bytes(data: bytes) -> bytes:
    """The RLP of a byte string."""
    if len(data) == 1 and data[0] < 0x80:
        return data
    return _length_prefix(len(data), 0x80, 0xB7) + data


def rlp_list(encoded_items: Iterable[bytes]) -> bytes:
    """The RLP of a list whose items are already encoded."""
    payload = b"".join(encoded_items)
    return _length_prefix(len(payload), 0xC0, 0xF7) + payload


def rlp_int(n: int) -> bytes:
    """The RLP of a non-negative integer (minimal big-endian bytes; 0 is the empty string)."""
    return rlp_bytes(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def rlp_encode(item: Any) -> bytes:
    """The RLP of bytes, a non-negative int, or a (nested) list or tuple of them."""
    if isinstance(item, bytes | bytearray):
        return rlp_bytes(bytes(item))
    if isinstance(item, int) and not isinstance(item, bool):
        if item < 0:
            raise RLPError(f"cannot encode a negative integer {item}")
        return rlp_int(item)
    if isinstance(item, list | tuple):
        return rlp_list([rlp_encode(x) for x in item])
    raise RLPError(f"cannot encode {type(item).__name__}")


def rlp_decode(data: bytes, *, strict: bool = False) -> bytes | list:
    """One RLP item as bytes or nested lists of bytes; RLPError unless `data` is exactly
    one well-formed item. strict: also refuse non-canonical encodings (a single byte
    below 0x80 with a prefix, a long form for a short length, a length with leading
    zeros), as clients do for what they are sent."""
    try:
        item, end = _decode(data, 0, strict)
    except IndexError:
        raise RLPError("truncated RLP") from None
    if end != len(data):
        raise RLPError(f"{len(data) - end} trailing bytes after an RLP item")
    return item


def _long_length(d: bytes, i: int, n_len: int, strict: bool) -> int:
    size = d[i + 1:i + 1 + n_len]
    if len(size) != n_len:
        raise IndexError
    if strict and size[0] == 0:
        raise RLPError("an RLP length with leading zeros")
    n = int.from_bytes(size, "big")
    if strict and n < 56:
        raise RLPError("a long RLP length form for a short length")
    return n


def _decode(d: bytes, i: int, strict: bool = False) -> tuple[Any, int]:
    b = d[i]
    if b < 0x80:
        return d[i:i + 1], i + 1
    if b < 0xB8:
        end = i + 1 + b - 0x80
        if end > len(d):
            raise IndexError
        if strict and b == 0x81 and d[i + 1] < 0x80:
            raise RLPError("a single byte below 0x80 encoded as a string")
        return d[i + 1:end], end
    if b < 0xC0:
        n_len = b - 0xB7
        start = i + 1 + n_len
        end = start + _long_length(d, i, n_len, strict)
        if end > len(d):
            raise IndexError
        return d[start:end], end
    if b < 0xF8:
        start, end = i + 1, i + 1 + b - 0xC0
    else:
        n_len = b - 0xF7
        start = i + 1 + n_len
        end = start + _long_length(d, i, n_len, strict)
    if end > len(d):
        raise IndexError
    out = []
    while start < end:
        item, start = _decode(d, start, strict)
        out.append(item)
    if start != end:
        raise RLPError("an RLP list's items overrun its length")
    return out, end


# --- nibbles and the hex-prefix encoding ---------------------------------------------------
_HEX_TO_NIBBLE = bytes.maketrans(b"0123456789abcdef", bytes(range(16)))
_NIBBLE_TO_HEX = bytes.maketrans(bytes(range(16)), b"0123456789abcdef")


def nibbles(key: bytes) -> bytes:
    """The key as a bytes object of nibbles (one 0-15 value per byte)."""
    return key.hex().encode().translate(_HEX_TO_NIBBLE)


def _pack(nibs: bytes) -> bytes:
    return bytes.fromhex(nibs.translate(_NIBBLE_TO_HEX).decode())


def _compact(path: bytes, leaf: bool) -> bytes:
    """The hex-prefix encoding of a nibble path (YP appendix C)."""
    flag = 0x20 if leaf else 0
    if len(path) % 2:
        return bytes((flag | 0x10 | path[0],)) + _pack(path[1:])
    return bytes((flag,)) + _pack(path)


def _uncompact(data: bytes) -> tuple[bytes, bool]:
    if not data:
        raise RLPError("an empty hex-prefix path")
    nibs = nibbles(data)
    flag = nibs[0]
    if flag > 3:
        raise RLPError(f"a hex-prefix flag of {flag}")
    return (nibs[1:] if flag & 1 else nibs[2:]), flag >= 2


# --- the trie ------------------------------------------------------------------------------
# A node is a list [kind, a, b, ref]: a leaf [LEAF, path, value, ref], an extension
# [EXT, path, child, ref], a branch [BRANCH, children (16), value, ref]. A child is None
# (blank), a node, or, for a node not loaded yet, its reference as the parent's RLP holds
# it: 0xa0 then its 32-byte hash. `ref` is the node's own reference (its RLP under 32
# bytes, else 0xa0 + its hash), None while the node is dirty.
LEAF, EXT, BRANCH = 0, 1, 2
_SAME = object()  # _delete's answer when the key was not there
_BLANK = b"\x80"  # rlp(b"")


class TrieNodeMissing(KeyError):
    """The node map has no node of this hash: the trie cannot be read there."""


class Trie:
    """A hexary Merkle Patricia trie over a node map (hash -> RLP of a node), rooted at
    `root`. Setting a key to b"" deletes it, as in py-trie. Nodes of the final trie are
    written to the map when `root_hash` is read; nothing is ever deleted from it."""

    def __init__(self, db: MutableMapping[bytes, bytes], root: bytes = EMPTY_TRIE_ROOT
                 ) -> None:
        self.db = db
        self._root: Any = None if root == EMPTY_TRIE_ROOT else b"\xa0" + root
        self._root_hash: bytes | None = root

    # --- loading ---------------------------------------------------------------------------
    def _load(self, ref: bytes) -> list:
        """The node a 0xa0-prefixed reference names, as a fresh (mutable) node."""
        node_hash = ref[1:]
        shape = _DECODED.get(node_hash)
        if shape is None:
            try:
                encoded = self.db[node_hash]
            except KeyError:
                raise TrieNodeMissing(node_hash) from None
            item = rlp_decode(encoded)
            if not isinstance(item, list):
                raise RLPError("a trie node that is not a list")
            shape = _shape(item)
            if shape is None:  # embedded children: decoded fresh every time
                node = self._node(item)
                node[3] = ref
                return node
            if len(_DECODED) >= DECODED_CACHE_LIMIT:
                _DECODED.clear()
            _DECODED[node_hash] = shape
        kind, a, b = shape
        # The node as loaded is clean: its parent refers to it by this very reference.
        return [kind, list(a) if kind == BRANCH else a, b, ref]

    def _node(self, item: list) -> list:
        """A node from its decoded RLP (embedded children decoded too)."""
        if len(item) == 17:
            return [BRANCH, [self._child(c) for c in item[:16]], item[16], None]
        if len(item) == 2:
            path, leaf = _uncompact(item[0])
            if leaf:
                return [LEAF, path, item[1], None]
            return [EXT, path, self._child(item[1]), None]
        raise RLPError(f"a trie node of {len(item)} items")

    def _child(self, ref: Any) -> Any:
        if isinstance(ref, list):
            return self._node(ref)  # embedded: under 32 bytes
        if ref == b"":
            return None
        if len(ref) != 32:
            raise RLPError(f"a child reference of {len(ref)} bytes")
        return b"\xa0" + ref

    # --- reads -----------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes:
        """The value at key; b"" if absent."""
        node, path = self._root, nibbles(key)
        while True:
            if node is None:
                return b""
            if type(node) is bytes:
                node = self._load(node)
            kind = node[0]
            if kind == LEAF:
                return node[2] if node[1] == path else b""
            if kind == EXT:
                n = len(node[1])
                if path[:n] != node[1]:
                    return b""
                node, path = node[2], path[n:]
            else:
                if not path:
                    return node[2]
                node, path = node[1][path[0]], path[1:]

    def __getitem__(self, key: bytes) -> bytes:
        return self.get(key)

    def __contains__(self, key: bytes) -> bool:
        return self.get(key) != b""

    # --- writes ----------------------------------------------------------------------------
    def __setitem__(self, key: bytes, value: bytes) -> None:
        if not value:
            self.delete(key)
            return
        self._root = self._set(self._root, nibbles(key), bytes(value))
        self._root_hash = None

    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value

    def delete(self, key: bytes) -> None:
        new = self._delete(self._root, nibbles(key))
        if new is not _SAME:
            self._root = new
            self._root_hash = None

    def __delitem__(self, key: bytes) -> None:
        self.delete(key)

    def _set(self, node: Any, path: bytes, value: bytes) -> list:
        if node is None:
            return [LEAF, path, value, None]
        if type(node) is bytes:
            node = self._load(node)
        kind = node[0]
        if kind == BRANCH:
            node[3] = None
            if path:
                children = node[1]
                children[path[0]] = self._set(children[path[0]], path[1:], value)
            else:
                node[2] = value
            return node
        own = node[1]
        if kind == LEAF and own == path:
            node[2], node[3] = value, None
            return node
        n = _common(own, path)
        if kind == EXT and n == len(own):
            node[2], node[3] = self._set(node[2], path[n:], value), None
            return node
        # The paths part at nibble n: a branch there holds both.
        children: list = [None] * 16
        branch = [BRANCH, children, b"", None]
        if kind == LEAF:
            if len(own) == n:
                branch[2] = node[2]
            else:
                children[own[n]] = [LEAF, own[n + 1:], node[2], None]
        elif len(own) == n + 1:
            children[own[n]] = node[2]
        else:
            children[own[n]] = [EXT, own[n + 1:], node[2], None]
        if len(path) == n:
            branch[2] = value
        else:
            children[path[n]] = [LEAF, path[n + 1:], value, None]
        return [EXT, path[:n], branch, None] if n else branch

    def _delete(self, node: Any, path: bytes) -> Any:
        """The node with path deleted below it, or _SAME when nothing changed (branches
        change in place, so identity would not tell)."""
        if node is None:
            return _SAME
        if type(node) is bytes:
            node = self._load(node)
            new = self._delete(node, path)
            return new
        kind = node[0]
        if kind == LEAF:
            return None if node[1] == path else _SAME
        if kind == EXT:
            own = node[1]
            if path[:len(own)] != own:
                return _SAME
            child = self._delete(node[2], path[len(own):])
            if child is _SAME:
                return _SAME
            return self._prefixed(own, child)
        children = node[1]
        if path:
            new = self._delete(children[path[0]], path[1:])
            if new is _SAME:
                return _SAME
            children[path[0]] = new
        else:
            if not node[2]:
                return _SAME
            node[2] = b""
        node[3] = None
        live = [i for i, c in enumerate(children) if c is not None]
        if len(live) + bool(node[2]) > 1:
            return node
        if not live:
            return [LEAF, b"", node[2], None] if node[2] else None
        return self._prefixed(bytes((live[0],)), children[live[0]])

    def _prefixed(self, prefix: bytes, child: Any) -> Any:
        """`child` reached through `prefix`: merged into a leaf or an extension."""
        if child is None:
            return None
        if type(child) is bytes:
            child = self._load(child)
        if child[0] == BRANCH:
            return [EXT, prefix, child, None]
        return [child[0], prefix + child[1], child[2], None]

    # --- hashing ---------------------------------------------------------------------------
    @property
    def root_hash(self) -> bytes:
        if self._root_hash is None:
            root = self._root
            if root is None:
                self._root_hash = EMPTY_TRIE_ROOT
            elif type(root) is bytes:
                self._root_hash = root[1:]
            else:
                encoded = self._encode(root)
                digest = keccak(encoded)
                self.db[digest] = encoded  # the root is stored by hash at any size
                _remember(digest, root)
                self._root_hash = digest
        return self._root_hash

    def _encode(self, node: list) -> bytes:
        kind = node[0]
        if kind == LEAF:
            return rlp_list((rlp_bytes(_compact(node[1], True)), rlp_bytes(node[2])))
        if kind == EXT:
            return rlp_list((rlp_bytes(_compact(node[1], False)), self._ref(node[2])))
        return rlp_list([*[self._ref(c) for c in node[1]], rlp_bytes(node[2])])

    def _ref(self, child: Any) -> bytes:
        if child is None:
            return _BLANK
        if type(child) is bytes:
            return child
        ref = child[3]
        if ref is None:
            encoded = self._encode(child)
            if len(encoded) < 32:
                ref = encoded
            else:
                digest = keccak(encoded)
                self.db[digest] = encoded
                _remember(digest, child)
                ref = b"\xa0" + digest
            child[3] = ref
        return ref


def _remember(digest: bytes, node: list) -> None:
    """Keep the shape of a node just written, so that the next block's trie (and
    `reachable`) need not decode it again. A node with an embedded child is not kept."""
    kind = node[0]
    if kind == BRANCH:
        refs = []
        for c in node[1]:
            if c is None:
                refs.append(None)
            elif type(c) is bytes:
                refs.append(c)
            elif c[3] is not None and len(c[3]) == 33:
                refs.append(c[3])
            else:
                return
        shape: tuple = (BRANCH, tuple(refs), node[2])
    elif kind == EXT:
        c = node[2]
        ref = c if type(c) is bytes else c[3]
        if ref is None or len(ref) != 33:
            return
        shape = (EXT, node[1], ref)
    else:
        shape = (LEAF, node[1], node[2])
    if len(_DECODED) >= DECODED_CACHE_LIMIT:
        _DECODED.clear()
    _DECODED[digest] = shape


def _shape(item: list) -> tuple | None:
    """A decoded node as an immutable (kind, a, b) to share between tries; None when it
    embeds a child node (those are decoded afresh)."""
    if len(item) == 17:
        children = []
        for c in item[:16]:
            if isinstance(c, list):
                return None
            if c == b"":
                children.append(None)
            elif len(c) == 32:
                children.append(b"\xa0" + c)
            else:
                raise RLPError(f"a child reference of {len(c)} bytes")
        if not isinstance(item[16], bytes):
            raise RLPError("a branch value that is not a string")
        return BRANCH, tuple(children), item[16]
    if len(item) == 2:
        if not isinstance(item[0], bytes):
            raise RLPError("a node path that is not a string")
        path, leaf = _uncompact(item[0])
        if leaf:
            return LEAF, path, item[1]
        child = item[1]
        if isinstance(child, list):
            return None
        if len(child) != 32:
            raise RLPError(f"a child reference of {len(child)} bytes")
        return EXT, path, b"\xa0" + child
    raise RLPError(f"a trie node of {len(item)} items")


def clear_node_cache() -> None:
    """Forget every decoded node (they are read again from their node maps)."""
    _DECODED.clear()


def _common(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def trie_get(db: Mapping[bytes, bytes], root: bytes, key: bytes) -> bytes:
    """The value at key in the trie rooted at root (b"" if absent); TrieNodeMissing if
    the map lacks a node on the way."""
    return Trie(db, root).get(key)  # type: ignore[arg-type]


# --- the node store ------------------------------------------------------------------------
LOG_LIMIT = 20_000  # logged nodes that are moved into trie_nodes together (~3 MB held)
_LENGTH = 4  # bytes of a node's length in a trie_log row


def pack_nodes(nodes: Mapping[bytes, bytes]) -> bytes:
    """One trie_log row: each node as its hash, its length and its encoding."""
    return b"".join(h + len(n).to_bytes(_LENGTH, "big") + n for h, n in nodes.items())


def unpack_nodes(row: bytes) -> dict[bytes, bytes]:
    nodes, at, end = {}, 0, len(row)
    while at < end:
        h = row[at:at + 32]
        length = int.from_bytes(row[at + 32:at + 32 + _LENGTH], "big")
        at += 32 + _LENGTH
        nodes[h] = row[at:at + length]
        at += length
    if at != end:
        raise ValueError("a truncated trie_log row")
    return nodes


class TrieNodeStore:
    """The committed nodes: read from the log and the table and cached, written inside the
    caller's transaction, remembered once that transaction has committed.

    A commit appends its new nodes to trie_log as one row, written at the end of the
    table: one page, where a row per node in trie_nodes, keyed by a hash, dirties a page
    per node (15 of the 29 pages a token transfer's block wrote, ~0.2 ms of its 1.1). Once
    LOG_LIMIT nodes are logged, a commit moves them into trie_nodes in hash order and
    empties the log. The logged nodes are held in memory, read from the log on first
    use; nodes only ever move from the log to the table, so a reader on its own
    connection finds every node of a root it read, whichever commits came between."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._cache: dict[bytes, bytes] = {}
        self._logged: dict[bytes, bytes] | None = None  # None: not read yet
        self._moving = False  # the transaction under way moves the log into the table

    def _log(self) -> dict[bytes, bytes]:
        logged = self._logged
        if logged is None:
            logged = {}
            for (row,) in self._db.execute("SELECT nodes FROM trie_log ORDER BY id"):
                logged.update(unpack_nodes(row))
            self._logged = logged
        return logged

    def load(self, node_hash: bytes) -> bytes:
        """The committed node, through the cache; KeyError if there is none."""
        node = self._cache.get(node_hash)
        if node is None:
            node = self._log().get(node_hash)
            if node is not None:
                return node
            row = self._db.execute("SELECT node FROM trie_nodes WHERE hash = ?",
                                   (node_hash,)).fetchone()
            if row is None:
                # A reader's copy of the log may predate the commit that logged it.
                self._logged = None
                node = self._log().get(node_hash)
                if node is None:
                    raise KeyError(node_hash)
                return node
            if len(self._cache) >= NODE_CACHE_LIMIT:
                self._cache.clear()
            node = self._cache[node_hash] = row[0]
        return node

    def pending(self) -> PendingNodes:
        """A fresh node map for a trie over the committed nodes."""
        return PendingNodes(self)

    def write(self, nodes: Mapping[bytes, bytes]) -> None:
        """Write the nodes; the caller's transaction makes them committed."""
        logged = self._log()
        self._moving = len(logged) + len(nodes) > LOG_LIMIT
        if self._moving:
            every = {**logged, **nodes}
            self._db.executemany("INSERT OR IGNORE INTO trie_nodes VALUES (?, ?)",
                                 sorted(every.items()))
            self._db.execute("DELETE FROM trie_log")
        elif nodes:
            self._db.execute("INSERT INTO trie_log (nodes) VALUES (?)", (pack_nodes(nodes),))

    def committed(self, nodes: Mapping[bytes, bytes]) -> None:
        """The nodes written by a transaction that has committed: the next commit's paths
        start with them, so they go to the cache (and the log's copy in memory)."""
        if self._moving:
            self._moving = False
            self._logged = {}
        else:
            self._log().update(nodes)
        if len(self._cache) + len(nodes) >= NODE_CACHE_LIMIT:
            self._cache.clear()
        self._cache.update(nodes)


class PendingNodes(MutableMapping):
    """The node map a trie works on: committed nodes from the store, new ones held in
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
        # A non-pruning trie never deletes, and committed nodes may be shared by several
        # tries (two contracts with the same slot), so none is ever removed.
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
        shape = _DECODED.get(node_hash)
        if shape is None:
            _child_hashes(rlp_decode(node), stack)
        elif shape[0] == BRANCH:
            stack.extend(ref[1:] for ref in shape[1] if ref is not None)
        elif shape[0] == EXT:
            stack.append(shape[2][1:])
    return keep


def _child_hashes(items: list, out: list) -> None:
    """Append the hashes a decoded node refers to (embedded children searched too)."""
    if len(items) == 17:
        for c in items[:16]:
            if isinstance(c, list):
                _child_hashes(c, out)
            elif len(c) == 32:
                out.append(c)
    elif len(items) == 2 and not items[0][0] & 0x20:  # an extension, not a leaf
        child = items[1]
        if isinstance(child, list):
            _child_hashes(child, out)
        elif len(child) == 32:
            out.append(child)


__all__ = ["DECODED_CACHE_LIMIT", "LOG_LIMIT", "NODE_CACHE_LIMIT", "PendingNodes", "RLPError",
           "Trie", "TrieNodeMissing", "TrieNodeStore", "clear_node_cache", "keccak", "nibbles",
           "pack_nodes", "reachable", "rlp_bytes", "rlp_decode", "rlp_encode", "rlp_int",
           "rlp_list", "trie_get", "unpack_nodes"]
