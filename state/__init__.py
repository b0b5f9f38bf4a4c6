"""state: the pluggable state backend (accounts, balances, nonces, code, storage,
journaled snapshots; in memory, or persisted in SQLite with a pending overlay and an
incremental state root) and state-root hashing.

Only the core is imported here; the host and transaction modules are imported by name
(`state.host`, `state.transaction`) so that this package stays free of the engine.
"""

from .backend import (
    EMPTY_CODE_HASH,
    EMPTY_TRIE_ROOT,
    ZERO_BYTES32,
    Account,
    Log,
    PersistentBackend,
    StateBackend,
)
from .errors import (
    EngineOptionError,
    InvalidStateValue,
    InvalidTransaction,
    NotAStateTest,
    StateError,
    StateTestError,
)
from .memory import MemoryBackend
from .root import account_rlp, logs_hash, slot_rlp, state_root, storage_root
from .sqlite import SqliteBackend, StateDatabaseError

__all__ = [
    "EMPTY_TRIE_ROOT",
    "EMPTY_CODE_HASH",
    "ZERO_BYTES32",
    "Account",
    "EngineOptionError",
    "InvalidStateValue",
    "InvalidTransaction",
    "NotAStateTest",
    "StateError",
    "StateTestError",
    "Log",
    "MemoryBackend",
    "PersistentBackend",
    "SqliteBackend",
    "StateBackend",
    "StateDatabaseError",
    "account_rlp",
    "logs_hash",
    "slot_rlp",
    "state_root",
    "storage_root",
]
