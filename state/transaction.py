"""Apply one transaction to a state backend: the Ethereum transaction rules around the
engine (validity, intrinsic gas, buying gas, refunds, fees, EIP-161 clean-up).

Byzantium as aleth 1.6 applied it when the Ewasm state tests were filled
(../shared/docs/state-tests.md §5); the revision selects the later rules that change
these numbers (EIP-2028 data cost, EIP-3529 refunds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from evmc_bridge import CallKind, Message, Revision, StatusCode, TxContext
from evmc_bridge.abc import VM, CodeLoader
from evmc_bridge.constants import (
    GAS_ACCESS_LIST_ADDRESS,
    GAS_ACCESS_LIST_KEY,
    NONCE_LIMIT,
    ZERO_BYTES32,
)
from evmc_bridge.forks import rules
from gasmeter import MeteringPolicy

from .backend import Log, StateBackend
from .errors import EngineOptionError, ExecutionFailed, InvalidTransaction
from .host import StateHost, create_address


@dataclass(frozen=True)
class BlockEnv:
    coinbase: bytes
    number: int
    timestamp: int
    gas_limit: int
    difficulty: int
    block_hash: Callable[[int], bytes] = field(default=lambda n: ZERO_BYTES32)
    chain_id: int = 1
    base_fee: int = 0


@dataclass(frozen=True)
class Transaction:
    sender: bytes
    to: bytes | None  # None: contract creation
    nonce: int
    gas_limit: int
    gas_price: int  # the effective price per gas the sender pays
    value: int
    data: bytes
    # EIP-1559: the fee cap the balance must cover (gas_price when None, as before London).
    max_fee: int | None = None
    # Intrinsic gas beyond data, creation and the access list.
    extra_intrinsic_gas: int = 0
    # EIP-1559: the most per gas the coinbase may get (gas_price when None).
    max_priority_fee: int | None = None
    # EIP-2930: (address, storage keys) warm from the start, each paid in intrinsic gas.
    access_list: tuple[tuple[bytes, tuple[bytes, ...]], ...] = ()


@dataclass
class TxOutcome:
    valid: bool
    error: str = ""
    status: StatusCode | None = None
    gas_used: int = 0
    logs: list[Log] = field(default_factory=list)
    output: bytes = b""
    contract_address: bytes | None = None


def access_list_gas(access_list: tuple[tuple[bytes, tuple[bytes, ...]], ...]) -> int:
    """EIP-2930's intrinsic charge for carrying an access list."""
    return sum(GAS_ACCESS_LIST_ADDRESS + GAS_ACCESS_LIST_KEY * len(keys)
               for _, keys in access_list)


def intrinsic_gas(tx: Transaction, revision: Revision) -> int:
    fork = rules(revision)
    zeros = tx.data.count(0)
    gas = (fork.tx_gas + fork.tx_data_zero_gas * zeros
           + fork.tx_data_nonzero_gas * (len(tx.data) - zeros))
    if tx.to is None:
        gas += fork.tx_create_gas
        if tx.data[:4] == b"\0asm":  # compiled init code pays for its compile
            gas += fork.initcode_byte_gas * len(tx.data)
    return gas + access_list_gas(tx.access_list) + tx.extra_intrinsic_gas


def check_transaction(backend: StateBackend, env: BlockEnv, tx: Transaction,
                      revision: Revision) -> int:
    """Raise InvalidTransaction unless tx can be included; returns its intrinsic gas.
    The messages are geth's, which clients of the chain's JSON-RPC node recognise."""
    sender = "0x" + tx.sender.hex()
    fork = rules(revision)
    fee_cap = tx.gas_price if tx.max_fee is None else tx.max_fee
    tip = fee_cap if tx.max_priority_fee is None else tx.max_priority_fee
    # Fields no encoding can carry (a fixture's matrix can name them): geth's RLP decoder
    # refuses them before any rule is checked.
    for what, value, bits in (("gas", tx.gas_limit, 64), ("value", tx.value, 256),
                              ("gas price", tx.gas_price, 256), ("max fee", fee_cap, 256),
                              ("priority fee", tip, 256), ("nonce", tx.nonce, 64)):
        if value < 0 or value.bit_length() > bits:
            raise InvalidTransaction(f"rlp: {what} {value} does not fit {bits} bits")
    if tx.access_list and not fork.access_lists:
        raise InvalidTransaction("transaction type not supported: access lists need Berlin")
    if tx.max_priority_fee is not None and not fork.eip1559:
        raise InvalidTransaction("transaction type not supported: dynamic fees need London")
    nonce = backend.get_nonce(tx.sender)
    if tx.nonce < nonce:
        raise InvalidTransaction(f"nonce too low: address {sender}, tx: {tx.nonce} "
                                 f"state: {nonce}")
    if tx.nonce > nonce:
        raise InvalidTransaction(f"nonce too high: address {sender}, tx: {tx.nonce} "
                                 f"state: {nonce}")
    if nonce >= NONCE_LIMIT - 1:  # EIP-2681
        raise InvalidTransaction(f"nonce has max value: address {sender}, nonce: {nonce}")
    if fork.eip1559 and backend.get_code(tx.sender):
        # EIP-3607 (enforced by every client from London's era): code cannot sign.
        raise InvalidTransaction(f"sender not an eoa: address {sender}")
    if tx.gas_limit > env.gas_limit:
        raise InvalidTransaction(f"exceeds block gas limit: gas {tx.gas_limit}, "
                                 f"limit {env.gas_limit}")
    if tip > fee_cap:
        raise InvalidTransaction(f"max priority fee per gas higher than max fee per gas: "
                                 f"address {sender}, maxPriorityFeePerGas: {tip}, "
                                 f"maxFeePerGas: {fee_cap}")
    if fork.eip1559 and fee_cap < env.base_fee:
        raise InvalidTransaction(f"max fee per gas less than block base fee: address "
                                 f"{sender}, maxFeePerGas: {fee_cap}, "
                                 f"baseFee: {env.base_fee}")
    limit = fork.max_initcode_size
    if tx.to is None and limit is not None and len(tx.data) > limit and \
            tx.data[:4] == b"\0asm":
        # Checked before anything is compiled (geth's message for EIP-3860's limit).
        raise InvalidTransaction(f"max initcode size exceeded: code size {len(tx.data)} "
                                 f"limit {limit}")
    intrinsic = intrinsic_gas(tx, revision)
    if tx.gas_limit < intrinsic:
        raise InvalidTransaction(f"intrinsic gas too low: gas {tx.gas_limit}, "
                                 f"minimum needed {intrinsic}")
    cost = tx.gas_limit * fee_cap + tx.value
    balance = backend.get_balance(tx.sender)
    if balance < cost:
        raise InvalidTransaction(f"insufficient funds for gas * price + value: address "
                                 f"{sender} balance {balance}, want {cost}")
    return intrinsic


def apply_transaction(backend: StateBackend, env: BlockEnv, tx: Transaction, *,
                      revision: Revision = Revision.BYZANTIUM,
                      options: Mapping[str, str] | None = None,
                      loader: CodeLoader | None = None, vm: VM | None = None,
                      evm: VM | None | str = "default",
                      max_code_size: int | None | str = "fork") -> TxOutcome:
    """Apply tx to backend (mutating it); an invalid tx leaves the backend unchanged.

    vm, evm and max_code_size go to the StateHost (a Wasm VM that wraps the engine, e.g.
    a tracer; the EVM, None for none; the code-size limit of the chain, None for none).

    options: `debug` goes to the engine; `metering` ("true"/"false") runs every CREATE
    under gasmeter's MeteringPolicy when no loader is given; `evm` ("true", the default,
    or "false") runs code that is not Wasm on the EVM, or refuses it. loader prepares the
    code of every CREATE (see StateHost)."""
    try:
        intrinsic = check_transaction(backend, env, tx, revision)
    except InvalidTransaction as exc:
        return TxOutcome(valid=False, error=str(exc))
    engine_opts = engine_options(options or {})
    if engine_opts.pop("metering", False) and loader is None:
        loader = MeteringPolicy()
    if not engine_opts.pop("evm", True):
        evm = None
    snapshot = backend.snapshot()  # undone if the engine cannot run it (ExecutionFailed)
    backend.touch(env.coinbase)  # testeth/aleth: the coinbase is touched before the tx
    backend.add_balance(tx.sender, -tx.gas_limit * tx.gas_price)
    backend.set_nonce(tx.sender, tx.nonce + 1)
    backend.touch(tx.sender)
    gas = tx.gas_limit - intrinsic
    target = create_address(tx.sender, tx.nonce) if tx.to is None else tx.to
    tx_context = TxContext(tx_gas_price=tx.gas_price, tx_origin=tx.sender,
                           block_coinbase=env.coinbase, block_number=env.number,
                           block_timestamp=env.timestamp, block_gas_limit=env.gas_limit,
                           block_prev_randao=env.difficulty, chain_id=env.chain_id,
                           block_base_fee=env.base_fee)
    host = StateHost(backend, tx_context, revision, block_hash=env.block_hash,
                     engine_options=engine_opts, loader=loader, vm=vm, evm=evm,
                     max_code_size=max_code_size)
    host.warm_transaction(tx.sender, target, tx.access_list)
    contract = None
    if tx.to is None:
        contract = target
        msg = Message(kind=CallKind.CREATE, gas=gas, sender=tx.sender, recipient=contract,
                      input=tx.data, value=tx.value)
        result = host.create(msg, contract)
    else:
        msg = Message(kind=CallKind.CALL, gas=gas, sender=tx.sender, recipient=tx.to,
                      code_address=tx.to, input=tx.data, value=tx.value)
        result = host.message_call(msg)
    if result.status == StatusCode.INTERNAL_ERROR:
        backend.revert(snapshot)
        raise ExecutionFailed(f"the engine could not run the transaction: {result.message}")
    gas_left = result.gas_left
    gas_used = tx.gas_limit - gas_left
    fork = host.rules
    refund_counter = host.refund + fork.selfdestruct_refund * len(host.selfdestructs)
    refund = min(refund_counter, gas_used // fork.refund_quotient)
    backend.add_balance(tx.sender, (gas_left + refund) * tx.gas_price)
    # From London the base fee is burnt; the coinbase gets only the priority fee.
    burnt = env.base_fee if fork.eip1559 else 0
    backend.add_balance(env.coinbase, (gas_used - refund) * (tx.gas_price - burnt))
    for address in host.selfdestructs:
        backend.delete_account(address)
    if fork.eip161:
        for address in sorted(backend.touched()):
            if backend.exists(address) and backend.is_empty(address):
                backend.delete_account(address)
    backend.commit(snapshot)
    ok = result.status == StatusCode.SUCCESS
    return TxOutcome(valid=True, error=result.message, status=result.status,
                     gas_used=gas_used - refund, logs=list(host.logs) if ok else [],
                     output=result.output,
                     contract_address=contract if ok and contract is not None else None)


def engine_options(options: Mapping[str, str]) -> dict[str, bool]:
    known = {"debug", "metering", "evm"}
    out = {}
    for key, value in options.items():
        if key not in known:
            raise EngineOptionError(f"unknown engine option {key!r}; known: "
                                    f"{', '.join(sorted(known))}")
        text = str(value).lower()
        if text not in ("true", "false", "1", "0", "yes", "no"):
            raise EngineOptionError(f"option {key} takes true or false, not {value!r}")
        out[key] = text in ("true", "1", "yes")
    return out
