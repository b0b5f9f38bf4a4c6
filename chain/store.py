"""The chain's block store: blocks, their transactions and receipts, and their logs indexed
for eth_getLogs, committed block by block together with the state the block leaves.

`BlockStore` (evmc_bridge.abc, with the records BlockData, StoredTx, StoredLog; all
re-exported here) is the contract the chain depends on; `SqliteBlockStore` keeps the records
in the state database's file, beside SqliteBackend's tables, and writes each block inside
the backend's commit transaction (`SqliteBackend.commit_state(write=...)`): a crash at any
moment leaves the last committed block whole, with its state, and nothing of the next.

Readers never wait for the writer: `read_pool().session()` opens a read session on a
connection of its own (pooled), which sees the last committed block and its state as of
the session's first read (SQLite's WAL snapshot), however long it lasts and whatever is
committed meanwhile.

The writer never checkpoints either: SQLite's automatic checkpoint (every 1,000 pages of
WAL) runs inside the commit that passes the mark, fsyncs included, which stalled one
block in ~50 by milliseconds. A store over a file turns it off on its connection and
checkpoints from a thread of its own, with a connection of its own, every
CHECKPOINT_COMMITS commits (PASSIVE: it never blocks the writer or a reader). Durability
is the backend's either way: a committed block is in the WAL when commit_block returns.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from evmc_bridge.abc import BlockData, BlockStore, StoredLog, StoredTx
from state.backend import check_address, check_bytes, check_hash, check_uint
from state.sqlite import SqliteBackend, StateDatabaseError

from .errors import InvalidBlockError

_SQL_INT_LIMIT = 1 << 63  # SQLite integers are signed 64-bit

# These tables were part of the state database's schema version 2 from the start, with
# these very definitions: a file written before the block store moved here opens as it
# was, and a new one gets them when the store first opens it.
_SCHEMA = """
CREATE TABLE blocks (number INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE,
                     parent_hash BLOB NOT NULL, header BLOB NOT NULL);
CREATE TABLE transactions (hash BLOB PRIMARY KEY, block_number INTEGER NOT NULL,
                           idx INTEGER NOT NULL, raw BLOB NOT NULL, receipt BLOB NOT NULL,
                           UNIQUE (block_number, idx)) WITHOUT ROWID;
CREATE TABLE logs (block_number INTEGER NOT NULL, log_index INTEGER NOT NULL,
                   tx_index INTEGER NOT NULL, tx_hash BLOB NOT NULL, address BLOB NOT NULL,
                   topic0 BLOB, topic1 BLOB, topic2 BLOB, topic3 BLOB, data BLOB NOT NULL,
                   PRIMARY KEY (block_number, log_index)) WITHOUT ROWID;
-- eth_getLogs over a long range filters by emitter or event signature: both indexed, in
-- (value, block) order so that a range is one index scan.
CREATE INDEX logs_address ON logs (address, block_number, log_index);
CREATE INDEX logs_topic0 ON logs (topic0, block_number, log_index);
"""
_TABLES = ("blocks", "transactions", "logs")
_READERS_KEPT = 8  # idle read connections kept for the next sessions
CHECKPOINT_COMMITS = 200  # commits between background checkpoints (~2-4 MB of WAL)


class Checkpointer:
    """Checkpoints a WAL database from its own thread and connection, when asked."""

    def __init__(self, path: str) -> None:
        self._uri = f"file:{quote(str(Path(path).resolve()))}?mode=rw"
        self._wake = threading.Event()
        self._stop = False
        self.checkpoints = 0
        self._thread = threading.Thread(target=self._run, name="ewasm-checkpoint",
                                        daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        db = None
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop:
                break
            try:
                if db is None:
                    db = sqlite3.connect(self._uri, uri=True, isolation_level=None,
                                         check_same_thread=False)
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.checkpoints += 1
            except sqlite3.Error:
                pass  # busy or gone: the next request tries again
        if db is not None:
            db.close()

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=30)


class BlockQueries:
    """The store's queries over one connection: the writer's, or a reader's."""

    _db: sqlite3.Connection

    def _block_from_row(self, row: tuple) -> BlockData:
        number, block_hash, parent_hash, header = row
        txs = tuple(StoredTx(h, number, block_hash, idx, raw, receipt)
                    for h, idx, raw, receipt in self._db.execute(
                        "SELECT hash, idx, raw, receipt FROM transactions "
                        "WHERE block_number = ? ORDER BY idx", (number,)))
        return BlockData(number, block_hash, parent_hash, header, txs,
                         tuple(self.logs(number, number)))

    def block(self, number: int) -> BlockData | None:
        if type(number) is not int:
            raise InvalidBlockError(f"a block number is an int, got {number!r}")
        if not 0 <= number < _SQL_INT_LIMIT:
            return None
        row = self._db.execute("SELECT number, hash, parent_hash, header FROM blocks "
                               "WHERE number = ?", (number,)).fetchone()
        return None if row is None else self._block_from_row(row)

    def block_by_hash(self, block_hash: bytes) -> BlockData | None:
        block_hash = check_hash(block_hash, "a block hash")
        row = self._db.execute("SELECT number, hash, parent_hash, header FROM blocks "
                               "WHERE hash = ?", (block_hash,)).fetchone()
        return None if row is None else self._block_from_row(row)

    def header(self, number: int) -> tuple[bytes, bytes] | None:
        """(hash, encoded header) of block `number`, without its transactions and logs."""
        if type(number) is not int or not 0 <= number < _SQL_INT_LIMIT:
            return None
        row = self._db.execute("SELECT hash, header FROM blocks WHERE number = ?",
                               (number,)).fetchone()
        return None if row is None else (row[0], row[1])

    def last_hashes(self, count: int) -> list[tuple[int, bytes]]:
        """(number, hash) of the `count` highest blocks."""
        return self._db.execute("SELECT number, hash FROM blocks ORDER BY number DESC "
                                "LIMIT ?", (count,)).fetchall()

    def head_number(self) -> int | None:
        row = self._db.execute("SELECT MAX(number) FROM blocks").fetchone()
        return row[0]

    def transaction(self, tx_hash: bytes) -> StoredTx | None:
        tx_hash = check_hash(tx_hash, "a transaction hash")
        row = self._db.execute(
            "SELECT t.hash, t.block_number, b.hash, t.idx, t.raw, t.receipt "
            "FROM transactions t JOIN blocks b ON b.number = t.block_number "
            "WHERE t.hash = ?", (tx_hash,)).fetchone()
        return None if row is None else StoredTx(*row)

    def logs(self, from_block: int, to_block: int, addresses: Sequence[bytes] | None = None,
             topics: Sequence[None | bytes | Sequence[bytes]] = ()) -> list[StoredLog]:
        lo = check_uint(from_block, "from_block", 1 << 64)
        hi = check_uint(to_block, "to_block", 1 << 64)
        hi = min(hi, _SQL_INT_LIMIT - 1)
        sql = ["SELECT l.block_number, b.hash, l.tx_index, l.tx_hash, l.log_index, l.address,"
               " l.topic0, l.topic1, l.topic2, l.topic3, l.data FROM logs l"
               " JOIN blocks b ON b.number = l.block_number"
               " WHERE l.block_number BETWEEN ? AND ?"]
        args: list = [lo, hi]
        if addresses is not None:
            if isinstance(addresses, bytes | bytearray | str):
                raise InvalidBlockError("addresses is a list of addresses, not one")
            wanted = [check_address(a) for a in addresses]
            if wanted:
                sql.append(f" AND l.address IN ({','.join('?' * len(wanted))})")
                args.extend(wanted)
        if isinstance(topics, bytes | bytearray | str) or len(topics) > 4:
            raise InvalidBlockError(f"topics is a list of at most 4 positions, got {topics!r}")
        for i, want in enumerate(topics):
            if want is None:
                continue
            values = [want] if isinstance(want, bytes | bytearray) else list(want)
            if not values:
                continue
            sql.append(f" AND l.topic{i} IN ({','.join('?' * len(values))})")
            args.extend(check_hash(v, "a topic") for v in values)
        sql.append(" ORDER BY l.block_number, l.log_index")
        return [StoredLog(n, bh, ti, th, li, addr,
                          tuple(t for t in (t0, t1, t2, t3) if t is not None), data)
                for n, bh, ti, th, li, addr, t0, t1, t2, t3, data
                in self._db.execute("".join(sql), args)]


class BlockReader(BlockQueries):
    """One read session: the store's queries, and the state tables, as committed when the
    session made its first read. `connection` is the session's (read only)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    @property
    def connection(self) -> sqlite3.Connection:
        return self._db


class ReadPool:
    """Read-only connections to a database file, each used by one session at a time."""

    def __init__(self, path: str) -> None:
        self._uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def session(self) -> Iterator[BlockReader]:
        with self._lock:
            if self._closed:
                raise InvalidBlockError("the store is closed")
            db = self._idle.pop() if self._idle else None
        if db is None:
            try:
                db = sqlite3.connect(self._uri, uri=True, check_same_thread=False,
                                     isolation_level=None)
            except sqlite3.Error as exc:
                raise StateDatabaseError(f"cannot open a reader: {exc}") from None
        db.execute("BEGIN")  # deferred: the snapshot is taken at the first read
        try:
            yield BlockReader(db)
        finally:
            try:
                db.execute("COMMIT")
            except sqlite3.Error:
                db.close()
                db = None
            if db is not None:
                with self._lock:
                    if not self._closed and len(self._idle) < _READERS_KEPT:
                        self._idle.append(db)
                        db = None
                if db is not None:
                    db.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for db in idle:
            db.close()


class SqliteBlockStore(BlockQueries, BlockStore):
    """A BlockStore in the state database's file, on SqliteBackend's connection."""

    def __init__(self, backend: SqliteBackend) -> None:
        """The store of the database backend has open; its tables are created if the
        file has none. Raises StateDatabaseError if they cannot be read."""
        self._state = backend
        self._db = db = backend.connection
        try:
            present = {r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not present.issuperset(_TABLES):
                # In one transaction, so that a crash leaves all of them or none.
                db.executescript(f"BEGIN; {_SCHEMA} COMMIT;")
            row = db.execute("SELECT number, hash FROM blocks "
                             "ORDER BY number DESC LIMIT 1").fetchone()
        except sqlite3.DatabaseError as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StateDatabaseError(f"{backend.path}: no usable block tables: "
                                     f"{exc}") from None
        self._head: tuple[int, bytes] | None = None if row is None else (row[0], row[1])
        self._checkpointer: Checkpointer | None = None
        self._commits = 0
        path = backend.path
        if path not in ("", ":memory:") and not path.startswith("file:"):
            db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = Checkpointer(path)

    def _committed(self) -> None:
        self._commits += 1
        if self._checkpointer is not None and self._commits % CHECKPOINT_COMMITS == 0:
            self._checkpointer.request()

    @classmethod
    def open(cls, path: str | os.PathLike, *, durable: bool = False) -> SqliteBlockStore:
        """The store over a new SqliteBackend at path (see SqliteBackend for durable)."""
        backend = SqliteBackend(path, durable=durable)
        try:
            return cls(backend)
        except BaseException:
            backend.close()
            raise

    @property
    def state(self) -> SqliteBackend:
        return self._state

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        self._state.close()  # SQLite checkpoints the WAL whole when its last connection closes

    def __enter__(self) -> SqliteBlockStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- commit ---------------------------------------------------------------------------
    def head(self) -> int | None:
        return None if self._head is None else self._head[0]

    def commit_block(self, block: BlockData) -> None:
        txs, logs = self._check_block(block)
        try:
            self._state.commit_state(lambda db: self._write_block(block, txs, logs))
        except sqlite3.IntegrityError:
            # The UNIQUE keys, not a lookup per block and transaction, catch a hash
            # stored before (the commit rolled back): say which one.
            self._raise_duplicate(block)
            raise
        self._head = (block.number, bytes(block.hash))
        self._committed()

    def _check_block(self, block: BlockData) -> tuple[list[tuple], list[tuple]]:
        """Validate the block against the head; its transaction and log rows."""
        if not isinstance(block, BlockData):
            raise InvalidBlockError(f"expected BlockData, got {type(block).__name__}")
        number = check_uint(block.number, "a block number", _SQL_INT_LIMIT)
        block_hash = check_hash(block.hash, "a block hash")
        parent_hash = check_hash(block.parent_hash, "a parent hash")
        check_bytes(block.header, "a block header")
        if self._head is None:
            if number != 0:
                raise InvalidBlockError(f"the first block is number 0, not {number}")
        else:
            head, head_hash = self._head
            if number != head + 1:
                raise InvalidBlockError(f"block {number} does not follow the head, block {head}")
            if parent_hash != head_hash:
                raise InvalidBlockError(f"block {number}'s parent hash 0x{parent_hash.hex()} is not "
                                 f"block {head}'s hash 0x{head_hash.hex()}")
        txs: list[tuple] = []
        tx_hashes: list[bytes] = []
        for i, tx in enumerate(block.transactions):
            if not isinstance(tx, StoredTx):
                raise InvalidBlockError(f"transaction {i}: expected StoredTx, got {type(tx).__name__}")
            tx_hash = check_hash(tx.hash, f"transaction {i}'s hash")
            if (tx.block_number, tx.block_hash, tx.index) != (number, block_hash, i):
                raise InvalidBlockError(f"transaction {i} says block {tx.block_number!r}, hash "
                                 f"{tx.block_hash!r}, index {tx.index!r}: not this block's "
                                 f"{number}, 0x{block_hash.hex()}, {i}")
            if tx_hash in tx_hashes:
                raise InvalidBlockError(f"transaction 0x{tx_hash.hex()} is already stored")
            tx_hashes.append(tx_hash)
            txs.append((tx_hash, number, i, check_bytes(tx.raw, "a raw transaction"),
                        check_bytes(tx.receipt, "a receipt")))
        logs: list[tuple] = []
        for i, log in enumerate(block.logs):
            if not isinstance(log, StoredLog):
                raise InvalidBlockError(f"log {i}: expected StoredLog, got {type(log).__name__}")
            if (log.block_number, log.block_hash, log.log_index) != (number, block_hash, i):
                raise InvalidBlockError(f"log {i} says block {log.block_number!r}, hash "
                                 f"{log.block_hash!r}, index {log.log_index!r}: not this "
                                 f"block's {number}, 0x{block_hash.hex()}, {i}")
            if (type(log.tx_index) is not int or not 0 <= log.tx_index < len(tx_hashes)
                    or tx_hashes[log.tx_index] != log.tx_hash):
                raise InvalidBlockError(f"log {i}: transaction {log.tx_index!r} with hash "
                                 f"{log.tx_hash!r} is not in the block")
            if not isinstance(log.topics, tuple | list) or len(log.topics) > 4:
                raise InvalidBlockError(f"log {i}: topics are a tuple of at most 4, "
                                 f"got {log.topics!r}")
            topics = [check_hash(t, f"log {i}'s topic") for t in log.topics]
            logs.append((number, i, log.tx_index, tx_hashes[log.tx_index],
                         check_address(log.address), *topics, *[None] * (4 - len(topics)),
                         check_bytes(log.data, "log data")))
        if len(logs) > 1 and any(a[2] > b[2] for a, b in zip(logs, logs[1:], strict=False)):
            raise InvalidBlockError("logs are not in transaction order")
        return txs, logs

    def _raise_duplicate(self, block: BlockData) -> None:
        """InvalidBlockError naming the block or transaction hash that is already stored,
        if one is."""
        block_hash = bytes(block.hash)
        if self._db.execute("SELECT 1 FROM blocks WHERE hash = ?", (block_hash,)).fetchone():
            raise InvalidBlockError(f"a block with hash 0x{block_hash.hex()} is already stored")
        for tx in block.transactions:
            if self._db.execute("SELECT 1 FROM transactions WHERE hash = ?",
                                (bytes(tx.hash),)).fetchone():
                raise InvalidBlockError(f"transaction 0x{bytes(tx.hash).hex()} is already "
                                        "stored")

    def _write_block(self, block: BlockData, txs: list[tuple], logs: list[tuple]) -> None:
        # Runs inside the state's commit transaction, after the state rows.
        db = self._db
        db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?)",
                   (block.number, bytes(block.hash), bytes(block.parent_hash),
                    bytes(block.header)))
        db.executemany("INSERT INTO transactions VALUES (?, ?, ?, ?, ?)", txs)
        db.executemany("INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", logs)

    # --- rewinding ------------------------------------------------------------------------
    def rewind(self, number: int) -> None:
        """Drop every block after `number`, with its transactions and logs, and commit the
        state backend's pending changes (the state of block `number`, which the caller has
        restored) in the same transaction: a crash leaves the chain at one or the other."""
        check_uint(number, "a block number", _SQL_INT_LIMIT)
        if self._head is None or number > self._head[0]:
            raise InvalidBlockError(f"cannot rewind to block {number}: the head is "
                                    f"{None if self._head is None else self._head[0]}")
        row = self._db.execute("SELECT hash FROM blocks WHERE number = ?", (number,)).fetchone()
        if row is None:
            raise InvalidBlockError(f"cannot rewind to block {number}: not stored")

        def drop(db: sqlite3.Connection) -> None:
            for table in ("logs", "transactions"):
                db.execute(f"DELETE FROM {table} WHERE block_number > ?", (number,))
            db.execute("DELETE FROM blocks WHERE number > ?", (number,))

        self._state.commit_state(drop)
        self._head = (number, row[0])
        self._committed()

    def commit_blocks(self, blocks: Sequence[BlockData]) -> None:
        """commit_block for several blocks in one transaction, the pending state changes
        with them (what the last block leaves; the others' state roots are the caller's
        business, as for blocks that change no state)."""
        rows = []
        head = self._head
        try:
            for block in blocks:
                rows.append((block, *self._check_block(block)))
                self._head = (block.number, bytes(block.hash))
        finally:
            self._head = head

        def write(db: sqlite3.Connection) -> None:
            for block, txs, logs in rows:
                self._write_block(block, txs, logs)

        self._state.commit_state(write)
        if rows:
            self._head = (rows[-1][0].number, bytes(rows[-1][0].hash))
        self._committed()

    def read_pool(self) -> ReadPool | None:
        """Readers of this store's file, or None for an in-memory database."""
        path = self._state.path
        if path in ("", ":memory:") or path.startswith("file:"):
            return None
        return ReadPool(path)


__all__ = ["BlockData", "BlockQueries", "BlockReader", "BlockStore", "ReadPool", "SqliteBlockStore",
           "StoredLog", "StoredTx"]
