"""SqliteBackend: the persistent state backend, and the chain's blocks, transactions,
receipts and logs, in one SQLite database (the standard library's sqlite3: an embedded,
transactional, crash-safe store that needs no server and no extra dependency).

The working state lives in memory, as MemoryBackend's (a local dev chain's state is
small, and Anvil keeps its own in memory too); the database is its durable copy. Every
change since the last block is in the undo log, under a base snapshot that stays live
between blocks, so `commit_block` knows exactly which accounts and slots to write and
`discard` is a revert. `commit_block` writes those state changes and the block's records in
one SQLite transaction: a crash at any moment leaves the last committed block whole and
nothing of the next.

Durability: WAL journal with synchronous=NORMAL. A committed block survives the process
being killed at any point; after a power loss the last blocks may be lost but the database
is never corrupt or partial (pass durable=True for synchronous=FULL, an fsync per block).

Not thread-safe: callers serialize access (the chain holds a lock); the connection is
opened with check_same_thread=False because the engine calls back on its own thread.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import rlp
from eth_hash.auto import keccak
from trie import HexaryTrie

from .backend import EMPTY_CODE_HASH, ZERO32, Account, check_account, check_address
from .memory import _ACCOUNT, _FIELD, _SLOT, MemoryBackend
from .root import account_rlp

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE accounts (address BLOB PRIMARY KEY, nonce INTEGER NOT NULL,
                       balance BLOB NOT NULL, code_hash BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE code (hash BLOB PRIMARY KEY, code BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE storage (address BLOB NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
                      PRIMARY KEY (address, key)) WITHOUT ROWID;
CREATE TABLE blocks (number INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE,
                     parent_hash BLOB NOT NULL, header BLOB NOT NULL);
CREATE TABLE transactions (hash BLOB PRIMARY KEY, block_number INTEGER NOT NULL,
                           idx INTEGER NOT NULL, raw BLOB NOT NULL, receipt BLOB NOT NULL);
CREATE INDEX transactions_block ON transactions (block_number, idx);
CREATE TABLE logs (block_number INTEGER NOT NULL, log_index INTEGER NOT NULL,
                   tx_index INTEGER NOT NULL, tx_hash BLOB NOT NULL, address BLOB NOT NULL,
                   topic0 BLOB, topic1 BLOB, topic2 BLOB, topic3 BLOB, data BLOB NOT NULL,
                   PRIMARY KEY (block_number, log_index)) WITHOUT ROWID;
CREATE INDEX logs_address ON logs (address, block_number);
CREATE INDEX logs_topic0 ON logs (topic0, block_number);
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


class StateDatabaseError(ValueError):
    """The file is not a usable chain database (not SQLite, not ours, a newer schema)."""


@dataclass(frozen=True)
class StoredLog:
    block_number: int
    block_hash: bytes
    tx_index: int
    tx_hash: bytes
    log_index: int  # within the block
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True)
class StoredTx:
    hash: bytes
    block_number: int
    block_hash: bytes
    index: int
    raw: bytes  # the signed transaction, opaque to the store
    receipt: bytes  # an encoded receipt, opaque to the store


@dataclass(frozen=True)
class BlockData:
    number: int
    hash: bytes
    parent_hash: bytes
    header: bytes  # opaque encoded header
    transactions: tuple[StoredTx, ...]
    logs: tuple[StoredLog, ...]


class SqliteBackend(MemoryBackend):
    """A StateBackend persisted block by block in SQLite, plus the chain's records."""

    def __init__(self, path: str | os.PathLike, *, durable: bool = False) -> None:
        super().__init__()
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False,
                                       isolation_level=None)
            self._open(durable)
        except sqlite3.DatabaseError as exc:
            if hasattr(self, "_db"):
                self._db.close()
            raise StateDatabaseError(f"{path}: not a usable chain database: {exc}") from None
        except StateDatabaseError:
            self._db.close()
            raise
        self._load()
        self._pending_meta: dict[str, bytes] = {}
        # State-root caches over the committed state (rebuilt lazily when dropped).
        self._storage_tries: dict[bytes, HexaryTrie] = {}
        self._account_trie: HexaryTrie | None = None
        # What the tries were updated with since the last block: re-applied from the
        # current state at every state_root, so that a revert after one is not missed.
        self._applied: tuple[set, set, set] = (set(), set(), set())
        self._base = self.snapshot()

    # --- opening --------------------------------------------------------------------------
    def _open(self, durable: bool) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if version > SCHEMA_VERSION:
            raise StateDatabaseError(f"{self.path}: schema version {version} is newer than "
                                     f"this program's {SCHEMA_VERSION}")
        if version == 0:
            if tables:
                raise StateDatabaseError(f"{self.path}: an SQLite database, but not a chain "
                                         f"database (tables {sorted(tables)})")
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript("BEGIN;" + _SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION};"
                             "COMMIT;")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")

    def _load(self) -> None:
        db = self._db
        codes = dict(db.execute("SELECT hash, code FROM code"))
        for address, nonce, balance, code_hash in db.execute(
                "SELECT address, nonce, balance, code_hash FROM accounts"):
            code = b"" if code_hash == EMPTY_CODE_HASH else codes[code_hash]
            self._accounts[address] = Account(nonce, int.from_bytes(balance, "big"), code)
        for address, key, value in db.execute("SELECT address, key, value FROM storage"):
            self._accounts[address].storage[key] = value

    @classmethod
    def from_accounts(cls, accounts: Mapping[bytes, Account]) -> SqliteBackend:
        backend = cls(":memory:")
        backend.revert(backend._base)
        for address, acc in accounts.items():
            backend._accounts[check_address(address)] = check_account(acc)
        with backend._db:
            addresses = {check_address(a) for a in accounts}
            backend._write_accounts(backend._db, addresses, replaced=addresses, slots=set())
        backend._base = backend.snapshot()
        return backend

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- pending changes ------------------------------------------------------------------
    def _live_user_snapshots(self) -> int:
        return len(self._snap_ids) - 1

    def _changes(self) -> tuple[set[bytes], set[bytes], set[tuple[bytes, bytes]]]:
        """(accounts changed, accounts replaced or removed, slots written) since the base."""
        changed: set[bytes] = set()
        replaced: set[bytes] = set()
        slots: set[tuple[bytes, bytes]] = set()
        for entry in self._journal:
            kind, address = entry[0], entry[1]
            if kind == _ACCOUNT:
                replaced.add(address)
                changed.add(address)
            elif kind == _FIELD:
                changed.add(address)
            elif kind == _SLOT:
                changed.add(address)
                slots.add((address, entry[2]))
        return changed, replaced, slots

    def discard(self) -> None:
        """Drop every change since the last committed block (and any live snapshot)."""
        self.revert(self._base)
        self._touched.clear()
        self._pending_meta.clear()
        if self._applied[0]:
            for address in self._applied[0]:
                self._storage_tries.pop(address, None)
            self._account_trie = None
        self._applied = (set(), set(), set())
        self._base = self.snapshot()

    def set_meta(self, key: str, value: bytes) -> None:
        """Written with the next commit_block."""
        self._pending_meta[key] = bytes(value)

    def get_meta(self, key: str) -> bytes | None:
        if key in self._pending_meta:
            return self._pending_meta[key]
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    # --- state root -----------------------------------------------------------------------
    def state_root(self) -> bytes:
        """state.root.state_root(self), updating cached tries with what changed since the
        last block instead of rebuilding them."""
        changed, replaced, slots = self._changes()
        changed |= self._applied[0]
        replaced |= self._applied[1]
        slots |= self._applied[2]
        self._applied = (set(changed), set(replaced), set(slots))
        if self._account_trie is None:
            self._account_trie = HexaryTrie({})
            changed = set(self._accounts) | changed
            self._storage_tries.clear()
        for address in replaced:
            self._storage_tries.pop(address, None)
        by_account: dict[bytes, list[bytes]] = {}
        for address, key in slots:
            by_account.setdefault(address, []).append(key)
        for address in changed:
            acc = self._accounts.get(address)
            if acc is None:
                self._storage_tries.pop(address, None)
                self._account_trie.delete(keccak(address))
                continue
            t = self._storage_tries.get(address)
            if t is None:
                t = self._storage_tries[address] = _storage_trie(acc.storage)
            else:
                for key in by_account.get(address, ()):
                    value = acc.storage.get(key)
                    if value is None:
                        t.delete(keccak(key))
                    else:
                        t[keccak(key)] = rlp.encode(value.lstrip(b"\0"))
            self._account_trie[keccak(address)] = account_rlp(
                acc.nonce, acc.balance, t.root_hash, self.get_code_hash(address))
        return self._account_trie.root_hash

    # --- blocks ---------------------------------------------------------------------------
    def head(self) -> int | None:
        return self._db.execute("SELECT MAX(number) FROM blocks").fetchone()[0]

    def commit_block(self, block: BlockData) -> None:
        """Write the pending state and the block in one transaction (all or nothing)."""
        if self._live_user_snapshots():
            raise ValueError("commit_block with a live snapshot")
        head = self.head()
        if head is None:
            if block.number != 0:
                raise ValueError(f"the first block is number 0, not {block.number}")
        else:
            if block.number != head + 1:
                raise ValueError(f"block {block.number} does not follow the head {head}")
            parent = self._db.execute("SELECT hash FROM blocks WHERE number = ?",
                                      (head,)).fetchone()[0]
            if block.parent_hash != parent:
                raise ValueError(f"block {block.number}'s parent hash is not block {head}'s")
        changed, replaced, slots = self._changes()
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            self._write_accounts(db, changed, replaced, slots)
            db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?)",
                       (block.number, block.hash, block.parent_hash, block.header))
            db.executemany("INSERT INTO transactions VALUES (?, ?, ?, ?, ?)",
                           [(t.hash, block.number, t.index, t.raw, t.receipt)
                            for t in block.transactions])
            db.executemany(
                "INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(block.number, x.log_index, x.tx_index, x.tx_hash, x.address,
                  *(list(x.topics) + [None] * (4 - len(x.topics))), x.data)
                 for x in block.logs])
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           list(self._pending_meta.items()))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._pending_meta.clear()
        self._applied = (set(), set(), set())
        self._journal.clear()
        self._snap_ids.clear()
        self._snap_marks.clear()
        self._touched.clear()
        self._base = self.snapshot()

    def _write_accounts(self, db: sqlite3.Connection, changed: set[bytes],
                        replaced: set[bytes], slots: set[tuple[bytes, bytes]]) -> None:
        for address in sorted(changed):
            acc = self._accounts.get(address)
            if address in replaced or acc is None:
                db.execute("DELETE FROM storage WHERE address = ?", (address,))
            if acc is None:
                db.execute("DELETE FROM accounts WHERE address = ?", (address,))
                continue
            code_hash = self.get_code_hash(address)
            if acc.code:
                db.execute("INSERT OR IGNORE INTO code VALUES (?, ?)", (code_hash, acc.code))
            db.execute("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?)",
                       (address, acc.nonce, acc.balance.to_bytes(32, "big"), code_hash))
            if address in replaced:
                db.executemany("INSERT INTO storage VALUES (?, ?, ?)",
                               [(address, k, v) for k, v in acc.storage.items()])
        for address, key in sorted(slots):
            if address in replaced:
                continue
            acc = self._accounts.get(address)
            value = None if acc is None else acc.storage.get(key)
            if value is None:
                db.execute("DELETE FROM storage WHERE address = ? AND key = ?", (address, key))
            else:
                db.execute("INSERT OR REPLACE INTO storage VALUES (?, ?, ?)",
                           (address, key, value))

    def _block_from_row(self, row) -> BlockData:
        number, block_hash, parent_hash, header = row
        txs = tuple(StoredTx(h, number, block_hash, idx, raw, receipt)
                    for h, idx, raw, receipt in self._db.execute(
                        "SELECT hash, idx, raw, receipt FROM transactions "
                        "WHERE block_number = ? ORDER BY idx", (number,)))
        return BlockData(number, block_hash, parent_hash, header, txs,
                         tuple(self.logs(number, number)))

    def block(self, number: int) -> BlockData | None:
        row = self._db.execute("SELECT number, hash, parent_hash, header FROM blocks "
                               "WHERE number = ?", (number,)).fetchone()
        return None if row is None else self._block_from_row(row)

    def block_by_hash(self, block_hash: bytes) -> BlockData | None:
        row = self._db.execute("SELECT number, hash, parent_hash, header FROM blocks "
                               "WHERE hash = ?", (bytes(block_hash),)).fetchone()
        return None if row is None else self._block_from_row(row)

    def transaction(self, tx_hash: bytes) -> StoredTx | None:
        row = self._db.execute(
            "SELECT t.hash, t.block_number, b.hash, t.idx, t.raw, t.receipt "
            "FROM transactions t JOIN blocks b ON b.number = t.block_number "
            "WHERE t.hash = ?", (bytes(tx_hash),)).fetchone()
        return None if row is None else StoredTx(*row)

    def logs(self, from_block: int, to_block: int, addresses: Sequence[bytes] | None = None,
             topics: Sequence[None | bytes | Sequence[bytes]] = ()) -> list[StoredLog]:
        """eth_getLogs: addresses OR'd; topics by position, None a wildcard, a list an OR."""
        sql = ["SELECT l.block_number, b.hash, l.tx_index, l.tx_hash, l.log_index, l.address,"
               " l.topic0, l.topic1, l.topic2, l.topic3, l.data FROM logs l"
               " JOIN blocks b ON b.number = l.block_number"
               " WHERE l.block_number BETWEEN ? AND ?"]
        args: list = [from_block, to_block]
        if addresses is not None:
            sql.append(f" AND l.address IN ({','.join('?' * len(addresses))})")
            args.extend(bytes(a) for a in addresses)
        if len(topics) > 4:
            raise ValueError("at most 4 topic positions")
        for i, want in enumerate(topics):
            if want is None:
                continue
            values = [want] if isinstance(want, bytes | bytearray) else list(want)
            sql.append(f" AND l.topic{i} IN ({','.join('?' * len(values))})")
            args.extend(bytes(v) for v in values)
        sql.append(" ORDER BY l.block_number, l.log_index")
        return [StoredLog(n, bh, ti, th, li, addr,
                          tuple(t for t in (t0, t1, t2, t3) if t is not None), data)
                for n, bh, ti, th, li, addr, t0, t1, t2, t3, data
                in self._db.execute("".join(sql), args)]


def _storage_trie(storage: Mapping[bytes, bytes]) -> HexaryTrie:
    t = HexaryTrie({})
    for key, value in storage.items():
        if value != ZERO32:
            t[keccak(key)] = rlp.encode(value.lstrip(b"\0"))
    return t


__all__ = ["BlockData", "SqliteBackend", "StateDatabaseError", "StoredLog", "StoredTx"]
