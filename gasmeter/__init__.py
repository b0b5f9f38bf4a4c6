"""gasmeter: inject Ewasm gas metering into Wasm bytecode (a pure bytes -> bytes function)."""

from .cost_table import DEFAULT, EWASM_COSTS, CostTable
from .inject import USE_GAS_TYPE, MeteringError, inject, meter_module

__all__ = ["DEFAULT", "EWASM_COSTS", "USE_GAS_TYPE", "CostTable", "MeteringError", "inject",
           "meter_module"]
