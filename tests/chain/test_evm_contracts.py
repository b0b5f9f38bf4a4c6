"""Solidity contracts on the local chain, next to Wasm ones (issue 21, point 6): the ERC-20
of ../shared/peers/Token.json deployed and called in process and from web3.py, a Wasm
contract that calls it (and an EVM contract that calls the Wasm token back), and the
London rules an EVM frame sees on this chain (EIP-2929's warm sender and recipient,
EIP-3541)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_hash.auto import keccak

from chain.chain import Chain, ChainError
from tests.state.cross_vm_contracts import module
from tests.state.evm_asm import Label, Ref, asm, initcode

from .conftest import SUPPLY, TRANSFER_TOPIC, balance_data, transfer_data, word

TOKEN_JSON = Path(__file__).resolve().parents[3] / "shared" / "peers" / "Token.json"
needs_token = pytest.mark.skipif(not TOKEN_JSON.is_file(),
                                 reason=f"{TOKEN_JSON} not found (the ../shared folder sits "
                                        "beside the clone in CI)")
TOTAL_SUPPLY = keccak(b"totalSupply()")[:4]

# Wasm: call the address in call data [0, 20) with call data [20, ...), all but a little of
# the gas; finish with the callee's output, or revert with it.
WASM_FORWARDER = module("""
      (call $callDataCopy (i32.const 0) (i32.const 0) (i32.const 20))
      (call $callDataCopy (i32.const 100) (i32.const 20)
            (i32.sub (call $getCallDataSize) (i32.const 20)))
      (local.set $r (call $call (i64.sub (call $getGasLeft) (i64.const 20000))
                              (i32.const 0) (i32.const 40) (i32.const 100)
                              (i32.sub (call $getCallDataSize) (i32.const 20))))
      (call $returnDataCopy (i32.const 1000) (i32.const 0) (call $getReturnDataSize))
      (if (local.get $r) (then (call $revert (i32.const 1000) (call $getReturnDataSize))))
      (call $finish (i32.const 1000) (call $getReturnDataSize))""")

# EVM: the same forwarder.
EVM_FORWARDER = asm(
    20, "CALLDATASIZE", "SUB", "DUP1", 20, 0, "CALLDATACOPY",
    0, 0, "DUP3", 0, 0, 1 << 96, 0, "CALLDATALOAD", "DIV", "GAS", "CALL",
    "RETURNDATASIZE", 0, 0, "RETURNDATACOPY", "ISZERO", Ref("fail"), "JUMPI",
    "RETURNDATASIZE", 0, "RETURN", Label("fail"), "RETURNDATASIZE", 0, "REVERT")


def token_json() -> dict:
    return json.loads(TOKEN_JSON.read_text())


@pytest.fixture
def chain(tmp_path):
    with Chain(tmp_path / "c.db") as c:
        yield c


def mine(chain: Chain, sender: bytes, **kw):
    r = chain.transaction(chain.send_transaction(sender, **kw)).receipt
    assert r.status == 1, r.error
    return r


def token_and_forwarder(chain: Chain, wat) -> tuple[bytes, bytes]:
    """The Solidity token (deployed by account 0, who holds the supply) and the Wasm
    forwarder, which holds 500 of it."""
    alice = chain.accounts[0].address
    token = mine(chain, alice, data=bytes.fromhex(token_json()["bytecode"][2:]))
    forwarder = mine(chain, alice, data=wat(WASM_FORWARDER)).contract_address
    mine(chain, alice, to=token.contract_address, data=transfer_data(forwarder, 500))
    return token.contract_address, forwarder


def balance_of(chain: Chain, token: bytes, who: bytes) -> int:
    return int.from_bytes(chain.call(to=token, data=balance_data(who)), "big")


@needs_token
def test_the_solidity_token_deploys_and_transfers(chain):
    t = token_json()
    alice, bob = (a.address for a in chain.accounts[:2])
    r = mine(chain, alice, data=bytes.fromhex(t["bytecode"][2:]))
    token = r.contract_address
    assert chain.code(token) == bytes.fromhex(t["deployedBytecode"][2:])
    (minted,) = r.logs
    assert minted.topics == (TRANSFER_TOPIC, bytes(32), bytes(12) + alice)
    assert chain.call(to=token, data=TOTAL_SUPPLY) == word(10**12)
    r = mine(chain, alice, to=token, data=transfer_data(bob, 1234))
    (log,) = r.logs
    assert log.address == token and log.data == word(1234)
    assert log.topics == (TRANSFER_TOPIC, bytes(12) + alice, bytes(12) + bob)
    assert balance_of(chain, token, bob) == 1234
    assert balance_of(chain, token, alice) == 10**12 - 1234
    # London gas, exact: intrinsic 21,000 + 16 a non-zero data byte + 4 a zero one;
    # then a cold SLOAD/SSTORE of two balances (the sender and the recipient are warm).
    data = transfer_data(bob, 1)
    intrinsic = 21000 + sum(16 if b else 4 for b in data)
    r = mine(chain, alice, to=token, data=data)
    assert intrinsic + 2 * 2100 < r.gas_used < intrinsic + 30000
    with pytest.raises(Exception, match="revert|insufficient"):
        chain.call(sender=bob, to=token, data=transfer_data(alice, 10**6))


@needs_token
def test_a_wasm_contract_calls_the_solidity_token(chain, wat):
    alice, bob = (a.address for a in chain.accounts[:2])
    token, forwarder = token_and_forwarder(chain, wat)
    # The Wasm contract is the token's msg.sender: its 500 move to bob.
    r = mine(chain, alice, to=forwarder, data=token + transfer_data(bob, 300))
    (log,) = r.logs
    assert log.address == token
    assert log.topics == (TRANSFER_TOPIC, bytes(12) + forwarder, bytes(12) + bob)
    assert balance_of(chain, token, forwarder) == 200
    assert balance_of(chain, token, bob) == 300
    # The token's answer comes back through the Wasm frame, a revert as a revert.
    assert chain.call(to=forwarder, data=token + balance_data(bob)) == word(300)
    with pytest.raises(Exception, match="revert"):
        chain.call(to=forwarder, data=token + transfer_data(bob, 10**6))


def test_an_evm_contract_calls_the_wasm_token(chain, token_wasm):
    alice, bob = (a.address for a in chain.accounts[:2])
    forwarder = mine(chain, alice, data=initcode(EVM_FORWARDER)).contract_address
    assert chain.code(forwarder) == EVM_FORWARDER
    token = mine(chain, alice, data=token_wasm).contract_address
    # token.wat mints its supply to its first caller: here the EVM forwarder.
    r = mine(chain, alice, to=forwarder, data=token + transfer_data(bob, 77))
    assert [log.address for log in r.logs] == [token]
    assert balance_of(chain, token, bob) == 77
    assert balance_of(chain, token, forwarder) == SUPPLY - 77
    assert chain.call(to=forwarder, data=token + balance_data(bob)) == word(77)


def test_london_refuses_new_code_starting_with_0xef(chain):
    alice = chain.accounts[0].address
    with pytest.raises(ChainError, match="0xEF"):  # the gas estimate fails, as geth's
        chain.send_transaction(alice, data=initcode(b"\xef\x00"))
    bad = chain.transaction(chain.send_transaction(alice, data=initcode(b"\xef\x00"),
                                                   gas=200_000)).receipt
    assert bad.status == 0 and bad.contract_address is None
    assert bad.gas_used == 200_000  # a failed creation consumes all its gas
    good = mine(chain, alice, data=initcode(b"\xfe\xef"))
    assert chain.code(good.contract_address) == b"\xfe\xef"


@needs_token
def test_web3_deploys_and_calls_the_solidity_token(tmp_path):
    from web3 import Web3

    from .node import Node

    t = token_json()
    node = Node(tmp_path / "chain.db")
    try:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60}))
        alice, bob = w3.eth.accounts[:2]
        Token = w3.eth.contract(abi=t["abi"], bytecode=t["bytecode"])
        receipt = w3.eth.wait_for_transaction_receipt(
            Token.constructor().transact({"from": alice}))
        assert receipt.status == 1
        token = w3.eth.contract(address=receipt.contractAddress, abi=t["abi"])
        assert bytes(w3.eth.get_code(token.address)) == bytes.fromhex(
            t["deployedBytecode"][2:])
        assert token.functions.totalSupply().call() == 10**12
        tx = token.functions.transfer(bob, 4321).transact({"from": alice})
        r = w3.eth.wait_for_transaction_receipt(tx)
        assert r.status == 1
        (event,) = token.events.Transfer().process_receipt(r)
        assert (event.args["from"], event.args.to, event.args.value) == (alice, bob, 4321)
        assert token.functions.balanceOf(bob).call() == 4321
        assert w3.eth.estimate_gas({"from": alice, "to": token.address,
                                    "data": token.functions.transfer(bob, 1)
                                    ._encode_transaction_data()}) >= r.gasUsed - 20000
    finally:
        assert node.stop() == 0


@needs_token
def test_a_trace_holds_the_evm_frames_and_their_gas(chain, wat):
    from chain.trace import Tracer

    alice, bob = (a.address for a in chain.accounts[:2])
    token, forwarder = token_and_forwarder(chain, wat)
    data = token + transfer_data(bob, 300)
    tx_hash = chain.send_transaction(alice, to=forwarder, data=data)
    r = chain.transaction(tx_hash).receipt
    assert r.status == 1, r.error
    tracer = Tracer()
    chain.replay(tx_hash, tracer)
    assert [(f["vm"], f["depth"], f["status"]) for f in tracer.frames] == \
        [("wasm", 0, "SUCCESS"), ("evm", 1, "SUCCESS")]
    # No refund here (no slot goes to zero): the receipt is intrinsic gas + the frame's.
    intrinsic = 21000 + sum(16 if b else 4 for b in data)
    assert r.gas_used == intrinsic + tracer.frames[0]["gasUsed"]
    evm_calls = [c["name"] for c in tracer.calls if c["depth"] == 1]
    assert evm_calls.count("write_storage") == 2 and "emit_log" in evm_calls
    assert "access_storage" in evm_calls  # EIP-2929, asked of the host


def test_an_access_list_on_the_chain_is_paid_for_and_warms(chain):
    from eth_utils import to_checksum_address

    from .conftest import sign

    alice = chain.accounts[0]
    reader = mine(chain, alice.address, data=initcode(asm(0, "SLOAD", "POP", "STOP")))
    c = reader.contract_address
    used = []
    for nonce, access in ((1, []), (2, [{"address": to_checksum_address(c),
                                         "storageKeys": ["0x" + bytes(32).hex()]}])):
        raw = sign(alice.key, type=1, nonce=nonce, gas=100_000, gasPrice=10**10,
                   to=to_checksum_address(c), value=0, data=b"", accessList=access)
        r = chain.transaction(chain.send_raw_transaction(raw)).receipt
        assert r.status == 1, r.error
        used.append(r.gas_used)
    # The listed address (already warm, as the recipient) and key cost 2,400 + 1,900;
    # the SLOAD is then warm: 100 instead of 2,100.
    assert used[1] - used[0] == 2400 + 1900 - 2000


def test_rpc_calls_and_estimates_take_an_access_list(tmp_path):
    import json as _json

    from chain.rpc import Rpc

    with Chain(tmp_path / "r.db") as chain:
        alice = chain.accounts[0].address
        c = mine(chain, alice, data=initcode(asm(0, "SLOAD", "POP", "STOP"))).contract_address
        rpc = Rpc(chain)

        def ask(method, *params):
            out = _json.loads(rpc.handle_body(_json.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
                .encode()))
            return out.get("result", out.get("error"))

        call = {"from": "0x" + alice.hex(), "to": "0x" + c.hex()}
        listed = {**call, "accessList": [{"address": "0x" + c.hex(),
                                          "storageKeys": ["0x" + bytes(32).hex()]}]}
        plain_gas, listed_gas = (int(ask("eth_estimateGas", o), 16) for o in (call, listed))
        assert listed_gas - plain_gas == 2400 + 1900 - 2000
        assert ask("eth_call", listed) == "0x"
        bad = ask("eth_call", {**call, "accessList": [{"address": "0x12"}]})
        assert bad["code"] == -32602
        tx = ask("eth_sendTransaction", listed)
        r = chain.transaction(bytes.fromhex(tx[2:])).receipt
        assert r.status == 1 and r.gas_used == listed_gas
        assert chain.transaction(bytes.fromhex(tx[2:])).tx.access_list == \
            ((c, (bytes(32),)),)
