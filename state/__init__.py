"""state: the pluggable state backend (accounts, balances, nonces, code, storage,
journaled snapshots; in memory, or persisted with the chain's blocks in SQLite) and
state-root hashing.

Only the core is imported here; the host and transaction modules are imported by name
(`state.host`, `state.transaction`) so that this package stays free of the engine.
"""

from .backend import BLANK_ROOT, EMPTY_CODE_HASH, ZERO32, Account, Log, StateBackend
from .memory import MemoryBackend
from .root import account_rlp, logs_hash, state_root, storage_root
from .sqlite import BlockData, SqliteBackend, StateDatabaseError, StoredLog, StoredTx

__all__ = [
    "BLANK_ROOT",
    "EMPTY_CODE_HASH",
    "ZERO32",
    "Account",
    "BlockData",
    "Log",
    "MemoryBackend",
    "SqliteBackend",
    "StateBackend",
    "StateDatabaseError",
    "StoredLog",
    "StoredTx",
    "account_rlp",
    "logs_hash",
    "state_root",
    "storage_root",
]
