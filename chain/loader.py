"""The contract loader: what the chain does to Ewasm code when a contract is deployed.

Deployed code is checked against the Ewasm contract rules, metered under the metering
policy (gasmeter.MeteringPolicy, Hera's: init code before it runs, returned code before
it is stored, so that every later call is bounded by its gas with metering a property of
the stored bytecode), and compiled ahead of time into the engine's cache so that the
first call runs at full speed.
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
    """The chain's CodeLoader (state.host): Ewasm validation, the metering policy, AOT
    compilation. metering=False stores and runs code as it was sent."""

    def __init__(self, *, metering: bool = True, costs: gasmeter.CostTable | None = None):
        self.policy = gasmeter.MeteringPolicy(costs or gasmeter.DEFAULT) if metering else None

    @property
    def metering(self) -> bool:
        return self.policy is not None

    def init_code(self, code: bytes) -> bytes:
        if self.policy is None or not has_wasm_preamble(code):
            return code  # the engine refuses what is not Wasm
        check_contract_code(code)
        return self.policy.init_code(code)

    def deployed_code(self, code: bytes) -> bytes:
        if not code:
            return code  # an account without code, as an EVM creation returning nothing
        check_contract_code(code)
        if self.policy is not None:
            code = self.policy.deployed_code(code)
        prepare_contract(code)  # compiles into the engine's cache (memory and disk)
        return code
