"""The chain without a server: genesis, deploy (wrap-deploy + loader), transfers, failed
and invalid transactions, persistence across reopen, and every block's state root against
the in-memory backend replaying the same transactions."""

from __future__ import annotations

import pytest

import gasmeter
from chain.blocks import Header, ordered_trie_root
from chain.chain import (
    ETHER,
    Chain,
    ChainConfig,
    ChainLockedError,
    ExecutionReverted,
)
from chain.loader import ContractLoader
from chain.transactions import decode_transaction
from chain.wrap import wrap_deploy
from evmc_bridge import Revision
from state.errors import InvalidTransaction
from state.memory import MemoryBackend
from state.root import state_root
from state.transaction import BlockEnv, apply_transaction

from .conftest import (
    SUPPLY,
    TRANSFER_TOPIC,
    balance_data,
    selector,
    sign,
    transfer_data,
    word,
)


@pytest.fixture
def chain(tmp_path):
    with Chain(tmp_path / "chain.db") as c:
        yield c


def deploy(chain: Chain, code: bytes, sender_index: int = 0) -> bytes:
    tx_hash = chain.send_transaction(chain.accounts[sender_index].address,
                                     data=wrap_deploy(code))
    mined = chain.transaction(tx_hash)
    assert mined.receipt.status == 1, mined.receipt.error
    return mined.receipt.contract_address


def test_genesis_funds_the_dev_accounts(chain):
    assert chain.head() == 0
    assert chain.accounts[0].address.hex() == "f39fd6e51aad88f6f4ce6ab8827279cfffb92266"
    for account in chain.accounts:
        assert chain.balance(account.address) == 10_000 * ETHER
    header, data = chain.block(0)
    assert header.number == 0 and data.transactions == ()
    mem = MemoryBackend()
    for account in chain.accounts:
        mem.set_balance(account.address, 10_000 * ETHER)
    assert header.state_root == state_root(mem)
    assert chain.block(header.hash)[0] == header


def test_deploy_stores_metered_code_and_token_works(chain, token_wasm):
    alice, bob = chain.accounts[0].address, chain.accounts[1].address
    token = deploy(chain, token_wasm)
    assert chain.code(token) == gasmeter.inject(token_wasm)
    # totalSupply through a read-only call changes nothing: the mint is thrown away.
    assert chain.call(sender=bob, to=token, data=selector("totalSupply()")) == word(SUPPLY)
    assert chain.call(to=token, data=balance_data(bob)) == word(0)

    tx_hash = chain.send_transaction(alice, to=token, data=transfer_data(bob, 500))
    mined = chain.transaction(tx_hash)
    r = mined.receipt
    assert r.status == 1
    assert r.logs[0].topics == (TRANSFER_TOPIC, bytes(12) + alice, bytes(12) + bob)
    assert r.logs[0].data == word(500)
    assert chain.call(to=token, data=balance_data(alice)) == word(SUPPLY - 500)
    assert chain.call(to=token, data=balance_data(bob)) == word(500)
    logs = chain.logs(0, chain.head(), [token], [TRANSFER_TOPIC])
    assert [log.tx_hash for log in logs] == [tx_hash]
    # The header commits to the transaction and the receipt.
    header, block = chain.block(mined.stored.block_number)
    assert header.transactions_root == ordered_trie_root([mined.tx.raw])
    assert header.receipts_root == ordered_trie_root([r.consensus_encoding()])
    assert header.gas_used == r.gas_used


def test_no_metering_stores_the_module_as_given(tmp_path, token_wasm):
    with Chain(tmp_path / "c.db", metering=False) as chain:
        token = deploy(chain, token_wasm)
        assert chain.code(token) == token_wasm


def test_a_revert_is_mined_failed_and_eth_call_reports_it(chain, token_wasm):
    bob = chain.accounts[1].address
    token = deploy(chain, token_wasm)
    with pytest.raises(ExecutionReverted) as info:
        chain.call(sender=bob, to=token, data=transfer_data(bob, 10**15))
    assert info.value.data[:4] == selector("Error(string)")
    before = chain.balance(bob)
    tx_hash = chain.send_transaction(bob, to=token, data=transfer_data(bob, 10**15),
                                     gas=200_000)
    r = chain.transaction(tx_hash).receipt
    assert r.status == 0 and r.logs == ()
    assert chain.balance(bob) == before - r.gas_used * r.effective_gas_price


def test_out_of_gas_is_mined_with_status_0_and_charges_the_whole_limit(chain, wat):
    loop = wat("""(module (import "ethereum" "useGas" (func $g (param i64)))
      (memory 1) (export "memory" (memory 0))
      (func (export "main") (loop $l (br $l))))""")
    alice = chain.accounts[0].address
    contract = deploy(chain, loop)
    before = chain.balance(alice)
    tx_hash = chain.send_transaction(alice, to=contract, gas=100_000)
    mined = chain.transaction(tx_hash)
    assert mined.receipt.status == 0
    assert mined.receipt.gas_used == 100_000
    assert "out of gas" in mined.receipt.error
    assert chain.balance(alice) == before - 100_000 * mined.receipt.effective_gas_price


def test_invalid_wasm_deploy_is_a_failed_receipt_and_estimate_refuses_it(chain):
    alice = chain.accounts[0].address
    bad = b"\0asm\x01\x00\x00\x00\x01\xff"
    with pytest.raises(Exception, match="contract validation failure|Decode"):
        chain.estimate_gas(sender=alice, data=bad)
    tx_hash = chain.send_transaction(alice, data=bad, gas=100_000)
    r = chain.transaction(tx_hash).receipt
    assert r.status == 0 and r.contract_address is None
    assert "validation" in r.error


@pytest.mark.parametrize("case, match", [
    ("nonce-low", "nonce too low"),
    ("nonce-high", "nonce too high"),
    ("funds", "insufficient funds"),
    ("block-gas", "exceeds block gas limit"),
    ("intrinsic", "intrinsic gas too low"),
    ("chain-id", "invalid chain id"),
    ("fee-cap", "less than block base fee"),
])
def test_invalid_transactions_are_refused_and_change_nothing(chain, case, match):
    account = chain.accounts[2]
    chain.send_transaction(account.address, to=bytes(20), value=1)
    head, balance = chain.head(), chain.balance(account.address)
    fields = dict(nonce=1, gas=21000, to=bytes(20), value=0, maxFeePerGas=10**10,
                  maxPriorityFeePerGas=10**9, type=2)
    if case == "nonce-low":
        fields["nonce"] = 0
    elif case == "nonce-high":
        fields["nonce"] = 5
    elif case == "funds":
        fields["value"] = 10_001 * ETHER
    elif case == "block-gas":
        fields["gas"] = 30_000_001
    elif case == "intrinsic":
        fields["gas"] = 20_999
    elif case == "chain-id":
        fields["chainId"] = 1
    elif case == "fee-cap":
        fields["maxFeePerGas"] = fields["maxPriorityFeePerGas"] = 1
    with pytest.raises(InvalidTransaction, match=match):
        chain.send_raw_transaction(sign(account.key, **fields))
    assert chain.head() == head
    assert chain.balance(account.address) == balance
    assert chain.nonce(account.address) == 1


def test_a_replayed_transaction_is_already_known(chain):
    raw = sign(chain.accounts[0].key, nonce=0, gas=21000, to=bytes(20), value=1,
               gasPrice=10**10)
    chain.send_raw_transaction(raw)
    with pytest.raises(InvalidTransaction, match="already known|nonce too low"):
        chain.send_raw_transaction(raw)


def test_a_transaction_mined_before_a_restart_is_refused_by_its_nonce(tmp_path):
    """Past the recent transactions kept in memory (here: a reopened chain), a resent
    transaction fails its nonce check and mines nothing."""
    with Chain(tmp_path / "c.db") as chain:
        raw = sign(chain.accounts[0].key, nonce=0, gas=21000, to=bytes(20), value=1,
                   gasPrice=10**10)
        tx_hash = chain.send_raw_transaction(raw)
    with Chain(tmp_path / "c.db") as chain:
        head = chain.head()
        assert chain.transaction(tx_hash) is not None
        with pytest.raises(InvalidTransaction, match="nonce too low"):
            chain.send_raw_transaction(raw)
        assert chain.head() == head and chain.nonce(chain.accounts[0].address) == 1


def test_estimate_gas_is_the_least_limit_that_succeeds(chain, token_wasm):
    alice, bob = chain.accounts[0].address, chain.accounts[1].address
    token = deploy(chain, token_wasm)
    data = transfer_data(bob, 1)
    estimate = chain.estimate_gas(sender=alice, to=token, data=data)
    below = chain.send_transaction(alice, to=token, data=data, gas=estimate - 1)
    assert chain.transaction(below).receipt.status == 0
    exact = chain.send_transaction(alice, to=token, data=data, gas=estimate)
    assert chain.transaction(exact).receipt.status == 1


def test_state_persists_and_the_chain_continues_after_reopen(tmp_path, token_wasm):
    path = tmp_path / "chain.db"
    with Chain(path) as chain:
        alice, bob = chain.accounts[0].address, chain.accounts[1].address
        token = deploy(chain, token_wasm)
        chain.send_transaction(alice, to=token, data=transfer_data(bob, 7))
        head, head_hash = chain.head(), chain.block(chain.head())[1].hash
    with Chain(path) as chain:
        assert chain.head() == head
        assert chain.call(to=token, data=balance_data(bob)) == word(7)
        tx = chain.send_transaction(alice, to=token, data=transfer_data(bob, 3))
        mined = chain.transaction(tx)
        assert mined.stored.block_number == head + 1
        assert Header.decode(chain.block(head + 1)[1].header).parent_hash == head_hash
        assert chain.call(to=token, data=balance_data(bob)) == word(10)


def test_a_second_chain_on_one_database_is_refused(tmp_path):
    with Chain(tmp_path / "c.db"):
        with pytest.raises(ChainLockedError, match="in use"):
            Chain(tmp_path / "c.db")
    Chain(tmp_path / "c.db").close()  # released on close


def test_another_configuration_on_an_existing_database_is_refused(tmp_path):
    Chain(tmp_path / "c.db").close()
    with pytest.raises(Exception, match="another configuration"):
        Chain(tmp_path / "c.db", ChainConfig(chain_id=5))


def test_every_block_state_root_matches_the_memory_backend(tmp_path, token_wasm):
    """Replay the chain's transactions on MemoryBackend with the same block environment:
    each header's state root must be the in-memory root after that transaction."""
    with Chain(tmp_path / "c.db") as chain:
        a, b, c = (x.address for x in chain.accounts[:3])
        token = deploy(chain, token_wasm)
        chain.send_transaction(a, to=token, data=transfer_data(b, 100))
        chain.send_transaction(b, to=token, data=transfer_data(c, 40))
        chain.send_transaction(c, to=b, value=ETHER)
        chain.send_transaction(b, to=token, data=transfer_data(c, 10**15), gas=100_000)
        chain.send_transaction(a, data=wrap_deploy(token_wasm))
        blocks = [chain.block(n) for n in range(chain.head() + 1)]

    mem = MemoryBackend()
    for account in chain.accounts:
        mem.set_balance(account.address, 10_000 * ETHER)
    mem.clear_touched()
    assert state_root(mem) == blocks[0][0].state_root
    loader = ContractLoader(metering=True)
    hashes = {h.number: d.hash for h, d in blocks}
    for header, data in blocks[1:]:
        tx = decode_transaction(data.transactions[0].raw)
        env = BlockEnv(coinbase=header.coinbase, number=header.number,
                       timestamp=header.timestamp, gas_limit=header.gas_limit, difficulty=0,
                       block_hash=lambda n: hashes.get(n, bytes(32)), chain_id=1337,
                       base_fee=header.base_fee)
        out = apply_transaction(mem, env, tx.to_state_transaction(header.base_fee),
                                revision=Revision.LONDON, loader=loader)
        assert out.valid
        mem.clear_touched()
        assert state_root(mem) == header.state_root, f"block {header.number}"
