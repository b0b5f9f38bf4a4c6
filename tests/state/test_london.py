"""The London rules StateHost and apply_transaction give EVM frames: EIP-2929's warm and
cold sets (journaled with the frames), EIP-2930 access lists, EIP-1559 fees, EIP-3541,
EIP-3607, EIP-7610, and the transaction checks geth makes. Each gas figure is exact."""

from __future__ import annotations

import pytest

from evmc_bridge import AccessStatus, CallKind, Message, Revision, StatusCode, TxContext
from state.backend import Account
from state.host import StateHost, create_address
from state.memory import MemoryBackend
from state.transaction import BlockEnv, Transaction, apply_transaction
from tests.state.evm_asm import asm, initcode

LONDON = Revision.LONDON
SENDER = bytes.fromhex("a94f5374fce5edbc8e2a8697c15331677e6ebf0b")
COINBASE = b"\xcb" * 20
C, D, T, W = b"\xc0" * 20, b"\xd0" * 20, b"\x77" * 20, b"\xb0" * 20
BASE_FEE = 7


def env() -> BlockEnv:
    return BlockEnv(coinbase=COINBASE, number=1, timestamp=1, gas_limit=10**7, difficulty=0,
                    base_fee=BASE_FEE)


def measure(*ops) -> list:
    """slot 0 = the gas of ops (GAS before less GAS after, less the 7 of the
    measuring PUSH-free frame: GAS 2 + POP 2 + the PUSH of the operand 3)."""
    return ["GAS", *ops, "POP", "GAS", "SWAP1", "SUB", 7, "SWAP1", "SUB", 0, "SSTORE"]


def run(accounts: dict, *, to: bytes = C, data: bytes = b"", access_list=(),
        gas: int = 10**6, **tx):
    backend = MemoryBackend.from_accounts({SENDER: Account(balance=10**18), **accounts})
    t = Transaction(sender=SENDER, to=to, nonce=tx.pop("nonce", 0), gas_limit=gas,
                    gas_price=tx.pop("gas_price", BASE_FEE + 1), value=0, data=data,
                    access_list=tuple(access_list), **tx)
    out = apply_transaction(backend, env(), t, revision=LONDON)
    return backend, out


def slot0(backend, address=C) -> int:
    return int.from_bytes(backend.get_storage(address, bytes(32)), "big")


@pytest.mark.parametrize("child_ends,cost", [("STOP", 100), ("REVERT", 2600)])
def test_a_reverted_frame_forgets_the_addresses_it_warmed(child_ends, cost):
    # D reads T's balance (warming T), then ends; C then times its own read of T.
    d = asm(T, "BALANCE", "POP", *([0, 0] if child_ends == "REVERT" else []), child_ends)
    c = asm(0, 0, 0, 0, 0, D, "GAS", "CALL", "POP", *measure(T, "BALANCE"))
    backend, out = run({C: Account(code=c), D: Account(code=d)})
    assert out.status == StatusCode.SUCCESS, out.error
    assert slot0(backend) == cost


@pytest.mark.parametrize("child_ends,cost", [("STOP", 100), ("REVERT", 2100)])
def test_a_reverted_frame_forgets_the_slots_it_warmed(child_ends, cost):
    # D (called with DELEGATECALL, so on C's storage) reads slot 9.
    d = asm(9, "SLOAD", "POP", *([0, 0] if child_ends == "REVERT" else []), child_ends)
    c = asm(0, 0, 0, 0, D, "GAS", "DELEGATECALL", "POP", *measure(9, "SLOAD"))
    backend, out = run({C: Account(code=c), D: Account(code=d)})
    assert out.status == StatusCode.SUCCESS, out.error
    assert slot0(backend) == cost


@pytest.mark.parametrize("target,cost", [(SENDER, 100), (C, 100), ((1).to_bytes(20, "big"), 100),
                                         ((9).to_bytes(20, "big"), 100),
                                         ((10).to_bytes(20, "big"), 2600), (T, 2600)])
def test_a_transaction_starts_with_sender_recipient_and_precompiles_warm(target, cost):
    backend, out = run({C: Account(code=asm(*measure(target, "BALANCE")))})
    assert out.status == StatusCode.SUCCESS, out.error
    assert slot0(backend) == cost


def test_an_access_list_warms_its_addresses_and_slots_and_pays_for_them():
    code = asm(*measure(T, "BALANCE"), *measure(5, "SLOAD")[:-2], 1, "SSTORE")
    plain_backend, plain = run({C: Account(code=code)})
    listed_backend, listed = run({C: Account(code=code)},
                                 access_list=[(T, ()), (C, (bytes(31) + b"\x05",))])
    assert (slot0(plain_backend), plain_backend.get_storage(C, bytes(31) + b"\x01")[-2:]) == \
        (2600, (2100).to_bytes(2, "big"))
    assert (slot0(listed_backend), listed_backend.get_storage(C, bytes(31) + b"\x01")[-2:]) \
        == (100, (100).to_bytes(2, "big"))
    # Intrinsic: 2,400 an address and 1,900 a key; execution: 2,500 + 2,000 saved.
    assert listed.gas_used - plain.gas_used == 2 * 2400 + 1900 - 2500 - 2000


def test_a_created_address_stays_warm_when_its_creation_fails():
    backend = MemoryBackend.from_accounts({C: Account(nonce=1)})
    host = StateHost(backend, TxContext(tx_origin=SENDER), LONDON)
    reverting = asm(0, 0, "REVERT")
    r = host.call(Message(kind=CallKind.CREATE, gas=100_000, sender=C, input=reverting,
                          recipient=C))
    assert r.status == StatusCode.REVERT
    assert host.access_account(create_address(C, 1)) == AccessStatus.WARM
    assert host.access_account(create_address(C, 2)) == AccessStatus.COLD


def test_eip1559_fees_burn_the_base_fee_and_pay_the_coinbase_the_tip():
    backend, out = run({C: Account(code=asm("STOP"))}, gas_price=BASE_FEE + 2,
                       max_fee=BASE_FEE + 10, max_priority_fee=2)
    assert out.status == StatusCode.SUCCESS and out.gas_used == 21000
    assert backend.get_balance(COINBASE) == 2 * 21000
    assert backend.get_balance(SENDER) == 10**18 - (BASE_FEE + 2) * 21000


@pytest.mark.parametrize("fields,accounts,message", [
    (dict(max_fee=10, max_priority_fee=11, gas_price=10), {}, "priority fee"),
    (dict(max_fee=BASE_FEE - 1, max_priority_fee=0, gas_price=BASE_FEE - 1), {},
     "less than block base fee"),
    (dict(gas_price=BASE_FEE - 1), {}, "less than block base fee"),
    (dict(gas=1 << 64), {}, "rlp"),
    (dict(nonce=2**64 - 1), {SENDER: Account(nonce=2**64 - 1, balance=10**18)}, "max value"),
    (dict(), {SENDER: Account(code=b"\x00", balance=10**18)}, "not an eoa"),
    (dict(gas=21000 + 2399), {}, "intrinsic gas too low"),
])
def test_invalid_transactions_change_nothing(fields, accounts, message):
    pre = {C: Account(code=asm("STOP")), **accounts}
    backend, out = run(pre, access_list=[(T, ())] if "intrinsic" in message else (),
                       **fields)
    assert not out.valid and message in out.error
    assert backend.get_balance(COINBASE) == 0 and backend.get_nonce(SENDER) == \
        pre.get(SENDER, Account()).nonce


def test_eip3541_new_code_starting_with_0xef_fails_with_all_gas():
    backend, out = run({}, to=None, data=initcode(b"\xef"), gas=100_000)
    assert out.status == StatusCode.FAILURE and out.gas_used == 100_000
    assert backend.get_code(create_address(SENDER, 0)) == b""
    backend, out = run({}, to=None, data=initcode(b"\xfe\xef"), gas=100_000)
    assert out.status == StatusCode.SUCCESS
    assert backend.get_code(create_address(SENDER, 0)) == b"\xfe\xef"


@pytest.mark.parametrize("revision", [Revision.BYZANTIUM, LONDON])
def test_eip7610_a_creation_onto_storage_collides(revision):
    target = create_address(SENDER, 0)
    backend = MemoryBackend.from_accounts({
        SENDER: Account(balance=10**18), target: Account(storage={bytes(32): b"\x01" * 32})})
    tx = Transaction(sender=SENDER, to=None, nonce=0, gas_limit=100_000,
                     gas_price=BASE_FEE + 1, value=0, data=initcode(b"\x00"))
    out = apply_transaction(backend, env(), tx, revision=revision)
    assert out.status == StatusCode.FAILURE and out.gas_used == 100_000
    assert backend.get_code(target) == b"" and backend.get_nonce(target) == 0


@pytest.mark.parametrize("wasm_ends,cost", [("finish", 100), ("revert", 2600)])
def test_the_warm_set_is_journaled_across_both_vms(wat, wasm_ends, cost):
    # C (EVM) calls W (Wasm), which calls D (EVM): D warms T. When W reverts, T is cold
    # again for C; when W finishes, it stays warm.
    from tests.state.cross_vm_contracts import module

    w = wat(module(f"""
      (local.set $r (call $call (i64.const 200000) (i32.const 0) (i32.const 32)
                                (i32.const 0) (i32.const 0)))
      (call ${wasm_ends} (i32.const 0) (i32.const 0))""", {0: D}))
    d = asm(T, "BALANCE", "POP", "STOP")
    c = asm(0, 0, 0, 0, 0, W, "GAS", "CALL", "POP", *measure(T, "BALANCE"))
    backend, out = run({C: Account(code=c), W: Account(code=w), D: Account(code=d)})
    assert out.status == StatusCode.SUCCESS, out.error
    assert slot0(backend) == cost
