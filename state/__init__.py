"""state: the pluggable state backend (accounts, balances, nonces, code, storage,
journaled snapshots), state-root hashing, and the transaction rules around the engine."""

from .backend import BLANK_ROOT, EMPTY_CODE_HASH, Account, Log, StateBackend
from .memory import MemoryBackend
from .root import logs_hash, state_root, storage_root

__all__ = ["BLANK_ROOT", "EMPTY_CODE_HASH", "Account", "Log", "MemoryBackend", "StateBackend",
           "logs_hash", "state_root", "storage_root"]
