"""The project's token contract (fixtures/contracts/token.wat) against MockedHost: the
Solidity ABI it speaks, the mint on the first call, transfers, reverts and the Transfer log.

Expected values come from the ABI (selectors, the Transfer topic are keccak of the
signatures, computed here) and the contract's documented storage layout.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_hash.auto import keccak

import ewasm
import gasmeter
from evmc_bridge import CallKind, Flags, Message, Revision, StatusCode
from evmc_bridge.mocked_host import MockedHost

TOKEN = Path(__file__).resolve().parents[2] / "fixtures" / "contracts" / "token.wat"
SELF = bytes(range(0x10, 0x24))
ALICE = bytes(range(0x30, 0x44))
BOB = bytes(range(0x50, 0x64))
SUPPLY = 10**12
SUPPLY_KEY = b"\x01" + bytes(31)


def selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


def word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def address_word(address: bytes) -> bytes:
    return bytes(12) + address


@pytest.fixture(scope="module", params=["plain", "metered"])
def token(request, wat) -> bytes:
    code = wat(TOKEN.read_text())
    return code if request.param == "plain" else gasmeter.inject(code)


def call(token: bytes, host: MockedHost, sender: bytes, data: bytes, *, static=False):
    msg = Message(kind=CallKind.CALL, flags=Flags.STATIC if static else Flags.NONE, depth=0,
                  gas=1_000_000, recipient=SELF, sender=sender, input=data, code_address=SELF)
    return ewasm.execute(host, Revision.BYZANTIUM, msg, token)


def balance_of(token: bytes, host: MockedHost, who: bytes) -> int:
    r = call(token, host, BOB, selector("balanceOf(address)") + address_word(who))
    assert r.status == StatusCode.SUCCESS, r.message
    assert len(r.output) == 32
    return int.from_bytes(r.output, "big")


def transfer(token, host, sender, to, amount):
    return call(token, host, sender,
                selector("transfer(address,uint256)") + address_word(to) + word(amount))


def test_first_call_mints_the_supply_to_its_caller(token):
    host = MockedHost()
    r = call(token, host, ALICE, selector("totalSupply()"))
    assert r.status == StatusCode.SUCCESS
    assert int.from_bytes(r.output, "big") == SUPPLY
    storage = host.accounts[SELF].storage
    assert storage[SUPPLY_KEY] == word(SUPPLY)
    assert storage[address_word(ALICE)] == word(SUPPLY)
    assert balance_of(token, host, ALICE) == SUPPLY
    assert balance_of(token, host, BOB) == 0


def test_transfer_moves_the_amount_and_logs_it(token):
    host = MockedHost()
    call(token, host, ALICE, selector("totalSupply()"))
    r = transfer(token, host, ALICE, BOB, 1234)
    assert r.status == StatusCode.SUCCESS, r.message
    assert r.output == word(1)
    assert balance_of(token, host, ALICE) == SUPPLY - 1234
    assert balance_of(token, host, BOB) == 1234
    topic = keccak(b"Transfer(address,address,uint256)")
    assert host.recorded_logs == [
        (SELF, word(1234), (topic, address_word(ALICE), address_word(BOB)))]


def test_transfer_to_oneself_keeps_the_balance(token):
    host = MockedHost()
    assert transfer(token, host, ALICE, ALICE, 10).status == StatusCode.SUCCESS
    assert balance_of(token, host, ALICE) == SUPPLY


def test_transfer_above_the_balance_reverts_with_an_error_string(token):
    host = MockedHost()
    call(token, host, ALICE, selector("totalSupply()"))
    before = dict(host.accounts[SELF].storage)
    r = transfer(token, host, BOB, ALICE, 1)
    assert r.status == StatusCode.REVERT
    message = b"insufficient balance"
    assert r.output == (selector("Error(string)") + word(32) + word(len(message))
                        + message.ljust(32, b"\0"))
    assert host.accounts[SELF].storage == before


@pytest.mark.parametrize("data", [
    b"",
    b"\xa9\x05\x9c",
    selector("approve(address,uint256)") + bytes(64),
    selector("balanceOf(address)") + bytes(31),
    selector("transfer(address,uint256)") + address_word(BOB) + bytes(31),
    selector("transfer(address,uint256)") + b"\x01" + bytes(11) + BOB + word(1),
    selector("transfer(address,uint256)") + address_word(BOB) + word(2**64),
], ids=["empty", "short-selector", "unknown", "short-balance", "short-transfer",
        "dirty-address", "amount-2**64"])
def test_bad_call_data_reverts_without_output(token, data):
    host = MockedHost()
    call(token, host, ALICE, selector("totalSupply()"))
    r = call(token, host, ALICE, data)
    assert r.status == StatusCode.REVERT
    assert r.output == b""
    assert balance_of(token, host, ALICE) == SUPPLY


def test_transfer_in_a_static_call_fails(token):
    host = MockedHost()
    call(token, host, ALICE, selector("totalSupply()"))
    r = call(token, host, ALICE,
             selector("transfer(address,uint256)") + address_word(BOB) + word(1), static=True)
    assert r.status == StatusCode.STATIC_MODE_VIOLATION
    assert balance_of(token, host, BOB) == 0
