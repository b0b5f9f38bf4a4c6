"""SqliteBackend: the StateBackend semantics against MemoryBackend across blocks, discards
and reopens (hypothesis); per-block persistence and the chain queries (eth_getLogs against
a brute-force filter); the incremental state root; atomic block commits (failures injected
mid-commit, and a writer process SIGKILLed at random moments); bad inputs and bad files.

The plain StateBackend contract tests run on both backends in test_backend.py."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import rlp
from eth_hash.auto import keccak
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from trie import HexaryTrie
from trie.iter import NodeIterator

from state.backend import BLANK_ROOT, ZERO32, Account
from state.memory import MemoryBackend
from state.root import account_rlp, state_root
from state.sqlite import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    BlockData,
    SqliteBackend,
    StateDatabaseError,
    StoredLog,
    StoredTx,
)

ROOT = Path(__file__).resolve().parents[2]
ADDRS = [bytes([i]) * 20 for i in range(1, 6)]
KEYS = [bytes(31) + bytes([i]) for i in range(4)]
VALUES = [ZERO32, b"\x01" * 32, bytes(31) + b"\x07"]


def w(n: int) -> bytes:
    return n.to_bytes(32, "big")


def bhash(n: int) -> bytes:
    return keccak(b"block%d" % n)


def make_block(b: SqliteBackend, txs: int = 0,
               logs: list[tuple[int, bytes, tuple[bytes, ...], bytes]] = ()) -> BlockData:
    """The next block on b's head, with txs transactions and logs given as (tx index,
    address, topics, data)."""
    head = b.head()
    n = 0 if head is None else head + 1
    parent = bytes(32) if head is None else b.block(head).hash
    h = bhash(n)
    stx = tuple(StoredTx(keccak(b"tx%d.%d" % (n, i)), n, h, i, b"raw%d" % i, b"rcpt%d" % i)
                for i in range(txs))
    slogs = tuple(StoredLog(n, h, ti, stx[ti].hash, i, address, topics, data)
                  for i, (ti, address, topics, data) in enumerate(logs))
    return BlockData(n, h, parent, b"header%d" % n, stx, slogs)


def commit(b: SqliteBackend, txs: int = 0, logs=()) -> BlockData:
    blk = make_block(b, txs, logs)
    b.commit_block(blk)
    return blk


def check_tries(path: Path) -> None:
    """The stored tries hold exactly the flat tables: every node reachable from the state
    root is there (py-trie's iterator walks them all), every account's leaf is its row,
    and every storage trie holds exactly the account's slots."""
    with sqlite3.connect(path) as c:
        nodes = dict(c.execute("SELECT hash, node FROM trie_nodes"))
        row = c.execute("SELECT root FROM state_root").fetchone()
        root = BLANK_ROOT if row is None else row[0]  # no state committed yet
        accounts = list(c.execute("SELECT * FROM accounts"))
        slots: dict[bytes, dict[bytes, bytes]] = {}
        for address, key, value in c.execute("SELECT * FROM storage"):
            slots.setdefault(address, {})[key] = value
    leaves = dict(NodeIterator(HexaryTrie(nodes, root)).items())
    assert set(leaves) == {keccak(row[0]) for row in accounts}
    for address, nonce, balance, code_hash, sroot in accounts:
        assert leaves[keccak(address)] == account_rlp(
            int.from_bytes(nonce, "big"), int.from_bytes(balance, "big"), sroot, code_hash)
        stored = dict(NodeIterator(HexaryTrie(nodes, sroot)).items())
        assert stored == {keccak(k): rlp.encode(v.lstrip(b"\0"))
                          for k, v in slots.get(address, {}).items()}
    assert set(slots) <= {row[0] for row in accounts}


def committed_view(path: Path) -> dict[bytes, tuple]:
    """The accounts table read through a second connection: what is on disk."""
    with sqlite3.connect(path) as c:
        return {a: (n, bal, ch) for a, n, bal, ch in
                c.execute("SELECT address, nonce, balance, code_hash FROM accounts")}


# --- the model comparison -----------------------------------------------------------------
# Few addresses and keys, so that sequences often hit the same account across blocks.
MODEL_ADDRS, MODEL_KEYS = ADDRS[:3], KEYS[:3]
OPS = st.one_of(
    st.tuples(st.just("balance"), st.sampled_from(MODEL_ADDRS),
              st.one_of(st.integers(0, 3), st.just(2**256 - 1))),
    st.tuples(st.just("add"), st.sampled_from(MODEL_ADDRS), st.integers(-2, 2)),
    st.tuples(st.just("nonce"), st.sampled_from(MODEL_ADDRS),
              st.one_of(st.integers(0, 3), st.just(2**64 - 1))),
    st.tuples(st.just("code"), st.sampled_from(MODEL_ADDRS), st.sampled_from([b"", b"\0asm", b"x"])),
    st.tuples(st.just("storage"), st.sampled_from(MODEL_ADDRS), st.sampled_from(MODEL_KEYS),
              st.sampled_from(VALUES)),
    st.tuples(st.just("create"), st.sampled_from(MODEL_ADDRS)),
    st.tuples(st.just("delete"), st.sampled_from(MODEL_ADDRS)),
    st.tuples(st.just("touch"), st.sampled_from(MODEL_ADDRS)),
    st.tuples(st.just("clear_touched")),
    st.tuples(st.just("snapshot")),
    st.tuples(st.just("revert"), st.integers(0, 2)),  # which live one, from the innermost
    st.tuples(st.just("commit"), st.integers(0, 2)),
    # A block with snapshots live: refused, or (True) after committing the outermost;
    # with its root asked for first (as the chain does), or left to commit_block.
    st.tuples(st.just("block"), st.booleans(), st.booleans()),
    st.tuples(st.just("block"), st.just(True), st.booleans()),
    st.tuples(st.just("discard")),
    st.tuples(st.just("reopen")),
    st.tuples(st.just("root")),
)


def same(sql: SqliteBackend, mem: MemoryBackend) -> None:
    assert sql.to_accounts() == mem.to_accounts()
    assert sql.addresses() == mem.addresses()
    assert sql.touched() == mem.touched()
    for a in ADDRS:  # the single-field reads, through the overlay and the caches
        assert sql.exists(a) == mem.exists(a)
        assert sql.is_empty(a) == mem.is_empty(a)
        assert sql.get_balance(a) == mem.get_balance(a)
        assert sql.get_nonce(a) == mem.get_nonce(a)
        assert sql.get_code(a) == mem.get_code(a)
        assert sql.get_code_hash(a) == mem.get_code_hash(a)
        for k in KEYS:
            assert sql.get_storage(a, k) == mem.get_storage(a, k)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(OPS, min_size=20, max_size=80))
def test_behaves_as_the_memory_backend_across_blocks_and_reopens(tmp_path, ops):
    path = tmp_path / f"model-{os.urandom(8).hex()}.db"
    sql = SqliteBackend(path)
    mem = MemoryBackend()
    committed = {}  # the accounts as of the last block
    snaps: list[tuple[int, int]] = []
    blocks = 0
    try:
        for op in ops:
            kind = op[0]
            if kind == "balance":
                sql.set_balance(op[1], op[2]), mem.set_balance(op[1], op[2])
            elif kind == "add":
                if 0 <= mem.get_balance(op[1]) + op[2] < 2**256:
                    sql.add_balance(op[1], op[2]), mem.add_balance(op[1], op[2])
                else:
                    with pytest.raises(ValueError):
                        sql.add_balance(op[1], op[2])
            elif kind == "nonce":
                sql.set_nonce(op[1], op[2]), mem.set_nonce(op[1], op[2])
            elif kind == "code":
                sql.set_code(op[1], op[2]), mem.set_code(op[1], op[2])
            elif kind == "storage":
                sql.set_storage(op[1], op[2], op[3]), mem.set_storage(op[1], op[2], op[3])
            elif kind == "create":
                sql.create_account(op[1]), mem.create_account(op[1])
            elif kind == "delete":
                sql.delete_account(op[1]), mem.delete_account(op[1])
            elif kind == "touch":
                sql.touch(op[1]), mem.touch(op[1])
            elif kind == "clear_touched":
                sql.clear_touched(), mem.clear_touched()
            elif kind == "snapshot":
                snaps.append((sql.snapshot(), mem.snapshot()))
            elif kind in ("revert", "commit") and snaps:
                i = max(0, len(snaps) - 1 - op[1])
                a, b = snaps[i]
                del snaps[i:]
                if kind == "revert":
                    sql.revert(a), mem.revert(b)
                else:
                    sql.commit(a), mem.commit(b)
            elif kind == "block":
                if snaps and not op[1]:
                    before = sql.head()
                    with pytest.raises(ValueError, match="live snapshot"):
                        commit(sql)
                    assert sql.head() == before
                else:
                    if snaps:
                        sql.commit(snaps[0][0]), mem.commit(snaps[0][1])
                        snaps.clear()
                    root = state_root(mem)
                    if op[2]:
                        assert sql.state_root() == root
                    blk = commit(sql)
                    blocks += 1
                    assert sql.head() == blk.number == blocks - 1
                    assert sql.state_root() == root
                    mem.clear_touched()  # a block ends the touched set
                    committed = mem.to_accounts()
            elif kind == "discard":
                sql.discard()
                snaps.clear()
                mem = MemoryBackend.from_accounts(committed)
            elif kind == "reopen":
                sql.close()
                check_tries(path)
                sql = SqliteBackend(path)
                snaps.clear()
                mem = MemoryBackend.from_accounts(committed)
                assert sql.head() == (blocks - 1 if blocks else None)
            elif kind == "root":
                assert sql.state_root() == state_root(mem) == state_root(sql)
            same(sql, mem)
        assert sql.state_root() == state_root(mem) == state_root(sql)
        event(f"blocks: {min(blocks, 5)}{'+' if blocks >= 5 else ''}")
        # And whatever is on disk is the last block's state exactly.
        sql.close()
        check_tries(path)
        sql = SqliteBackend(path)
        assert sql.to_accounts() == committed
        assert sql.state_root() == state_root(MemoryBackend.from_accounts(committed))
    finally:
        sql.close()


# --- persistence and queries --------------------------------------------------------------
TA, TB, TC = b"\xaa" * 32, b"\xbb" * 32, b"\xcc" * 32


def test_blocks_transactions_logs_and_meta_persist(tmp_path):
    path = tmp_path / "c.db"
    with SqliteBackend(path) as b:
        assert b.head() is None and b.block(0) is None
        b.set_balance(ADDRS[0], 10)
        b.set_meta("config", b"{}")
        assert b.get_meta("config") == b"{}"  # pending, but visible
        g = commit(b)
        b.set_storage(ADDRS[1], KEYS[1], VALUES[1])
        b1 = commit(b, txs=2, logs=[(0, ADDRS[1], (TA,), b"1"), (0, ADDRS[2], (TA, TB), b"2"),
                                    (1, ADDRS[1], (), b"3")])
        b.set_balance(ADDRS[0], 11)  # pending, never committed
        b.set_meta("config", b"changed")  # likewise
    with SqliteBackend(path) as b:
        assert b.head() == 1
        assert b.get_balance(ADDRS[0]) == 10
        assert b.get_storage(ADDRS[1], KEYS[1]) == VALUES[1]
        assert b.get_meta("config") == b"{}" and b.get_meta("nope") is None
        assert b.block(0) == g and b.block(1) == b1 and b.block(2) is None
        assert b.block(-1) is None and b.block(2**70) is None
        assert b.block_by_hash(b1.hash) == b1 and b.block_by_hash(bytes(32)) is None
        for tx in b1.transactions:
            assert b.transaction(tx.hash) == tx
        assert b.transaction(bytes(32)) is None
        assert [x.data for x in b1.logs] == [b"1", b"2", b"3"]
        assert b1.logs[2].tx_index == 1 and b1.logs[2].tx_hash == b1.transactions[1].hash
        assert b.logs(0, 5) == list(b1.logs)


def test_log_filters_follow_eth_getlogs(tmp_path):
    with SqliteBackend(tmp_path / "c.db") as b:
        commit(b)
        commit(b, txs=1, logs=[(0, ADDRS[1], (TA,), b"1"), (0, ADDRS[2], (TA, TB), b"2"),
                               (0, ADDRS[1], (), b"3")])
        commit(b, txs=1, logs=[(0, ADDRS[3], (TB, TA, TC, TC), b"4")])

        def q(*args, **kw):
            return [x.data for x in b.logs(*args, **kw)]

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
            b.logs(0, 2, None, [None] * 5)
        with pytest.raises(ValueError):
            b.logs(0, 2, None, [b"\xaa" * 31])
        with pytest.raises(ValueError):
            b.logs(0, 2, [ADDRS[0][:19]])
        with pytest.raises(ValueError):
            b.logs(0, 2, ADDRS[0])  # one address, not a list of them
        with pytest.raises(ValueError):
            b.logs(-1, 2)
        with pytest.raises(ValueError):
            b.logs(0, "latest")  # type: ignore[arg-type]


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
    with SqliteBackend() as b:
        every: list[StoredLog] = []
        for entries in blocks:
            blk = commit(b, txs=1, logs=[(0, a, t, d) for a, t, d in entries])
            every.extend(blk.logs)
        for lo, hi, addresses, topics in queries:
            assert b.logs(lo, hi, addresses, topics) == brute_force(every, lo, hi, addresses,
                                                                   topics)


def plan(b: SqliteBackend, *args) -> str:
    """The query plan of the logs() query, by capturing its SQL."""
    captured: list[str] = []
    b._db.set_trace_callback(captured.append)
    try:
        b.logs(*args)
    finally:
        b._db.set_trace_callback(None)
    select = next(s for s in captured if s.startswith("SELECT"))
    return " | ".join(r[-1] for r in b._db.execute("EXPLAIN QUERY PLAN " + select))


def test_log_queries_by_topic0_or_address_use_an_index():
    with SqliteBackend() as b:
        commit(b, txs=1, logs=[(0, ADDRS[1], (TA,), b"1")])
        by_topic = plan(b, 0, 10**6, None, [TA])
        assert "INDEX logs_topic0" in by_topic, by_topic
        by_topics = plan(b, 0, 10**6, None, [[TA, TB], TC])
        assert "INDEX logs_topic0" in by_topics, by_topics
        by_address = plan(b, 0, 10**6, [ADDRS[1], ADDRS[2]])
        assert "INDEX logs_address" in by_address, by_address
        # No filter but the range: a range of the primary key, not a scan of the table.
        by_range = plan(b, 5, 10)
        assert "SEARCH l USING PRIMARY KEY (block_number>? AND block_number<?)" in by_range, \
            by_range


def test_meta_is_pending_until_the_block_and_discarded_with_it(tmp_path):
    path = tmp_path / "c.db"
    with SqliteBackend(path) as b:
        b.set_meta("a", b"1")
        b.discard()
        assert b.get_meta("a") is None
        b.set_meta("a", bytearray(b"2"))
        commit(b)
        b.set_meta("a", b"3")
        assert b.get_meta("a") == b"3"
        b.discard()
        assert b.get_meta("a") == b"2" and type(b.get_meta("a")) is bytes
        with pytest.raises(ValueError):
            b.set_meta("a", "text")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            b.set_meta(b"a", b"1")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            b.get_meta(1)  # type: ignore[arg-type]
    with SqliteBackend(path) as b:
        assert b.get_meta("a") == b"2"


def test_discard_and_commit_block_end_the_touched_set_and_snapshots():
    with SqliteBackend() as b:
        b.set_balance(ADDRS[0], 1)
        commit(b)
        b.touch(ADDRS[1])
        s = b.snapshot()
        b.set_balance(ADDRS[0], 2)
        b.discard()
        assert b.touched() == frozenset() and b.get_balance(ADDRS[0]) == 1
        with pytest.raises(ValueError, match="not live"):
            b.revert(s)
        b.touch(ADDRS[1])
        b.set_balance(ADDRS[0], 3)
        commit(b)
        assert b.touched() == frozenset() and b.get_balance(ADDRS[0]) == 3
        b.discard()  # nothing pending: a no-op
        assert b.get_balance(ADDRS[0]) == 3


def test_usable_from_another_thread():
    with SqliteBackend() as b:
        b.set_balance(ADDRS[0], 5)
        commit(b)
        seen = []
        t = threading.Thread(target=lambda: seen.append((b.get_balance(ADDRS[0]), b.head())))
        t.start()
        t.join()
        assert seen == [(5, 0)]


def test_durable_option_selects_full_sync(tmp_path):
    with SqliteBackend(tmp_path / "d.db", durable=True) as b:
        assert b._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert b._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with SqliteBackend(tmp_path / "d.db") as b:
        assert b._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


# --- commit_block's checks ----------------------------------------------------------------
def test_commit_block_checks_the_chain_link_and_writes_nothing_on_refusal(tmp_path):
    path = tmp_path / "c.db"
    with SqliteBackend(path) as b:
        b.set_balance(ADDRS[0], 1)
        with pytest.raises(ValueError, match="first block is number 0"):
            b.commit_block(BlockData(1, bhash(1), bytes(32), b"", (), ()))
        g = commit(b)
        b.set_balance(ADDRS[0], 2)
        with pytest.raises(ValueError, match="does not follow"):
            b.commit_block(BlockData(2, bhash(2), g.hash, b"", (), ()))
        with pytest.raises(ValueError, match="does not follow"):
            b.commit_block(BlockData(0, bhash(5), g.hash, b"", (), ()))
        with pytest.raises(ValueError, match="parent hash"):
            b.commit_block(BlockData(1, bhash(1), b"\x09" * 32, b"", (), ()))
        with pytest.raises(ValueError, match="already stored"):
            b.commit_block(BlockData(1, g.hash, g.hash, b"", (), ()))
        assert b.head() == 0 and b.get_balance(ADDRS[0]) == 2  # still pending
        assert committed_view(path)[ADDRS[0]][1] == (1).to_bytes(32, "big")


def _bad_blocks(b: SqliteBackend) -> dict[str, BlockData]:
    good = make_block(b, txs=2, logs=[(0, ADDRS[0], (TA,), b""), (1, ADDRS[0], (), b"")])
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
    with SqliteBackend(path) as b:
        commit(b, txs=1)
        b.set_storage(ADDRS[0], KEYS[1], VALUES[1])
        for what, bad in _bad_blocks(b).items():
            with pytest.raises(ValueError):
                b.commit_block(bad)
                pytest.fail(f"accepted: {what}")
        with pytest.raises(ValueError, match="BlockData"):
            b.commit_block((1, bhash(1)))  # type: ignore[arg-type]
        # A transaction already in an earlier block.
        earlier = b.block(0).transactions[0]
        blk = make_block(b)
        dup = StoredTx(earlier.hash, 1, blk.hash, 0, b"r", b"r")
        with pytest.raises(ValueError, match="already stored"):
            b.commit_block(BlockData(1, blk.hash, blk.parent_hash, b"", (dup,), ()))
        assert b.head() == 0 and b.block(1) is None
        assert b.get_storage(ADDRS[0], KEYS[1]) == VALUES[1]  # still pending
        good = make_block(b, txs=2, logs=[(0, ADDRS[0], (TA,), b""), (1, ADDRS[0], (), b"")])
        b.commit_block(good)  # the checks did not get in the way of a good one
        assert b.block(1) == good


def test_commit_block_with_a_live_snapshot_is_refused():
    with SqliteBackend() as b:
        s = b.snapshot()
        b.set_balance(ADDRS[0], 1)
        with pytest.raises(ValueError, match="live snapshot"):
            commit(b)
        assert b.head() is None and b.get_balance(ADDRS[0]) == 1
        b.commit(s)
        commit(b)
        assert b.head() == 0 and b.get_balance(ADDRS[0]) == 1


def test_query_arguments_are_checked():
    with SqliteBackend() as b:
        commit(b)
        for bad in (b"\0" * 31, "00" * 32, None):
            with pytest.raises(ValueError):
                b.block_by_hash(bad)  # type: ignore[arg-type]
            with pytest.raises(ValueError):
                b.transaction(bad)  # type: ignore[arg-type]
        for bad in ("0", 1.0, None, True):
            with pytest.raises(ValueError):
                b.block(bad)  # type: ignore[arg-type]


# --- atomicity ----------------------------------------------------------------------------
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt, sqlite3.OperationalError])
def test_a_failure_mid_commit_leaves_the_previous_block(tmp_path, monkeypatch, error):
    path = tmp_path / "c.db"
    with SqliteBackend(path) as b:
        b.set_balance(ADDRS[0], 1)
        b.set_storage(ADDRS[1], KEYS[1], VALUES[1])
        b.set_storage(ADDRS[2], KEYS[2], VALUES[2])
        g = commit(b, txs=1)
        root0, on_disk = b.state_root(), committed_view(path)
        b.set_balance(ADDRS[0], 2)
        b.set_storage(ADDRS[1], KEYS[1], ZERO32)
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

        monkeypatch.setattr(SqliteBackend, "_write_block", fail)
        with pytest.raises(error, match="injected"):
            commit(b, txs=1, logs=[(0, ADDRS[0], (TA,), b"")])
        assert written == [3]  # ADDRS[2] deleted, ADDRS[3] added: the state part ran
        assert not b._db.in_transaction
        # Nothing reached the file; the pending changes are intact, to retry or discard.
        assert b.head() == 0 and committed_view(path) == on_disk
        assert b.to_accounts() == pending and b.state_root() == root1
        assert b.get_meta("m") == b"x"
        monkeypatch.undo()
        blk = commit(b, txs=1, logs=[(0, ADDRS[0], (TA,), b"")])  # the retry goes through
        assert b.to_accounts() == pending and b.state_root() == root1 == state_root(b)
        b.set_balance(ADDRS[4], 9)
        monkeypatch.setattr(SqliteBackend, "_write_block", fail)
        with pytest.raises(error):
            commit(b)
        b.discard()
        assert b.to_accounts() == pending and not b.exists(ADDRS[4])
    check_tries(path)
    with SqliteBackend(path) as b:
        assert b.head() == 1 and b.block(0) == g and b.block(1) == blk
        assert b.to_accounts() == pending and b.get_meta("m") == b"x"
        assert b.state_root() == root1 == state_root(b) != root0


# The writer: block n sets the balance of FF..FF to n, 40 slots of EE..EE to n + 1, the
# nonce of one of 150 accounts to n + 1, deletes and recreates a contract every 7 blocks,
# and stores one transaction and one log; its header is its state root. It prints n once
# commit_block has returned, as a node would answer a client.
_WRITER = textwrap.dedent("""
    import sys
    from eth_hash.auto import keccak
    from state.sqlite import BlockData, SqliteBackend, StoredLog, StoredTx
    b = SqliteBackend(sys.argv[1])
    head = b.head()
    n = 0 if head is None else head + 1
    parent = bytes(32) if head is None else b.block(head).hash
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
        b.commit_block(BlockData(n, h, parent, root, (StoredTx(tx, n, h, 0, b"raw", b"r"),),
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
        with SqliteBackend(path) as b:
            head = b.head()
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
                blk = b.block(n)
                assert blk.hash == bhash(n) and blk.parent_hash == parent
                assert len(blk.transactions) == 1 and len(blk.logs) == 1
                assert b.transaction(keccak(b"tx%d" % n)) == blk.transactions[0]
                parent = blk.hash
            assert b.block(head + 1) is None
            assert b.transaction(keccak(b"tx%d" % (head + 1))) is None
            assert len(b.logs(0, head + 5)) == head + 1
            # The stored tries agree with the flat state and with the block's header.
            assert b.state_root() == b.block(head).header == state_root(b)
            assert b._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            last_head = head
        check_tries(path)
    assert last_head >= 5


# --- roots --------------------------------------------------------------------------------
def test_incremental_root_touches_only_the_changed_paths(tmp_path):
    path = tmp_path / "c.db"
    contract = b"\xcc" * 20
    with SqliteBackend(path) as b:
        for i in range(2000):
            b.set_storage(contract, w(i), w(i + 1))
        for i in range(20):
            b.set_balance(bytes([i + 1]) * 20, 10**18 + i)
        b.set_code(contract, b"\0asm")
        full = b.state_root()
        assert full == state_root(b)
        commit(b)
    with SqliteBackend(path) as b:
        assert b.state_root() == full  # read back, not recomputed
        b.set_storage(contract, w(7), w(99))
        b.set_storage(contract, w(1500), ZERO32)
        b.set_balance(ADDRS[0], 5)
        statements: list[str] = []
        b._db.set_trace_callback(statements.append)
        root = b.state_root()
        b._db.set_trace_callback(None)
        # A rebuild would read the 2000 slots; the update reads a few trie nodes per path.
        assert len(statements) < 60, len(statements)
        assert root == state_root(b) != full
        snap = b.snapshot()
        b.set_storage(contract, w(8), ZERO32)
        changed = b.state_root()
        b.revert(snap)  # a revert after a root: the next root must not keep the change
        assert b.state_root() == root != changed
        b.commit_block(make_block(b))
        assert b.state_root() == root
        # Deleting the big contract, then bringing it back with one slot.
        b.delete_account(contract)
        b.set_storage(contract, w(3), w(3))
        assert b.state_root() == state_root(b)
        commit(b)
        assert b.get_account(contract) == Account(storage={w(3): w(3)})
        assert b._db.execute("SELECT COUNT(*) FROM storage WHERE address = ?",
                             (contract,)).fetchone()[0] == 1
    check_tries(path)
    with SqliteBackend(path) as b:
        assert b.state_root() == state_root(b)
        assert b.get_account(contract) == Account(storage={w(3): w(3)})


def test_a_recreated_account_hides_its_old_storage_through_the_caches(tmp_path):
    with SqliteBackend(tmp_path / "c.db") as b:
        b.set_storage(ADDRS[0], KEYS[1], VALUES[1])
        b.set_storage(ADDRS[0], KEYS[2], VALUES[2])
        commit(b)
        assert b.get_storage(ADDRS[0], KEYS[1]) == VALUES[1]  # now in the slot cache
        b.create_account(ADDRS[0])
        b.set_storage(ADDRS[0], KEYS[2], VALUES[1])
        assert b.get_storage(ADDRS[0], KEYS[1]) == ZERO32
        commit(b)
        assert b.get_storage(ADDRS[0], KEYS[1]) == ZERO32
        assert b.get_storage(ADDRS[0], KEYS[2]) == VALUES[1]
        assert b.get_account(ADDRS[0]) == Account(storage={KEYS[2]: VALUES[1]})
        b.delete_account(ADDRS[0])
        commit(b)
        b.set_balance(ADDRS[0], 1)
        assert b.get_storage(ADDRS[0], KEYS[2]) == ZERO32
        commit(b)
        assert b.get_account(ADDRS[0]) == Account(balance=1)
        assert b.state_root() == state_root(b)


def test_empty_state_and_from_accounts():
    with SqliteBackend() as b:
        assert b.state_root() == BLANK_ROOT == state_root(b)
    accounts = {ADDRS[0]: Account(1, 2, b"c", {KEYS[1]: VALUES[1], KEYS[2]: ZERO32}),
                ADDRS[1]: Account()}
    b = SqliteBackend.from_accounts(accounts)
    want = {ADDRS[0]: Account(1, 2, b"c", {KEYS[1]: VALUES[1]}), ADDRS[1]: Account()}
    assert b.to_accounts() == want and b.head() is None
    assert b.state_root() == state_root(MemoryBackend.from_accounts(accounts))
    b.discard()  # the accounts are committed state, not pending changes
    assert b.to_accounts() == want
    with pytest.raises(ValueError):
        SqliteBackend.from_accounts({ADDRS[0]: Account(nonce=2**64)})


def test_large_values_round_trip(tmp_path):
    path = tmp_path / "c.db"
    with SqliteBackend(path) as b:
        b.set_nonce(ADDRS[0], 2**64 - 1)  # past SQLite's signed 64-bit integers
        b.set_balance(ADDRS[0], 2**256 - 1)
        b.set_storage(ADDRS[0], b"\xff" * 32, b"\xff" * 32)
        commit(b)
    with SqliteBackend(path) as b:
        assert b.get_account(ADDRS[0]) == Account(2**64 - 1, 2**256 - 1, b"",
                                                  {b"\xff" * 32: b"\xff" * 32})


# --- files --------------------------------------------------------------------------------
def test_files_that_are_not_our_database_are_refused(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateDatabaseError, match="not a usable chain database"):
        SqliteBackend(junk)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE t (x)")
    with pytest.raises(StateDatabaseError, match="not a chain database"):
        SqliteBackend(other)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as c:
        c.execute("PRAGMA application_id = 7")
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    with pytest.raises(StateDatabaseError, match="application id 0x7"):
        SqliteBackend(foreign)
    with pytest.raises(StateDatabaseError, match="cannot open|not a usable"):
        SqliteBackend(tmp_path)  # a directory
    assert isinstance(StateDatabaseError("x"), ValueError)


@pytest.mark.parametrize("version, message", [(SCHEMA_VERSION + 1, "newer than"),
                                              (1, "older format")])
def test_other_schema_versions_are_refused(tmp_path, version, message):
    path = tmp_path / "c.db"
    with SqliteBackend(path) as b:
        commit(b)
    with sqlite3.connect(path) as c:
        c.execute(f"PRAGMA user_version = {version}")
    with pytest.raises(StateDatabaseError, match=message):
        SqliteBackend(path)
    with sqlite3.connect(path) as c:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        assert c.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    with SqliteBackend(path) as b:  # untouched by the refusal
        assert b.head() == 0


def test_an_empty_file_becomes_a_new_database(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with SqliteBackend(path) as b:
        assert b.head() is None
        commit(b)
    with SqliteBackend(path) as b:
        assert b.head() == 0
