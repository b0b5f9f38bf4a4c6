"""The contract loader: what the chain does to Ewasm code when a contract is deployed.

Deployed code is checked against the Ewasm contract rules, metered with gasmeter (so
that every later call is bounded by its gas, with metering a property of the stored
bytecode), and compiled ahead of time into the engine's cache so that the first call
runs at full speed. Init code is metered too: it runs once, but an endless loop in it
would otherwise hang the node.
"""

from __future__ import annotations

import gasmeter
from ewasm import ContractValidationError, check_contract, prepare_contract, validate
from ewasm.contract import CONTRACT_FEATURES, has_wasm_preamble


def check_contract_code(code: bytes) -> None:
    """Raise ewasm.WasmError unless code is a valid Ewasm contract module."""
    if not has_wasm_preamble(code):
        raise ContractValidationError("not a Wasm module (no \\0asm preamble)")
    check_contract(validate(code, CONTRACT_FEATURES))


class ContractLoader:
    """The chain's CodeLoader (state.host): Ewasm validation, metering, AOT compilation."""

    def __init__(self, *, metering: bool = True, costs: gasmeter.CostTable | None = None):
        self.metering = metering
        self.costs = costs or gasmeter.DEFAULT

    def _meter(self, code: bytes) -> bytes:
        return gasmeter.inject(code, self.costs, features=CONTRACT_FEATURES)

    def init_code(self, code: bytes) -> bytes:
        if not self.metering or not has_wasm_preamble(code):
            return code  # the engine refuses what is not Wasm
        check_contract_code(code)
        return self._meter(code)

    def deployed_code(self, code: bytes) -> bytes:
        if not code:
            return code  # an account without code, as an EVM creation returning nothing
        check_contract_code(code)
        if self.metering:
            code = self._meter(code)
        prepare_contract(code)  # compiles into the engine's cache (memory and disk)
        return code
