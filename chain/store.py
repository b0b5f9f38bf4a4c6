"""The chain's block store: blocks, their transactions and receipts, and their logs indexed
for eth_getLogs, committed block by block together with the state the block leaves.

`BlockStore` (evmc_bridge.abc, with the records BlockData, StoredTx, StoredLog; all
re-exported here) is the contract the chain depends on; `SqliteBlockStore` keeps the records
in the state database's file, beside SqliteBackend's tables, and writes each block inside
the backend's commit transaction (`SqliteBackend.commit_state(write=...)`): a crash at any
moment leaves the last committed block whole, with its state, and nothing of the next.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence

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

__all__ = ["BlockData", "BlockStore", "SqliteBlockStore", "StoredLog", "StoredTx"]










class SqliteBlockStore(BlockStore):
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
        self._state.close()

    def __enter__(self) -> SqliteBlockStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- commit ---------------------------------------------------------------------------
    def head(self) -> int | None:
        return None if self._head is None else self._head[0]

    def commit_block(self, block: BlockData) -> None:
        txs, logs = self._check_block(block)
        self._state.commit_state(lambda db: self._write_block(block, txs, logs))
        self._head = (block.number, bytes(block.hash))

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
        if self._db.execute("SELECT 1 FROM blocks WHERE hash = ?", (block_hash,)).fetchone():
            raise InvalidBlockError(f"a block with hash 0x{block_hash.hex()} is already stored")
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
            if tx_hash in tx_hashes or self._db.execute(
                    "SELECT 1 FROM transactions WHERE hash = ?", (tx_hash,)).fetchone():
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

    def _write_block(self, block: BlockData, txs: list[tuple], logs: list[tuple]) -> None:
        # Runs inside the state's commit transaction, after the state rows.
        db = self._db
        db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?)",
                   (block.number, bytes(block.hash), bytes(block.parent_hash),
                    bytes(block.header)))
        db.executemany("INSERT INTO transactions VALUES (?, ?, ?, ?, ?)", txs)
        db.executemany("INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", logs)

    # --- queries --------------------------------------------------------------------------
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


__all__ = ["BlockData", "BlockStore", "SqliteBlockStore", "StoredLog", "StoredTx"]
