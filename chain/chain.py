"""The local chain: a persistent Ewasm chain with instant mining, as Anvil's automine.

Every valid transaction is mined at once into its own block (header, state root,
transactions and receipts roots, logs bloom), and the block store (chain/store.py,
SQLite by default) commits it atomically with its state changes: a crash leaves the last
committed block whole and nothing of the next. Contracts are deployed through the
ContractLoader (Ewasm validation, gasmeter metering, ahead-of-time compilation).

One Chain object owns one database file: a lock file keeps a second process (a node, or
a CLI command while a node runs) from writing it too.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_account import Account

from evmc_bridge import CallKind, Message, Revision, StatusCode, TxContext
from evmc_bridge.constants import EMPTY_TRIE_ROOT, ZERO_ADDRESS, ZERO_BYTES32
from state.backend import Log
from state.errors import InvalidTransaction
from state.host import StateHost, create_address
from state.transaction import BlockEnv, Transaction, apply_transaction, intrinsic_gas

from .blocks import Header, Receipt, bloom, next_base_fee, ordered_trie_root
from .errors import ChainError
from .loader import ContractLoader
from .store import BlockData, BlockStore, SqliteBlockStore, StoredLog, StoredTx
from .transactions import SignedTransaction, TransactionDecodeError, decode_transaction

GWEI = 10**9
ETHER = 10**18
REVISION = Revision.LONDON
PRIORITY_FEE = GWEI  # the tip suggested and used by default (eth_maxPriorityFeePerGas)
# Hardhat's and Anvil's development mnemonic: the keys every Ethereum tool already knows
# as throw-away test keys (never to hold real funds).
DEV_MNEMONIC = "test test test test test test test test test test test junk"


class ExecutionReverted(ChainError):
    code = 3

    def __init__(self, output: bytes):
        reason = revert_reason(output)
        super().__init__("execution reverted" + (f": {reason}" if reason else ""), output)


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
    chain_id: int = 1337
    gas_limit: int = 30_000_000
    initial_base_fee: int = GWEI
    dev_accounts: int = 10
    dev_balance: int = 10_000 * ETHER
    coinbase: bytes = ZERO_ADDRESS

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


class Chain:
    """The chain over one database file. Thread-safe: one lock serializes every access."""

    def __init__(self, path: str | os.PathLike, config: ChainConfig | None = None, *,
                 metering: bool = True, store: BlockStore | None = None) -> None:
        """The chain in the database at path, created with config (default ChainConfig())
        if new; a stored chain must be opened with its own config or none.

        store: the block store to use (its state backend holds the chain's state), owned
        by the chain from then on: closed by close(), and when the chain refuses to open
        (locked, or another configuration). By default a SqliteBlockStore over the file at
        path. Either way path's lock file keeps other processes out.
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
        self.loader = ContractLoader(metering=metering)
        stored = self.backend.get_meta("config")
        if stored is None:
            self.config = config or ChainConfig()
            self.accounts = dev_accounts(self.config.dev_accounts)
            self._genesis()
        else:
            self.config = ChainConfig.from_json(stored)
            if config is not None and config != self.config:
                self.close()
                raise ChainError(f"{self.path} holds a chain with another configuration "
                                 f"(chain id {self.config.chain_id}); open it without one")
            self.accounts = dev_accounts(self.config.dev_accounts)
        self._keys = {a.address: a.key for a in self.accounts}

    def close(self) -> None:
        with self._lock:
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

    @property
    def chain_id(self) -> int:
        return self.config.chain_id

    def head(self) -> int:
        with self._lock:
            head = self.store.head()
            assert head is not None  # the genesis block is written on creation
            return head

    def block(self, ref: int | bytes) -> tuple[Header, BlockData] | None:
        """The block by number or by hash."""
        with self._lock:
            data = (self.store.block(ref) if isinstance(ref, int)
                    else self.store.block_by_hash(ref))
        return None if data is None else (Header.decode(data.header), data)

    def head_header(self) -> Header:
        found = self.block(self.head())
        assert found is not None
        return found[0]

    def next_base_fee(self) -> int:
        parent = self.head_header()
        return next_base_fee(parent.gas_limit, parent.gas_used, parent.base_fee)

    def _block_hash(self, number: int) -> bytes:
        # Called from the engine's thread while the mining thread holds the lock and waits
        # for it: no locking here (the store is not used concurrently meanwhile).
        data = self.store.block(number)
        return ZERO_BYTES32 if data is None else data.hash

    def _env(self, parent: Header, *, base_fee: int | None = None) -> BlockEnv:
        number = parent.number + 1
        head = parent.number

        def block_hash(n: int) -> bytes:
            return self._block_hash(n) if head - 256 < n <= head else ZERO_BYTES32

        return BlockEnv(coinbase=self.config.coinbase, number=number,
                        timestamp=max(int(time.time()), parent.timestamp + 1),
                        gas_limit=self.config.gas_limit, difficulty=0, block_hash=block_hash,
                        chain_id=self.config.chain_id,
                        base_fee=(next_base_fee(parent.gas_limit, parent.gas_used,
                                                parent.base_fee)
                                  if base_fee is None else base_fee))

    # --- state ----------------------------------------------------------------------------
    def balance(self, address: bytes) -> int:
        with self._lock:
            return self.backend.get_balance(address)

    def nonce(self, address: bytes) -> int:
        with self._lock:
            return self.backend.get_nonce(address)

    def code(self, address: bytes) -> bytes:
        with self._lock:
            return self.backend.get_code(address)

    def storage(self, address: bytes, key: bytes) -> bytes:
        with self._lock:
            return self.backend.get_storage(address, key)

    # --- transactions ---------------------------------------------------------------------
    def transaction(self, tx_hash: bytes) -> MinedTransaction | None:
        with self._lock:
            stored = self.store.transaction(tx_hash)
            if stored is None:
                return None
            logs = tuple(log for log in self.store.logs(stored.block_number,
                                                        stored.block_number)
                         if log.tx_hash == tx_hash)
        receipt = Receipt.from_record(stored.receipt,
                                      (Log(x.address, x.topics, x.data) for x in logs))
        return MinedTransaction(decode_transaction(stored.raw), stored, receipt, logs)

    def logs(self, from_block: int, to_block: int, addresses: Sequence[bytes] | None = None,
             topics: Sequence[None | bytes | Sequence[bytes]] = ()) -> list[StoredLog]:
        with self._lock:
            return self.store.logs(from_block, to_block, addresses, topics)

    def send_raw_transaction(self, raw: bytes) -> bytes:
        """Validate, mine and commit; returns the transaction hash."""
        try:
            tx = decode_transaction(raw)
        except TransactionDecodeError as exc:
            raise InvalidTransaction(str(exc)) from None
        with self._lock:
            return self._mine(tx)

    def send_transaction(self, sender: bytes, *, to: bytes | None = None, data: bytes = b"",
                         value: int = 0, gas: int | None = None, nonce: int | None = None,
                         gas_price: int | None = None, max_fee: int | None = None,
                         max_priority_fee: int | None = None) -> bytes:
        """Fill in what is missing (nonce, gas by estimate, EIP-1559 fees unless gas_price
        asks for a legacy transaction), sign with the dev account's key, mine."""
        fields: dict = {"from": sender, "value": value, "data": data,
                        "chainId": self.config.chain_id}
        if to is not None:
            fields["to"] = to
        if gas_price is not None:
            fields["gasPrice"] = gas_price
        else:
            priority = PRIORITY_FEE if max_priority_fee is None else max_priority_fee
            fields["maxPriorityFeePerGas"] = priority
            fields["maxFeePerGas"] = (2 * self.next_base_fee() + priority if max_fee is None
                                      else max_fee)
        # One lock over nonce, estimate and mining: two concurrent requests from one
        # account cannot take the same nonce.
        with self._lock:
            fields["nonce"] = self.nonce(sender) if nonce is None else nonce
            fields["gas"] = gas if gas is not None else self.estimate_gas(
                sender=sender, to=to, data=data, value=value)
            return self.send_raw_transaction(self.sign(fields))

    def sign(self, fields: dict) -> bytes:
        """Sign a transaction dict (eth-account's format) with a dev account's key."""
        sender = bytes.fromhex(fields["from"][2:]) if isinstance(fields["from"], str) \
            else fields["from"]
        key = self._keys.get(sender)
        if key is None:
            raise ChainError(f"unknown account 0x{sender.hex()} (only the dev accounts sign)")
        unsigned = {k: v for k, v in fields.items() if k != "from"}
        return bytes(Account.sign_transaction(unsigned, key).raw_transaction)

    def _mine(self, tx: SignedTransaction) -> bytes:
        backend, config = self.backend, self.config
        if tx.chain_id != config.chain_id:
            raise InvalidTransaction(
                f"invalid chain id for signer: have {tx.chain_id} want {config.chain_id}")
        if self.store.transaction(tx.hash) is not None:
            raise InvalidTransaction("already known")
        parent = self.head_header()
        env = self._env(parent)
        stx = tx.to_state_transaction(env.base_fee)
        try:
            outcome = apply_transaction(backend, env, stx, revision=REVISION,
                                        loader=self.loader)
            if not outcome.valid:
                raise InvalidTransaction(outcome.error)
            backend.clear_touched()
            ok = outcome.status == StatusCode.SUCCESS
            receipt = Receipt(tx.type, int(ok), outcome.gas_used, outcome.gas_used,
                              tuple(outcome.logs), outcome.contract_address, stx.gas_price,
                              tx.sender, tx.to,
                              "" if ok else _failure_text(outcome.status, outcome.error))
            header = Header(parent.hash, config.coinbase, backend.state_root(),
                            ordered_trie_root([tx.raw]),
                            ordered_trie_root([receipt.consensus_encoding()]),
                            bloom(receipt.logs), env.number, env.gas_limit, outcome.gas_used,
                            env.timestamp, env.base_fee)
            block_hash = header.hash
            stored = StoredTx(tx.hash, env.number, block_hash, 0, tx.raw, receipt.record())
            logs = tuple(StoredLog(env.number, block_hash, 0, tx.hash, i, log.address,
                                   tuple(log.topics), log.data)
                         for i, log in enumerate(outcome.logs))
            self.store.commit_block(BlockData(env.number, block_hash, parent.hash,
                                              header.encode(), (stored,), logs))
        except BaseException:
            backend.discard()
            raise
        return tx.hash

    # --- simulation -----------------------------------------------------------------------
    def call(self, *, sender: bytes | None = None, to: bytes | None = None,
             data: bytes = b"", value: int = 0, gas: int | None = None) -> bytes:
        """Run a message on the latest state and throw the changes away (eth_call)."""
        sender = sender or ZERO_ADDRESS
        with self._lock:
            parent = self.head_header()
            gas = self.config.gas_limit if gas is None else gas
            env = self._env(parent, base_fee=0)
            ctx = TxContext(tx_gas_price=0, tx_origin=sender, block_coinbase=env.coinbase,
                            block_number=env.number, block_timestamp=env.timestamp,
                            block_gas_limit=env.gas_limit, chain_id=env.chain_id,
                            block_base_fee=env.base_fee)
            snap = self.backend.snapshot()
            try:
                host = StateHost(self.backend, ctx, REVISION, block_hash=env.block_hash,
                                 loader=self.loader)
                if to is None:
                    address = create_address(sender, self.backend.get_nonce(sender))
                    msg = Message(kind=CallKind.CREATE, gas=gas, sender=sender,
                                  recipient=address, input=data, value=value)
                    result = host.create(msg, address)
                else:
                    msg = Message(kind=CallKind.CALL, gas=gas, sender=sender, recipient=to,
                                  code_address=to, input=data, value=value)
                    result = host.message_call(msg)
            finally:
                self.backend.revert(snap)
                self.backend.clear_touched()
        if result.status == StatusCode.SUCCESS:
            return result.output
        if result.status == StatusCode.REVERT:
            raise ExecutionReverted(result.output)
        raise ChainError(_failure_text(result.status, result.message))

    def estimate_gas(self, *, sender: bytes | None = None, to: bytes | None = None,
                     data: bytes = b"", value: int = 0, gas: int | None = None) -> int:
        """The least gas limit with which the transaction succeeds (binary search, as geth)."""
        sender = sender or ZERO_ADDRESS
        with self._lock:
            cap = self.config.gas_limit if gas is None else min(gas, self.config.gas_limit)
            env = self._env(self.head_header(), base_fee=0)
            nonce = self.backend.get_nonce(sender)

            def attempt(limit: int):
                tx = Transaction(sender=sender, to=to, nonce=nonce, gas_limit=limit,
                                 gas_price=0, value=value, data=data)
                snap = self.backend.snapshot()
                try:
                    return apply_transaction(self.backend, env, tx, revision=REVISION,
                                             loader=self.loader)
                finally:
                    self.backend.revert(snap)
                    self.backend.clear_touched()

            out = attempt(cap)
            if not out.valid:
                raise ChainError(out.error)
            if out.status == StatusCode.REVERT:
                raise ExecutionReverted(out.output)
            if out.status != StatusCode.SUCCESS:
                if out.status == StatusCode.OUT_OF_GAS:
                    raise ChainError(f"gas required exceeds allowance ({cap})")
                raise ChainError(_failure_text(out.status, out.error))
            lo, hi = intrinsic_gas(Transaction(sender, to, nonce, 0, 0, value, data),
                                   REVISION) - 1, cap
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


def _failure_text(status: StatusCode | None, message: str) -> str:
    name = "unknown" if status is None else status.name.lower().replace("_", " ")
    return f"{name}: {message}" if message else name


def _lock_database(path: Path):
    """Hold an exclusive lock on PATH.lock for the Chain's lifetime (released on exit or
    crash by the kernel), so two processes never write one database."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path.with_name(path.name + ".lock"), "a+")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise ChainLockedError(f"{path} is in use by {owner}; stop it or use its JSON-RPC "
                               f"endpoint") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle
