"""SqliteBackend: the StateBackend semantics against MemoryBackend (hypothesis), per-block
persistence and queries, the incremental state root, and atomic block commits (an injected
failure mid-commit, and a process SIGKILLed while committing)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from state.backend import ZERO32, Account
from state.memory import MemoryBackend
from state.root import state_root
from state.sqlite import (
    SCHEMA_VERSION,
    BlockData,
    SqliteBackend,
    StateDatabaseError,
    StoredLog,
    StoredTx,
)

ROOT = Path(__file__).resolve().parents[2]
ADDRS = [bytes([i]) * 20 for i in range(1, 6)]
KEYS = [bytes([0] * 31 + [i]) for i in range(4)]
VALUES = [ZERO32, b"\x01" * 32, bytes(31) + b"\x07"]


def block(n: int, parent: bytes, txs=(), logs=()) -> BlockData:
    h = n.to_bytes(32, "big")
    return BlockData(n, h, parent, b"header%d" % n, tuple(txs), tuple(logs))


def head_hash(b: SqliteBackend) -> bytes:
    head = b.head()
    return bytes(32) if head is None else b.block(head).hash


def commit(b: SqliteBackend, txs=(), logs=()) -> BlockData:
    head = b.head()
    blk = block(0 if head is None else head + 1, head_hash(b) if head is not None
                else bytes(32), txs, logs)
    b.commit_block(blk)
    return blk


# --- the model comparison -----------------------------------------------------------------
OPS = st.one_of(
    st.tuples(st.just("balance"), st.sampled_from(ADDRS), st.integers(0, 2**256 - 1)),
    st.tuples(st.just("nonce"), st.sampled_from(ADDRS), st.integers(0, 2**64 - 1)),
    st.tuples(st.just("code"), st.sampled_from(ADDRS), st.sampled_from([b"", b"\0asm", b"x"])),
    st.tuples(st.just("storage"), st.sampled_from(ADDRS), st.sampled_from(KEYS),
              st.sampled_from(VALUES)),
    st.tuples(st.just("create"), st.sampled_from(ADDRS)),
    st.tuples(st.just("delete"), st.sampled_from(ADDRS)),
    st.tuples(st.just("touch"), st.sampled_from(ADDRS)),
    st.tuples(st.just("snapshot")),
    st.tuples(st.just("revert")),
    st.tuples(st.just("commit")),
    st.tuples(st.just("block")),
    st.tuples(st.just("discard")),
    st.tuples(st.just("reopen")),
    st.tuples(st.just("root")),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(OPS, max_size=60))
def test_behaves_as_the_memory_backend_across_blocks_and_reopens(tmp_path, ops):
    path = tmp_path / f"model-{os.urandom(8).hex()}.db"
    sql = SqliteBackend(path)
    mem = MemoryBackend()
    committed = MemoryBackend()  # the state as of the last block
    snaps: list[tuple[int, int]] = []
    try:
        for op in ops:
            kind = op[0]
            if kind == "balance":
                sql.set_balance(op[1], op[2]), mem.set_balance(op[1], op[2])
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
            elif kind == "snapshot":
                snaps.append((sql.snapshot(), mem.snapshot()))
            elif kind == "revert" and snaps:
                a, b = snaps.pop()
                sql.revert(a), mem.revert(b)
            elif kind == "commit" and snaps:
                a, b = snaps.pop()
                sql.commit(a), mem.commit(b)
            elif kind == "block":
                if snaps:
                    with pytest.raises(ValueError, match="live snapshot"):
                        commit(sql)
                    continue
                assert sql.state_root() == state_root(mem)
                commit(sql)
                mem.clear_touched()
                committed = MemoryBackend.from_accounts(mem.to_accounts())
            elif kind == "discard":
                sql.discard()
                snaps.clear()
                mem = MemoryBackend.from_accounts(committed.to_accounts())
            elif kind == "reopen":
                sql.close()
                sql = SqliteBackend(path)
                snaps.clear()
                mem = MemoryBackend.from_accounts(committed.to_accounts())
            elif kind == "root":
                assert sql.state_root() == state_root(mem)
            assert sql.to_accounts() == mem.to_accounts()
            assert sql.touched() == mem.touched()
        assert sql.state_root() == state_root(mem)
    finally:
        sql.close()


# --- persistence and queries --------------------------------------------------------------
def test_blocks_transactions_and_logs_persist_and_query(tmp_path):
    path = tmp_path / "c.db"
    topic_a, topic_b, topic_c = b"\xaa" * 32, b"\xbb" * 32, b"\xcc" * 32
    with SqliteBackend(path) as b:
        assert b.head() is None
        b.set_balance(ADDRS[0], 10)
        b.set_meta("config", b"{}")
        g = commit(b)
        tx = StoredTx(b"\x01" * 32, 1, (1).to_bytes(32, "big"), 0, b"raw", b"receipt")
        logs = [StoredLog(1, (1).to_bytes(32, "big"), 0, tx.hash, 0, ADDRS[1], (topic_a,), b"1"),
                StoredLog(1, (1).to_bytes(32, "big"), 0, tx.hash, 1, ADDRS[2],
                          (topic_a, topic_b), b"2"),
                StoredLog(1, (1).to_bytes(32, "big"), 0, tx.hash, 2, ADDRS[1], (), b"3")]
        b.set_storage(ADDRS[1], KEYS[1], VALUES[1])
        b1 = commit(b, [tx], logs)
        b.set_balance(ADDRS[0], 11)  # pending, never committed
    with SqliteBackend(path) as b:
        assert b.head() == 1
        assert b.get_balance(ADDRS[0]) == 10
        assert b.get_storage(ADDRS[1], KEYS[1]) == VALUES[1]
        assert b.get_meta("config") == b"{}" and b.get_meta("nope") is None
        assert b.block(0) == g and b.block(1) == b1 and b.block(2) is None
        assert b.block_by_hash(b1.hash) == b1
        assert b.transaction(tx.hash) == tx and b.transaction(bytes(32)) is None

        def q(*args, **kw):
            return [x.data for x in b.logs(*args, **kw)]

        assert q(0, 1) == [b"1", b"2", b"3"]
        assert q(0, 0) == []
        assert q(0, 1, [ADDRS[1]]) == [b"1", b"3"]
        assert q(0, 1, [ADDRS[1], ADDRS[2]], [topic_a]) == [b"1", b"2"]
        assert q(0, 1, None, [None, topic_b]) == [b"2"]
        assert q(0, 1, None, [topic_a, [topic_b, topic_c]]) == [b"2"]
        assert q(0, 1, None, [[topic_c]]) == []
        assert q(0, 1, None, [None]) == [b"1", b"2", b"3"]


def test_commit_block_checks_the_chain_link(tmp_path):
    with SqliteBackend(tmp_path / "c.db") as b:
        with pytest.raises(ValueError, match="first block"):
            b.commit_block(block(1, bytes(32)))
        g = commit(b)
        with pytest.raises(ValueError, match="does not follow"):
            b.commit_block(block(2, g.hash))
        with pytest.raises(ValueError, match="parent hash"):
            b.commit_block(block(1, b"\x09" * 32))
        assert b.head() == 0


def test_a_failure_mid_commit_leaves_the_previous_block(tmp_path, monkeypatch):
    path = tmp_path / "c.db"
    with SqliteBackend(path) as b:
        b.set_balance(ADDRS[0], 1)
        commit(b)
        b.set_balance(ADDRS[0], 2)
        b.set_storage(ADDRS[0], KEYS[1], VALUES[1])
        # The state rows are written, then inserting the block fails (a duplicate hash).
        bad = BlockData(1, b.block(0).hash, b.block(0).hash, b"h", (), ())
        with pytest.raises(sqlite3.IntegrityError):
            b.commit_block(bad)
        assert b.head() == 0
        assert b.get_balance(ADDRS[0]) == 2  # still pending: the caller decides
        b.discard()
        assert b.get_balance(ADDRS[0]) == 1
    with SqliteBackend(path) as b:
        assert b.head() == 0
        assert b.get_balance(ADDRS[0]) == 1
        assert b.get_storage(ADDRS[0], KEYS[1]) == ZERO32


_WRITER = textwrap.dedent("""
    import sys
    from state.sqlite import BlockData, SqliteBackend
    b = SqliteBackend(sys.argv[1])
    head = b.head()
    n = 0 if head is None else head + 1
    parent = bytes(32) if head is None else b.block(head).hash
    while True:
        a = bytes([n % 200 + 1]) * 20
        b.set_balance(b"\\xff" * 20, n)           # the last block's number
        for k in range(20):                        # and 20 slots all holding it
            b.set_storage(b"\\xee" * 20, k.to_bytes(32, "big"), (n + 1).to_bytes(32, "big"))
        b.set_nonce(a, n + 1)
        h = (n + 1).to_bytes(32, "big")
        b.commit_block(BlockData(n, h, parent, b"x" * 100, (), ()))
        print(n, flush=True)
        n, parent = n + 1, h
""")


def test_sigkill_at_any_moment_leaves_whole_blocks(tmp_path):
    path = tmp_path / "crash.db"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    acknowledged = -1
    for round_ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)],
                                stdout=subprocess.PIPE, text=True, env=env)
        time.sleep(0.6 + random.random() * 0.6)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        printed = [int(x) for x in out.split()]
        assert printed, f"round {round_}: no block was committed"
        acknowledged = printed[-1]
        with SqliteBackend(path) as b:
            head = b.head()
            assert head >= acknowledged  # every block reported committed is there
            # Exactly the head block's state: nothing of a later one, nothing missing.
            assert b.get_balance(b"\xff" * 20) == head
            for k in range(20):
                assert b.get_storage(b"\xee" * 20, k.to_bytes(32, "big")) == \
                    (head + 1).to_bytes(32, "big")
            assert [b.block(n) is not None for n in range(head + 1)] == [True] * (head + 1)
            assert b.block(head + 1) is None
            assert b.get_nonce(bytes([head % 200 + 1]) * 20) == head + 1


# --- roots, bad inputs --------------------------------------------------------------------
def test_incremental_root_matches_a_full_rebuild_after_reopen(tmp_path):
    path = tmp_path / "c.db"
    with SqliteBackend(path) as b:
        for i in range(300):
            b.set_storage(ADDRS[0], i.to_bytes(32, "big"), (i + 1).to_bytes(32, "big"))
        b.set_balance(ADDRS[1], 5)
        b.set_code(ADDRS[2], b"\0asm")
        assert b.state_root() == state_root(b)
        commit(b)
        b.set_storage(ADDRS[0], (7).to_bytes(32, "big"), ZERO32)
        b.delete_account(ADDRS[1])
        assert b.state_root() == state_root(b)
        commit(b)
        root = b.state_root()
    with SqliteBackend(path) as b:
        assert b.state_root() == root == state_root(b)
        snap = b.snapshot()
        b.set_storage(ADDRS[0], (8).to_bytes(32, "big"), ZERO32)
        changed = b.state_root()
        b.revert(snap)  # a revert after a root: the next root must not keep the change
        assert b.state_root() == root != changed


def test_from_accounts(tmp_path):
    accounts = {ADDRS[0]: Account(1, 2, b"c", {KEYS[1]: VALUES[1]})}
    b = SqliteBackend.from_accounts(accounts)
    assert b.to_accounts() == accounts
    assert b.state_root() == state_root(MemoryBackend.from_accounts(accounts))


@pytest.mark.parametrize("value", [1.0, True, "1", None])
def test_non_int_balances_and_nonces_are_refused(tmp_path, value):
    for backend in (MemoryBackend(), SqliteBackend(tmp_path / "v.db")):
        with pytest.raises(ValueError):
            backend.set_balance(ADDRS[0], value)
        with pytest.raises(ValueError):
            backend.set_nonce(ADDRS[0], value)
        assert not backend.exists(ADDRS[0])


def test_files_that_are_not_our_database_are_refused(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateDatabaseError, match="not a usable"):
        SqliteBackend(junk)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE t (x)")
    with pytest.raises(StateDatabaseError, match="not a chain database"):
        SqliteBackend(other)
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as c:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateDatabaseError, match="newer"):
        SqliteBackend(newer)
