"""The contract loader: what the chain does to Ewasm code when a contract is deployed.

Deployed code is checked against the Ewasm contract rules, metered under the metering
policy (gasmeter.MeteringPolicy, Hera's: init code before it runs, returned code before
it is stored, so that every later call is bounded by its gas with metering a property of
the stored bytecode), and compiled ahead of time into the engine's cache so that the
first call runs at full speed.

The size of stored code is the chain's choice (`max_code_size`): none by default, as on the
Ewasm testnet, where unoptimised Solidity runtimes of 30-50 KB were deployed; EIP-170's
24,576 bytes for a chain that asks for it. It applies to the code as stored (metered when
metering is on), as EIP-170 does.
"""

from __future__ import annotations

import gasmeter
from evmc_bridge.constants import MAX_CODE_SIZE_EIP170
from ewasm import ContractValidationError, check_contract, prepare_contract, validate
from ewasm.contract import CONTRACT_FEATURES, has_wasm_preamble

EIP170 = MAX_CODE_SIZE_EIP170


def check_contract_code(code: bytes) -> None:
    """Raise ewasm.WasmError unless code is a valid Ewasm contract module."""
    if not has_wasm_preamble(code):
        raise ContractValidationError("not a Wasm module (no \\0asm preamble)")
    check_contract(validate(code, CONTRACT_FEATURES))


class ContractLoader:
    """The chain's CodeLoader (state.host): Ewasm validation, the metering policy, AOT
    compilation. metering=False stores and runs code as it was sent."""

    def __init__(self, *, metering: bool = True, costs: gasmeter.CostTable | None = None,
                 max_code_size: int | None = None):
        """max_code_size: the most bytes of code a CREATE may store (None: no limit)."""
        if max_code_size is not None and (type(max_code_size) is not int or max_code_size < 1):
            raise ValueError(f"max_code_size is a positive int or None, not {max_code_size!r}")
        self.policy = gasmeter.MeteringPolicy(costs or gasmeter.DEFAULT) if metering else None
        self.max_code_size = max_code_size

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
        if not has_wasm_preamble(code):
            raise ContractValidationError(
                f"the creation code finished with {len(code)} bytes that are not a Wasm "
                "module: a creation module's main must finish with the runtime module (a "
                "runtime module is deployed wrapped, as `ewasm deploy` and "
                "eth_sendTransaction do with one, or `ewasm wrap-deploy` makes)")
        # Metering only adds code: a module over the limit is refused before that work.
        self._check_size(code, metered=False)
        check_contract_code(code)
        if self.policy is not None:
            code = self.policy.deployed_code(code)
            self._check_size(code, metered=True)
        prepare_contract(code)  # compiles into the engine's cache (memory and disk)
        return code

    def _check_size(self, code: bytes, *, metered: bool) -> None:
        limit = self.max_code_size
        if limit is not None and len(code) > limit:
            name = " (EIP-170)" if limit == EIP170 else ""
            raise ContractValidationError(
                f"code of {len(code)} bytes{' once metered' if metered else ''} exceeds "
                f"the chain's limit of {limit} bytes{name}")
