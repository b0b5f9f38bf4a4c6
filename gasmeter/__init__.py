"""gasmeter: inject Ewasm gas metering into Wasm bytecode (a pure bytes -> bytes function),
and the policy of when to apply it (at CREATE, as Hera)."""

from .cost_table import DEFAULT, EWASM_COSTS, PER_UNIT_KEYS, CostTable
from .errors import CostTableError, MeteringError, MissingCostError
from .inject import USE_GAS_TYPE, inject, meter_module
from .policy import MeteringPolicy, execute_metered

__all__ = ["DEFAULT", "EWASM_COSTS", "PER_UNIT_KEYS", "USE_GAS_TYPE", "CostTable", "CostTableError",
           "MeteringError", "MeteringPolicy", "MissingCostError", "execute_metered", "inject",
           "meter_module"]
