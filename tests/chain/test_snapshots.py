"""evm_snapshot / evm_revert and the state of older blocks, in process: a revert gives back
exactly the snapshot's state (every account and slot, the root, accounts deleted or
created since), the chain and the pool; nested snapshots; state read at any older root;
the clear error where the store cannot answer."""

from __future__ import annotations

import pytest

from chain.chain import ETHER, Chain
from chain.history import HistoryUnavailable, StateView
from chain.wrap import wrap_deploy

from .conftest import balance_data, sign, transfer_data, word

# A contract that stores 7 at key 1 when called without data, and selfdestructs to the
# caller when called with any.
DOOMED = """(module
  (import "ethereum" "getCallDataSize" (func $size (result i32)))
  (import "ethereum" "storageStore" (func $store (param i32 i32)))
  (import "ethereum" "getCaller" (func $caller (param i32)))
  (import "ethereum" "selfDestruct" (func $sd (param i32)))
  (memory 1) (export "memory" (memory 0))
  (data (i32.const 31) "\\01") (data (i32.const 63) "\\07")
  (func (export "main")
    (if (call $size)
      (then (call $caller (i32.const 100)) (call $sd (i32.const 100))))
    (call $store (i32.const 0) (i32.const 32))))"""


@pytest.fixture
def chain(tmp_path):
    with Chain(tmp_path / "c.db") as c:
        yield c


def everything(chain: Chain) -> dict:
    backend = chain.backend
    return {a: (acc.nonce, acc.balance, acc.code, dict(acc.storage))
            for a, acc in backend.to_accounts().items()}


def deploy(chain: Chain, code: bytes) -> bytes:
    r = chain.transaction(chain.send_transaction(chain.accounts[0].address,
                                                 data=wrap_deploy(code))).receipt
    assert r.status == 1, r.error
    return r.contract_address


def test_revert_gives_back_every_account_and_slot(chain, token_wasm, wat):
    alice, bob = chain.accounts[0].address, chain.accounts[1].address
    token = deploy(chain, token_wasm)
    doomed = deploy(chain, wat(DOOMED))
    chain.send_transaction(alice, to=doomed)  # writes its slot
    assert chain.storage(doomed, word(1)) == word(7)
    chain.send_transaction(alice, to=token, data=transfer_data(bob, 50))
    before, root, head = everything(chain), chain.backend.state_root(), chain.head()
    sid = chain.snapshot()
    # Since: a new contract, transfers to new accounts, edits, a self-destruct.
    second = deploy(chain, token_wasm)
    chain.send_transaction(bob, to=token, data=transfer_data(b"\x33" * 20, 20))
    chain.send_transaction(alice, to=b"\x44" * 20, value=ETHER)
    chain.set_storage(token, word(99), word(1))
    chain.set_balance(bob, 5)
    chain.set_code(alice, b"\0asm\x01\0\0\0")
    chain.send_transaction(chain.accounts[2].address, to=doomed, data=b"\x01")
    assert chain.code(doomed) == b"" and chain.storage(doomed, word(1)) == bytes(32)
    assert everything(chain) != before
    assert chain.revert(sid) is True
    assert everything(chain) == before
    assert chain.backend.state_root() == root == chain.head_header().state_root
    assert chain.head() == head and chain.block(head + 1) is None
    assert chain.code(second) == b""
    assert chain.call(to=token, data=balance_data(bob)) == word(50)
    assert chain.revert(sid) is False  # a snapshot is used up by its revert


def test_nested_snapshots_and_the_pool(chain):
    alice = chain.accounts[0]
    s1 = chain.snapshot()
    chain.send_transaction(alice.address, to=b"\x01" * 20, value=1)
    s2 = chain.snapshot()
    root2 = chain.backend.state_root()
    chain.send_transaction(alice.address, to=b"\x02" * 20, value=2)
    chain.set_automine(False)
    pooled = chain.send_raw_transaction(sign(alice.key, nonce=2, gas=21000, to=b"\x03" * 20,
                                             value=3, gasPrice=10**10))
    s3 = chain.snapshot()
    chain.mine()
    assert chain.balance(b"\x03" * 20) == 3 and chain.pending_transaction(pooled) is None
    assert chain.revert(s3)
    assert chain.pending_transaction(pooled) is not None  # back in the pool
    assert chain.balance(b"\x03" * 20) == 0
    assert chain.revert(s2)
    assert chain.backend.state_root() == root2 and chain.pending_transaction(pooled) is None
    assert chain.balance(b"\x02" * 20) == 0 and chain.balance(b"\x01" * 20) == 1
    assert chain.revert(s1) and chain.head() == 0
    assert chain.balance(b"\x01" * 20) == 0
    chain.set_automine(True)
    assert chain.revert(s1) is False


def test_a_revert_persists(tmp_path):
    path = tmp_path / "c.db"
    with Chain(path) as chain:
        alice = chain.accounts[0].address
        sid = chain.snapshot()
        for i in range(3):
            chain.send_transaction(alice, to=bytes([i + 1]) * 20, value=1)
        chain.revert(sid)
        root = chain.head_header().state_root
    with Chain(path) as chain:
        assert chain.head() == 0 and chain.backend.state_root() == root
        assert chain.balance(b"\x01" * 20) == 0
        tx = chain.send_transaction(alice, to=b"\x01" * 20, value=1)
        assert chain.transaction(tx).stored.block_number == 1


def test_state_at_older_blocks_is_read_from_their_roots(chain, token_wasm):
    alice, bob = chain.accounts[0].address, chain.accounts[1].address
    token = deploy(chain, token_wasm)
    chain.send_transaction(alice, to=token, data=transfer_data(bob, 10))
    at = chain.head()
    chain.send_transaction(alice, to=token, data=transfer_data(bob, 5))
    assert chain.call(to=token, data=balance_data(bob)) == word(15)
    assert chain.call(to=token, data=balance_data(bob), block=at) == word(10)
    assert chain.storage(token, bytes(12) + bob, block=at) == word(10)
    assert chain.code(token, block=0) == b"" and chain.code(token, block=at) == chain.code(token)
    assert chain.nonce(alice, block=at) == chain.nonce(alice) - 1
    assert chain.balance(alice, block=0) == 10_000 * ETHER


def test_a_root_the_store_lacks_is_historical_state_not_available(chain):
    with chain.store.read_pool().session() as r, \
            pytest.raises(HistoryUnavailable, match="historical state not available"):
        StateView(r.connection, b"\x99" * 32)
