"""SqliteBackend: the StateBackend semantics against MemoryBackend across commits, discards
and reopens (hypothesis); persistence of the state and the meta values; the incremental
state root; atomic commits (failures injected mid-commit); bad inputs and bad files.

The plain StateBackend contract tests run on both backends in test_backend.py; the block
store, which commits its blocks in the same transaction as the state (and the SIGKILL test
of that), is tested in tests/chain/test_store.py."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest
import rlp
from eth_hash.auto import keccak
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from trie import HexaryTrie
from trie.iter import NodeIterator

from state import trie_store
from state.backend import EMPTY_TRIE_ROOT, ZERO_BYTES32, Account
from state.errors import StateError
from state.memory import MemoryBackend
from state.root import account_rlp, state_root
from state.sqlite import APPLICATION_ID, SCHEMA_VERSION, SqliteBackend, StateDatabaseError
from state.trie_store import TrieNodeStore, pack_nodes, trie_get, unpack_nodes

ADDRS = [bytes([i]) * 20 for i in range(1, 6)]
KEYS = [bytes(31) + bytes([i]) for i in range(4)]
VALUES = [ZERO_BYTES32, b"\x01" * 32, bytes(31) + b"\x07"]


def w(n: int) -> bytes:
    return n.to_bytes(32, "big")


def check_tries(path: Path) -> None:
    """The stored tries hold exactly the flat tables: every node reachable from the state
    root is there (py-trie's iterator walks them all), every account's leaf is its row,
    and every storage trie holds exactly the account's slots."""
    with sqlite3.connect(path) as c:
        nodes = dict(c.execute("SELECT hash, node FROM trie_nodes"))
        for (row,) in c.execute("SELECT nodes FROM trie_log"):  # the latest commits'
            nodes.update(unpack_nodes(row))
        row = c.execute("SELECT root FROM state_root").fetchone()
        root = EMPTY_TRIE_ROOT if row is None else row[0]  # no state committed yet
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
# Few addresses and keys, so that sequences often hit the same account across commits.
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
    # A commit with snapshots live: refused, or (True) after committing the outermost;
    # with its root asked for first (as the chain does), or left to commit_state.
    st.tuples(st.just("commit_state"), st.booleans(), st.booleans()),
    st.tuples(st.just("commit_state"), st.just(True), st.booleans()),
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
@pytest.mark.parametrize("log_limit", [trie_store.LOG_LIMIT, 6], ids=["log", "small-log"])
def test_behaves_as_the_memory_backend_across_commits_and_reopens(tmp_path, ops, log_limit,
                                                                 monkeypatch):
    # With a log of 6 nodes, most commits move the log into trie_nodes.
    monkeypatch.setattr(trie_store, "LOG_LIMIT", log_limit)
    path = tmp_path / f"model-{os.urandom(8).hex()}.db"
    sql = SqliteBackend(path)
    mem = MemoryBackend()
    committed = {}  # the accounts as of the last commit
    snaps: list[tuple[int, int]] = []
    commits = 0
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
            elif kind == "commit_state":
                if snaps and not op[1]:
                    with pytest.raises(ValueError, match="live snapshot"):
                        sql.commit_state()
                else:
                    if snaps:
                        sql.commit(snaps[0][0]), mem.commit(snaps[0][1])
                        snaps.clear()
                    root = state_root(mem)
                    if op[2]:
                        assert sql.state_root() == root
                    sql.commit_state()
                    commits += 1
                    assert sql.state_root() == root
                    mem.clear_touched()  # a commit ends the touched set
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
            elif kind == "root":
                assert sql.state_root() == state_root(mem) == state_root(sql)
            same(sql, mem)
        assert sql.state_root() == state_root(mem) == state_root(sql)
        event(f"commits: {min(commits, 5)}{'+' if commits >= 5 else ''}")
        # And whatever is on disk is the last commit's state exactly.
        sql.close()
        check_tries(path)
        sql = SqliteBackend(path)
        assert sql.to_accounts() == committed
        assert sql.state_root() == state_root(MemoryBackend.from_accounts(committed))
    finally:
        sql.close()


# --- persistence --------------------------------------------------------------------------
def test_state_and_meta_persist(tmp_path):
    path = tmp_path / "c.db"
    with SqliteBackend(path) as b:
        b.set_balance(ADDRS[0], 10)
        b.set_meta("config", b"{}")
        assert b.get_meta("config") == b"{}"  # pending, but visible
        b.commit_state()
        b.set_storage(ADDRS[1], KEYS[1], VALUES[1])
        b.commit_state()
        b.set_balance(ADDRS[0], 11)  # pending, never committed
        b.set_meta("config", b"changed")  # likewise
    with SqliteBackend(path) as b:
        assert b.get_balance(ADDRS[0]) == 10
        assert b.get_storage(ADDRS[1], KEYS[1]) == VALUES[1]
        assert b.get_meta("config") == b"{}" and b.get_meta("nope") is None


def test_meta_is_pending_until_the_commit_and_discarded_with_it(tmp_path):
    path = tmp_path / "c.db"
    with SqliteBackend(path) as b:
        b.set_meta("a", b"1")
        b.discard()
        assert b.get_meta("a") is None
        b.set_meta("a", bytearray(b"2"))
        b.commit_state()
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


def test_discard_and_commit_state_end_the_touched_set_and_snapshots():
    with SqliteBackend() as b:
        b.set_balance(ADDRS[0], 1)
        b.commit_state()
        b.touch(ADDRS[1])
        s = b.snapshot()
        b.set_balance(ADDRS[0], 2)
        b.discard()
        assert b.touched() == frozenset() and b.get_balance(ADDRS[0]) == 1
        with pytest.raises(ValueError, match="not live"):
            b.revert(s)
        b.touch(ADDRS[1])
        b.set_balance(ADDRS[0], 3)
        b.commit_state()
        assert b.touched() == frozenset() and b.get_balance(ADDRS[0]) == 3
        b.discard()  # nothing pending: a no-op
        assert b.get_balance(ADDRS[0]) == 3


def test_usable_from_another_thread():
    with SqliteBackend() as b:
        b.set_balance(ADDRS[0], 5)
        b.commit_state()
        seen = []
        t = threading.Thread(target=lambda: seen.append(b.get_balance(ADDRS[0])))
        t.start()
        t.join()
        assert seen == [5]


def test_durable_option_selects_full_sync(tmp_path):
    with SqliteBackend(tmp_path / "d.db", durable=True) as b:
        assert b._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert b._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with SqliteBackend(tmp_path / "d.db") as b:
        assert b._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_commit_state_with_a_live_snapshot_is_refused(tmp_path):
    path = tmp_path / "c.db"
    with SqliteBackend(path) as b:
        s = b.snapshot()
        b.set_balance(ADDRS[0], 1)
        with pytest.raises(ValueError, match="live snapshot"):
            b.commit_state()
        assert committed_view(path) == {} and b.get_balance(ADDRS[0]) == 1
        b.commit(s)
        b.commit_state()
        assert ADDRS[0] in committed_view(path) and b.get_balance(ADDRS[0]) == 1


# --- atomicity ----------------------------------------------------------------------------
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt, sqlite3.OperationalError])
def test_a_failure_mid_commit_leaves_the_previous_commit(tmp_path, error):
    path = tmp_path / "c.db"
    with SqliteBackend(path) as b:
        b.set_balance(ADDRS[0], 1)
        b.set_storage(ADDRS[1], KEYS[1], VALUES[1])
        b.set_storage(ADDRS[2], KEYS[2], VALUES[2])
        b.commit_state()
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

        def fail(db: sqlite3.Connection) -> None:
            # A caller's writes run after the state rows, inside the transaction.
            written.append(db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0])
            db.execute("CREATE TABLE failed (x)")
            raise error("injected")

        with pytest.raises(error, match="injected"):
            b.commit_state(fail)
        assert written == [3]  # ADDRS[2] deleted, ADDRS[3] added: the state part ran
        assert not b._db.in_transaction
        # Nothing reached the file, the caller's writes neither; the pending changes are
        # intact, to retry or discard.
        assert committed_view(path) == on_disk
        assert not b._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'failed'").fetchone()
        assert b.to_accounts() == pending and b.state_root() == root1
        assert b.get_meta("m") == b"x"
        b.commit_state(lambda db: db.execute("CREATE TABLE extra (x)"))  # the retry
        assert b.to_accounts() == pending and b.state_root() == root1 == state_root(b)
        b.set_balance(ADDRS[4], 9)
        with pytest.raises(error):
            b.commit_state(fail)
        b.discard()
        assert b.to_accounts() == pending and not b.exists(ADDRS[4])
    check_tries(path)
    with SqliteBackend(path) as b:
        assert b.to_accounts() == pending and b.get_meta("m") == b"x"
        assert b.state_root() == root1 == state_root(b) != root0
        tables = {r[0] for r in b._db.execute("SELECT name FROM sqlite_master")}
        assert "extra" in tables and "failed" not in tables


# --- the node log -------------------------------------------------------------------------
@given(st.dictionaries(st.binary(min_size=32, max_size=32), st.binary(max_size=600),
                       max_size=20))
def test_node_log_rows_round_trip(nodes):
    row = pack_nodes(nodes)
    assert unpack_nodes(row) == nodes
    if row:
        with pytest.raises(ValueError, match="truncated"):
            unpack_nodes(row[:-1] if len(row) > 36 else row + b"\0")


def test_every_root_stays_readable_as_the_log_moves_into_the_table(tmp_path, monkeypatch):
    """Old roots read through the log, then through the table once a commit has moved the
    log there; a reader that read the log long before (the move, and later commits)
    still finds every node; a failed moving commit leaves the log as it was."""
    monkeypatch.setattr(trie_store, "LOG_LIMIT", 40)
    path = tmp_path / "c.db"
    roots = []
    with SqliteBackend(path) as b:
        reader = TrieNodeStore(sqlite3.connect(path, check_same_thread=False))
        moves = 0
        for n in range(60):
            b.set_balance(ADDRS[n % 5], n + 1)
            b.set_storage(ADDRS[0], n.to_bytes(32, "big"), w(n + 1))
            logged = b._db.execute("SELECT COUNT(*) FROM trie_log").fetchone()[0]
            if n == 30:
                def fail(db: sqlite3.Connection) -> None:
                    raise RuntimeError("injected")
                with pytest.raises(RuntimeError):
                    b.commit_state(fail)
                assert b._db.execute("SELECT COUNT(*) FROM trie_log").fetchone()[0] == logged
            b.commit_state()
            moves += b._db.execute("SELECT COUNT(*) FROM trie_log").fetchone()[0] < logged
            roots.append((n, b.state_root()))
            if n == 10:
                trie_store.clear_node_cache()
                assert trie_get(reader.pending(), b.state_root(), keccak(ADDRS[0]))
        assert moves >= 3
        if not b._db.execute("SELECT COUNT(*) FROM trie_log").fetchone()[0]:
            b.set_balance(ADDRS[60 % 5], 61)  # end on nodes held in the log
            b.commit_state()
            roots.append((60, b.state_root()))
        assert b._db.execute("SELECT COUNT(*) FROM trie_log").fetchone()[0]
        check_tries(path)
        fresh = TrieNodeStore(sqlite3.connect(path, check_same_thread=False))
        for store in (reader, fresh):
            trie_store.clear_node_cache()  # read through the stores, as another process
            for n, root in roots:
                leaf = trie_get(store.pending(), root, keccak(ADDRS[n % 5]))
                assert int.from_bytes(rlp.decode(leaf)[1], "big") == n + 1


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
        b.commit_state()
    with SqliteBackend(path) as b:
        assert b.state_root() == full  # read back, not recomputed
        b.set_storage(contract, w(7), w(99))
        b.set_storage(contract, w(1500), ZERO_BYTES32)
        b.set_balance(ADDRS[0], 5)
        statements: list[str] = []
        b._db.set_trace_callback(statements.append)
        root = b.state_root()
        b._db.set_trace_callback(None)
        # A rebuild would read the 2000 slots; the update reads a few trie nodes per path.
        assert len(statements) < 60, len(statements)
        assert root == state_root(b) != full
        snap = b.snapshot()
        b.set_storage(contract, w(8), ZERO_BYTES32)
        changed = b.state_root()
        b.revert(snap)  # a revert after a root: the next root must not keep the change
        assert b.state_root() == root != changed
        b.commit_state()
        assert b.state_root() == root
        # Deleting the big contract, then bringing it back with one slot.
        b.delete_account(contract)
        b.set_storage(contract, w(3), w(3))
        assert b.state_root() == state_root(b)
        b.commit_state()
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
        b.commit_state()
        assert b.get_storage(ADDRS[0], KEYS[1]) == VALUES[1]  # now in the slot cache
        b.create_account(ADDRS[0])
        b.set_storage(ADDRS[0], KEYS[2], VALUES[1])
        assert b.get_storage(ADDRS[0], KEYS[1]) == ZERO_BYTES32
        b.commit_state()
        assert b.get_storage(ADDRS[0], KEYS[1]) == ZERO_BYTES32
        assert b.get_storage(ADDRS[0], KEYS[2]) == VALUES[1]
        assert b.get_account(ADDRS[0]) == Account(storage={KEYS[2]: VALUES[1]})
        b.delete_account(ADDRS[0])
        b.commit_state()
        b.set_balance(ADDRS[0], 1)
        assert b.get_storage(ADDRS[0], KEYS[2]) == ZERO_BYTES32
        b.commit_state()
        assert b.get_account(ADDRS[0]) == Account(balance=1)
        assert b.state_root() == state_root(b)


def test_empty_state_and_from_accounts():
    with SqliteBackend() as b:
        assert b.state_root() == EMPTY_TRIE_ROOT == state_root(b)
    accounts = {ADDRS[0]: Account(1, 2, b"c", {KEYS[1]: VALUES[1], KEYS[2]: ZERO_BYTES32}),
                ADDRS[1]: Account()}
    b = SqliteBackend.from_accounts(accounts)
    want = {ADDRS[0]: Account(1, 2, b"c", {KEYS[1]: VALUES[1]}), ADDRS[1]: Account()}
    assert b.to_accounts() == want
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
        b.commit_state()
    with SqliteBackend(path) as b:
        assert b.get_account(ADDRS[0]) == Account(2**64 - 1, 2**256 - 1, b"",
                                                  {b"\xff" * 32: b"\xff" * 32})


# --- files --------------------------------------------------------------------------------
def test_files_that_are_not_our_database_are_refused(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateDatabaseError, match="not a usable state database"):
        SqliteBackend(junk)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE t (x)")
    with pytest.raises(StateDatabaseError, match="not a state database"):
        SqliteBackend(other)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as c:
        c.execute("PRAGMA application_id = 7")
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    with pytest.raises(StateDatabaseError, match="application id 0x7"):
        SqliteBackend(foreign)
    with pytest.raises(StateDatabaseError, match="cannot open|not a usable"):
        SqliteBackend(tmp_path)  # a directory
    assert isinstance(StateDatabaseError("x"), StateError)


@pytest.mark.parametrize("version, message", [(SCHEMA_VERSION + 1, "newer than"),
                                              (1, "older format")])
def test_other_schema_versions_are_refused(tmp_path, version, message):
    path = tmp_path / "c.db"
    with SqliteBackend(path) as b:
        b.set_balance(ADDRS[0], 1)
        b.commit_state()
    with sqlite3.connect(path) as c:
        c.execute(f"PRAGMA user_version = {version}")
    with pytest.raises(StateDatabaseError, match=message):
        SqliteBackend(path)
    with sqlite3.connect(path) as c:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        assert c.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    with SqliteBackend(path) as b:  # untouched by the refusal
        assert b.get_balance(ADDRS[0]) == 1


def test_an_empty_file_becomes_a_new_database(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with SqliteBackend(path) as b:
        assert b.addresses() == []
        b.set_balance(ADDRS[0], 1)
        b.commit_state()
    with SqliteBackend(path) as b:
        assert b.get_balance(ADDRS[0]) == 1
