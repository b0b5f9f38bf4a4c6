"""Signed transactions: legacy (EIP-155), access-list (EIP-2930, type 1) and dynamic-fee
(EIP-1559, type 2), decoded with rlp's sedes and their senders recovered with eth-keys.

Decoding is strict in the ways clients are: canonical RLP (no leading zeros, no trailing
bytes), signatures with s in the lower half of the curve order (EIP-2), and replay
protection required (geth refuses unprotected transactions over RPC by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import rlp
from eth_hash.auto import keccak
from eth_keys import keys
from eth_keys.exceptions import BadSignature
from rlp.sedes import Binary, CountableList, List, big_endian_int, binary

from evmc_bridge.constants import GAS_ACCESS_LIST_ADDRESS, GAS_ACCESS_LIST_KEY
from state.errors import InvalidTransaction
from state.transaction import Transaction

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_ADDRESS = Binary.fixed_length(20)
_TO = Binary(min_length=0, max_length=20)
_ACCESS_LIST = CountableList(List([_ADDRESS, CountableList(Binary.fixed_length(32))]))
_LEGACY = List([big_endian_int] * 3 + [_TO, big_endian_int, binary] + [big_endian_int] * 3)
_LEGACY_UNSIGNED = List([big_endian_int] * 3 + [_TO, big_endian_int, binary]
                        + [big_endian_int] * 3)
_TYPE1 = List([big_endian_int] * 4 + [_TO, big_endian_int, binary, _ACCESS_LIST]
              + [big_endian_int] * 3)
_TYPE2 = List([big_endian_int] * 5 + [_TO, big_endian_int, binary, _ACCESS_LIST]
              + [big_endian_int] * 3)

LEGACY, ACCESS_LIST, DYNAMIC_FEE = 0, 1, 2
# EIP-2930's intrinsic charges for the access list (the engine does not model warm or cold
# access, but the transaction still pays for carrying the list).


class TransactionDecodeError(InvalidTransaction):
    """The bytes are not a well-formed, correctly signed transaction."""


@dataclass(frozen=True)
class SignedTransaction:
    type: int
    chain_id: int | None  # None: an unprotected legacy transaction
    nonce: int
    gas_limit: int
    to: bytes | None
    value: int
    data: bytes
    max_fee: int  # gasPrice for types 0 and 1
    max_priority_fee: int  # gasPrice for types 0 and 1
    access_list: tuple[tuple[bytes, tuple[bytes, ...]], ...]
    v: int  # the legacy v, or the y parity of typed transactions
    r: int
    s: int
    sender: bytes
    hash: bytes
    raw: bytes

    def effective_gas_price(self, base_fee: int) -> int:
        return min(self.max_fee, base_fee + self.max_priority_fee)

    def access_list_gas(self) -> int:
        return sum(GAS_ACCESS_LIST_ADDRESS + GAS_ACCESS_LIST_KEY * len(keys_)
                   for _, keys_ in self.access_list)

    def to_state_transaction(self, base_fee: int) -> Transaction:
        return Transaction(sender=self.sender, to=self.to, nonce=self.nonce,
                           gas_limit=self.gas_limit,
                           gas_price=self.effective_gas_price(base_fee), value=self.value,
                           data=self.data, max_fee=self.max_fee,
                           extra_intrinsic_gas=self.access_list_gas())


def decode_transaction(raw: bytes) -> SignedTransaction:
    """Decode and verify `raw` (an RLP list, or a type byte then an RLP list)."""
    if not isinstance(raw, bytes | bytearray) or not raw:
        raise TransactionDecodeError("empty transaction")
    raw = bytes(raw)
    kind = raw[0]
    try:
        if kind >= 0xC0:
            return _decode_legacy(raw)
        if kind == ACCESS_LIST:
            return _decode_typed(raw, _TYPE1, ACCESS_LIST)
        if kind == DYNAMIC_FEE:
            return _decode_typed(raw, _TYPE2, DYNAMIC_FEE)
    except (rlp.DecodingError, rlp.DeserializationError) as exc:
        raise TransactionDecodeError(f"malformed transaction: {exc}") from None
    raise TransactionDecodeError(f"transaction type {kind:#x} not supported")


def _to(field: bytes) -> bytes | None:
    if len(field) not in (0, 20):
        raise TransactionDecodeError(f"a recipient is 20 bytes or empty, got {len(field)}")
    return field or None


def _decode_legacy(raw: bytes) -> SignedTransaction:
    nonce, gas_price, gas, to, value, data, v, r, s = rlp.decode(raw, _LEGACY, strict=True)
    if v in (27, 28):
        raise TransactionDecodeError(
            "only replay-protected (EIP-155) transactions allowed over RPC")
    if v < 37:
        raise TransactionDecodeError(f"invalid signature v {v}")
    chain_id, parity = (v - 35) // 2, (v - 35) % 2
    unsigned = rlp.encode([nonce, gas_price, gas, to, value, data, chain_id, 0, 0],
                          _LEGACY_UNSIGNED)
    sender = _recover(keccak(unsigned), parity, r, s)
    return SignedTransaction(LEGACY, chain_id, nonce, gas, _to(to), value, data, gas_price,
                             gas_price, (), v, r, s, sender, keccak(raw), raw)


def _decode_typed(raw: bytes, sedes: List, kind: int) -> SignedTransaction:
    fields = rlp.decode(raw[1:], sedes, strict=True)
    *payload, parity, r, s = fields
    if parity not in (0, 1):
        raise TransactionDecodeError(f"invalid signature y parity {parity}")
    sender = _recover(keccak(bytes([kind]) + rlp.encode(payload)), parity, r, s)
    if kind == ACCESS_LIST:
        chain_id, nonce, gas_price, gas, to, value, data, access_list = payload
        max_fee = max_priority = gas_price
    else:
        chain_id, nonce, max_priority, max_fee, gas, to, value, data, access_list = payload
        if max_priority > max_fee:
            raise TransactionDecodeError(
                f"max priority fee per gas higher than max fee per gas "
                f"({max_priority} > {max_fee})")
    access = tuple((address, tuple(slots)) for address, slots in access_list)
    return SignedTransaction(kind, chain_id, nonce, gas, _to(to), value, data, max_fee,
                             max_priority, access, parity, r, s, sender, keccak(raw), raw)


def _recover(msg_hash: bytes, parity: int, r: int, s: int) -> bytes:
    if not (0 < r < SECP256K1_N and 0 < s <= SECP256K1_N // 2):
        raise TransactionDecodeError("invalid signature values (r, s out of range or high s)")
    try:
        public = keys.Signature(vrs=(parity, r, s)).recover_public_key_from_msg_hash(msg_hash)
    except (BadSignature, ValueError) as exc:
        raise TransactionDecodeError(f"invalid signature: {exc}") from None
    return public.to_canonical_address()
