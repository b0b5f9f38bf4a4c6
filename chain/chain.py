"""The local chain: a persistent Ewasm chain for contract authors, with instant mining (as
Anvil's automine) and the testing methods that Hardhat's and Anvil's users rely on.

Every valid transaction is mined at once into its own block (header, state root,
transactions and receipts roots, logs bloom), and the block store (chain/store.py,
SQLite by default) commits it atomically with its state changes: a crash leaves the last
committed block whole and nothing of the next. With automine off, transactions wait in a
pool until a block is mined (`mine`, or every `block_time` seconds). Contracts are
deployed through the ContractLoader (Ewasm validation, gasmeter metering, ahead-of-time
compilation, the chain's code-size limit).

Writers (mining, the state-editing test methods, snapshots) take the chain's lock; reads
and simulations (eth_call, eth_estimateGas) never do: they run on a read view of the
committed state (chain/history.py), at the head or at any older block, bounded by a gas
cap and a wall-clock limit.

One Chain object owns one database file: a lock file keeps a second process (a node, or
a CLI command while a node runs) from writing it too.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import inspect
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_account import Account

from evmc_bridge import CallKind, Message, Revision, StatusCode, TxContext
from evmc_bridge.abc import VM
from evmc_bridge.constants import EMPTY_TRIE_ROOT, ZERO_ADDRESS, ZERO_BYTES32
from state.backend import Log, StateBackend
from state.errors import InvalidTransaction
from state.host import StateHost, create_address
from state.transaction import BlockEnv, Transaction, apply_transaction, intrinsic_gas

from .blocks import Header, Receipt, next_base_fee, ordered_trie_root, union_bloom
from .errors import ChainError
from .history import HistoryUnavailable, StateView, WriteRecorder, restore
from .loader import EIP170, ContractLoader
from .store import BlockData, BlockReader, BlockStore, SqliteBlockStore, StoredLog, StoredTx
from .transactions import (
    SignedTransaction,
    TransactionDecodeError,
    decode_transaction,
    impersonated_transaction,
)
from .wrap import deployment_code

GWEI = 10**9
ETHER = 10**18
REVISION = Revision.LONDON
PRIORITY_FEE = GWEI  # the tip suggested and used by default (eth_maxPriorityFeePerGas)
# Hardhat's and Anvil's development mnemonic: the keys every Ethereum tool already knows
# as throw-away test keys (never to hold real funds).
DEV_MNEMONIC = "test test test test test test test test test test test junk"
CALL_TIMEOUT = 5.0  # geth's --rpc.evmtimeout
RECENT_TRANSACTIONS = 1024  # mined transactions kept decoded, for their receipts
MAX_MINE_BLOCKS = 100_000  # blocks one hardhat_mine may ask for
_HASH_WINDOW = 256  # BLOCKHASH's reach

# The chain's code-size limit is applied by its loader (ContractLoader.max_code_size), and
# passed to StateHost and apply_transaction where they take it, in place of the fork's
# EIP-170; where they do not yet, EIP-170 holds as well (a limit above it cannot apply).
HOST_TAKES_CODE_SIZE = ("max_code_size" in inspect.signature(apply_transaction).parameters
                        and "max_code_size" in inspect.signature(StateHost).parameters)
# A VM for a replayed transaction (tracing) needs apply_transaction(vm=...).
TRACE_TRANSACTIONS = "vm" in inspect.signature(apply_transaction).parameters


def _evm_of(vm: VM) -> dict[str, VM]:
    """A tracer's EVM (chain.trace.Tracer.evm) for StateHost's evm=, so that its trace
    holds the EVM frames too; nothing for a plain VM."""
    evm = getattr(vm, "evm", None)
    return {} if evm is None else {"evm": evm}


class ExecutionReverted(ChainError):
    code = 3

    def __init__(self, output: bytes):
        reason = revert_reason(output)
        super().__init__("execution reverted" + (f": {reason}" if reason else ""), output)


class SimulationTimeout(ChainError):
    """A simulation ran past the node's wall-clock limit."""


def revert_reason(output: bytes) -> str | None:
    """The string of a Solidity-style Error(string) revert, as geth puts in its message."""
    if len(output) < 68 or output[:4] != bytes.fromhex("08c379a0"):
        return None
    offset = int.from_bytes(output[4:36], "big")
    if offset + 32 > len(output) - 4:
        return None
    length = int.from_bytes(output[4 + offset:36 + offset], "big")
    text = output[36 + offset:36 + offset + length]
    if len(text) != length:
        return None
    return text.decode("utf-8", errors="replace")


class ChainLockedError(ChainError):
    """Another process holds the database."""


@dataclass(frozen=True)
class ChainConfig:
    """What a chain is, stored with it: a database is always reopened with its own."""

    chain_id: int = 1337
    gas_limit: int = 30_000_000
    initial_base_fee: int = GWEI
    dev_accounts: int = 10
    dev_balance: int = 10_000 * ETHER
    coinbase: bytes = ZERO_ADDRESS
    # The most bytes of code a CREATE may store: none, as on the Ewasm testnet, or
    # EIP-170's 24,576 (chain.loader.EIP170) for a chain that asks for it.
    max_code_size: int | None = None

    def __post_init__(self) -> None:
        m = self.max_code_size
        if m is not None and (type(m) is not int or m < 1):
            raise ChainError(f"max_code_size is a positive number of bytes or None, not {m!r}")

    def to_json(self) -> bytes:
        d = asdict(self)
        d["coinbase"] = self.coinbase.hex()
        return json.dumps(d, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ChainConfig:
        d = json.loads(data)
        d["coinbase"] = bytes.fromhex(d["coinbase"])
        return cls(**d)


@dataclass(frozen=True)
class DevAccount:
    address: bytes
    key: bytes


def dev_accounts(count: int) -> list[DevAccount]:
    """The first `count` accounts of DEV_MNEMONIC (BIP-44 path m/44'/60'/0'/0/i)."""
    Account.enable_unaudited_hdwallet_features()
    out = []
    for i in range(count):
        acct = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        out.append(DevAccount(bytes.fromhex(acct.address[2:]), bytes(acct.key)))
    return out


@dataclass(frozen=True)
class MinedTransaction:
    tx: SignedTransaction
    stored: StoredTx
    receipt: Receipt
    logs: tuple[StoredLog, ...]  # the receipt's logs with their places in the chain


@dataclass
class _Snapshot:
    head: int
    root: bytes  # the committed state root when taken (test-method edits included)
    pool: dict[bytes, SignedTransaction]
    time_offset: int
    next_timestamp: int | None


@dataclass
class _Outcome:
    """A simulation's result, before it becomes an answer or an error."""

    status: StatusCode | None
    output: bytes = b""
    message: str = ""
    gas_used: int = 0


class Chain:
    """The chain over one database file. Thread-safe: writers serialize on one lock,
    readers and simulations take none."""

    def __init__(self, path: str | os.PathLike, config: ChainConfig | None = None, *,
                 metering: bool = True, store: BlockStore | None = None,
                 gas_cap: int | None = None, call_timeout: float | None = CALL_TIMEOUT,
                 automine: bool = True, block_time: float | None = None) -> None:
        """The chain in the database at path, created with config (default ChainConfig())
        if new; a stored chain must be opened with its own config or none.

        store: the block store to use (its state backend holds the chain's state), owned
        by the chain from then on: closed by close(), and when the chain refuses to open
        (locked, or another configuration). By default a SqliteBlockStore over the file at
        path. Either way path's lock file keeps other processes out.

        gas_cap: the most gas one eth_call or eth_estimateGas runs with (geth's
        --rpc.gascap; default the block gas limit). call_timeout: their wall-clock limit
        in seconds (geth's --rpc.evmtimeout, 5 s; None for none). automine: mine each
        transaction as it comes (else they wait in the pool); block_time: also mine a
        block every that many seconds (interval mining).
        """
        self.path = Path(path)
        try:
            self._lock_file = _lock_database(self.path)
        except BaseException:
            if store is not None:
                store.close()
            raise
        try:
            self.store = SqliteBlockStore.open(self.path) if store is None else store
        except BaseException:
            self._lock_file.close()
            raise
        self.backend = self.store.state
        self._lock = threading.RLock()
        stored = self.backend.get_meta("config")
        if stored is None:
            self.config = config or ChainConfig()
        else:
            self.config = ChainConfig.from_json(stored)
            if config is not None and config != self.config:
                self.store.close()
                self._lock_file.close()
                raise ChainError(f"{self.path} holds a chain with another configuration "
                                 f"(chain id {self.config.chain_id}); open it without one")
        self.loader = ContractLoader(metering=metering, max_code_size=self.config.max_code_size)
        self._limit_kw = ({"max_code_size": self.config.max_code_size}
                          if HOST_TAKES_CODE_SIZE else {})
        self.accounts = dev_accounts(self.config.dev_accounts)
        self._keys = {a.address: a.key for a in self.accounts}
        self.gas_cap = self.config.gas_limit if gas_cap is None else gas_cap
        self.call_timeout = call_timeout
        self.automine = automine
        self._pool: dict[bytes, SignedTransaction] = {}
        self._recent: dict[bytes, MinedTransaction] = {}
        self._snapshots: dict[int, _Snapshot] = {}
        self._next_snapshot = 1
        self._recorder: WriteRecorder | None = None
        self._time_offset = 0
        self._next_timestamp: int | None = None
        self._impersonated: set[bytes] = set()
        self._reads = self.store.read_pool() if isinstance(self.store, SqliteBlockStore) \
            else None
        if stored is None:
            self._genesis()
        self._load_head()
        self._interval: float | None = None
        self._interval_stop: threading.Event | None = None
        self.set_block_time(block_time)

    def close(self) -> None:
        self.set_block_time(None)
        with self._lock:
            if self._reads is not None:
                self._reads.close()
            self.store.close()
            self._lock_file.close()

    def __enter__(self) -> Chain:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- blocks ---------------------------------------------------------------------------
    def _genesis(self) -> None:
        for account in self.accounts:
            self.backend.set_balance(account.address, self.config.dev_balance)
        self.backend.set_meta("config", self.config.to_json())
        header = Header(ZERO_BYTES32, self.config.coinbase, self.backend.state_root(),
                        EMPTY_TRIE_ROOT, EMPTY_TRIE_ROOT, bytes(256), 0, self.config.gas_limit,
                        0, 0, self.config.initial_base_fee)
        self.store.commit_block(BlockData(0, header.hash, ZERO_BYTES32, header.encode(), (), ()))

    def _load_head(self) -> None:
        """The head's header and the hashes BLOCKHASH reaches, from the store."""
        head = self.store.head()
        assert head is not None  # the genesis block is written on creation
        data = self.store.block(head)
        assert data is not None
        self._head_header = Header.decode(data.header)
        self._head_hash = data.hash
        self._hashes: dict[int, bytes] = {head: data.hash}
        for n in range(max(0, head - _HASH_WINDOW), head):
            found = self.store.block(n)
            if found is not None:
                self._hashes[n] = found.hash

    def _advance_head(self, header: Header, block_hash: bytes) -> None:
        self._head_header, self._head_hash = header, block_hash
        self._hashes[header.number] = block_hash
        self._hashes.pop(header.number - _HASH_WINDOW - 1, None)

    @property
    def chain_id(self) -> int:
        return self.config.chain_id

    def head(self) -> int:
        return self._head_header.number

    def head_header(self) -> Header:
        return self._head_header

    def block(self, ref: int | bytes) -> tuple[Header, BlockData] | None:
        """The block by number or by hash."""
        with self._reader() as r:
            data = r.block(ref) if isinstance(ref, int) else r.block_by_hash(ref)
        return None if data is None else (Header.decode(data.header), data)

    def header(self, number: int) -> Header | None:
        """Block `number`'s header, without its transactions."""
        if number == self._head_header.number:
            return self._head_header
        with self._reader() as r:
            if isinstance(r, BlockReader | SqliteBlockStore):
                found = r.header(number)
            else:
                data = r.block(number)
                found = None if data is None else (data.hash, data.header)
        return None if found is None else Header.decode(found[1])

    def next_base_fee(self) -> int:
        parent = self._head_header
        return next_base_fee(parent.gas_limit, parent.gas_used, parent.base_fee)

    def _block_hash(self, number: int) -> bytes:
        return self._hashes.get(number, ZERO_BYTES32)

    def _timestamp(self, parent: Header) -> int:
        if self._next_timestamp is not None:
            return self._next_timestamp
        return max(int(time.time()) + self._time_offset, parent.timestamp + 1)

    def _env(self, parent: Header, *, base_fee: int | None = None,
             timestamp: int | None = None) -> BlockEnv:
        number = parent.number + 1
        head = parent.number
        hashes = self._hashes

        def block_hash(n: int) -> bytes:
            return hashes.get(n, ZERO_BYTES32) if head - 256 < n <= head else ZERO_BYTES32

        return BlockEnv(coinbase=self.config.coinbase, number=number,
                        timestamp=self._timestamp(parent) if timestamp is None else timestamp,
                        gas_limit=self.config.gas_limit, difficulty=0, block_hash=block_hash,
                        chain_id=self.config.chain_id,
                        base_fee=(next_base_fee(parent.gas_limit, parent.gas_used,
                                                parent.base_fee)
                                  if base_fee is None else base_fee))

    # --- reading without the lock ---------------------------------------------------------
    @contextlib.contextmanager
    def _reader(self) -> Iterator[Any]:
        """A read session over the committed chain: a pooled read-only connection, or the
        store itself under the lock when it offers none (another BlockStore, :memory:)."""
        if self._reads is not None:
            with self._reads.session() as r:
                yield r
        else:
            with self._lock:
                yield self.store

    @contextlib.contextmanager
    def state_at(self, block: int | None = None) -> Iterator[StateBackend]:
        """A read view of the state after block `block` (None or the head: the latest
        state, test-method edits included), for reads and throw-away simulations.
        HistoryUnavailable where the store cannot answer."""
        latest = block is None or block == self._head_header.number
        if self._reads is not None:
            root = None
            if not latest:
                header = self.header(block)
                if header is None:
                    raise ChainError("header not found")
                root = header.state_root
            with self._reads.session() as r:
                yield StateView(r.connection, root)
            return
        with self._lock:
            if not latest:
                connection = getattr(self.backend, "connection", None)
                header = self.header(block)
                if connection is None or header is None:
                    raise HistoryUnavailable("this store keeps the latest state only")
                yield StateView(connection, header.state_root)
                return
            snap = self.backend.snapshot()
            try:
                yield self.backend
            finally:
                self.backend.revert(snap)
                self.backend.clear_touched()

    def balance(self, address: bytes, block: int | None = None) -> int:
        with self.state_at(block) as s:
            return s.get_balance(address)

    def nonce(self, address: bytes, block: int | None = None) -> int:
        with self.state_at(block) as s:
            return s.get_nonce(address)

    def pending_nonce(self, address: bytes) -> int:
        """The next nonce for address: the state's, past its transactions in the pool."""
        nonce = self.nonce(address)
        for tx in list(self._pool.values()):
            if tx.sender == address and tx.nonce >= nonce:
                nonce = tx.nonce + 1
        return nonce

    def code(self, address: bytes, block: int | None = None) -> bytes:
        with self.state_at(block) as s:
            return s.get_code(address)

    def storage(self, address: bytes, key: bytes, block: int | None = None) -> bytes:
        with self.state_at(block) as s:
            return s.get_storage(address, key)

    # --- transactions ---------------------------------------------------------------------
    def transaction(self, tx_hash: bytes) -> MinedTransaction | None:
        """A mined transaction with its receipt; recent ones without reading the store."""
        mined = self._recent.get(tx_hash)
        if mined is not None:
            return mined
        with self._reader() as r:
            stored = r.transaction(tx_hash)
            if stored is None:
                return None
            logs = tuple(log for log in r.logs(stored.block_number, stored.block_number)
                         if log.tx_hash == tx_hash)
        receipt = Receipt.from_record(stored.receipt,
                                      (Log(x.address, x.topics, x.data) for x in logs))
        # Decoded once: the sender is the receipt's, the hash the store's.
        tx = decode_transaction(stored.raw, sender=receipt.sender, tx_hash=stored.hash)
        return MinedTransaction(tx, stored, receipt, logs)

    def pending_transaction(self, tx_hash: bytes) -> SignedTransaction | None:
        return self._pool.get(tx_hash)

    def pending_transactions(self) -> list[SignedTransaction]:
        return list(self._pool.values())

    def logs(self, from_block: int, to_block: int, addresses: Sequence[bytes] | None = None,
             topics: Sequence[None | bytes | Sequence[bytes]] = ()) -> list[StoredLog]:
        with self._reader() as r:
            return r.logs(from_block, to_block, addresses, topics)

    def send_raw_transaction(self, raw: bytes) -> bytes:
        """Validate and mine (or, with automine off, pool); returns the transaction hash."""
        try:
            tx = decode_transaction(raw)
        except TransactionDecodeError as exc:
            raise InvalidTransaction(str(exc)) from None
        return self._submit(tx)

    def _submit(self, tx: SignedTransaction) -> bytes:
        with self._lock:
            if tx.chain_id != self.config.chain_id:
                raise InvalidTransaction(f"invalid chain id for signer: have {tx.chain_id} "
                                         f"want {self.config.chain_id}")
            # A transaction mined earlier fails its nonce check (nonces never go down,
            # hardhat_setNonce included): no store lookup per transaction here.
            if tx.hash in self._pool or tx.hash in self._recent:
                raise InvalidTransaction("already known")
            if self.automine and not self._pool:
                self._mine_block([tx], strict=True)
                return tx.hash
            self._admit(tx)
            self._pool[tx.hash] = tx
            if self.automine:
                self._mine_pool(1)
            return tx.hash

    def _admit(self, tx: SignedTransaction) -> None:
        """The checks a transaction must pass to wait in the pool (the rest, balance
        included, are made when it is mined: it is dropped then if it fails them)."""
        nonce = self.backend.get_nonce(tx.sender)
        if tx.nonce < nonce:
            raise InvalidTransaction(f"nonce too low: address 0x{tx.sender.hex()}, "
                                     f"tx: {tx.nonce} state: {nonce}")
        if any(p.sender == tx.sender and p.nonce == tx.nonce for p in self._pool.values()):
            raise InvalidTransaction("replacement transaction underpriced")
        if tx.gas_limit > self.config.gas_limit:
            raise InvalidTransaction(f"exceeds block gas limit: gas {tx.gas_limit}, "
                                     f"limit {self.config.gas_limit}")
        stx = tx.to_state_transaction(0)
        need = intrinsic_gas(stx, REVISION)
        if tx.gas_limit < need:
            raise InvalidTransaction(f"intrinsic gas too low: gas {tx.gas_limit}, "
                                     f"minimum needed {need}")

    def send_transaction(self, sender: bytes, *, to: bytes | None = None, data: bytes = b"",
                         value: int = 0, gas: int | None = None, nonce: int | None = None,
                         gas_price: int | None = None, max_fee: int | None = None,
                         max_priority_fee: int | None = None, wrap: bool = True,
                         access_list: tuple[tuple[bytes, tuple[bytes, ...]], ...] = ()
                         ) -> bytes:
        """Fill in what is missing (nonce, gas by estimate, EIP-1559 fees unless gas_price
        asks for a legacy transaction), sign with the dev account's key (or, for an
        impersonated account, mark it as sent from it), mine. A deployment of a runtime
        module is wrapped (chain.wrap's rule) unless wrap is False (data is sent as it
        is: the caller has decided)."""
        if sender not in self._keys and sender not in self._impersonated:
            raise ChainError(f"unknown account 0x{sender.hex()} (only the dev accounts "
                             "sign, and impersonated accounts send)")
        if to is None and wrap:
            data = deployment_code(data)
        if access_list and sender not in self._keys:
            raise ChainError("an access list needs a signed transaction; an impersonated "
                             "account sends without one")
        if gas is None:  # a simulation: outside the lock, as every simulation
            gas = self.estimate_gas(sender=sender, to=to, data=data, value=value, wrap=False,
                                    access_list=access_list)
        # One lock over the nonce and mining: two concurrent requests from one account
        # cannot take the same nonce.
        with self._lock:
            nonce = self.pending_nonce(sender) if nonce is None else nonce
            priority = PRIORITY_FEE if max_priority_fee is None else max_priority_fee
            if max_fee is None:
                max_fee = 2 * self.next_base_fee() + priority
            if sender in self._keys:
                fields: dict = {"from": sender, "value": value, "data": data,
                                "chainId": self.config.chain_id, "nonce": nonce, "gas": gas}
                if to is not None:
                    fields["to"] = to
                if access_list:
                    fields["accessList"] = [
                        {"address": "0x" + a.hex(), "storageKeys": ["0x" + k.hex() for k in ks]}
                        for a, ks in access_list]
                if gas_price is not None:
                    fields["gasPrice"] = gas_price
                else:
                    fields["maxPriorityFeePerGas"] = priority
                    fields["maxFeePerGas"] = max_fee
                return self.send_raw_transaction(self.sign(fields))
            if gas_price is not None:
                max_fee = priority = gas_price
            return self._submit(impersonated_transaction(
                sender, chain_id=self.config.chain_id, nonce=nonce, gas=gas, to=to,
                value=value, data=data, max_fee=max_fee, max_priority_fee=priority))

    def sign(self, fields: dict) -> bytes:
        """Sign a transaction dict (eth-account's format) with a dev account's key."""
        sender = bytes.fromhex(fields["from"][2:]) if isinstance(fields["from"], str) \
            else fields["from"]
        key = self._keys.get(sender)
        if key is None:
            raise ChainError(f"unknown account 0x{sender.hex()} (only the dev accounts sign)")
        unsigned = {k: v for k, v in fields.items() if k != "from"}
        return bytes(Account.sign_transaction(unsigned, key).raw_transaction)

    # --- mining ---------------------------------------------------------------------------
    def _writer(self) -> StateBackend:
        """The backend writes go through: recorded while a snapshot is live."""
        return self.backend if self._recorder is None else self._recorder  # type: ignore

    def _mine_block(self, txs: Sequence[SignedTransaction], *, strict: bool,
                    timestamp: int | None = None) -> tuple[list[MinedTransaction],
                                                           list[SignedTransaction]]:
        """Apply txs in order into one block on the head and commit it. strict: an invalid
        transaction raises InvalidTransaction and nothing is mined; otherwise it is left
        out (dropped from the pool). Returns (mined, those that did not fit in the block's
        gas, left for the next). Holds the lock."""
        backend, config = self._writer(), self.config
        parent = self._head_header
        env = self._env(parent, timestamp=timestamp)
        if env.timestamp <= parent.timestamp:
            raise ChainError(f"timestamp {env.timestamp} is not after the head block's "
                             f"{parent.timestamp}")
        receipts: list[Receipt] = []
        included: list[SignedTransaction] = []
        outcomes = []
        left_out: list[SignedTransaction] = []
        cumulative = 0
        try:
            for tx in txs:
                if cumulative + tx.gas_limit > env.gas_limit and included:
                    left_out.append(tx)  # the next block's
                    continue
                stx = tx.to_state_transaction(env.base_fee)
                outcome = apply_transaction(backend, env, stx, revision=REVISION,
                                            loader=self.loader, **self._limit_kw)
                if not outcome.valid:
                    if strict:
                        raise InvalidTransaction(outcome.error)
                    self._pool.pop(tx.hash, None)  # invalid now: dropped, as geth does
                    continue
                backend.clear_touched()
                cumulative += outcome.gas_used
                ok = outcome.status == StatusCode.SUCCESS
                receipts.append(Receipt(tx.type, int(ok), cumulative, outcome.gas_used,
                                        tuple(outcome.logs), outcome.contract_address,
                                        stx.gas_price, tx.sender, tx.to,
                                        "" if ok else _failure_text(outcome.status,
                                                                    outcome.error)))
                included.append(tx)
                outcomes.append(outcome)
            header = Header(parent.hash, config.coinbase, self.backend.state_root(),
                            ordered_trie_root([tx.raw for tx in included]),
                            ordered_trie_root([r.consensus_encoding() for r in receipts]),
                            union_bloom(r.logs_bloom for r in receipts), env.number,
                            env.gas_limit, cumulative, env.timestamp, env.base_fee)
            block_hash = header.hash
            stored_txs, stored_logs, mined = [], [], []
            for i, (tx, r) in enumerate(zip(included, receipts, strict=True)):
                stored = StoredTx(tx.hash, env.number, block_hash, i, tx.raw, r.record())
                logs = tuple(StoredLog(env.number, block_hash, i, tx.hash,
                                       len(stored_logs) + j, log.address, tuple(log.topics),
                                       log.data) for j, log in enumerate(r.logs))
                stored_txs.append(stored)
                stored_logs.extend(logs)
                mined.append(MinedTransaction(tx, stored, r, logs))
            self.store.commit_block(BlockData(env.number, block_hash, parent.hash,
                                              header.encode(), tuple(stored_txs),
                                              tuple(stored_logs)))
        except BaseException:
            self.backend.discard()
            raise
        self._next_timestamp = None
        self._advance_head(header, block_hash)
        # Indexed as the block is written: a receipt asked for next costs no read.
        recent = self._recent
        for m in mined:
            self._pool.pop(m.tx.hash, None)
            recent[m.tx.hash] = m
        while len(recent) > RECENT_TRANSACTIONS:
            del recent[next(iter(recent))]
        return mined, left_out

    def _ready(self) -> list[SignedTransaction]:
        """The pool's transactions in an order they can run in: by arrival, each sender's
        from its state nonce on, without gaps (later nonces wait). Stale ones go."""
        expected: dict[bytes, int] = {}
        for tx in list(self._pool.values()):
            if tx.sender not in expected:
                expected[tx.sender] = self.backend.get_nonce(tx.sender)
            if tx.nonce < expected[tx.sender]:
                del self._pool[tx.hash]  # its nonce was used meanwhile
        waiting = list(self._pool.values())
        order: list[SignedTransaction] = []
        while True:
            rest = []
            for tx in waiting:
                if tx.nonce == expected[tx.sender]:
                    order.append(tx)
                    expected[tx.sender] += 1
                else:
                    rest.append(tx)
            if len(rest) == len(waiting):
                return order
            waiting = rest

    def _mine_pool(self, blocks: int = 1, *, timestamp: int | None = None,
                   interval: int | None = None) -> list[Header]:
        headers: list[Header] = []
        empty: list[tuple[Header, BlockData]] = []
        for i in range(blocks):
            tip = empty[-1][0] if empty else self._head_header
            ts = timestamp if i == 0 else None
            if interval is not None and i > 0:
                ts = tip.timestamp + interval
            ready = self._ready() if self._pool else []
            if not ready and blocks > 1 and isinstance(self.store, SqliteBlockStore):
                empty.append(self._empty_block(tip, ts))
                headers.append(empty[-1][0])
                continue
            self._flush_empty(empty)
            self._mine_block(ready, strict=False, timestamp=ts)
            headers.append(self._head_header)
        self._flush_empty(empty)
        if interval is not None:  # the clock goes on from the last block, as Hardhat's
            self._time_offset = max(self._time_offset,
                                    self._head_header.timestamp - int(time.time()))
        return headers

    def _empty_block(self, parent: Header, timestamp: int | None) -> tuple[Header, BlockData]:
        """An empty block on `parent`, not committed yet: hardhat_mine's many blocks go in
        one transaction, and the head moves on once they are in."""
        env = self._env(parent, timestamp=timestamp)
        if env.timestamp <= parent.timestamp:
            raise ChainError(f"timestamp {env.timestamp} is not after the head block's "
                             f"{parent.timestamp}")
        header = Header(parent.hash, self.config.coinbase, self.backend.state_root(),
                        EMPTY_TRIE_ROOT, EMPTY_TRIE_ROOT, bytes(256), env.number,
                        env.gas_limit, 0, env.timestamp, env.base_fee)
        self._next_timestamp = None
        return header, BlockData(env.number, header.hash, parent.hash, header.encode(), (),
                                 ())

    def _flush_empty(self, empty: list[tuple[Header, BlockData]]) -> None:
        if not empty:
            return
        try:
            self.store.commit_blocks([data for _, data in empty])  # type: ignore[attr-defined]
        finally:
            blocks, empty[:] = list(empty), []
        for header, data in blocks:
            self._advance_head(header, data.hash)

    def mine(self, blocks: int = 1, *, timestamp: int | None = None,
             interval: int | None = None) -> list[Header]:
        """Mine `blocks` blocks with the pool's transactions (evm_mine, hardhat_mine): the
        first at `timestamp` if given, each next one `interval` seconds later if given."""
        if type(blocks) is not int or not 1 <= blocks <= MAX_MINE_BLOCKS:
            raise ChainError(f"blocks to mine must be 1..{MAX_MINE_BLOCKS}, not {blocks!r}")
        if interval is not None and interval < 1:
            raise ChainError(f"the interval between blocks must be at least 1 s, not "
                             f"{interval}")
        with self._lock:
            return self._mine_pool(blocks, timestamp=timestamp, interval=interval)

    def set_automine(self, on: bool) -> None:
        """evm_setAutomine: mine each transaction as it comes, or pool them. Turning it on
        mines what waits."""
        with self._lock:
            self.automine = bool(on)
            if self.automine and self._pool:
                self._mine_pool(1)

    def set_block_time(self, seconds: float | None) -> None:
        """Interval mining: a block every `seconds` (None or 0: off)."""
        if seconds is not None and not (isinstance(seconds, int | float) and seconds >= 0):
            raise ChainError(f"a block time is a number of seconds, not {seconds!r}")
        old = self._interval_stop
        if old is not None:
            old.set()
        self._interval_stop = None
        self._interval = seconds or None
        if not self._interval:
            return
        stop = self._interval_stop = threading.Event()
        interval = self._interval

        def run() -> None:
            while not stop.wait(interval):
                try:
                    with self._lock:
                        if not stop.is_set():
                            self._mine_pool(1)
                except Exception:  # a failing block must not end interval mining
                    continue

        threading.Thread(target=run, name="ewasm-interval-mining", daemon=True).start()

    @property
    def block_time(self) -> float | None:
        return self._interval

    # --- time -----------------------------------------------------------------------------
    def increase_time(self, seconds: int) -> int:
        """evm_increaseTime: later blocks are `seconds` later; returns the total offset."""
        if type(seconds) is not int or seconds < 0:
            raise ChainError(f"time moves forward only: {seconds!r}")
        with self._lock:
            self._time_offset += seconds
            return self._time_offset

    def set_next_block_timestamp(self, timestamp: int) -> None:
        """evm_setNextBlockTimestamp: the next block's timestamp; time goes on from it."""
        with self._lock:
            head = self._head_header.timestamp
            if type(timestamp) is not int or timestamp <= head:
                raise ChainError(f"timestamp {timestamp} is lower than or equal to the "
                                 f"previous block's timestamp {head}")
            self._next_timestamp = timestamp
            self._time_offset = timestamp - int(time.time())

    # --- state edits (hardhat_set*, anvil_set*) -------------------------------------------
    def _edit(self, change: Callable[[StateBackend], None]) -> None:
        with self._lock:
            try:
                change(self._writer())
                self.backend.clear_touched()
                self.backend.commit_state()
            except BaseException:
                self.backend.discard()
                raise

    def set_balance(self, address: bytes, wei: int) -> None:
        self._edit(lambda b: b.set_balance(address, wei))

    def set_nonce(self, address: bytes, nonce: int) -> None:
        """hardhat_setNonce: never lower, as in Hardhat (a mined transaction's nonce is
        below its sender's, which is how a resent one is refused)."""
        def change(b: StateBackend) -> None:
            current = b.get_nonce(address)
            if nonce < current:
                raise ChainError(f"cannot lower the nonce of 0x{address.hex()} from "
                                 f"{current} to {nonce}")
            b.set_nonce(address, nonce)
        self._edit(change)

    def set_code(self, address: bytes, code: bytes) -> None:
        """Put code at address as it is (not metered: the caller chose these bytes)."""
        self._edit(lambda b: b.set_code(address, code))

    def set_storage(self, address: bytes, key: bytes, value: bytes) -> None:
        self._edit(lambda b: b.set_storage(address, key, value))

    def impersonate(self, address: bytes, on: bool = True) -> None:
        """hardhat_impersonateAccount / stopImpersonatingAccount: eth_sendTransaction
        from address is accepted without its key."""
        with self._lock:
            if on:
                self._impersonated.add(address)
            else:
                self._impersonated.discard(address)

    # --- snapshots ------------------------------------------------------------------------
    def snapshot(self) -> int:
        """evm_snapshot: an id to return to with revert()."""
        with self._lock:
            if self._recorder is None:
                self._recorder = WriteRecorder(self.backend)
            sid = self._next_snapshot
            self._next_snapshot += 1
            self._snapshots[sid] = _Snapshot(self._head_header.number,
                                             self.backend.state_root(), dict(self._pool),
                                             self._time_offset, self._next_timestamp)
            return sid

    def revert(self, snapshot_id: int) -> bool:
        """evm_revert: back to the chain, state, pool and clock of the snapshot, which
        ends with every later one. False for an id that is not live."""
        with self._lock:
            snap = self._snapshots.get(snapshot_id)
            if snap is None or self._recorder is None:
                return False
            if not isinstance(self.store, SqliteBlockStore):
                raise ChainError("evm_revert needs a store that can drop blocks")
            try:
                target = StateView(self.backend.connection, snap.root)
                restore(self.backend, target, self._recorder)
                if self.backend.state_root() != snap.root:
                    raise ChainError("cannot restore the snapshot's state (its root differs)")
                self.store.rewind(snap.head)
            except BaseException:
                self.backend.discard()
                raise
            for sid in [s for s in self._snapshots if s >= snapshot_id]:
                del self._snapshots[sid]
            if not self._snapshots:
                self._recorder = None
            self._pool = dict(snap.pool)
            self._time_offset, self._next_timestamp = snap.time_offset, snap.next_timestamp
            self._recent = {h: m for h, m in self._recent.items()
                            if m.stored.block_number <= snap.head}
            self._load_head()
            return True

    # --- simulation -----------------------------------------------------------------------
    def _limited(self, run: Callable[[], Any]) -> Any:
        """run() under the node's wall-clock limit (ewasm.time_limit, where the engine
        has it): past it, SimulationTimeout, whatever run() answered. Code first seen in
        a simulation is compiled for it alone (ewasm.ephemeral_code): a free eth_call
        costs the node no disk and no lasting memory."""
        import ewasm

        limit_fn = _time_limit()
        if limit_fn is None or not self.call_timeout:
            with ewasm.ephemeral_code():  # code sent to be simulated is not kept
                return run()
        with limit_fn(self.call_timeout) as limit, ewasm.ephemeral_code():
            try:
                out = run()
            except ChainError:
                if limit.expired:
                    out = None
                else:
                    raise
        if limit.expired:
            raise SimulationTimeout(f"execution aborted (timeout = {self.call_timeout:g}s)")
        return out

    def _sim_env(self, block: int | None) -> tuple[BlockEnv, int | None]:
        """The environment a simulation runs in: on the latest state, the next block's (as
        before); at an older block n, block n's own (number, timestamp), as geth runs a
        call on the state after block n. No base fee: simulations pay no gas."""
        if block is None or block == self._head_header.number:
            return self._env(self._head_header, base_fee=0), None
        header = self.header(block)
        if header is None:
            raise ChainError("header not found")
        env = BlockEnv(coinbase=header.coinbase, number=header.number,
                       timestamp=header.timestamp, gas_limit=header.gas_limit, difficulty=0,
                       block_hash=lambda n: self._block_hash(n)
                       if block - 256 <= n < block else ZERO_BYTES32,
                       chain_id=self.config.chain_id, base_fee=0)
        return env, block

    def call(self, *, sender: bytes | None = None, to: bytes | None = None,
             data: bytes = b"", value: int = 0, gas: int | None = None,
             block: int | None = None, vm: VM | None = None,
             access_list: tuple[tuple[bytes, tuple[bytes, ...]], ...] = ()) -> bytes:
        """Run a message on the state after `block` (default the latest) and throw the
        changes away (eth_call). gas: capped at the gas cap. vm: the VM to run frames with
        (a tracer)."""
        out = self._run_call(sender=sender, to=to, data=data, value=value, gas=gas,
                             block=block, vm=vm, access_list=access_list)
        if out.status == StatusCode.SUCCESS:
            return out.output
        if out.status == StatusCode.REVERT:
            raise ExecutionReverted(out.output)
        raise ChainError(_failure_text(out.status, out.message))

    def _run_call(self, *, sender: bytes | None, to: bytes | None, data: bytes, value: int,
                  gas: int | None, block: int | None, vm: VM | None = None,
                  access_list: tuple = ()) -> _Outcome:
        sender = sender or ZERO_ADDRESS
        gas = self.gas_cap if gas is None else min(gas, self.gas_cap)
        env, _ = self._sim_env(block)
        if to is None:
            data = deployment_code(data)
        ctx = TxContext(tx_gas_price=0, tx_origin=sender, block_coinbase=env.coinbase,
                        block_number=env.number, block_timestamp=env.timestamp,
                        block_gas_limit=env.gas_limit, chain_id=env.chain_id,
                        block_base_fee=env.base_fee)

        def run() -> _Outcome:
            with self.state_at(block) as view:
                extra = {} if vm is None else {"vm": vm, **_evm_of(vm)}
                host = StateHost(view, ctx, REVISION, block_hash=env.block_hash,
                                 loader=self.loader, **self._limit_kw, **extra)
                target = create_address(sender, view.get_nonce(sender)) if to is None else to
                host.warm_transaction(sender, target, access_list)  # as a transaction
                if to is None:
                    address = target
                    msg = Message(kind=CallKind.CREATE, gas=gas, sender=sender,
                                  recipient=address, input=data, value=value)
                    result = host.create(msg, address)
                else:
                    msg = Message(kind=CallKind.CALL, gas=gas, sender=sender, recipient=to,
                                  code_address=to, input=data, value=value)
                    result = host.message_call(msg)
            return _Outcome(result.status, result.output, result.message,
                            gas - result.gas_left)

        return self._limited(run)

    def estimate_gas(self, *, sender: bytes | None = None, to: bytes | None = None,
                     data: bytes = b"", value: int = 0, gas: int | None = None,
                     block: int | None = None, wrap: bool = True,
                     access_list: tuple[tuple[bytes, tuple[bytes, ...]], ...] = ()) -> int:
        """The least gas limit with which the transaction succeeds (binary search, as
        geth), on the state after `block` (default the latest), at most the gas cap. A
        deployment of a runtime module is estimated wrapped, unless wrap is False."""
        sender = sender or ZERO_ADDRESS
        cap = min(self.gas_cap, self.config.gas_limit)
        cap = cap if gas is None else min(gas, cap)
        if to is None and wrap:
            data = deployment_code(data)
        env, _ = self._sim_env(block)

        def run() -> int:
            with self.state_at(block) as view:
                nonce = view.get_nonce(sender)

                def attempt(limit: int):
                    tx = Transaction(sender=sender, to=to, nonce=nonce, gas_limit=limit,
                                     gas_price=0, value=value, data=data,
                                     access_list=access_list)
                    snap = view.snapshot()
                    try:
                        return apply_transaction(view, env, tx, revision=REVISION,
                                                 loader=self.loader, **self._limit_kw)
                    finally:
                        view.revert(snap)
                        view.clear_touched()

                out = attempt(cap)
                if not out.valid:
                    raise ChainError(out.error)
                if out.status == StatusCode.REVERT:
                    raise ExecutionReverted(out.output)
                if out.status != StatusCode.SUCCESS:
                    if out.status == StatusCode.OUT_OF_GAS:
                        raise ChainError(f"gas required exceeds allowance ({cap})")
                    raise ChainError(_failure_text(out.status, out.error))
                lo = intrinsic_gas(Transaction(sender, to, nonce, 0, 0, value, data,
                                               access_list=access_list), REVISION) - 1
                hi = cap
                guess = out.gas_used
                if guess > lo:
                    trial = attempt(guess)
                    if trial.valid and trial.status == StatusCode.SUCCESS:
                        hi = guess
                    else:
                        lo = guess
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    trial = attempt(mid)
                    if trial.valid and trial.status == StatusCode.SUCCESS:
                        hi = mid
                    else:
                        lo = mid
                return hi

        return self._limited(run)

    # --- tracing --------------------------------------------------------------------------
    def replay(self, tx_hash: bytes, vm: VM) -> MinedTransaction:
        """Run a mined transaction again with `vm` (a tracer) on the state before it:
        its block's parent state, then the transactions before it in its block."""
        mined = self.transaction(tx_hash)
        if mined is None:
            raise ChainError(f"transaction 0x{tx_hash.hex()} not found")
        if not TRACE_TRANSACTIONS:
            raise ChainError("tracing a mined transaction needs apply_transaction(vm=...)"
                             " in this version of the state layer; debug_traceCall works")
        number = mined.stored.block_number
        header = self.header(number)
        found = self.block(number)
        assert header is not None and found is not None
        env = BlockEnv(coinbase=header.coinbase, number=number, timestamp=header.timestamp,
                       gas_limit=header.gas_limit, difficulty=0,
                       block_hash=lambda n: self._block_hash(n)
                       if number - 256 <= n < number else ZERO_BYTES32,
                       chain_id=self.config.chain_id, base_fee=header.base_fee)
        with self.state_at(number - 1) as view:
            for stored in found[1].transactions:
                earlier = self.transaction(stored.hash)
                assert earlier is not None
                stx = earlier.tx.to_state_transaction(header.base_fee)
                if stored.hash == tx_hash:
                    apply_transaction(view, env, stx, revision=REVISION, loader=self.loader,
                                      vm=vm, **_evm_of(vm), **self._limit_kw)
                    break
                apply_transaction(view, env, stx, revision=REVISION, loader=self.loader,
                                  **self._limit_kw)
                view.clear_touched()
        return mined


def _time_limit() -> Any:
    import ewasm

    return getattr(ewasm, "time_limit", None)


def _failure_text(status: StatusCode | None, message: str) -> str:
    name = "unknown" if status is None else status.name.lower().replace("_", " ")
    return f"{name}: {message}" if message else name


def _lock_database(path: Path):
    """Hold an exclusive lock on PATH.lock for the Chain's lifetime (released on exit or
    crash by the kernel), so two processes never write one database.

    The lock file is opened without following a symbolic link (O_NOFOLLOW) and must be a
    regular file: a link planted at PATH.lock is refused, never written through, so the
    lock can never truncate another file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(lock_path, flags, 0o600)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise ChainError(f"{lock_path} is a symbolic link; refusing to use it as the "
                             "database's lock file (remove it)") from None
        raise ChainError(f"cannot open the lock file {lock_path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ChainError(f"{lock_path} is not a regular file; refusing to use it as "
                             "the database's lock file")
        if info.st_nlink != 1:
            raise ChainError(f"{lock_path} has {info.st_nlink} hard links; refusing to use "
                             "it as the database's lock file (remove it)")
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "r+")
    except BaseException:
        os.close(fd)
        raise
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read(200).strip() or "another process"
        handle.close()
        raise ChainLockedError(f"{path} is in use by {owner}; stop it or use its JSON-RPC "
                               f"endpoint") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


__all__ = ["CALL_TIMEOUT", "DEV_MNEMONIC", "EIP170", "ETHER", "GWEI", "PRIORITY_FEE",
           "REVISION", "Chain", "ChainConfig", "ChainError", "ChainLockedError",
           "DevAccount", "ExecutionReverted", "HistoryUnavailable", "MinedTransaction",
           "SimulationTimeout", "dev_accounts", "revert_reason"]
