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

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

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
