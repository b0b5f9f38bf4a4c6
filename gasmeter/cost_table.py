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

Instructions whose work grows with a run-time operand (bulk memory: `memory.fill`,
`memory.copy`, `memory.init`, `table.init`, `table.copy`; the count is the operand on top
of the stack) are also charged per unit of that count, under `<name>.per_byte` or
`<name>.per_element`: gas per byte or per table element, charged before the instruction
runs. A table without that entry cannot meter the instruction (MissingCostError), so no
table prices bulk work at a constant. `memory.grow.per_page` is optional: without it
`memory.grow` stays wasm-metering's flat charge (growing is O(1) in this engine: it moves
the size within a reserved range; the pages are paid for by the stores that touch them).
wasm-metering predates bulk memory; the bulk entries below are this table's own (contracts
cannot contain those instructions, so contract metering is wasm-metering's exactly).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ewasm.opcodes import (
    MEMORY_COPY,
    MEMORY_FILL,
    MEMORY_GROW,
    MEMORY_INIT,
    OPS,
    TABLE_COPY,
    TABLE_INIT,
)

from .errors import CostTableError

# Bulk memory in the default table, from bench_bulk_gas.py on the optimised tier (this
# 2-core x86-64 machine, shared with other jobs; four runs): the slowest metered kernel
# (fib_naive, call-bound) ran at 0.0079-0.014 ns per gas; a bulk instruction at 2.2-2.7 ns
# per call at length 0, 0.10-0.61 ns per byte (fill, copy, init on touched memory) and
# 3.0-17.5 ns per table element (32 bytes each, copied as bytes). Pricing each at the
# slowest kernel's rate needs up to 331 gas per call, 44 per byte and 1,243 per element
# (the memory-bound figures swing most with the machine's load); the costs below give
# 1.8x, 1.5x and 1.6x over those worst runs. A bulk byte still costs half of what an
# i64.store loop charges for it (124 gas per byte), so bulk stays the cheap way.
# A first touch of a fresh page (1-2.6 ns per byte here) is a per-page cost that plain
# stores incur as well, at far less gas per page; it is bounded by the memory cap.
BULK_BASE = 500
PER_BYTE = 64
PER_ELEMENT = 2048  # 32 bytes of table storage per element, at PER_BYTE

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
    # Not in wasm-metering (bulk memory came later): see BULK_BASE above.
    **{name: BULK_BASE for name in ("memory.fill", "memory.copy", "memory.init",
                                     "table.init", "table.copy")},
    "memory.fill.per_byte": PER_BYTE, "memory.copy.per_byte": PER_BYTE,
    "memory.init.per_byte": PER_BYTE,
    "table.init.per_element": PER_ELEMENT, "table.copy.per_element": PER_ELEMENT,
})

# The instructions charged per unit of their count operand, and the key of that cost.
PER_UNIT_KEYS: Mapping[int, str] = MappingProxyType({
    MEMORY_FILL: "memory.fill.per_byte", MEMORY_COPY: "memory.copy.per_byte",
    MEMORY_INIT: "memory.init.per_byte", TABLE_INIT: "table.init.per_element",
    TABLE_COPY: "table.copy.per_element", MEMORY_GROW: "memory.grow.per_page",
})
# Of those, the ones a table must price per unit to meter at all.
LENGTH_PRICED = frozenset({MEMORY_FILL, MEMORY_COPY, MEMORY_INIT, TABLE_INIT, TABLE_COPY})


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

    def per_unit(self, opcode: int) -> int | None:
        """Gas per unit of the count operand of `opcode`, or None: the table has no such
        entry (or the instruction has no count)."""
        key = PER_UNIT_KEYS.get(opcode)
        return None if key is None else self.costs.get(key)

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
        zero = sorted(k for k in PER_UNIT_KEYS.values() if costs.get(k) == 0)
        if zero:
            # A per-unit cost of 0 would price work that grows with an operand at a constant.
            raise CostTableError(f"{path}: {zero[0]} must be positive (drop the entry to "
                                 "refuse the instruction)")
        default = data.get("default", 0) if "costs" in data else 0
        if default is not None and (type(default) is not int or default < 0):
            raise CostTableError(f"{path}: default must be a non-negative int or null")
        return cls(MappingProxyType(dict(costs)), default)


DEFAULT = CostTable()
