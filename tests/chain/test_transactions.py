"""Signed transactions decoded and verified: eth-account signs (an independent
implementation), chain.transactions decodes; senders, hashes and fields must agree."""

from __future__ import annotations

import pytest
import rlp
from eth_account import Account
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.transactions import (
    DYNAMIC_FEE,
    LEGACY,
    SECP256K1_N,
    TransactionDecodeError,
    decode_transaction,
)

KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
SENDER = bytes.fromhex("f39fd6e51aad88f6f4ce6ab8827279cfffb92266")
TO = bytes(range(20))


def sign(fields: dict, key: bytes = KEY) -> bytes:
    return bytes(Account.sign_transaction(fields, key).raw_transaction)


def legacy(**kw) -> dict:
    return {"nonce": 0, "gasPrice": 10**9, "gas": 21000, "to": TO, "value": 1, "data": b"",
            "chainId": 1337} | kw


def dynamic(**kw) -> dict:
    return {"nonce": 3, "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**9,
            "gas": 50000, "to": TO, "value": 5, "data": b"\x01\x02", "chainId": 1337,
            "type": 2} | kw


def test_legacy_eip155_fields_sender_and_hash():
    raw = sign(legacy(data=b"\xaa\xbb"))
    tx = decode_transaction(raw)
    assert (tx.type, tx.chain_id, tx.nonce, tx.gas_limit, tx.to, tx.value, tx.data) == (
        LEGACY, 1337, 0, 21000, TO, 1, b"\xaa\xbb")
    assert tx.max_fee == tx.max_priority_fee == 10**9
    assert tx.sender == SENDER
    assert tx.hash == keccak(raw)
    assert tx.v in (1337 * 2 + 35, 1337 * 2 + 36)


def test_dynamic_fee_fields_and_access_list():
    access = [{"address": "0x" + TO.hex(), "storageKeys": ["0x" + "11" * 32]}]
    tx = decode_transaction(sign(dynamic(accessList=access)))
    assert tx.type == DYNAMIC_FEE
    assert (tx.nonce, tx.max_fee, tx.max_priority_fee, tx.gas_limit) == (3, 2 * 10**9, 10**9,
                                                                         50000)
    assert tx.access_list == ((TO, (b"\x11" * 32,)),)
    assert tx.access_list_gas() == 2400 + 1900
    assert tx.sender == SENDER
    assert tx.effective_gas_price(base_fee=5 * 10**8) == 15 * 10**8
    assert tx.effective_gas_price(base_fee=19 * 10**8) == 2 * 10**9


def test_creation_has_no_recipient():
    tx = decode_transaction(sign(dynamic(to=b"", data=b"\0asm")))
    assert tx.to is None


@pytest.mark.parametrize("mutate", [
    lambda raw: raw + b"\x00",  # trailing bytes
    lambda raw: raw[:-1],  # truncated
    lambda raw: b"\x05" + raw[1:],  # unknown type
    lambda raw: b"",
    lambda raw: b"\x02",
], ids=["trailing", "truncated", "type-5", "empty", "type-only"])
def test_malformed_bytes_are_refused(mutate):
    with pytest.raises(TransactionDecodeError):
        decode_transaction(mutate(sign(dynamic())))


def _resign_legacy(v: int, r: int, s: int) -> bytes:
    fields = rlp.decode(sign(legacy()))
    return rlp.encode(fields[:6] + [v, r, s])


def test_unprotected_legacy_is_refused():
    fields = rlp.decode(sign(legacy()))
    raw = rlp.encode(fields[:6] + [27] + fields[7:])
    with pytest.raises(TransactionDecodeError, match="replay-protected"):
        decode_transaction(raw)


def test_high_s_and_out_of_range_r_are_refused():
    fields = rlp.decode(sign(legacy()))
    v, r, s = (int.from_bytes(x, "big") for x in fields[6:])
    with pytest.raises(TransactionDecodeError, match="high s"):
        decode_transaction(_resign_legacy(v ^ 1, r, SECP256K1_N - s))
    with pytest.raises(TransactionDecodeError):
        decode_transaction(_resign_legacy(v, SECP256K1_N, s))
    with pytest.raises(TransactionDecodeError):
        decode_transaction(_resign_legacy(v, 0, s))


def test_tampered_payload_recovers_another_sender():
    fields = rlp.decode(sign(legacy()))
    fields[4] = (2).to_bytes(1, "big")  # value 1 -> 2 after signing
    tx = decode_transaction(rlp.encode(fields))
    assert tx.sender != SENDER


def test_priority_fee_above_max_fee_is_refused():
    payload = [1337, 0, 3 * 10**9, 2 * 10**9, 21000, TO, 0, b"", []]
    signed = Account.sign_transaction(dynamic(maxFeePerGas=2 * 10**9,
                                              maxPriorityFeePerGas=2 * 10**9), KEY)
    parity, r, s = signed.v, signed.r, signed.s
    raw = b"\x02" + rlp.encode(payload + [parity, r, s])
    with pytest.raises(TransactionDecodeError, match="priority"):
        decode_transaction(raw)


@settings(max_examples=40, deadline=None)
@given(nonce=st.integers(0, 2**64 - 1), gas=st.integers(21000, 30_000_000),
       value=st.integers(0, 2**256 - 1), data=st.binary(max_size=64),
       tip=st.integers(0, 10**12), extra=st.integers(0, 10**12),
       chain_id=st.integers(1, 2**32), typed=st.booleans())
def test_any_signed_transaction_decodes_to_its_fields(nonce, gas, value, data, tip, extra,
                                                      chain_id, typed):
    if typed:
        fields = dynamic(nonce=nonce, gas=gas, value=value, data=data, chainId=chain_id,
                         maxPriorityFeePerGas=tip, maxFeePerGas=tip + extra)
    else:
        fields = legacy(nonce=nonce, gas=gas, value=value, data=data, chainId=chain_id,
                        gasPrice=tip)
    raw = sign(fields)
    tx = decode_transaction(raw)
    assert (tx.nonce, tx.gas_limit, tx.value, tx.data, tx.chain_id) == (nonce, gas, value,
                                                                        data, chain_id)
    assert tx.sender == SENDER
    assert tx.hash == keccak(raw)


def test_non_canonical_rlp_is_refused():
    fields = rlp.decode(sign(legacy()))
    leading_zero = rlp.encode([b"\x00\x01"] + fields[1:])  # nonce with a leading zero
    with pytest.raises(TransactionDecodeError, match="leading zeros"):
        decode_transaction(leading_zero)
    # The single byte 0x05 (nonce 5) written as a one-byte string, 0x81 0x05.
    body = b"".join(rlp.encode(f) for f in fields[1:])
    prefixed = b"\x81\x05" + body
    raw = bytes([0xC0 + len(prefixed)]) if len(prefixed) < 56 else \
        bytes([0xF7 + 1, len(prefixed)])
    with pytest.raises(TransactionDecodeError, match="malformed"):
        decode_transaction(raw + prefixed)
    # A list field where a number goes.
    with pytest.raises(TransactionDecodeError, match="malformed"):
        decode_transaction(rlp.encode([[b"\x01"]] + fields[1:]))
    with pytest.raises(TransactionDecodeError, match="9 fields"):
        decode_transaction(rlp.encode(fields[:8]))
