"""The state database's file format: its tables, its version, and the checks that refuse a
file that is not one (not SQLite, another program's, another version of this one's).

The file may hold other tables beside these (a store built on SqliteBackend's connection
keeps its own there); the version and the application id cover the file as a whole.
"""

from __future__ import annotations

import sqlite3

from .errors import StateError

SCHEMA_VERSION = 3
# PRAGMA application_id: marks the file as ours, so that another program's SQLite file
# that happens to carry a user_version is not mistaken for a state database. "EWSM".
APPLICATION_ID = 0x4557534D

TRIE_LOG = "CREATE TABLE trie_log (id INTEGER PRIMARY KEY, nodes BLOB NOT NULL);"
SCHEMA = f"""
-- nonce (8 bytes) and balance (32 bytes) big-endian: SQLite integers stop at 2**63.
CREATE TABLE accounts (address BLOB PRIMARY KEY, nonce BLOB NOT NULL, balance BLOB NOT NULL,
                       code_hash BLOB NOT NULL, storage_root BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE code (hash BLOB PRIMARY KEY, code BLOB NOT NULL) WITHOUT ROWID;
-- The flat storage, for slot reads without walking a trie; zero slots have no row.
CREATE TABLE storage (address BLOB NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
                      PRIMARY KEY (address, key)) WITHOUT ROWID;
-- Trie nodes by keccak of their encoding, shared by the account and storage tries.
CREATE TABLE trie_nodes (hash BLOB PRIMARY KEY, node BLOB NOT NULL) WITHOUT ROWID;
-- The nodes of the latest commits, one row per commit (trie_store.TrieNodeStore).
{TRIE_LOG}
CREATE TABLE state_root (id INTEGER PRIMARY KEY CHECK (id = 0), root BLOB NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
"""


class StateDatabaseError(StateError):
    """The file is not a usable state database (not SQLite, not ours, another schema)."""


def open_database(path: str, *, durable: bool) -> sqlite3.Connection:
    """A connection to the state database at path (autocommit: the caller begins its own
    transactions), creating the schema if the file is absent or empty.

    durable selects synchronous=FULL (an fsync per commit) over NORMAL. Raises
    StateDatabaseError for a file that is not a state database of this schema.
    """
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    except sqlite3.Error as exc:
        raise StateDatabaseError(f"{path}: cannot open: {exc}") from None
    try:
        _prepare(db, path, durable)
        db.execute("SELECT root FROM state_root").fetchone()  # the schema is usable
    except sqlite3.DatabaseError as exc:
        db.close()
        raise StateDatabaseError(f"{path}: not a usable state database: {exc}") from None
    except BaseException:
        db.close()
        raise
    return db


def _prepare(db: sqlite3.Connection, path: str, durable: bool) -> None:
    # Reading the header is what fails on a file that is not SQLite at all.
    version = db.execute("PRAGMA user_version").fetchone()[0]
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    if version == 0 and app_id == 0:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master")]
        if tables:
            raise StateDatabaseError(f"{path}: an SQLite database, but not a state "
                                     f"database (it has {sorted(tables)})")
        # WAL must be chosen outside a transaction; the schema and its version are
        # written in one, so a crash here leaves an empty file, not half a schema.
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(f"BEGIN; {SCHEMA} PRAGMA application_id={APPLICATION_ID}; "
                         f"PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
    elif app_id not in (0, APPLICATION_ID):
        raise StateDatabaseError(f"{path}: an SQLite database, but not a state "
                                 f"database (application id {app_id:#x})")
    elif version > SCHEMA_VERSION:
        raise StateDatabaseError(f"{path}: schema version {version} is newer than "
                                 f"this program's {SCHEMA_VERSION}; upgrade the program")
    elif version == 2 and app_id == APPLICATION_ID:
        # Version 3 added trie_log; a version 2 file gets it, in one transaction.
        db.executescript(f"BEGIN; {TRIE_LOG} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
    elif version != SCHEMA_VERSION or app_id != APPLICATION_ID:
        # Version 1 was this program's first format (no storage roots, no trie nodes):
        # its files are development databases, cheap to recreate, so there is no migration.
        raise StateDatabaseError(f"{path}: schema version {version} is not this "
                                 f"program's {SCHEMA_VERSION} (an older format, or "
                                 f"another program's database)")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")


__all__ = ["APPLICATION_ID", "SCHEMA", "SCHEMA_VERSION", "StateDatabaseError",
           "open_database"]
