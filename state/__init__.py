"""state: the pluggable state backend (accounts, balances, nonces, code, storage,
journaled snapshots) and state-root hashing.

Only the core is imported here; the host and transaction modules are imported by name
(`state.host`, `state.transaction`) so that this package stays free of the engine.
"""

from .backend import BLANK_ROOT, EMPTY_CODE_HASH, ZERO32, Account, Log, StateBackend
from .memory import MemoryBackend
from .root import account_rlp, logs_hash, state_root, storage_root

__all__ = [
    "BLANK_ROOT",
    "EMPTY_CODE_HASH",
    "ZERO32",
    "Account",
    "Log",
    "MemoryBackend",
    "StateBackend",
    "account_rlp",
    "logs_hash",
    "state_root",
    "storage_root",
]
