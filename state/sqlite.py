"""SqliteBackend: the persistent state backend, in one SQLite database (the standard
library's sqlite3: embedded, transactional, crash-safe, no server and no extra dependency).

Committed state is the database's; it is read on demand (an account at a time, a storage
slot at a time) and cached, which is safe because only this object writes the file (its
owner keeps other processes out). The working state since the last commit is the pending
overlay (state/overlay.py). `commit_state` writes the overlay in one SQLite transaction,
with whatever a caller adds to that transaction (a store keeping its own tables in this
file): a crash at any moment leaves the last commit whole and nothing of the next.

State roots are incremental: every trie node is kept in the node store (state/trie_store.py),
each account row holds its storage root, and a root over pending changes updates only the
paths they touch. The node table grows with every commit (0.8 kB for a value transfer on
a new state, 9 kB for a commit writing 10 slots of a contract with 2000), the price of
roots that cost milliseconds, after a restart too.

Durability: WAL journal. With synchronous=NORMAL (the default), a commit is in the WAL file
before commit_state returns, so it survives the process being killed at any point; after
an OS crash or power loss the last commits may be lost, but the database is never corrupt
or partial. durable=True selects synchronous=FULL: an fsync per commit (its cost is the
disk's), and commits survive power loss too.

Not thread-safe: the backend must not be used from two threads at once (its owner
serializes access). The connection is opened with check_same_thread=False because that
serialized access comes from different threads (a server's request handlers, the engine's).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping

from .backend import (
    EMPTY_CODE_HASH,
    EMPTY_TRIE_ROOT,
    ZERO_BYTES32,
    Account,
    PersistentBackend,
    check_account,
    check_address,
    check_bytes,
)
from .errors import InvalidStateValue
from .overlay import PendingOverlay, Record
from .root import account_rlp, slot_rlp
from .sqlite_schema import APPLICATION_ID, SCHEMA_VERSION, StateDatabaseError, open_database
from .trie_store import Trie, TrieNodeStore, keccak, reachable

# The committed caches are only caches: dropped whole when they pass these sizes.
_CACHE_LIMIT = 200_000

# Writes a caller adds to commit_state's transaction, given the connection.
ExtraWrites = Callable[[sqlite3.Connection], None]


class SqliteBackend(PendingOverlay, PersistentBackend):
    """A PersistentBackend in SQLite.

    Same semantics as MemoryBackend for every StateBackend method. Changes are pending
    until `commit_state` (which also clears the touched set) or `discard`. Must not be
    used from two threads at once.
    """

    def __init__(self, path: str | os.PathLike = ":memory:", *, durable: bool = False) -> None:
        """Open the database at path, creating it if the file is absent or empty.

        durable=True fsyncs every commit (synchronous=FULL); the default survives process
        crashes but may lose the last commits on power loss (see the module docstring).
        Raises StateDatabaseError for a file that is not a state database of this schema.
        """
        self.path = os.fspath(path)
        self._db = open_database(self.path, durable=durable)
        row = self._db.execute("SELECT root FROM state_root").fetchone()
        self._root = EMPTY_TRIE_ROOT if row is None else row[0]
        # Committed caches: address -> Record (None: absent); address -> {key: value};
        # code by hash. The node store caches the committed trie nodes.
        self._cache: dict[bytes, Record | None] = {}
        self._slots: dict[bytes, dict[bytes, bytes]] = {}
        self._codes: dict[bytes, bytes] = {}
        self._nodes = TrieNodeStore(self._db)
        self._pending_meta: dict[str, bytes] = {}
        PendingOverlay.__init__(self)
        # A root computed by state_root() is reused by commit_state when the overlay has
        # not changed in between (the usual pattern: ask for the root, then commit it).
        self._root_parts: tuple[int, bytes, dict[bytes, bytes], dict[bytes, bytes]] | None
        self._root_parts = None

    @classmethod
    def from_accounts(cls, accounts: Mapping[bytes, Account]) -> SqliteBackend:
        """An in-memory database holding copies of the accounts as committed state;
        nothing pending, journaled or touched."""
        backend = cls(":memory:")
        try:
            for address, acc in accounts.items():
                acc = check_account(acc)
                backend._pending[check_address(address)] = Record(
                    acc.nonce, acc.balance, acc.code, None, acc.storage, True)
            backend.commit_state()
        except BaseException:
            backend.close()
            raise
        return backend

    @property
    def connection(self) -> sqlite3.Connection:
        """The database connection, for a store that keeps its own tables in this file and
        writes them inside commit_state's transaction (its `write` argument). Such a store
        may read through it and run its own DDL while no commit is under way; it must not
        leave a transaction open, and must not touch this backend's tables."""
        return self._db

    def close(self) -> None:
        """Close the database; pending changes are dropped."""
        self._db.close()

    def __enter__(self) -> SqliteBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- committed state ------------------------------------------------------------------
    def _committed(self, address: bytes) -> Record | None:
        try:
            return self._cache[address]
        except KeyError:
            pass
        row = self._db.execute("SELECT nonce, balance, code_hash, storage_root FROM accounts "
                               "WHERE address = ?", (address,)).fetchone()
        acc = None
        if row is not None:
            nonce, balance, code_hash, sroot = row
            acc = Record(int.from_bytes(nonce, "big"), int.from_bytes(balance, "big"),
                         self._code(code_hash), code_hash, {}, False, sroot)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[address] = acc
        return acc

    def _code(self, code_hash: bytes) -> bytes:
        if code_hash == EMPTY_CODE_HASH:
            return b""
        code = self._codes.get(code_hash)
        if code is None:
            row = self._db.execute("SELECT code FROM code WHERE hash = ?",
                                   (code_hash,)).fetchone()
            if row is None:
                raise StateDatabaseError(f"{self.path}: code {code_hash.hex()} is missing")
            if len(self._codes) >= _CACHE_LIMIT // 100:
                self._codes.clear()
            code = self._codes[code_hash] = row[0]
        return code

    def _committed_slot(self, address: bytes, key: bytes) -> bytes:
        slots = self._slots.get(address)
        if slots is None:
            if len(self._slots) >= _CACHE_LIMIT // 10:
                self._slots.clear()
            slots = self._slots[address] = {}
        value = slots.get(key)
        if value is None:
            row = self._db.execute("SELECT value FROM storage WHERE address = ? AND key = ?",
                                   (address, key)).fetchone()
            value = ZERO_BYTES32 if row is None else row[0]
            if len(slots) >= _CACHE_LIMIT:
                slots.clear()
            slots[key] = value
        return value

    def _committed_addresses(self) -> Iterable[bytes]:
        return (row[0] for row in self._db.execute("SELECT address FROM accounts"))

    def _committed_storage(self, address: bytes) -> Iterable[tuple[bytes, bytes]]:
        return self._db.execute("SELECT key, value FROM storage WHERE address = ?",
                                (address,))

    # --- pending changes, meta ------------------------------------------------------------
    def discard(self) -> None:
        """Drop every change since the last commit: state, pending meta, the journal
        (every live snapshot ends) and the touched set."""
        self._drop_pending()
        self._pending_meta.clear()
        self._root_parts = None

    def set_meta(self, key: str, value: bytes) -> None:
        """Set a named value (an application's configuration, say); written with the next
        commit_state, dropped by discard. get_meta sees it at once."""
        if not isinstance(key, str):
            raise InvalidStateValue(f"a meta key is a str, got {type(key).__name__}")
        self._pending_meta[key] = check_bytes(value, "a meta value")

    def get_meta(self, key: str) -> bytes | None:
        if not isinstance(key, str):
            raise InvalidStateValue(f"a meta key is a str, got {type(key).__name__}")
        if key in self._pending_meta:
            return self._pending_meta[key]
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    # --- state root -----------------------------------------------------------------------
    def state_root(self) -> bytes:
        """state.root.state_root(self), computed from the committed tries by updating only
        what changed since the last commit."""
        return self._compute_root()[1]

    def _compute_root(self) -> tuple[int, bytes, dict[bytes, bytes], dict[bytes, bytes]]:
        """(version, state root, storage root of each pending account, new trie nodes)."""
        parts = self._root_parts
        if parts is not None and parts[0] == self._version:
            return parts
        nodes = self._nodes.pending()
        sroots: dict[bytes, bytes] = {}
        # The tries write only the nodes of the final tries (at root_hash), so `new` holds
        # nothing a later update replaced; commit_state still keeps only the nodes
        # reachable from the roots it writes.
        trie = Trie(nodes, self._root)
        for address, acc in self._pending.items():
            if acc is None:
                trie.delete(keccak(address))
                continue
            if acc.fresh:
                sroot = EMPTY_TRIE_ROOT
            else:
                base = self._committed(address)
                assert base is not None  # a pending record is fresh unless it was there
                sroot = base.storage_root
            if acc.storage:
                storage = Trie(nodes, sroot)
                for key, value in acc.storage.items():
                    if value != ZERO_BYTES32:
                        storage[keccak(key)] = slot_rlp(value)
                    elif not acc.fresh:
                        storage.delete(keccak(key))
                sroot = storage.root_hash
            sroots[address] = sroot
            trie[keccak(address)] = account_rlp(acc.nonce, acc.balance, sroot,
                                                self.get_code_hash(address))
        parts = self._root_parts = (self._version, trie.root_hash, sroots, nodes.new)
        return parts

    # --- commit ---------------------------------------------------------------------------
    def commit_state(self, write: ExtraWrites | None = None) -> None:
        """Write the pending state and meta values in one SQLite transaction, with
        whatever `write` writes (it is called with the connection inside that transaction,
        after the state rows); the pending changes then become the committed state, and
        the touched set is cleared.

        ValueError, with nothing written, if a snapshot is live. If writing fails (`write`
        raising included), the transaction is rolled back and the pending changes stay as
        they were: retry, or discard().
        """
        if self._snap_ids:
            raise InvalidStateValue("commit_state with a live snapshot: revert or commit it first")
        _, root, sroots, new_nodes = self._compute_root()
        new_nodes = reachable(new_nodes, [root, *sroots.values()])
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            self._write_state(root, sroots, new_nodes)
            if write is not None:
                write(db)
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           list(self._pending_meta.items()))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the original error is the one to report
            raise
        # Written: the overlay becomes the committed state (plain dict updates only, so
        # nothing can fail half-way through here).
        for address, acc in self._pending.items():
            if acc is None:
                self._cache[address] = None
                self._slots.pop(address, None)
                continue
            code_hash = self.get_code_hash(address)
            if acc.code:
                self._codes[code_hash] = acc.code
            self._cache[address] = Record(acc.nonce, acc.balance, acc.code, code_hash, {},
                                          False, sroots[address])
            slots = None if acc.fresh else self._slots.get(address)
            if slots is None:
                slots = self._slots[address] = {}
            slots.update(acc.storage)  # a fresh account's unlisted slots read from the table
        self._nodes.committed(new_nodes)
        self._root = root
        self.discard()  # what was pending is committed now

    def _write_state(self, root: bytes, sroots: dict[bytes, bytes],
                     new_nodes: dict[bytes, bytes]) -> None:
        db = self._db
        gone, upserts, codes, slot_puts, slot_dels = [], [], [], [], []
        for address, acc in self._pending.items():
            base = self._committed(address)
            if acc is None:
                if base is not None:
                    gone.append((address,))
                continue
            if acc.fresh and base is not None:
                gone.append((address,))  # its old storage rows; the account row is replaced
            code_hash = self.get_code_hash(address)
            if acc.code and (base is None or base.code_hash != code_hash):
                codes.append((code_hash, acc.code))
            upserts.append((address, acc.nonce.to_bytes(8, "big"),
                            acc.balance.to_bytes(32, "big"), code_hash, sroots[address]))
            for key, value in acc.storage.items():
                if value != ZERO_BYTES32:
                    slot_puts.append((address, key, value))
                elif not acc.fresh:
                    slot_dels.append((address, key))
        db.executemany("DELETE FROM storage WHERE address = ?", gone)
        db.executemany("DELETE FROM accounts WHERE address = ?",
                       [g for g in gone if self._pending[g[0]] is None])
        db.executemany("INSERT OR IGNORE INTO code VALUES (?, ?)", codes)
        db.executemany("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?)", upserts)
        db.executemany("DELETE FROM storage WHERE address = ? AND key = ?", slot_dels)
        db.executemany("INSERT OR REPLACE INTO storage VALUES (?, ?, ?)", slot_puts)
        self._nodes.write(new_nodes)
        db.execute("INSERT OR REPLACE INTO state_root VALUES (0, ?)", (root,))


__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "ExtraWrites", "SqliteBackend",
           "StateDatabaseError"]
