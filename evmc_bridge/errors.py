"""The EVMC layer's errors, under one root."""

from __future__ import annotations


class EvmcError(Exception):
    """Root of the errors of the EVMC layer (loading or configuring a VM, bad names)."""


class EvmcLoadError(EvmcError):
    """An EVMC VM library cannot be loaded (EVMC's loader error codes)."""


class EvmcOptionError(EvmcError):
    """A VM refused an option: unknown name or invalid value."""


class BadMessageError(EvmcError, ValueError):
    """An evmc_message from C with a field out of EVMC's range (kind, flags)."""


class UnknownRevisionError(EvmcError, ValueError):
    """A revision name EVMC does not know (`Revision.parse`)."""
