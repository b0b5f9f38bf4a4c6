"""The state package's errors, under one root. Each says what was wrong and with what
(the address, the value, the file)."""

from __future__ import annotations


class StateError(Exception):
    """Root of the state package's errors."""


class InvalidTransaction(StateError):
    """The transaction cannot be included (nonce, gas, fees, balance): no state changes.
    The chain raises this one class too; its message is geth's, which clients know."""


class ExecutionFailed(StateError):
    """The engine could not run the transaction on this machine (EVMC_INTERNAL_ERROR: out
    of address space or memory, a host bug). Not a result a block may record, since
    another machine would record something else: the transaction is not applied, and
    the state is as before it."""


class InvalidStateValue(StateError, ValueError):
    """A value the state cannot hold: an address not 20 bytes, a balance or nonce out of
    range, a snapshot that is not live. (Also a ValueError: it is a bad argument.)"""


class EngineOptionError(StateError, ValueError):
    """An engine option the transaction rules do not know, or a value that is not one."""


class StateTestError(StateError):
    """A state-test or filler file that cannot be read as one (the path says which)."""


class NotAStateTest(StateTestError):
    """The file is JSON but not a filled state test (e.g. test vectors lying beside them)."""
