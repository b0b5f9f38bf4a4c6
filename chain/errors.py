"""The chain's errors, under one root. A transaction the chain refuses is
state.errors.InvalidTransaction (one class for the state rules and the chain)."""

from __future__ import annotations


class ChainError(Exception):
    """A request the chain refuses; `code` is the JSON-RPC error code geth would use."""

    code = -32000

    def __init__(self, message: str, data: bytes | None = None):
        super().__init__(message)
        self.data = data


class InvalidBlockError(ChainError, ValueError):
    """A block, transaction or log record the block store cannot take, or a malformed
    query (a bound, address or topic of the wrong shape). Also a ValueError: it is a bad
    argument."""
