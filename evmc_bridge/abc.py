"""The map of the system's interfaces, as py-evm's `eth/abc.py` is: every seam between
the layers is one of these abstract classes or protocols, each with its contract in its
docstring, and each layer depends on them rather than on the concrete classes.

    Host           what a VM asks of the chain during one frame (EVMC's host interface)
    VM             EVMC's execute: one frame of code for a message against a Host
    CodeLoader     what a chain does to code around a CREATE (validation, metering)
    CostRules      the metering transform's cost of each instruction
    StateBackend   accounts, balances, nonces, code and storage with journaled snapshots
    PersistentBackend  a StateBackend over a committed state (pending until committed)
    BlockStore     the chain's blocks, transactions, receipts and logs

Implementations: Host by state.StateHost, evmc_bridge.mocked_host.MockedHost and the C
host behind libewasm.so; VM by ewasm.execute and evmc_bridge.load_vm's LoadedVM;
CodeLoader by gasmeter.MeteringPolicy and chain.loader.ContractLoader; CostRules by
gasmeter.CostTable; StateBackend by state.MemoryBackend and state.SqliteBackend;
BlockStore by chain.store.SqliteBlockStore.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from eth_hash.auto import keccak

from .constants import ZERO_BYTES32
from .types import AccessStatus, Message, Result, Revision, StorageStatus, TxContext


@runtime_checkable
class Host(Protocol):
    """EVMC's host functions (evmc_host_interface, members #0-#13), one method each.

    Addresses are 20-byte and keys/values/hashes 32-byte `bytes`; balances are ints."""

    def account_exists(self, address: bytes) -> bool: ...

    def get_storage(self, address: bytes, key: bytes) -> bytes: ...

    def set_storage(self, address: bytes, key: bytes, value: bytes) -> StorageStatus: ...

    def get_balance(self, address: bytes) -> int: ...

    def get_code_size(self, address: bytes) -> int: ...

    def get_code_hash(self, address: bytes) -> bytes: ...

    def copy_code(self, address: bytes, offset: int, size: int) -> bytes:
        """Up to `size` bytes of the account's code from `offset` (fewer at the end)."""
        ...

    def selfdestruct(self, address: bytes, beneficiary: bytes) -> bool: ...

    def call(self, message: Message) -> Result: ...

    def get_tx_context(self) -> TxContext: ...

    def get_block_hash(self, number: int) -> bytes: ...

    def emit_log(self, address: bytes, data: bytes, topics: Sequence[bytes]) -> None: ...

    def access_account(self, address: bytes) -> AccessStatus: ...

    def access_storage(self, address: bytes, key: bytes) -> AccessStatus: ...


@runtime_checkable
class VM(Protocol):
    """EVMC's execute: run `code` for `message` against `host` under `revision`.

    Never raises for anything the code, the message or the host's answers can cause:
    every outcome is a Result whose status and gas follow EVMC (gas_left 0 unless
    SUCCESS or REVERT). Options are the VM's own keywords (the engine's: debug,
    evm1_mode, tier, sent_code: the code `codeCopy` shows when `code` is a metered copy).
    A VM that cannot run the code (EVM bytecode for a Wasm engine) answers REJECTED."""

    def __call__(self, host: Host, revision: Revision, message: Message, code: bytes,
                 **options: Any) -> Result: ...


@runtime_checkable
class CodeLoader(Protocol):
    """What a chain does to contract code around a CREATE: prepare the init code before it
    runs, and turn the code it returns into the code stored (validation, metering, ahead-
    of-time compilation). Pure in the code: the same input gives the same bytes.

    Both raise ewasm.WasmError (DecodeError, ValidationError, MeteringError, ...) to fail
    the CREATE as CONTRACT_VALIDATION_FAILURE. When init_code returns other bytes than
    it was given, the host calls the VM with `sent_code=` the original (what the init
    code sees of itself)."""

    def init_code(self, code: bytes) -> bytes: ...

    def deployed_code(self, code: bytes) -> bytes: ...


@runtime_checkable
class CostRules(Protocol):
    """The cost table the metering transform charges from (gasmeter.CostTable).

    cost: the gas of one instruction by opcode, None if the table forbids it (metering
    then refuses the module); charge_overhead: what one charge (`i64.const; call useGas`)
    adds to a metered block; per_local: the gas per declared local at function entry.
    Costs are non-negative and fixed: metering is a pure function of module and table."""

    def cost(self, opcode: int) -> int | None: ...

    @property
    def charge_overhead(self) -> int: ...

    @property
    def per_local(self) -> int: ...


# --- state: the values and the backend -------------------------------------------------

@dataclass
class Account:
    nonce: int = 0
    balance: int = 0
    code: bytes = b""
    # 32-byte key -> 32-byte value; zero values are never stored, so equality of two
    # accounts is equality of their states.
    storage: dict[bytes, bytes] = field(default_factory=dict)

    def is_empty(self) -> bool:
        """EIP-161: no nonce, no balance, no code (storage does not count)."""
        return self.nonce == 0 and self.balance == 0 and not self.code

    def copy(self) -> Account:
        """A copy whose storage dict can be changed without touching this one."""
        return Account(self.nonce, self.balance, self.code, dict(self.storage))


class Log(NamedTuple):
    address: bytes  # 20 bytes
    topics: tuple[bytes, ...]  # 32 bytes each
    data: bytes


class StateBackend(ABC):
    """Accounts, balances, nonces, code, storage, with journaled snapshots.

    An absent account reads as empty (balance 0, nonce 0, no code, zero storage). Every
    write creates the account if absent and is journaled, so `revert` undoes it.
    Addresses are 20 bytes and storage keys and values 32 bytes (bytes or bytearray);
    anything else, and a snapshot id that is not live, raises ValueError.
    """

    # --- reads ---------------------------------------------------------------------------
    @abstractmethod
    def exists(self, address: bytes) -> bool:
        """Present in the state, even if empty."""

    def is_empty(self, address: bytes) -> bool:
        """EIP-161 emptiness; an absent account is empty."""
        acc = self.get_account(address)
        return acc is None or acc.is_empty()

    @abstractmethod
    def get_balance(self, address: bytes) -> int: ...

    @abstractmethod
    def get_nonce(self, address: bytes) -> int: ...

    @abstractmethod
    def get_code(self, address: bytes) -> bytes: ...

    def get_code_hash(self, address: bytes) -> bytes:
        """keccak256 of the code; EMPTY_CODE_HASH without code; ZERO_BYTES32 if absent."""
        if not self.exists(address):
            return ZERO_BYTES32
        return keccak(self.get_code(address))

    @abstractmethod
    def get_storage(self, address: bytes, key: bytes) -> bytes:
        """32 bytes; ZERO_BYTES32 when unset."""

    def has_storage(self, address: bytes) -> bool:
        """Any non-zero slot (CREATE's collision rule, EIP-7610)."""
        acc = self.get_account(address)
        return acc is not None and bool(acc.storage)

    @abstractmethod
    def addresses(self) -> list[bytes]:
        """Every existing address, sorted."""

    @abstractmethod
    def get_account(self, address: bytes) -> Account | None:
        """A copy (its storage dict too), None if absent."""

    # --- writes --------------------------------------------------------------------------
    @abstractmethod
    def set_balance(self, address: bytes, value: int) -> None:
        """ValueError unless value is an int (not a bool or float) in [0, 2**256)."""

    def add_balance(self, address: bytes, delta: int) -> None:
        """delta may be negative; a result out of range raises and changes nothing."""
        if type(delta) is not int:
            raise ValueError(f"balance delta {delta!r} is not an int")
        new = self.get_balance(address) + delta
        if new < 0:
            raise ValueError(f"balance of 0x{bytes(address).hex()} would go negative "
                             f"({new - delta} + {delta})")
        self.set_balance(address, new)

    @abstractmethod
    def set_nonce(self, address: bytes, value: int) -> None:
        """ValueError unless value is an int (not a bool or float) in [0, 2**64)."""

    @abstractmethod
    def set_code(self, address: bytes, code: bytes) -> None: ...

    @abstractmethod
    def set_storage(self, address: bytes, key: bytes, value: bytes) -> None:
        """An all-zero value deletes the slot."""

    @abstractmethod
    def create_account(self, address: bytes) -> None:
        """Make it exist with no nonce, code or storage; a balance already there stays
        (CREATE onto a pre-funded address)."""

    @abstractmethod
    def delete_account(self, address: bytes) -> None:
        """Remove it entirely (self-destruct, EIP-161 clean-up); absent is a no-op."""

    @abstractmethod
    def touch(self, address: bytes) -> None:
        """Record the address as touched (EIP-161) without creating it."""

    @abstractmethod
    def touched(self) -> frozenset[bytes]: ...

    @abstractmethod
    def clear_touched(self) -> None:
        """Forget the touched set (between the transactions of a block or chain).

        Allowed while snapshots are live: the touches are forgotten for good, and a later
        revert does not bring back those made before the call."""

    # --- journal -------------------------------------------------------------------------
    @abstractmethod
    def snapshot(self) -> int:
        """An id for the current state; snapshots nest."""

    @abstractmethod
    def revert(self, snapshot: int) -> None:
        """Undo everything since the snapshot (touches, creations and deletions too);
        it and later snapshots become invalid."""

    @abstractmethod
    def commit(self, snapshot: int) -> None:
        """Keep the changes and forget the snapshot and later ones; an enclosing
        snapshot can still undo them."""

    # --- bulk ----------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def from_accounts(cls, accounts: Mapping[bytes, Account]) -> StateBackend:
        """A backend holding copies of the accounts; nothing journaled or touched."""

    def to_accounts(self) -> dict[bytes, Account]:
        """Copies of every account, by address in sorted order."""
        out = {}
        for address in self.addresses():
            acc = self.get_account(address)
            assert acc is not None  # addresses() lists only existing accounts
            out[address] = acc
        return out


class PersistentBackend(StateBackend):
    """A StateBackend over a committed state: every change is pending until
    `commit_state` makes the pending changes the committed state, or `discard` drops them.

    Beside the state it keeps named values (`set_meta`), pending and committed with it, for
    whatever the application must keep consistent with the state (its configuration, say).
    """

    @abstractmethod
    def commit_state(self) -> None:
        """Make the pending changes (state and meta values) the committed state, all or
        nothing, and clear the touched set.

        ValueError, with nothing committed, if a snapshot is live. If writing fails,
        nothing is committed and the changes stay pending: retry, or discard()."""

    @abstractmethod
    def discard(self) -> None:
        """Drop every pending change (state and meta values), end every live snapshot and
        clear the touched set."""

    @abstractmethod
    def state_root(self) -> bytes:
        """The state root of the state as it stands (pending changes included); equal to
        state.root.state_root(self)."""

    @abstractmethod
    def set_meta(self, key: str, value: bytes) -> None:
        """Set a named value: pending, as the state changes are (get_meta sees it at once).
        ValueError unless key is a str and value bytes."""

    @abstractmethod
    def get_meta(self, key: str) -> bytes | None:
        """The named value (pending one first); None if unset. ValueError unless key is a
        str."""

    @abstractmethod
    def close(self) -> None:
        """Release the backend; pending changes are dropped."""


# --- the chain's block store -----------------------------------------------------------

@dataclass(frozen=True)
class StoredLog:
    """One log, positioned in the chain."""

    block_number: int
    block_hash: bytes
    tx_index: int
    tx_hash: bytes
    log_index: int  # within the block
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True)
class StoredTx:
    hash: bytes
    block_number: int
    block_hash: bytes
    index: int
    raw: bytes  # the signed transaction, opaque to the store
    receipt: bytes  # an encoded receipt, opaque to the store (the chain picks the format)


@dataclass(frozen=True)
class BlockData:
    number: int
    hash: bytes
    parent_hash: bytes
    header: bytes  # opaque encoded header
    transactions: tuple[StoredTx, ...]  # in block order
    logs: tuple[StoredLog, ...]  # every log of the block, in order


class BlockStore(ABC):
    """The chain's blocks, transactions, receipts and logs, bound to the state backend
    whose pending changes each block commits.

    A store holds a linear chain from block 0 to its head. Arguments of the wrong type or
    shape raise ValueError. Not thread-safe: the chain serializes access.
    """

    @property
    @abstractmethod
    def state(self) -> PersistentBackend:
        """The state backend: commit_block commits its pending changes with each block."""

    @abstractmethod
    def head(self) -> int | None:
        """The latest block number; None before the first block."""

    @abstractmethod
    def commit_block(self, block: BlockData) -> None:
        """Commit the state backend's pending changes (state and meta values) and the block
        (its transactions, receipts and logs) atomically: after a crash at any moment,
        either both are there or neither is. The pending changes then become the committed
        state, the touched set is cleared, and the block is the head.

        ValueError, with nothing written and the pending changes intact, unless the block
        follows the head (number head+1, or 0 on an empty chain; parent_hash the head's
        hash), its hash and its transactions' hashes are new, and its records are well
        formed (each transaction and log carrying this block's number, hash and its own
        index; logs in transaction order; at most 4 topics of 32 bytes), or if a snapshot
        of the state is live. If writing fails, nothing is written and the pending changes
        stay as they were: retry, or discard them (state.discard()).
        """

    @abstractmethod
    def block(self, number: int) -> BlockData | None:
        """The block by number, with its transactions and logs; None if there is none
        (a negative or too large number included). ValueError unless number is an int."""

    @abstractmethod
    def block_by_hash(self, block_hash: bytes) -> BlockData | None:
        """The block by hash; None if there is none. ValueError unless 32 bytes."""

    @abstractmethod
    def transaction(self, tx_hash: bytes) -> StoredTx | None:
        """The transaction and its receipt by hash; None if it is in no block.
        ValueError unless 32 bytes."""

    @abstractmethod
    def logs(self, from_block: int, to_block: int, addresses: Sequence[bytes] | None = None,
             topics: Sequence[None | bytes | Sequence[bytes]] = ()) -> list[StoredLog]:
        """eth_getLogs over blocks from_block..to_block (inclusive), in chain order.

        addresses: any of them (None or empty: any address). topics: by position, None
        (or an empty list) matches anything, a value that exact topic, a list any of its
        values; a log with fewer topics than a non-wildcard position does not match.
        ValueError for a bound outside [0, 2**64), an address or topic of the wrong size,
        one address instead of a list, or more than 4 topic positions.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the store and its state backend; pending changes are dropped."""
