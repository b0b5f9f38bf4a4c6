"""Signed transactions: legacy (EIP-155), access-list (EIP-2930, type 1) and dynamic-fee
(EIP-1559, type 2), decoded and their senders recovered with libsecp256k1 (coincurve).

Decoding is strict in the ways clients are: canonical RLP (no leading zeros, no trailing
bytes, the shortest length forms), signatures with s in the lower half of the curve order
(EIP-2), and replay protection required (geth refuses unprotected transactions over RPC
by default). The RLP is read by state.trie_store's decoder and checked field by field
here, a fraction of pyrlp's sedes cost (the tests decode pyrlp's and eth-account's
encodings and compare).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import coincurve

from state.errors import InvalidTransaction
from state.transaction import Transaction, access_list_gas
from state.trie_store import RLPError, keccak, rlp_bytes, rlp_decode, rlp_encode, rlp_int, rlp_list

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

LEGACY, ACCESS_LIST, DYNAMIC_FEE = 0, 1, 2


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
        return access_list_gas(self.access_list)

    def to_state_transaction(self, base_fee: int) -> Transaction:
        """The transaction as state applies it: the effective price, the fee cap and tip
        (a dynamic-fee transaction's), and the access list, which state both charges
        (intrinsic gas) and warms (EIP-2929)."""
        return Transaction(sender=self.sender, to=self.to, nonce=self.nonce,
                           gas_limit=self.gas_limit,
                           gas_price=self.effective_gas_price(base_fee), value=self.value,
                           data=self.data, max_fee=self.max_fee,
                           max_priority_fee=self.max_priority_fee
                           if self.type == DYNAMIC_FEE else None,
                           access_list=self.access_list)


def decode_transaction(raw: bytes, *, sender: bytes | None = None,
                       tx_hash: bytes | None = None) -> SignedTransaction:
    """Decode and verify `raw` (an RLP list, or a type byte then an RLP list).

    sender and tx_hash: what a stored transaction is already known by (its receipt keeps
    the sender, the store its hash): given, the signature is not recovered again and the
    bytes are not hashed again, the costly half of decoding."""
    if not isinstance(raw, bytes | bytearray) or not raw:
        raise TransactionDecodeError("empty transaction")
    raw = bytes(raw)
    kind = raw[0]
    if kind < 0xC0 and kind not in (ACCESS_LIST, DYNAMIC_FEE):
        raise TransactionDecodeError(f"transaction type {kind:#x} not supported")
    try:
        fields = rlp_decode(raw if kind >= 0xC0 else raw[1:], strict=True)
    except RLPError as exc:
        raise TransactionDecodeError(f"malformed transaction: {exc}") from None
    if not isinstance(fields, list):
        raise TransactionDecodeError("malformed transaction: not an RLP list")
    if kind >= 0xC0:
        return _decode_legacy(raw, fields, sender, tx_hash)
    return _decode_typed(raw, fields, kind, sender, tx_hash)


def impersonated_transaction(sender: bytes, *, chain_id: int, nonce: int, gas: int,
                             to: bytes | None, value: int, data: bytes, max_fee: int,
                             max_priority_fee: int) -> SignedTransaction:
    """A dynamic-fee transaction from `sender` without its key (hardhat_impersonateAccount):
    its signature is a placeholder that names the sender (r is the address), so that two
    senders of the same fields get two hashes, as Hardhat's fake-sender transactions do.
    It is mined and stored like any other; its sender comes from the receipt, never from
    recovering that signature."""
    r = int.from_bytes(sender, "big") or 1
    fields = [chain_id, nonce, max_priority_fee, max_fee, gas, to or b"", value, data, [],
              0, r, 1]
    raw = bytes([DYNAMIC_FEE]) + rlp_encode(fields)
    return SignedTransaction(DYNAMIC_FEE, chain_id, nonce, gas, to, value, data, max_fee,
                             max_priority_fee, (), 0, r, 1, sender, keccak(raw), raw)


def _to(field: bytes) -> bytes | None:
    if len(field) not in (0, 20):
        raise TransactionDecodeError(f"a recipient is 20 bytes or empty, got {len(field)}")
    return field or None


def _uint(field: Any, name: str) -> int:
    if not isinstance(field, bytes):
        raise TransactionDecodeError(f"malformed transaction: {name} is a list, not a number")
    if field[:1] == b"\0":
        raise TransactionDecodeError(f"malformed transaction: {name} has leading zeros")
    return int.from_bytes(field, "big")


def _string(field: Any, name: str) -> bytes:
    if not isinstance(field, bytes):
        raise TransactionDecodeError(f"malformed transaction: {name} is a list, not bytes")
    return field


def _access_list(field: Any) -> tuple[tuple[bytes, tuple[bytes, ...]], ...]:
    if not isinstance(field, list):
        raise TransactionDecodeError("malformed transaction: the access list is not a list")
    out = []
    for entry in field:
        if (not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], bytes)
                or len(entry[0]) != 20 or not isinstance(entry[1], list)
                or any(not isinstance(k, bytes) or len(k) != 32 for k in entry[1])):
            raise TransactionDecodeError("malformed transaction: an access list entry is "
                                         "[20-byte address, [32-byte keys]]")
        out.append((entry[0], tuple(entry[1])))
    return tuple(out)


def _decode_legacy(raw: bytes, fields: list, sender: bytes | None, tx_hash: bytes | None
                   ) -> SignedTransaction:
    if len(fields) != 9:
        raise TransactionDecodeError(f"malformed transaction: a legacy transaction has 9 "
                                     f"fields, not {len(fields)}")
    nonce, gas_price, gas = (_uint(f, n) for f, n in zip(fields[:3], ("nonce", "gas price",
                                                                     "gas"), strict=True))
    to = _to(_string(fields[3], "to"))
    value = _uint(fields[4], "value")
    data = _string(fields[5], "data")
    v, r, s = (_uint(f, n) for f, n in zip(fields[6:], "vrs", strict=True))
    if v in (27, 28):
        raise TransactionDecodeError(
            "only replay-protected (EIP-155) transactions allowed over RPC")
    if v < 37:
        raise TransactionDecodeError(f"invalid signature v {v}")
    chain_id, parity = (v - 35) // 2, (v - 35) % 2
    if sender is None:
        unsigned = rlp_list([*(rlp_bytes(f) for f in fields[:6]), rlp_int(chain_id),
                             b"\x80", b"\x80"])
        sender = _recover(keccak(unsigned), parity, r, s)
    return SignedTransaction(LEGACY, chain_id, nonce, gas, to, value, data, gas_price,
                             gas_price, (), v, r, s, sender, tx_hash or keccak(raw), raw)


def _decode_typed(raw: bytes, fields: list, kind: int, sender: bytes | None,
                  tx_hash: bytes | None) -> SignedTransaction:
    want = 11 if kind == ACCESS_LIST else 12
    if len(fields) != want:
        raise TransactionDecodeError(f"malformed transaction: a type {kind} transaction has "
                                     f"{want} fields, not {len(fields)}")
    names = ("chain id", "nonce", "gas price", "gas") if kind == ACCESS_LIST else (
        "chain id", "nonce", "max priority fee", "max fee", "gas")
    numbers = [_uint(f, n) for f, n in zip(fields, names, strict=False)]
    k = len(names)
    to = _to(_string(fields[k], "to"))
    value = _uint(fields[k + 1], "value")
    data = _string(fields[k + 2], "data")
    access = _access_list(fields[k + 3])
    parity, r, s = (_uint(f, n) for f, n in zip(fields[k + 4:], ("y parity", "r", "s"),
                                                strict=True))
    if parity not in (0, 1):
        raise TransactionDecodeError(f"invalid signature y parity {parity}")
    if kind == ACCESS_LIST:
        chain_id, nonce, gas_price, gas = numbers
        max_fee = max_priority = gas_price
    else:
        chain_id, nonce, max_priority, max_fee, gas = numbers
        if max_priority > max_fee:
            raise TransactionDecodeError(
                f"max priority fee per gas higher than max fee per gas "
                f"({max_priority} > {max_fee})")
    if sender is None:
        # The signed payload is the fields but the signature; canonical input encodes
        # back to its own bytes.
        sender = _recover(keccak(bytes([kind]) + rlp_encode(fields[:k + 4])), parity, r, s)
    return SignedTransaction(kind, chain_id, nonce, gas, to, value, data, max_fee,
                             max_priority, access, parity, r, s, sender,
                             tx_hash or keccak(raw), raw)


def _recover(msg_hash: bytes, parity: int, r: int, s: int) -> bytes:
    if not (0 < r < SECP256K1_N and 0 < s <= SECP256K1_N // 2):
        raise TransactionDecodeError("invalid signature values (r, s out of range or high s)")
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((parity,))
    try:
        public = coincurve.PublicKey.from_signature_and_message(signature, msg_hash,
                                                                hasher=None)
    except Exception as exc:  # coincurve raises plain Exception for a bad signature
        raise TransactionDecodeError(f"invalid signature: {exc}") from None
    return keccak(public.format(compressed=False)[1:])[12:]
