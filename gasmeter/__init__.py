"""gasmeter: inject Ewasm gas metering into Wasm bytecode (a pure bytes -> bytes function),
and the policy of when to apply it (at CREATE, as Hera)."""

from .cost_table import DEFAULT, EWASM_COSTS, CostTable
from .errors import CostTableError, MeteringError
from .inject import USE_GAS_TYPE, inject, meter_module
from .policy import MeteringPolicy, execute_metered

__all__ = ["DEFAULT", "EWASM_COSTS", "USE_GAS_TYPE", "CostTable", "CostTableError", "MeteringError",
           "MeteringPolicy", "execute_metered", "inject", "meter_module"]
