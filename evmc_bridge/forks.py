"""Fork rules as data: one `ForkRules` per revision, carrying the gas constants and EIP
switches that state and chain apply, so that no rule is an inline `revision >=` check.

The values are the ones this project applies (Byzantium as aleth 1.6 did when the Ewasm
state tests were filled; the later revisions' changes to the transaction rules): the
SSTORE refund stays Byzantium's, as Ewasm's storageStore has no net metering.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import constants as c
from .types import Revision


@dataclass(frozen=True, slots=True)
class ForkRules:
    revision: Revision
    ewasm: bool  # Ewasm runs from Byzantium on
    tx_create_gas: int  # intrinsic gas of a creation (Homestead's EIP-2)
    tx_data_nonzero_gas: int  # EIP-2028 (Istanbul)
    access_lists: bool  # EIP-2930 (Berlin): typed transactions with access lists
    eip161: bool  # Spurious Dragon: empty accounts are non-existent, new contracts nonce 1,
    # touched empty accounts deleted
    max_code_size: int | None  # EIP-170 (Spurious Dragon); None: no limit
    eip1559: bool  # London: the base fee, burnt; the fee cap must cover it
    eip3541: bool  # London: no new code may start with 0xEF
    refund_quotient: int  # gas used // quotient caps the refund (EIP-3529: 5 from London)
    selfdestruct_refund: int  # 0 from London (EIP-3529)
    sstore_clear_refund: int = c.REFUND_SSTORE_CLEAR
    tx_gas: int = c.GAS_TX
    tx_data_zero_gas: int = c.GAS_TX_DATA_ZERO
    code_deposit_gas: int = c.GAS_CODE_DEPOSIT
    # Init code (a creation's data, create's input): gas per byte, charged before it is
    # compiled, and its size limit (None: none). Constants' comment says where from.
    initcode_byte_gas: int = 0
    max_initcode_size: int | None = None
    create2: bool = False  # EIP-1014 (Constantinople): CREATE2, and Wasm's create2 import
    # The precompiles' prices (state.precompiles): EIP-1108's cheaper alt_bn128 and
    # EIP-152's blake2f at 0x09 (Istanbul), EIP-2565's modexp (Berlin).
    eip1108: bool = False
    blake2f: bool = False
    eip2565: bool = False
    # finish/revert: gas per 32-byte word of output (constants' comment says why).
    output_word_gas: int = 0


def rules(revision: Revision | int) -> ForkRules:
    """The rules of `revision` (a Revision or its integer)."""
    fork = _RULES.get(revision)  # a Revision (or its int) hashes as its number: no enum call
    return fork if fork is not None else _RULES[Revision(revision)]


def _build(r: Revision) -> ForkRules:
    london = r >= Revision.LONDON
    return ForkRules(
        revision=r,
        ewasm=r >= Revision.BYZANTIUM,
        tx_create_gas=c.GAS_TX_CREATE if r >= Revision.HOMESTEAD else 0,
        tx_data_nonzero_gas=(c.GAS_TX_DATA_NONZERO_EIP2028 if r >= Revision.ISTANBUL
                             else c.GAS_TX_DATA_NONZERO),
        access_lists=r >= Revision.BERLIN,
        eip161=r >= Revision.SPURIOUS_DRAGON,
        max_code_size=c.MAX_CODE_SIZE_EIP170 if r >= Revision.SPURIOUS_DRAGON else None,
        eip1559=london,
        eip3541=london,
        refund_quotient=5 if london else 2,
        selfdestruct_refund=0 if london else c.REFUND_SELFDESTRUCT,
        initcode_byte_gas=c.GAS_INITCODE_BYTE_EWASM if r > Revision.BYZANTIUM else 0,
        max_initcode_size=c.MAX_INITCODE_SIZE_EWASM if r > Revision.BYZANTIUM else None,
        output_word_gas=c.GAS_OUTPUT_WORD_EWASM if r > Revision.BYZANTIUM else 0,
        create2=r >= Revision.CONSTANTINOPLE,
        eip1108=r >= Revision.ISTANBUL,
        blake2f=r >= Revision.ISTANBUL,
        eip2565=r >= Revision.BERLIN,
    )


_RULES = {r: _build(r) for r in Revision}
