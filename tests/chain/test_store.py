"""The block store (chain/store.py): blocks, transactions, receipts and logs persist and
are found again (eth_getLogs against a brute-force filter, over its indexes); malformed
blocks are refused whole; a block and its state commit in one transaction (failures
injected mid-commit, and a writer process SIGKILLed at random moments); the file layout is
the one of schema version 3 (a version 2 file is upgraded in place); and the chain runs on
whatever BlockStore it is given.

The state backend's own tests are tests/state/test_sqlite.py."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.chain import ETHER, Chain, ChainLockedError
from chain.store import BlockData, BlockStore, SqliteBlockStore, StoredLog, StoredTx
from state.backend import ZERO_BYTES32, Account, PersistentBackend
from state.root import state_root
from state.sqlite import SqliteBackend, StateDatabaseError
from state.trie_store import unpack_nodes
from tests.state.test_sqlite import check_tries, committed_view

ROOT = Path(__file__).resolve().parents[2]
ADDRS = [bytes([i]) * 20 for i in range(1, 6)]
KEYS = [bytes(31) + bytes([i]) for i in range(4)]
VALUES = [ZERO_BYTES32, b"\x01" * 32, bytes(31) + b"\x07"]
TA, TB, TC = b"\xaa" * 32, b"\xbb" * 32, b"\xcc" * 32


def w(n: int) -> bytes:
    return n.to_bytes(32, "big")


def bhash(n: int) -> bytes:
    return keccak(b"block%d" % n)


def make_block(s: SqliteBlockStore, txs: int = 0,
               logs: list[tuple[int, bytes, tuple[bytes, ...], bytes]] = ()) -> BlockData:
    """The next block on s's head, with txs transactions and logs given as (tx index,
    address, topics, data)."""
    head = s.head()
    n = 0 if head is None else head + 1
    parent = bytes(32) if head is None else s.block(head).hash
    h = bhash(n)
    stx = tuple(StoredTx(keccak(b"tx%d.%d" % (n, i)), n, h, i, b"raw%d" % i, b"rcpt%d" % i)
                for i in range(txs))
    slogs = tuple(StoredLog(n, h, ti, stx[ti].hash, i, address, topics, data)
                  for i, (ti, address, topics, data) in enumerate(logs))
    return BlockData(n, h, parent, b"header%d" % n, stx, slogs)


def commit(s: SqliteBlockStore, txs: int = 0, logs=()) -> BlockData:
    blk = make_block(s, txs, logs)
    s.commit_block(blk)
    return blk


# --- persistence and queries --------------------------------------------------------------
def test_blocks_transactions_logs_and_meta_persist(tmp_path):
    path = tmp_path / "c.db"
    with SqliteBlockStore.open(path) as s:
        b = s.state
        assert s.head() is None and s.block(0) is None
        b.set_balance(ADDRS[0], 10)
        b.set_meta("config", b"{}")
        g = commit(s)
        b.set_storage(ADDRS[1], KEYS[1], VALUES[1])
        b1 = commit(s, txs=2, logs=[(0, ADDRS[1], (TA,), b"1"), (0, ADDRS[2], (TA, TB), b"2"),
                                    (1, ADDRS[1], (), b"3")])
        b.set_balance(ADDRS[0], 11)  # pending, never committed
        b.set_meta("config", b"changed")  # likewise
    with SqliteBlockStore.open(path) as s:
        b = s.state
        assert s.head() == 1
        assert b.get_balance(ADDRS[0]) == 10
        assert b.get_storage(ADDRS[1], KEYS[1]) == VALUES[1]
        assert b.get_meta("config") == b"{}"
        assert s.block(0) == g and s.block(1) == b1 and s.block(2) is None
        assert s.block(-1) is None and s.block(2**70) is None
        assert s.block_by_hash(b1.hash) == b1 and s.block_by_hash(bytes(32)) is None
        for tx in b1.transactions:
            assert s.transaction(tx.hash) == tx
        assert s.transaction(bytes(32)) is None
        assert [x.data for x in b1.logs] == [b"1", b"2", b"3"]
        assert b1.logs[2].tx_index == 1 and b1.logs[2].tx_hash == b1.transactions[1].hash
        assert s.logs(0, 5) == list(b1.logs)


def test_log_filters_follow_eth_getlogs(tmp_path):
    with SqliteBlockStore.open(tmp_path / "c.db") as s:
        commit(s)
        commit(s, txs=1, logs=[(0, ADDRS[1], (TA,), b"1"), (0, ADDRS[2], (TA, TB), b"2"),
                               (0, ADDRS[1], (), b"3")])
        commit(s, txs=1, logs=[(0, ADDRS[3], (TB, TA, TC, TC), b"4")])

        def q(*args, **kw):
            return [x.data for x in s.logs(*args, **kw)]

        assert q(0, 2) == [b"1", b"2", b"3", b"4"]
        assert q(0, 0) == [] and q(2, 2) == [b"4"] and q(2, 1) == [] and q(3, 9) == []
        assert q(0, 2, [ADDRS[1]]) == [b"1", b"3"]
        assert q(0, 2, [ADDRS[1], ADDRS[3]]) == [b"1", b"3", b"4"]
        assert q(0, 2, []) == q(0, 2, None) == q(0, 2)  # geth: no addresses = any
        assert q(0, 2, [ADDRS[1], ADDRS[2]], [TA]) == [b"1", b"2"]
        assert q(0, 2, None, [None, TB]) == [b"2"]
        assert q(0, 2, None, [None, TA]) == [b"4"]
        assert q(0, 2, None, [TA, [TB, TC]]) == [b"2"]
        assert q(0, 2, None, [[TA, TB]]) == [b"1", b"2", b"4"]
        assert q(0, 2, None, [[TC]]) == []
        # A wildcard position asks for nothing, not even a topic there.
        assert q(0, 2, None, [None]) == [b"1", b"2", b"3", b"4"]
        assert q(0, 2, None, [[]]) == [b"1", b"2", b"3", b"4"]  # an empty OR is a wildcard
        # A non-wildcard position past a log's last topic: that log does not match.
        assert q(0, 2, None, [None, None, None, TC]) == [b"4"]
        assert q(0, 2, None, [None, None, [TA, TB, TC]]) == [b"4"]
        assert q(1, 1, None, [TA, None]) == [b"1", b"2"]
        assert q(0, 2, [ADDRS[1]], [TA]) == [b"1"]
        assert q(0, 2, [bytearray(ADDRS[3])], [bytearray(TB)]) == [b"4"]
        with pytest.raises(ValueError):
            s.logs(0, 2, None, [None] * 5)
        with pytest.raises(ValueError):
            s.logs(0, 2, None, [b"\xaa" * 31])
        with pytest.raises(ValueError):
            s.logs(0, 2, [ADDRS[0][:19]])
        with pytest.raises(ValueError):
            s.logs(0, 2, ADDRS[0])  # one address, not a list of them
        with pytest.raises(ValueError):
            s.logs(-1, 2)
        with pytest.raises(ValueError):
            s.logs(0, "latest")  # type: ignore[arg-type]


LOG_ADDRS = ADDRS[:3]
TOPICS = [TA, TB, TC]
log_entries = st.lists(
    st.tuples(st.sampled_from(LOG_ADDRS),
              st.lists(st.sampled_from(TOPICS), max_size=4).map(tuple), st.binary(max_size=3)),
    max_size=5)
topic_filter = st.lists(st.one_of(st.none(), st.sampled_from(TOPICS),
                                  st.lists(st.sampled_from(TOPICS), max_size=2)), max_size=4)


def brute_force(logs: list[StoredLog], lo, hi, addresses, topics) -> list[StoredLog]:
    def match(x: StoredLog) -> bool:
        if not lo <= x.block_number <= hi:
            return False
        if addresses and x.address not in addresses:
            return False
        for i, want in enumerate(topics):
            if want is None or want == []:
                continue
            wanted = [want] if isinstance(want, bytes) else want
            if i >= len(x.topics) or x.topics[i] not in wanted:
                return False
        return True
    return [x for x in logs if match(x)]


@settings(max_examples=40, deadline=None)
@given(st.lists(log_entries, min_size=1, max_size=5),
       st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5),
                          st.one_of(st.none(), st.lists(st.sampled_from(LOG_ADDRS), max_size=2)),
                          topic_filter), min_size=1, max_size=8))
def test_log_queries_match_a_brute_force_filter(blocks, queries):
    with SqliteBlockStore.open(":memory:") as s:
        every: list[StoredLog] = []
        for entries in blocks:
            blk = commit(s, txs=1, logs=[(0, a, t, d) for a, t, d in entries])
            every.extend(blk.logs)
        for lo, hi, addresses, topics in queries:
            assert s.logs(lo, hi, addresses, topics) == brute_force(every, lo, hi, addresses,
                                                                   topics)


def plan(s: SqliteBlockStore, *args) -> str:
    """The query plan of the logs() query, by capturing its SQL."""
    captured: list[str] = []
    s._db.set_trace_callback(captured.append)
    try:
        s.logs(*args)
    finally:
        s._db.set_trace_callback(None)
    select = next(stmt for stmt in captured if stmt.startswith("SELECT"))
    return " | ".join(r[-1] for r in s._db.execute("EXPLAIN QUERY PLAN " + select))


def test_log_queries_by_topic0_or_address_use_an_index():
    with SqliteBlockStore.open(":memory:") as s:
        commit(s, txs=1, logs=[(0, ADDRS[1], (TA,), b"1")])
        by_topic = plan(s, 0, 10**6, None, [TA])
        assert "INDEX logs_topic0" in by_topic, by_topic
        by_topics = plan(s, 0, 10**6, None, [[TA, TB], TC])
        assert "INDEX logs_topic0" in by_topics, by_topics
        by_address = plan(s, 0, 10**6, [ADDRS[1], ADDRS[2]])
        assert "INDEX logs_address" in by_address, by_address
        # No filter but the range: a range of the primary key, not a scan of the table.
        by_range = plan(s, 5, 10)
        assert "SEARCH l USING PRIMARY KEY (block_number>? AND block_number<?)" in by_range, \
            by_range



# --- commit_block's checks ----------------------------------------------------------------
def test_commit_block_checks_the_chain_link_and_writes_nothing_on_refusal(tmp_path):
    path = tmp_path / "c.db"
    with SqliteBlockStore.open(path) as s:
        b = s.state
        b.set_balance(ADDRS[0], 1)
        with pytest.raises(ValueError, match="first block is number 0"):
            s.commit_block(BlockData(1, bhash(1), bytes(32), b"", (), ()))
        g = commit(s)
        b.set_balance(ADDRS[0], 2)
        with pytest.raises(ValueError, match="does not follow"):
            s.commit_block(BlockData(2, bhash(2), g.hash, b"", (), ()))
        with pytest.raises(ValueError, match="does not follow"):
            s.commit_block(BlockData(0, bhash(5), g.hash, b"", (), ()))
        with pytest.raises(ValueError, match="parent hash"):
            s.commit_block(BlockData(1, bhash(1), b"\x09" * 32, b"", (), ()))
        with pytest.raises(ValueError, match="already stored"):
            s.commit_block(BlockData(1, g.hash, g.hash, b"", (), ()))
        assert s.head() == 0 and b.get_balance(ADDRS[0]) == 2  # still pending
        assert committed_view(path)[ADDRS[0]][1] == (1).to_bytes(32, "big")


def _bad_blocks(s: SqliteBlockStore) -> dict[str, BlockData]:
    good = make_block(s, txs=2, logs=[(0, ADDRS[0], (TA,), b""), (1, ADDRS[0], (), b"")])
    tx0, tx1 = good.transactions
    log0, log1 = good.logs

    def with_(**kw) -> BlockData:
        return BlockData(**{**good.__dict__, **kw})

    def tx(i: int, **kw) -> tuple[StoredTx, ...]:
        txs = list(good.transactions)
        txs[i] = StoredTx(**{**txs[i].__dict__, **kw})
        return tuple(txs)

    def log(i: int, **kw) -> tuple[StoredLog, ...]:
        logs = list(good.logs)
        logs[i] = StoredLog(**{**logs[i].__dict__, **kw})
        return tuple(logs)

    return {
        "number is a bool": with_(number=True),  # True == 1, the right number
        "number is a str": with_(number="1"),
        "hash 31 bytes": with_(hash=good.hash[:31]),
        "parent hash a str": with_(parent_hash="00" * 32),
        "header a str": with_(header="h"),
        "a tx of another block": with_(transactions=tx(0, block_number=good.number + 1)),
        "a tx with another block hash": with_(transactions=tx(0, block_hash=bytes(32))),
        "tx indexes out of order": with_(transactions=(tx1, tx0)),
        "the same tx twice": with_(transactions=tx(1, hash=tx0.hash)),
        "tx hash 33 bytes": with_(transactions=tx(0, hash=tx0.hash + b"\0")),
        "raw tx a str": with_(transactions=tx(0, raw="raw")),
        "receipt None": with_(transactions=tx(0, receipt=None)),
        "not a StoredTx": with_(transactions=(tx0.__dict__,)),
        "a log of another block": with_(logs=log(0, block_number=good.number + 1)),
        "a log with a gap in indexes": with_(logs=log(1, log_index=2)),
        "a log of a missing tx": with_(logs=log(1, tx_index=2)),
        "a log with a bool tx index": with_(logs=log(1, tx_index=True)),
        "a log whose tx hash is not its tx's": with_(logs=log(0, tx_hash=tx1.hash)),
        "logs out of tx order": with_(logs=(StoredLog(**{**log1.__dict__, "log_index": 0}),
                                            StoredLog(**{**log0.__dict__, "log_index": 1}))),
        "five topics": with_(logs=log(0, topics=(TA,) * 5)),
        "a topic of 31 bytes": with_(logs=log(0, topics=(TA[:31],))),
        "topics a str": with_(logs=log(0, topics="topic")),
        "address of 19 bytes": with_(logs=log(0, address=ADDRS[0][:19])),
        "data a str": with_(logs=log(0, data="x")),
        "not a StoredLog": with_(logs=(tuple(log0.__dict__.values()),)),
    }


def test_malformed_blocks_are_refused_whole(tmp_path):
    path = tmp_path / "c.db"
    with SqliteBlockStore.open(path) as s:
        b = s.state
        commit(s, txs=1)
        b.set_storage(ADDRS[0], KEYS[1], VALUES[1])
        for what, bad in _bad_blocks(s).items():
            with pytest.raises(ValueError):
                s.commit_block(bad)
                pytest.fail(f"accepted: {what}")
        with pytest.raises(ValueError, match="BlockData"):
            s.commit_block((1, bhash(1)))  # type: ignore[arg-type]
        # A transaction already in an earlier block.
        earlier = s.block(0).transactions[0]
        blk = make_block(s)
        dup = StoredTx(earlier.hash, 1, blk.hash, 0, b"r", b"r")
        with pytest.raises(ValueError, match="already stored"):
            s.commit_block(BlockData(1, blk.hash, blk.parent_hash, b"", (dup,), ()))
        assert s.head() == 0 and s.block(1) is None
        assert b.get_storage(ADDRS[0], KEYS[1]) == VALUES[1]  # still pending
        good = make_block(s, txs=2, logs=[(0, ADDRS[0], (TA,), b""), (1, ADDRS[0], (), b"")])
        s.commit_block(good)  # the checks did not get in the way of a good one
        assert s.block(1) == good


def test_commit_block_with_a_live_snapshot_is_refused():
    with SqliteBlockStore.open(":memory:") as s:
        b = s.state
        snap = b.snapshot()
        b.set_balance(ADDRS[0], 1)
        with pytest.raises(ValueError, match="live snapshot"):
            commit(s)
        assert s.head() is None and b.get_balance(ADDRS[0]) == 1
        b.commit(snap)
        commit(s)
        assert s.head() == 0 and b.get_balance(ADDRS[0]) == 1


def test_query_arguments_are_checked():
    with SqliteBlockStore.open(":memory:") as s:
        commit(s)
        for bad in (b"\0" * 31, "00" * 32, None):
            with pytest.raises(ValueError):
                s.block_by_hash(bad)  # type: ignore[arg-type]
            with pytest.raises(ValueError):
                s.transaction(bad)  # type: ignore[arg-type]
        for bad in ("0", 1.0, None, True):
            with pytest.raises(ValueError):
                s.block(bad)  # type: ignore[arg-type]


# --- atomicity ----------------------------------------------------------------------------


# --- atomicity ----------------------------------------------------------------------------
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt, sqlite3.OperationalError])
def test_a_failure_mid_commit_leaves_the_previous_block(tmp_path, monkeypatch, error):
    path = tmp_path / "c.db"
    with SqliteBlockStore.open(path) as s:
        b = s.state
        b.set_balance(ADDRS[0], 1)
        b.set_storage(ADDRS[1], KEYS[1], VALUES[1])
        b.set_storage(ADDRS[2], KEYS[2], VALUES[2])
        g = commit(s, txs=1)
        root0, on_disk = b.state_root(), committed_view(path)
        b.set_balance(ADDRS[0], 2)
        b.set_storage(ADDRS[1], KEYS[1], ZERO_BYTES32)
        b.set_storage(ADDRS[1], KEYS[2], VALUES[2])
        b.delete_account(ADDRS[2])
        b.set_code(ADDRS[3], b"new code")
        b.set_meta("m", b"x")
        pending = b.to_accounts()
        root1 = b.state_root()
        written = []

        def fail(self, *args):
            # By now the state rows of the block are written, inside the transaction.
            written.append(self._db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0])
            raise error("injected")

        monkeypatch.setattr(SqliteBlockStore, "_write_block", fail)
        with pytest.raises(error, match="injected"):
            commit(s, txs=1, logs=[(0, ADDRS[0], (TA,), b"")])
        assert written == [3]  # ADDRS[2] deleted, ADDRS[3] added: the state part ran
        assert not b._db.in_transaction
        # Nothing reached the file; the pending changes are intact, to retry or discard.
        assert s.head() == 0 and committed_view(path) == on_disk
        assert b.to_accounts() == pending and b.state_root() == root1
        assert b.get_meta("m") == b"x"
        monkeypatch.undo()
        blk = commit(s, txs=1, logs=[(0, ADDRS[0], (TA,), b"")])  # the retry goes through
        assert b.to_accounts() == pending and b.state_root() == root1 == state_root(b)
        b.set_balance(ADDRS[4], 9)
        monkeypatch.setattr(SqliteBlockStore, "_write_block", fail)
        with pytest.raises(error):
            commit(s)
        assert s.head() == 1
        b.discard()
        assert b.to_accounts() == pending and not b.exists(ADDRS[4])
    check_tries(path)
    with SqliteBlockStore.open(path) as s:
        b = s.state
        assert s.head() == 1 and s.block(0) == g and s.block(1) == blk
        assert b.to_accounts() == pending and b.get_meta("m") == b"x"
        assert b.state_root() == root1 == state_root(b) != root0


# The writer: block n sets the balance of FF..FF to n, 40 slots of EE..EE to n + 1, the
# nonce of one of 150 accounts to n + 1, deletes and recreates a contract every 7 blocks,
# and stores one transaction and one log; its header is its state root. It prints n once
# commit_block has returned, as a node would answer a client.
_WRITER = textwrap.dedent("""
    import sys
    from eth_hash.auto import keccak
    from chain.store import BlockData, SqliteBlockStore, StoredLog, StoredTx
    s = SqliteBlockStore.open(sys.argv[1])
    b = s.state
    head = s.head()
    n = 0 if head is None else head + 1
    parent = bytes(32) if head is None else s.block(head).hash
    while True:
        b.set_balance(b"\\xff" * 20, n)
        for k in range(40):
            b.set_storage(b"\\xee" * 20, k.to_bytes(32, "big"), (n + 1).to_bytes(32, "big"))
        b.set_nonce(bytes([n % 150 + 1]) * 20, n + 1)
        if n % 7 == 0:
            b.delete_account(b"\\xdd" * 20)
        b.set_storage(b"\\xdd" * 20, n.to_bytes(32, "big"), b"\\x01" * 32)
        h, tx = keccak(b"block%d" % n), keccak(b"tx%d" % n)
        root = b.state_root()
        s.commit_block(BlockData(n, h, parent, root, (StoredTx(tx, n, h, 0, b"raw", b"r"),),
                                 (StoredLog(n, h, 0, tx, 0, b"\\xee" * 20, (h,), b"d"),)))
        print(n, flush=True)
        n, parent = n + 1, h
""")


def test_sigkill_at_any_moment_leaves_whole_blocks(tmp_path):
    path = tmp_path / "crash.db"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    rng = random.Random()
    last_head = -1
    for round_ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)],
                                stdout=subprocess.PIPE, text=True, env=env)
        try:
            first = proc.stdout.readline()  # it is committing blocks now
            assert first, f"round {round_}: the writer died before its first block"
            threading.Event().wait(rng.uniform(0, 0.4))
        finally:
            proc.send_signal(signal.SIGKILL)
            out, _ = proc.communicate()
        printed = [int(x) for x in (first + out).split()]
        assert printed == list(range(last_head + 1, printed[-1] + 1))
        with SqliteBlockStore.open(path) as s:
            b = s.state
            head = s.head()
            # Every block reported committed is there; the next one may have made it too.
            assert printed[-1] <= head <= printed[-1] + 1, (printed[-1], head)
            # Exactly the head block's state: nothing of a later one, nothing missing.
            assert b.get_balance(b"\xff" * 20) == head
            for k in range(40):
                assert b.get_storage(b"\xee" * 20, w(k)) == w(head + 1)
            for n in range(max(0, head - 149), head + 1):
                assert b.get_nonce(bytes([n % 150 + 1]) * 20) == n + 1
            since = head - head % 7
            dd = b.get_account(b"\xdd" * 20)
            assert dd == Account(storage={w(n): b"\x01" * 32 for n in range(since, head + 1)})
            # The chain: whole blocks 0..head, linked, each with its transaction and log.
            parent = bytes(32)
            for n in range(head + 1):
                blk = s.block(n)
                assert blk.hash == bhash(n) and blk.parent_hash == parent
                assert len(blk.transactions) == 1 and len(blk.logs) == 1
                assert s.transaction(keccak(b"tx%d" % n)) == blk.transactions[0]
                parent = blk.hash
            assert s.block(head + 1) is None
            assert s.transaction(keccak(b"tx%d" % (head + 1))) is None
            assert len(s.logs(0, head + 5)) == head + 1
            # The stored tries agree with the flat state and with the block's header.
            assert b.state_root() == s.block(head).header == state_root(b)
            assert b._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            last_head = head
        check_tries(path)
    assert last_head >= 5


# --- the file -----------------------------------------------------------------------------
# The tables and indexes of schema version 2 as the first version of this program wrote
# them, state and chain together: a file of either age must open in the other.
_VERSION_2 = {
    ("table", "accounts"): "CREATE TABLE accounts (address BLOB PRIMARY KEY, nonce BLOB NOT "
                           "NULL, balance BLOB NOT NULL, code_hash BLOB NOT NULL, storage_root "
                           "BLOB NOT NULL) WITHOUT ROWID",
    ("table", "code"): "CREATE TABLE code (hash BLOB PRIMARY KEY, code BLOB NOT NULL) WITHOUT "
                       "ROWID",
    ("table", "storage"): "CREATE TABLE storage (address BLOB NOT NULL, key BLOB NOT NULL, "
                          "value BLOB NOT NULL, PRIMARY KEY (address, key)) WITHOUT ROWID",
    ("table", "trie_nodes"): "CREATE TABLE trie_nodes (hash BLOB PRIMARY KEY, node BLOB NOT "
                             "NULL) WITHOUT ROWID",
    ("table", "state_root"): "CREATE TABLE state_root (id INTEGER PRIMARY KEY CHECK (id = 0), "
                             "root BLOB NOT NULL)",
    ("table", "blocks"): "CREATE TABLE blocks (number INTEGER PRIMARY KEY, hash BLOB NOT NULL "
                         "UNIQUE, parent_hash BLOB NOT NULL, header BLOB NOT NULL)",
    ("table", "transactions"): "CREATE TABLE transactions (hash BLOB PRIMARY KEY, "
                               "block_number INTEGER NOT NULL, idx INTEGER NOT NULL, raw BLOB "
                               "NOT NULL, receipt BLOB NOT NULL, UNIQUE (block_number, idx)) "
                               "WITHOUT ROWID",
    ("table", "logs"): "CREATE TABLE logs (block_number INTEGER NOT NULL, log_index INTEGER "
                       "NOT NULL, tx_index INTEGER NOT NULL, tx_hash BLOB NOT NULL, address "
                       "BLOB NOT NULL, topic0 BLOB, topic1 BLOB, topic2 BLOB, topic3 BLOB, data "
                       "BLOB NOT NULL, PRIMARY KEY (block_number, log_index)) WITHOUT ROWID",
    ("index", "logs_address"): "CREATE INDEX logs_address ON logs (address, block_number, "
                               "log_index)",
    ("index", "logs_topic0"): "CREATE INDEX logs_topic0 ON logs (topic0, block_number, "
                              "log_index)",
    ("table", "meta"): "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT "
                       "ROWID",
}


def _layout(path: Path) -> dict[tuple[str, str], str]:
    with sqlite3.connect(path) as c:
        return {(kind, name): " ".join(sql.split()).replace("( ", "(").replace(" )", ")")
                for kind, name, sql in c.execute(
                    "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL")}


# Version 3 added the trie node log (state.trie_store.TrieNodeStore).
_VERSION_3 = _VERSION_2 | {
    ("table", "trie_log"): "CREATE TABLE trie_log (id INTEGER PRIMARY KEY, nodes BLOB NOT "
                           "NULL)"}


def test_a_version_2_file_is_upgraded_in_place(tmp_path):
    path = tmp_path / "c.db"
    with SqliteBlockStore.open(path) as s:
        g = commit(s)
    with sqlite3.connect(path) as c:  # as version 2 left it: no log, its nodes all stored
        for (row,) in c.execute("SELECT nodes FROM trie_log"):
            c.executemany("INSERT OR IGNORE INTO trie_nodes VALUES (?, ?)",
                          unpack_nodes(row).items())
        c.execute("DROP TABLE trie_log")
        c.execute("PRAGMA user_version = 2")
    assert _layout(path) == _VERSION_2
    with SqliteBlockStore.open(path) as s:
        assert s.head() == 0 and s.block(0).hash == g.hash
        s.state.set_balance(ADDRS[1], 5)
        commit(s)
    assert _layout(path) == _VERSION_3
    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == 3


def test_the_file_keeps_the_version_3_layout(tmp_path):
    path = tmp_path / "c.db"
    with SqliteBlockStore.open(path) as s:
        commit(s)
    assert _layout(path) == _VERSION_3
    # A state database opened by the store first gets its tables then, whole.
    bare = tmp_path / "bare.db"
    with SqliteBackend(bare) as b:
        b.set_balance(ADDRS[0], 3)
        b.commit_state()
    assert not {name for _, name in _layout(bare)} & {"blocks", "transactions", "logs"}
    with SqliteBlockStore.open(bare) as s:
        assert s.head() is None and s.state.get_balance(ADDRS[0]) == 3
        commit(s)
    assert _layout(bare) == _VERSION_3
    with SqliteBlockStore.open(bare) as s:
        assert s.head() == 0


def test_a_file_with_broken_block_tables_is_refused(tmp_path):
    path = tmp_path / "c.db"
    with SqliteBackend(path):
        pass
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE blocks (x)")  # not ours, and the others missing
    with pytest.raises(StateDatabaseError, match="no usable block tables"):
        SqliteBlockStore.open(path)
    with sqlite3.connect(path) as c:  # the refusal created nothing
        assert not c.execute("SELECT 1 FROM sqlite_master WHERE name = 'logs'").fetchone()


# --- the chain over any BlockStore --------------------------------------------------------
class RecordingStore(BlockStore):
    """A BlockStore that forwards to another one and records what the chain asks of it."""

    def __init__(self, inner: BlockStore) -> None:
        self.inner = inner
        self.calls: list[str] = []

    @property
    def state(self) -> PersistentBackend:
        return self.inner.state

    def head(self) -> int | None:
        self.calls.append("head")
        return self.inner.head()

    def commit_block(self, block: BlockData) -> None:
        self.calls.append(f"commit_block {block.number}")
        self.inner.commit_block(block)

    def block(self, number: int) -> BlockData | None:
        self.calls.append("block")
        return self.inner.block(number)

    def block_by_hash(self, block_hash: bytes) -> BlockData | None:
        self.calls.append("block_by_hash")
        return self.inner.block_by_hash(block_hash)

    def transaction(self, tx_hash: bytes) -> StoredTx | None:
        self.calls.append("transaction")
        return self.inner.transaction(tx_hash)

    def logs(self, from_block: int, to_block: int, addresses: Sequence[bytes] | None = None,
             topics: Sequence[None | bytes | Sequence[bytes]] = ()) -> list[StoredLog]:
        self.calls.append("logs")
        return self.inner.logs(from_block, to_block, addresses, topics)

    def close(self) -> None:
        self.calls.append("close")
        self.inner.close()


def test_the_chain_runs_on_the_store_it_is_given(tmp_path):
    path = tmp_path / "c.db"
    store = RecordingStore(SqliteBlockStore.open(path))
    with Chain(path, store=store) as chain:
        alice, bob = (a.address for a in chain.accounts[:2])
        tx = chain.send_transaction(alice, to=bob, value=ETHER)
        assert chain.transaction(tx).stored.block_number == chain.head() == 1
        assert chain.block(1)[1] == store.inner.block(1)
    assert [c for c in store.calls if c.startswith("commit_block")] == ["commit_block 0",
                                                                         "commit_block 1"]
    assert store.calls[-1] == "close"
    with Chain(path) as chain:  # the default store reads what the given one wrote
        assert chain.head() == 1 and chain.balance(bob) == 10_001 * ETHER


def test_a_chain_refusing_to_open_closes_the_store_it_was_given(tmp_path):
    path = tmp_path / "c.db"
    with Chain(path):
        store = RecordingStore(SqliteBlockStore.open(tmp_path / "other.db"))
        with pytest.raises(ChainLockedError):
            Chain(path, store=store)
    assert store.calls == ["close"]


# --- checkpoints and readers ---------------------------------------------------------------
def test_the_wal_is_checkpointed_in_the_background_and_stays_bounded(tmp_path):
    import time

    from chain.store import CHECKPOINT_COMMITS

    path = tmp_path / "c.db"
    wal = Path(str(path) + "-wal")
    with SqliteBlockStore.open(path) as s:
        assert s.state.connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        sizes = []
        for round_ in range(4):
            for i in range(CHECKPOINT_COMMITS):
                s.state.set_storage(ADDRS[i % 3], KEYS[i % 4], w(1 + i + round_))
                commit(s)
            checkpointer = s._checkpointer
            deadline = time.monotonic() + 30
            while checkpointer.checkpoints < round_ + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert checkpointer.checkpoints >= round_ + 1
            sizes.append(wal.stat().st_size)
        # Checkpointed WAL frames are reused: the file does not grow round after round.
        assert sizes[-1] <= 2 * sizes[0]
    assert not wal.exists() or wal.stat().st_size == 0  # the last close checkpoints it


def test_a_reader_sees_one_committed_snapshot_while_blocks_are_written(tmp_path):
    path = tmp_path / "c.db"
    with SqliteBlockStore.open(path) as s:
        commit(s)
        pool = s.read_pool()
        with pool.session() as r:
            assert r.head_number() == 0
            commit(s)  # written meanwhile: not seen by this session
            assert r.head_number() == 0 and r.block(1) is None
        with pool.session() as r:
            assert r.head_number() == 1 and r.block(1) is not None
        pool.close()
        with pytest.raises(Exception, match="closed"), pool.session():
            pass
