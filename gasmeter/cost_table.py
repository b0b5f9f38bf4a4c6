"""CostTable: what each instruction costs. Data, not code: a mapping loadable from JSON.

The default is the Ewasm one: `ewasm/wasm-metering`'s defaultCostTable.json, keyed by an
instruction's base name (`add` prices i32.add and i64.add). Where that table and the
design disagree, this table follows wasm-metering, which is what was deployed:
* `memory.grow` is a flat charge per execution (10,000), not per page;
* the charge itself costs `const` + `call` (1 + 90 = 91), added to every charge;
* declared locals cost `locals` (1) each, charged at function entry (wasm-metering meant
  to and never did, by a key typo).
Float instructions are priced only by an entry under their full name (`f32.add`); the
default has none, so a module with floats cannot be metered with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ewasm.opcodes import OPS

from .errors import CostTableError

EWASM_COSTS: Mapping[str, int] = MappingProxyType({
    "local.get": 120, "local.set": 120, "local.tee": 120, "global.get": 120, "global.set": 120,
    "load8_s": 120, "load8_u": 120, "load16_s": 120, "load16_u": 120, "load32_s": 120,
    "load32_u": 120, "load": 120, "store8": 120, "store16": 120, "store32": 120, "store": 120,
    "memory.grow": 10000, "memory.size": 100,
    "nop": 1, "block": 1, "loop": 1, "if": 1, "else": 90, "br": 90, "br_if": 90,
    "br_table": 120, "return": 90, "call": 90, "call_indirect": 10000,
    "const": 1,
    "add": 45, "sub": 45, "mul": 45, "div_s": 36000, "div_u": 36000, "rem_s": 36000,
    "rem_u": 36000, "and": 45, "or": 45, "xor": 45, "shl": 67, "shr_u": 67, "shr_s": 67,
    "rotl": 90, "rotr": 90, "eq": 45, "eqz": 45, "ne": 45, "lt_s": 45, "lt_u": 45, "le_s": 45,
    "le_u": 45, "gt_s": 45, "gt_u": 45, "ge_s": 45, "ge_u": 45, "clz": 45, "ctz": 45,
    "popcnt": 45, "drop": 120, "select": 120, "unreachable": 1,
    "locals": 1,
})


@dataclass(frozen=True)
class CostTable:
    costs: Mapping[str, int] = field(default_factory=lambda: EWASM_COSTS)
    # Cost of an instruction the table does not name; None makes metering refuse it.
    default: int | None = 0

    def cost(self, opcode: int) -> int | None:
        """The cost of one instruction, or None when the table forbids it."""
        name = OPS[opcode].name
        if name in self.costs:
            return self.costs[name]
        if OPS[opcode].uses_float:
            return None
        base = name.split(".", 1)[1] if name[:4] in ("i32.", "i64.") else name
        if base in self.costs:
            return self.costs[base]
        return self.default

    @property
    def charge_overhead(self) -> int:
        return self.costs.get("const", 0) + self.costs.get("call", 0)

    @property
    def per_local(self) -> int:
        return self.costs.get("locals", 0)

    @classmethod
    def from_json(cls, path: str | Path) -> CostTable:
        """The table in a JSON file; CostTableError if it is not one, OSError if the file
        cannot be read."""
        try:
            data = json.loads(Path(path).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CostTableError(f"{path}: not JSON: {exc}") from None
        costs = data.get("costs", data) if isinstance(data, dict) else None
        if not isinstance(costs, dict) or not all(
            isinstance(k, str) and type(v) is int and v >= 0 for k, v in costs.items()
        ):
            raise CostTableError(f"{path}: a cost table maps instruction names to "
                                 "non-negative ints")
        default = data.get("default", 0) if "costs" in data else 0
        if default is not None and (type(default) is not int or default < 0):
            raise CostTableError(f"{path}: default must be a non-negative int or null")
        return cls(MappingProxyType(dict(costs)), default)


DEFAULT = CostTable()
