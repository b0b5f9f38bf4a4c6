"""The StateBackend contract, and a copy-per-snapshot model, on MemoryBackend and on
SqliteBackend (an in-memory database: from_accounts state committed to SQL, every later
write pending in its overlay)."""

from __future__ import annotations

import copy

import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from state import EMPTY_CODE_HASH, ZERO_BYTES32, Account, MemoryBackend, StateBackend
from state.sqlite import SqliteBackend

A = bytes.fromhex("a94f5374fce5edbc8e2a8697c15331677e6ebf0b")
B = bytes.fromhex("deadbeef00000000000000000000000000000001")
C = bytes(19) + b"\x0c"


def w(n: int) -> bytes:
    return n.to_bytes(32, "big")


# A backend class: called with no arguments for an empty state, or its from_accounts.
Factory = type[StateBackend]


@pytest.fixture(scope="module", params=[MemoryBackend, SqliteBackend], ids=["memory", "sqlite"])
def make(request: pytest.FixtureRequest) -> Factory:
    return request.param


def test_absent_account_reads_as_empty(make: Factory) -> None:
    b = make()
    assert not b.exists(A)
    assert b.is_empty(A)
    assert b.get_balance(A) == 0 and b.get_nonce(A) == 0 and b.get_code(A) == b""
    assert b.get_code_hash(A) == ZERO_BYTES32
    assert b.get_storage(A, w(1)) == ZERO_BYTES32
    assert b.get_account(A) is None
    assert b.addresses() == [] and b.to_accounts() == {}
    assert b.touched() == frozenset()


def test_reads_and_writes(make: Factory) -> None:
    b = make()
    b.set_balance(A, 10)
    assert b.exists(A) and b.get_balance(A) == 10 and not b.is_empty(A)
    b.set_nonce(B, 3)
    assert b.get_nonce(B) == 3 and not b.is_empty(B)
    b.set_code(C, b"\0asm")
    assert b.get_code(C) == b"\0asm" and not b.is_empty(C)
    assert b.get_code_hash(C) == keccak(b"\0asm")
    assert b.get_code_hash(A) == EMPTY_CODE_HASH  # exists, no code
    b.set_storage(A, w(1), w(7))
    assert b.get_storage(A, w(1)) == w(7) and b.get_storage(A, w(2)) == ZERO_BYTES32
    assert b.addresses() == sorted([A, B, C])
    assert b.get_account(A) == Account(nonce=0, balance=10, code=b"", storage={w(1): w(7)})
    assert b.to_accounts() == {A: Account(0, 10, b"", {w(1): w(7)}), B: Account(nonce=3),
                               C: Account(code=b"\0asm")}


def test_code_hash_cache_follows_set_code_and_revert(make: Factory) -> None:
    b = make()
    b.set_code(A, b"one")
    assert b.get_code_hash(A) == keccak(b"one")
    s = b.snapshot()
    b.set_code(A, b"two")
    assert b.get_code_hash(A) == keccak(b"two")
    b.revert(s)
    assert b.get_code_hash(A) == keccak(b"one")
    b.create_account(A)
    assert b.get_code_hash(A) == EMPTY_CODE_HASH
    b.delete_account(A)
    assert b.get_code_hash(A) == ZERO_BYTES32


def test_bytearray_inputs_are_stored_as_bytes(make: Factory) -> None:
    b = make()
    b.set_storage(bytearray(A), bytearray(w(1)), bytearray(w(2)))
    b.set_code(bytearray(B), bytearray(b"xy"))
    assert b.addresses() == sorted([A, B])
    assert all(type(a) is bytes for a in b.addresses())
    acc = b.get_account(A)
    assert acc is not None
    assert all(type(k) is bytes and type(v) is bytes for k, v in acc.storage.items())
    assert type(b.get_code(B)) is bytes
    assert b.get_storage(bytearray(A), bytearray(w(1))) == w(2)
    b.touch(bytearray(C))
    assert b.touched() == {C}


def test_zero_storage_value_deletes_the_slot(make: Factory) -> None:
    b = make()
    b.set_storage(A, w(1), w(5))
    b.set_storage(A, w(1), ZERO_BYTES32)
    acc = b.get_account(A)
    assert acc is not None and acc.storage == {}
    assert b.exists(A)  # the write created the account; clearing a slot keeps it
    b.set_storage(B, w(1), ZERO_BYTES32)
    assert b.exists(B) and b.get_account(B) == Account()


def test_get_account_returns_a_copy(make: Factory) -> None:
    b = make()
    b.set_storage(A, w(1), w(1))
    acc = b.get_account(A)
    assert acc is not None
    acc.storage[w(2)] = w(2)
    acc.balance = 99
    assert b.get_storage(A, w(2)) == ZERO_BYTES32 and b.get_balance(A) == 0
    accs = b.to_accounts()
    accs[A].storage.clear()
    assert b.get_storage(A, w(1)) == w(1)


def test_create_account_keeps_balance_and_wipes_the_rest(make: Factory) -> None:
    b = make()
    b.set_balance(A, 1000)
    b.set_nonce(A, 5)
    b.set_code(A, b"code")
    b.set_storage(A, w(1), w(1))
    b.create_account(A)
    assert b.get_account(A) == Account(balance=1000)
    b.create_account(B)
    assert b.exists(B) and b.is_empty(B) and b.get_account(B) == Account()


def test_delete_account(make: Factory) -> None:
    b = make()
    b.set_balance(A, 1)
    b.set_storage(A, w(3), w(3))
    b.delete_account(A)
    assert not b.exists(A) and b.get_storage(A, w(3)) == ZERO_BYTES32
    b.delete_account(B)  # absent: nothing to do
    assert b.addresses() == []


def test_add_balance(make: Factory) -> None:
    b = make()
    b.add_balance(A, 0)
    assert b.exists(A) and b.is_empty(A)  # adding 0 creates it (testeth's coinbase touch)
    b.add_balance(A, 10)
    b.add_balance(A, -4)
    assert b.get_balance(A) == 6
    with pytest.raises(ValueError, match="balance"):
        b.add_balance(A, -7)
    assert b.get_balance(A) == 6
    with pytest.raises(ValueError):
        b.add_balance(B, -1)
    assert not b.exists(B)  # the failed write created nothing
    b.set_balance(A, 2**256 - 1)
    with pytest.raises(ValueError):
        b.add_balance(A, 1)
    assert b.get_balance(A) == 2**256 - 1


def test_add_balance_underflow_inside_snapshot_leaves_journal_consistent(
        make: Factory) -> None:
    b = make.from_accounts({A: Account(balance=5)})
    s = b.snapshot()
    b.add_balance(A, 1)
    with pytest.raises(ValueError):
        b.add_balance(A, -100)
    b.revert(s)
    assert b.to_accounts() == {A: Account(balance=5)}


def test_touch(make: Factory) -> None:
    b = make()
    b.touch(A)
    b.touch(A)
    assert b.touched() == {A}
    assert not b.exists(A)  # touching creates nothing


def test_clear_touched_with_and_without_live_snapshots(make: Factory) -> None:
    b = make()
    b.touch(A)
    b.clear_touched()
    assert b.touched() == frozenset()
    b.touch(A)
    s = b.snapshot()
    b.touch(B)
    b.set_balance(C, 1)
    b.clear_touched()  # allowed with a live snapshot: the touches are just forgotten
    assert b.touched() == frozenset()
    b.touch(C)
    b.revert(s)  # undoing the journaled touches forgets nothing that is still there
    assert b.touched() == frozenset() and not b.exists(C)
    b.touch(B)
    assert b.touched() == {B}


def test_revert_undoes_everything_since_the_snapshot(make: Factory) -> None:
    b = make.from_accounts({A: Account(nonce=1, balance=50, code=b"c",
                                                storage={w(1): w(1)})})
    before = b.to_accounts()
    s = b.snapshot()
    b.set_balance(A, 7)
    b.set_nonce(A, 2)
    b.set_code(A, b"d")
    b.set_storage(A, w(1), ZERO_BYTES32)
    b.set_storage(A, w(2), w(2))
    b.set_balance(B, 1)
    b.touch(C)
    b.touch(A)
    b.revert(s)
    assert b.to_accounts() == before
    assert b.touched() == frozenset()
    assert not b.exists(B)


def test_revert_restores_deleted_accounts_with_their_storage(make: Factory) -> None:
    b = make.from_accounts({A: Account(balance=3, code=b"x",
                                                storage={w(1): w(9), w(2): w(8)})})
    before = b.to_accounts()
    s = b.snapshot()
    b.set_storage(A, w(1), w(10))
    b.delete_account(A)
    b.set_storage(A, w(5), w(5))  # recreates a fresh account
    assert b.get_account(A) == Account(storage={w(5): w(5)})
    b.revert(s)
    assert b.to_accounts() == before


def test_revert_restores_account_replaced_by_create(make: Factory) -> None:
    b = make.from_accounts({A: Account(nonce=4, balance=3, code=b"x",
                                                storage={w(1): w(9)})})
    before = b.to_accounts()
    s = b.snapshot()
    b.create_account(A)
    b.set_storage(A, w(2), w(2))
    b.revert(s)
    assert b.to_accounts() == before


def test_nested_snapshots(make: Factory) -> None:
    b = make()
    outer = b.snapshot()
    b.set_balance(A, 1)
    inner = b.snapshot()
    b.set_balance(A, 2)
    b.touch(B)
    b.commit(inner)
    assert b.get_balance(A) == 2 and b.touched() == {B}
    b.revert(outer)  # undoes the committed inner changes too
    assert not b.exists(A) and b.touched() == frozenset()


def test_revert_inner_keeps_outer_changes(make: Factory) -> None:
    b = make()
    outer = b.snapshot()
    b.set_storage(A, w(1), w(1))
    inner = b.snapshot()
    b.set_storage(A, w(1), w(2))
    b.set_storage(A, w(3), w(3))
    b.revert(inner)
    assert b.get_account(A) == Account(storage={w(1): w(1)})
    b.commit(outer)
    assert b.get_account(A) == Account(storage={w(1): w(1)})


def test_revert_of_outer_invalidates_inner_snapshots(make: Factory) -> None:
    b = make()
    outer = b.snapshot()
    inner = b.snapshot()
    b.revert(outer)
    for sid in (outer, inner):
        with pytest.raises(ValueError, match="not live"):
            b.revert(sid)
        with pytest.raises(ValueError, match="not live"):
            b.commit(sid)
    # Ids are not reused: a new snapshot does not revive a stale one.
    fresh = b.snapshot()
    assert fresh not in (outer, inner)
    with pytest.raises(ValueError):
        b.revert(outer)
    b.commit(fresh)


def test_commit_of_outer_invalidates_inner_snapshots(make: Factory) -> None:
    b = make()
    outer = b.snapshot()
    inner = b.snapshot()
    b.set_balance(A, 1)
    b.commit(outer)
    with pytest.raises(ValueError):
        b.revert(inner)
    assert b.get_balance(A) == 1


def test_writes_without_a_live_snapshot_stick(make: Factory) -> None:
    b = make()
    b.set_balance(A, 1)
    s = b.snapshot()
    b.set_balance(A, 2)
    b.revert(s)
    assert b.get_balance(A) == 1


def test_from_accounts_copies_validates_and_journals_nothing(make: Factory) -> None:
    storage = {w(1): w(1), w(2): ZERO_BYTES32}
    src = {A: Account(nonce=1, balance=2, code=bytearray(b"c"), storage=storage)}
    b = make.from_accounts(src)
    assert b.to_accounts() == {A: Account(1, 2, b"c", {w(1): w(1)})}  # zero slot dropped
    assert type(b.get_code(A)) is bytes
    storage[w(3)] = w(3)
    assert b.get_storage(A, w(3)) == ZERO_BYTES32
    assert b.touched() == frozenset()
    s = b.snapshot()
    b.revert(s)
    assert b.to_accounts() == {A: Account(1, 2, b"c", {w(1): w(1)})}
    with pytest.raises(ValueError):
        make.from_accounts({A[:19]: Account()})
    with pytest.raises(ValueError):
        make.from_accounts({A: Account(storage={b"\1": w(1)})})
    with pytest.raises(ValueError):
        make.from_accounts({A: Account(balance=-1)})


@pytest.mark.parametrize("bad", [A[:19], A + b"\0", b"", "a94f", None, 5])
def test_bad_address_raises(make: Factory, bad: object) -> None:
    b = make()
    calls = [
        lambda: b.exists(bad), lambda: b.is_empty(bad), lambda: b.get_balance(bad),
        lambda: b.get_nonce(bad), lambda: b.get_code(bad), lambda: b.get_code_hash(bad),
        lambda: b.get_storage(bad, w(0)), lambda: b.get_account(bad),
        lambda: b.set_balance(bad, 1), lambda: b.add_balance(bad, 1),
        lambda: b.set_nonce(bad, 1), lambda: b.set_code(bad, b""),
        lambda: b.set_storage(bad, w(0), w(1)), lambda: b.create_account(bad),
        lambda: b.delete_account(bad), lambda: b.touch(bad),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="20 bytes"):
            call()
    assert b.addresses() == [] and b.touched() == frozenset()


@pytest.mark.parametrize("bad", [bytes(31), bytes(33), b"", 0, None])
def test_bad_storage_word_raises(make: Factory, bad: object) -> None:
    b = make()
    with pytest.raises(ValueError, match="32 bytes"):
        b.get_storage(A, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="32 bytes"):
        b.set_storage(A, bad, w(1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="32 bytes"):
        b.set_storage(A, w(1), bad)  # type: ignore[arg-type]
    assert not b.exists(A)


def test_bad_values_raise(make: Factory) -> None:
    b = make()
    # bool is an int subclass, but True is no balance; floats and strings neither.
    for value in (-1, 2**256, True, False, 1.0, "1", None):
        with pytest.raises(ValueError):
            b.set_balance(A, value)  # type: ignore[arg-type]
    for value in (-1, 2**64, True, False, 1.0, "1", None):
        with pytest.raises(ValueError):
            b.set_nonce(A, value)  # type: ignore[arg-type]
    for delta in (True, 1.0):
        with pytest.raises(ValueError):
            b.add_balance(A, delta)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        b.set_code(A, "00")  # type: ignore[arg-type]
    assert not b.exists(A)
    for sid in (0, -1, 7):
        with pytest.raises(ValueError):
            b.revert(sid)
        with pytest.raises(ValueError):
            b.commit(sid)


def test_is_empty_follows_eip161(make: Factory) -> None:
    b = make()
    b.set_storage(A, w(1), w(1))  # storage alone does not make an account non-empty
    assert b.exists(A) and b.is_empty(A)
    b.set_nonce(B, 1)
    b.set_balance(C, 1)
    d = bytes(19) + b"\x0d"
    b.set_code(d, b"\0")
    for address in (B, C, d):
        assert not b.is_empty(address)
    b.set_nonce(B, 0)
    b.set_balance(C, 0)
    b.set_code(d, b"")
    for address in (B, C, d):
        assert b.exists(address) and b.is_empty(address)
    assert Account(storage={w(1): w(1)}).is_empty()
    assert not Account(nonce=1).is_empty() and not Account(balance=1).is_empty()
    assert not Account(code=b"x").is_empty()


WRITES = {
    "set_balance": lambda b, a: b.set_balance(a, 0),
    "add_balance": lambda b, a: b.add_balance(a, 0),
    "set_nonce": lambda b, a: b.set_nonce(a, 0),
    "set_code": lambda b, a: b.set_code(a, b""),
    "set_storage": lambda b, a: b.set_storage(a, w(1), ZERO_BYTES32),
    "create_account": lambda b, a: b.create_account(a),
}


@pytest.mark.parametrize("name", sorted(WRITES))
def test_every_write_creates_the_account_and_revert_removes_it(make: Factory,
                                                              name: str) -> None:
    b = make.from_accounts({B: Account(balance=1)})
    s = b.snapshot()
    WRITES[name](b, A)  # a write of nothing still creates the account
    assert b.exists(A) and b.get_account(A) == Account()
    assert b.get_code_hash(A) == EMPTY_CODE_HASH
    assert b.addresses() == sorted([A, B])
    b.revert(s)
    assert not b.exists(A) and b.get_code_hash(A) == ZERO_BYTES32 and b.get_account(A) is None
    assert b.to_accounts() == {B: Account(balance=1)}


def test_revert_undoes_create_of_an_absent_account(make: Factory) -> None:
    b = make()
    s = b.snapshot()
    b.create_account(A)
    b.set_balance(A, 4)
    b.revert(s)
    assert not b.exists(A) and b.addresses() == []


def test_revert_keeps_touches_made_before_the_snapshot(make: Factory) -> None:
    b = make()
    b.touch(A)
    s = b.snapshot()
    b.touch(A)  # already touched: the revert must not forget the earlier touch
    b.touch(B)
    assert b.touched() == {A, B}
    b.revert(s)
    assert b.touched() == {A}
    assert not b.exists(A) and not b.exists(B)


def test_add_balance_failure_changes_nothing_at_all(make: Factory) -> None:
    b = make.from_accounts({A: Account(nonce=2, balance=5, code=b"c",
                                                storage={w(1): w(1)})})
    outer = b.snapshot()
    b.touch(C)
    before, touched = b.to_accounts(), b.touched()
    for address, delta in ((A, -6), (B, -1), (A, 2**256)):
        with pytest.raises(ValueError):
            b.add_balance(address, delta)
        assert b.to_accounts() == before and b.touched() == touched
    b.revert(outer)
    assert b.to_accounts() == {A: Account(2, 5, b"c", {w(1): w(1)})}
    assert b.touched() == frozenset()


def test_bad_snapshot_ids(make: Factory) -> None:
    b = make()
    outer = b.snapshot()
    inner = b.snapshot()
    b.commit(inner)
    for sid in (inner, inner + 1, -1, None, "0", float(outer), True, False):
        with pytest.raises(ValueError):
            b.revert(sid)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            b.commit(sid)  # type: ignore[arg-type]
    b.set_balance(A, 1)
    b.revert(outer)  # the failed calls left the outer snapshot alive and intact
    assert not b.exists(A)
    with pytest.raises(ValueError):
        b.revert(outer)


def test_revert_of_a_middle_snapshot(make: Factory) -> None:
    b = make()
    s1 = b.snapshot()
    b.set_balance(A, 1)
    s2 = b.snapshot()
    b.set_balance(A, 2)
    s3 = b.snapshot()
    b.set_balance(A, 3)
    b.revert(s2)  # ends s2 and s3, keeps s1
    assert b.get_balance(A) == 1
    with pytest.raises(ValueError):
        b.commit(s3)
    b.revert(s1)
    assert not b.exists(A)


def test_from_accounts_and_to_accounts_do_not_alias(make: Factory) -> None:
    src = Account(nonce=1, balance=2, code=b"c", storage={w(1): w(1)})
    b = make.from_accounts({A: src})
    src.nonce, src.balance, src.code = 9, 9, b"changed"
    src.storage[w(1)] = w(9)
    assert b.get_account(A) == Account(1, 2, b"c", {w(1): w(1)})
    out = b.to_accounts()
    out[A].balance = 7
    out[A].storage[w(2)] = w(2)
    out[B] = Account(balance=1)
    assert b.to_accounts() == {A: Account(1, 2, b"c", {w(1): w(1)})}
    # A backend's accounts fed to another backend: the two evolve independently.
    c = make.from_accounts(b.to_accounts())
    c.set_storage(A, w(1), w(3))
    assert b.get_storage(A, w(1)) == w(1)


def test_base_class_defaults_agree_with_memory_backend() -> None:
    """StateBackend's own is_empty/get_code_hash/add_balance/to_accounts, run on a backend
    that implements only the abstract methods (by delegation)."""

    class Thin(StateBackend):
        def __init__(self) -> None:
            self.m = MemoryBackend()

        def exists(self, a): return self.m.exists(a)  # noqa: E704
        def get_balance(self, a): return self.m.get_balance(a)  # noqa: E704
        def get_nonce(self, a): return self.m.get_nonce(a)  # noqa: E704
        def get_code(self, a): return self.m.get_code(a)  # noqa: E704
        def get_storage(self, a, k): return self.m.get_storage(a, k)  # noqa: E704
        def addresses(self): return self.m.addresses()  # noqa: E704
        def get_account(self, a): return self.m.get_account(a)  # noqa: E704
        def set_balance(self, a, v): self.m.set_balance(a, v)  # noqa: E704
        def set_nonce(self, a, v): self.m.set_nonce(a, v)  # noqa: E704
        def set_code(self, a, c): self.m.set_code(a, c)  # noqa: E704
        def set_storage(self, a, k, v): self.m.set_storage(a, k, v)  # noqa: E704
        def create_account(self, a): self.m.create_account(a)  # noqa: E704
        def delete_account(self, a): self.m.delete_account(a)  # noqa: E704
        def touch(self, a): self.m.touch(a)  # noqa: E704
        def touched(self): return self.m.touched()  # noqa: E704
        def clear_touched(self): self.m.clear_touched()  # noqa: E704
        def snapshot(self): return self.m.snapshot()  # noqa: E704
        def revert(self, s): self.m.revert(s)  # noqa: E704
        def commit(self, s): self.m.commit(s)  # noqa: E704

        @classmethod
        def from_accounts(cls, accounts):
            t = cls()
            t.m = MemoryBackend.from_accounts(accounts)
            return t

    t = Thin.from_accounts({A: Account(balance=3, storage={w(1): w(1)})})
    assert t.is_empty(B) and t.get_code_hash(B) == ZERO_BYTES32
    assert t.get_code_hash(A) == EMPTY_CODE_HASH
    t.set_code(B, b"xy")
    assert not t.is_empty(B) and t.get_code_hash(B) == keccak(b"xy")
    t.add_balance(A, -3)
    assert t.get_balance(A) == 0 and t.is_empty(A)
    with pytest.raises(ValueError):
        t.add_balance(A, -1)
    assert t.get_balance(A) == 0
    assert t.to_accounts() == {A: Account(storage={w(1): w(1)}), B: Account(code=b"xy")}


def test_state_backend_is_abstract() -> None:
    with pytest.raises(TypeError):
        StateBackend()  # type: ignore[abstract]


# --- model-based: random operation sequences against deep copies per snapshot ---------

ADDRS = [bytes([i]) * 20 for i in range(1, 5)]
KEYS = [w(i) for i in range(3)]
VALUES = [ZERO_BYTES32, w(1), w(2**255)]


class Model:
    """The obvious implementation: plain dicts, a deep copy taken at every snapshot."""

    def __init__(self) -> None:
        self.accounts: dict[bytes, dict] = {}
        self.touched: set[bytes] = set()
        self.snaps: list[tuple[int, dict, set]] = []  # (id, accounts, touched)

    def acc(self, a: bytes) -> dict:
        return self.accounts.setdefault(a, {"nonce": 0, "balance": 0, "code": b"",
                                            "storage": {}})

    def as_accounts(self) -> dict[bytes, Account]:
        return {a: Account(x["nonce"], x["balance"], x["code"], dict(x["storage"]))
                for a, x in sorted(self.accounts.items())}


ops = st.one_of(
    st.tuples(st.just("balance"), st.sampled_from(ADDRS),
              st.one_of(st.integers(0, 3), st.just(2**256 - 1))),
    st.tuples(st.just("add"), st.sampled_from(ADDRS),
              st.one_of(st.integers(-3, 3), st.just(2**256 - 2))),
    st.tuples(st.just("nonce"), st.sampled_from(ADDRS), st.integers(0, 2)),
    st.tuples(st.just("code"), st.sampled_from(ADDRS), st.sampled_from([b"", b"a", b"bc"])),
    st.tuples(st.just("store"), st.sampled_from(ADDRS), st.sampled_from(KEYS),
              st.sampled_from(VALUES)),
    st.tuples(st.just("create"), st.sampled_from(ADDRS)),
    st.tuples(st.just("delete"), st.sampled_from(ADDRS)),
    st.tuples(st.just("touch"), st.sampled_from(ADDRS)),
    st.tuples(st.just("snapshot")),
    # which live snapshot to end, counted from the innermost
    st.tuples(st.just("revert"), st.integers(0, 3)),
    st.tuples(st.just("commit"), st.integers(0, 3)),
    # an id that is not live (ended, or never handed out) must be refused
    st.tuples(st.just("stale"), st.integers(0, 40)),
)


def apply(b: StateBackend, m: Model, live: list[int], op: tuple) -> None:
    kind = op[0]
    if kind == "balance":
        b.set_balance(op[1], op[2])
        m.acc(op[1])["balance"] = op[2]
    elif kind == "add":
        new = m.accounts.get(op[1], {"balance": 0})["balance"] + op[2]
        if not 0 <= new < 2**256:
            with pytest.raises(ValueError):
                b.add_balance(op[1], op[2])
        else:
            b.add_balance(op[1], op[2])
            m.acc(op[1])["balance"] = new
    elif kind == "nonce":
        b.set_nonce(op[1], op[2])
        m.acc(op[1])["nonce"] = op[2]
    elif kind == "code":
        b.set_code(op[1], op[2])
        m.acc(op[1])["code"] = op[2]
    elif kind == "store":
        b.set_storage(op[1], op[2], op[3])
        storage = m.acc(op[1])["storage"]
        if op[3] == ZERO_BYTES32:
            storage.pop(op[2], None)
        else:
            storage[op[2]] = op[3]
    elif kind == "create":
        b.create_account(op[1])
        old = m.accounts.get(op[1])
        m.accounts[op[1]] = {"nonce": 0, "balance": old["balance"] if old else 0,
                             "code": b"", "storage": {}}
    elif kind == "delete":
        b.delete_account(op[1])
        m.accounts.pop(op[1], None)
    elif kind == "touch":
        b.touch(op[1])
        m.touched.add(op[1])
    elif kind == "stale":
        if op[1] not in live:
            for end in (b.revert, b.commit):
                with pytest.raises(ValueError):
                    end(op[1])
    elif kind == "snapshot":
        sid = b.snapshot()
        live.append(sid)
        m.snaps.append((sid, copy.deepcopy(m.accounts), set(m.touched)))
    elif live:
        i = max(0, len(live) - 1 - op[1])
        sid = live[i]
        del live[i:]
        assert m.snaps[i][0] == sid
        if kind == "revert":
            b.revert(sid)
            m.accounts, m.touched = m.snaps[i][1], m.snaps[i][2]
        else:
            b.commit(sid)
        del m.snaps[i:]


def check(b: StateBackend, m: Model) -> None:
    assert b.to_accounts() == m.as_accounts()
    assert b.addresses() == sorted(m.accounts)
    assert b.touched() == m.touched
    for a in ADDRS:
        x = m.accounts.get(a)
        assert b.exists(a) == (x is not None)
        assert b.get_balance(a) == (x["balance"] if x else 0)
        assert b.get_nonce(a) == (x["nonce"] if x else 0)
        assert b.get_code(a) == (x["code"] if x else b"")
        assert b.get_account(a) == (None if x is None else Account(
            x["nonce"], x["balance"], x["code"], dict(x["storage"])))
        assert b.is_empty(a) == (x is None or (x["nonce"] == 0 and x["balance"] == 0
                                               and not x["code"]))
        want_hash = ZERO_BYTES32 if x is None else keccak(x["code"])
        assert b.get_code_hash(a) == want_hash
        for k in KEYS:
            assert b.get_storage(a, k) == (x["storage"].get(k, ZERO_BYTES32) if x else ZERO_BYTES32)


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=60))
def test_matches_model(make: Factory, seq: list[tuple]) -> None:
    b, m, live = make(), Model(), []
    for op in seq:
        apply(b, m, live, op)
        check(b, m)
    # Ending every snapshot still leaves a consistent backend, and stale ids are refused.
    while live:
        apply(b, m, live, ("revert", 0))
        check(b, m)
    for sid in range(len(seq) + 2):
        apply(b, m, live, ("stale", sid))
    check(b, m)


@settings(max_examples=100, deadline=None)
@given(st.lists(ops, max_size=40), st.lists(ops, max_size=40))
def test_outer_revert_restores_start_whatever_happened_inside(make: Factory, pre: list[tuple],
                                                              inside: list[tuple]) -> None:
    b, m, live = make(), Model(), []
    for op in pre:
        if op[0] not in ("snapshot", "revert", "commit"):
            apply(b, m, live, op)
    start, start_touched = b.to_accounts(), b.touched()
    outer = b.snapshot()
    live = [outer]
    m.snaps.append((outer, copy.deepcopy(m.accounts), set(m.touched)))
    for op in inside:
        if op[0] in ("revert", "commit"):
            if len(live) == 1:
                continue  # keep the outer snapshot alive
            op = (op[0], min(op[1], len(live) - 2))
        apply(b, m, live, op)
    b.revert(outer)
    assert b.to_accounts() == start
    assert b.touched() == start_touched
