"""Adversarial gas shapes (issue 19, point 2): contracts that each burn a gas budget in
one way that costs the node time, run as the chain runs them.

Every shape is a pre-state (accounts whose code is metered as the chain stores it:
`MeteringPolicy.deployed_code`, and within EIP-170's 24,576 bytes) and transactions,
applied with `state.transaction.apply_transaction` under London rules and the metering
policy (which meters the init code of every CREATE). Most shapes are one transaction to a
contract that loops until its gas falls below a reserve, then finishes with 8 bytes: the
number of operations it made (u32 LE) and a mask of the i32 results it saw (bit r set for
result r; for the call chain, the deepest depth reached instead). A shape that ran out of
gas, trapped or called a broken callee shows in its status, its count or its mask: the
tests check all three, so a shape cannot silently stop measuring anything.

Shared by bench/bench_gas_time.py (which times `run` at budgets of millions of gas) and
tests/state/test_gas_shapes.py (every shape at a small size, no timing).

Contracts are WAT assembled by the caller's `wat2wasm` (tests/conftest.py's), except
create_cold's init code and the contracts that hold its pieces, which are bytes written
here (too big for text, and the caller needs to know where the bytes sit).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eth_hash.auto import keccak

from evmc_bridge import Revision, StatusCode
from evmc_bridge.abc import CodeLoader
from evmc_bridge.constants import GAS_CREATE, MAX_CODE_SIZE_EIP170
from evmc_bridge.forks import rules
from gasmeter import MeteringPolicy
from state.backend import Account
from state.memory import MemoryBackend
from state.transaction import BlockEnv, Transaction, TxOutcome, apply_transaction

REVISION = Revision.LONDON
BLOCK_GAS_LIMIT = 30_000_000
BASE_FEE = 7
GAS_PRICE = 10
CHAIN_ID = 1337

SENDER = b"\x5e" * 20  # sends every transaction; also the selfDestruct beneficiary
CONTRACT = b"\xc0" * 20  # the contract each transaction calls
TARGET = b"\xca" * 20  # the callee of the call-family shapes
RECIPIENT = b"\xa0" * 20  # the token transfers' recipient
COINBASE = b"\xcc" * 20
BLOB_BASE = 0xB0  # create_cold's init-code pieces live at 0xb0.. + index

# The caller's memory: fixed slots below 1,024, bulk buffers from BIG on.
A_TARGET, A_ZERO, A_TOPICS, A_KEY, A_VALUE, A_RESULT, A_OUT, A_DATA = (
    0, 32, 64, 192, 224, 256, 320, 1024)
BIG = 65536
PAGE = 65536
MAX_PAGES = 1024  # the engine's memory cap (64 MiB), which the contract rules let through
I64_MAX = (1 << 63) - 1

# The 33 EEI functions (../shared/docs/eei.md §2.2), written here rather than taken from
# the engine so that the shapes do not depend on the code they measure.
EEI: dict[str, tuple[str, str]] = {
    "useGas": ("i64", ""), "getGasLeft": ("", "i64"), "getAddress": ("i32", ""),
    "getExternalBalance": ("i32 i32", ""), "getBlockHash": ("i64 i32", "i32"),
    "call": ("i64 i32 i32 i32 i32", "i32"), "callCode": ("i64 i32 i32 i32 i32", "i32"),
    "callDelegate": ("i64 i32 i32 i32", "i32"), "callStatic": ("i64 i32 i32 i32", "i32"),
    "create": ("i32 i32 i32 i32", "i32"), "create2": ("i32 i32 i32 i32 i32", "i32"),
    "callDataCopy": ("i32 i32 i32", ""),
    "getCallDataSize": ("", "i32"), "codeCopy": ("i32 i32 i32", ""),
    "getCodeSize": ("", "i32"), "externalCodeCopy": ("i32 i32 i32 i32", ""),
    "getExternalCodeSize": ("i32", "i32"), "getCaller": ("i32", ""),
    "getCallValue": ("i32", ""), "getBlockCoinbase": ("i32", ""),
    "getBlockDifficulty": ("i32", ""), "getBlockGasLimit": ("", "i64"),
    "getBlockNumber": ("", "i64"), "getBlockTimestamp": ("", "i64"),
    "getTxGasPrice": ("i32", ""), "getTxOrigin": ("i32", ""),
    "log": ("i32 i32 i32 i32 i32 i32 i32", ""), "storageStore": ("i32 i32", ""),
    "storageLoad": ("i32 i32", ""), "finish": ("i32 i32", ""), "revert": ("i32 i32", ""),
    "getReturnDataSize": ("", "i32"), "returnDataCopy": ("i32 i32 i32", ""),
    "selfDestruct": ("i32", ""),
}

Wat2Wasm = Callable[[str], bytes]


class ShapeError(Exception):
    """A shape cannot be built as asked (e.g. its code would exceed EIP-170)."""


@dataclass(frozen=True)
class Params:
    """How big to build: `budget` is the gas of the shape's run; `full` selects the sizes
    the issue means (callees as big as EIP-170 allows, 64 MiB outputs, a 1M-entry table,
    init code at the revision's limit), else small ones for tests. `salt` varies what
    must be cold on every run (create_cold's init code)."""

    budget: int
    wat2wasm: Wat2Wasm
    full: bool = True
    salt: int = 1
    # create_cold's init code size in bytes (None: the largest the chain accepts).
    initcode_bytes: int | None = None


@dataclass
class Scenario:
    """A pre-state and the transactions of one shape's run."""

    accounts: dict[bytes, Account]
    data: bytes = b""
    # The status each transaction must end with, the i32 results the contract may see
    # (bits of the mask), and the least number of operations it must make.
    expect: StatusCode = StatusCode.SUCCESS
    allowed: frozenset[int] = frozenset()
    min_ops: int = 1
    # Repeat transactions of `tx_gas` each until the budget is spent (the token), instead
    # of one transaction of the whole budget.
    tx_gas: int | None = None
    expected_output: bytes | None = None
    # Transactions to other contracts and the status each must end with: the callees
    # are real contracts, not code the VM refuses quickly.
    probes: list[tuple[bytes, StatusCode]] = field(default_factory=list)
    # What to print beside the figures (sizes the shape was built with).
    notes: dict[str, int | str] = field(default_factory=dict)
    # The mask slot is the deepest depth of a call chain, not a set of results.
    depth: bool = False


@dataclass(frozen=True)
class Shape:
    name: str
    group: str
    doc: str
    build: Callable[[Params], Scenario]
    # The smallest budget worth running (a few operations); min_budget_of, when set,
    # says it for the sizes a Params asks (create_cold's CREATEs pay per init-code byte).
    min_budget: int = 50_000
    min_budget_of: Callable[[Params], int] | None = None
    xfail: str = ""


def budget_for(shape: Shape, p: Params) -> int:
    """The budget shape runs with when p.budget is asked: at least its minimum."""
    need = shape.min_budget if shape.min_budget_of is None else shape.min_budget_of(p)
    return max(p.budget, need)


@dataclass
class RunResult:
    outcomes: list[TxOutcome]

    @property
    def gas_used(self) -> int:
        return sum(o.gas_used for o in self.outcomes)

    @property
    def output(self) -> bytes:
        return self.outcomes[-1].output if self.outcomes else b""

    def counters(self) -> tuple[int, int]:
        out = self.output
        if len(out) != 8:
            return -1, -1
        return int.from_bytes(out[:4], "little"), int.from_bytes(out[4:], "little")


def env() -> BlockEnv:
    return BlockEnv(coinbase=COINBASE, number=1, timestamp=1_700_000_000,
                    gas_limit=BLOCK_GAS_LIMIT, difficulty=0, chain_id=CHAIN_ID,
                    base_fee=BASE_FEE)


def backend_for(s: Scenario) -> MemoryBackend:
    accounts = {a: acc.copy() for a, acc in s.accounts.items()}
    accounts[SENDER] = Account(balance=10**30)
    return MemoryBackend.from_accounts(accounts)


def run(s: Scenario, budget: int, backend: MemoryBackend | None = None,
        loader: CodeLoader | None = None) -> RunResult:
    """Apply the shape's transactions (the part the bench times) with `loader` preparing
    every CREATE's code (default: the metering policy, as the chain)."""
    backend = backend_for(s) if backend is None else backend
    loader = MeteringPolicy() if loader is None else loader
    block = env()
    outcomes = []
    spent = nonce = 0
    while True:
        gas = budget if s.tx_gas is None else s.tx_gas
        tx = Transaction(sender=SENDER, to=CONTRACT, nonce=nonce, gas_limit=gas,
                         gas_price=GAS_PRICE, value=0, data=s.data, max_fee=GAS_PRICE)
        out = apply_transaction(backend, block, tx, revision=REVISION, loader=loader)
        backend.clear_touched()  # as the chain does after each transaction
        outcomes.append(out)
        spent += out.gas_used
        nonce += 1
        if s.tx_gas is None or not out.valid or spent + s.tx_gas > budget:
            return RunResult(outcomes)


def problems(s: Scenario, r: RunResult) -> list[str]:
    """What is wrong with a run of s: empty when it did what the shape means."""
    bad = []
    for i, o in enumerate(r.outcomes):
        if not o.valid:
            bad.append(f"transaction {i} invalid: {o.error}")
        elif o.status != s.expect:
            bad.append(f"transaction {i}: status {o.status!r}, not {s.expect!r} ({o.error})")
        elif s.expected_output is not None and o.output != s.expected_output:
            bad.append(f"transaction {i}: output {o.output.hex()}")
        if bad:
            return bad
    if s.expected_output is not None:
        if len(r.outcomes) < s.min_ops:
            bad.append(f"{len(r.outcomes)} transactions, fewer than {s.min_ops}")
        return bad
    n, mask = r.counters()
    if n < 0:
        return [f"output {r.output.hex()} is not the 8-byte count and mask"]
    if n < s.min_ops:
        bad.append(f"{n} operations, fewer than {s.min_ops}")
    if s.depth:
        if mask < 2:
            bad.append(f"the call chain reached depth {mask}")
    elif mask & ~sum(1 << k for k in s.allowed):
        seen = [k for k in range(32) if mask >> k & 1]
        bad.append(f"results {seen} seen, allowed {sorted(s.allowed)}")
    return bad


def probe(s: Scenario, to: bytes, gas: int = 5_000_000) -> TxOutcome:
    """One transaction to `to` on a fresh pre-state of s."""
    tx = Transaction(sender=SENDER, to=to, nonce=0, gas_limit=gas, gas_price=GAS_PRICE,
                     value=0, data=b"", max_fee=GAS_PRICE)
    return apply_transaction(backend_for(s), env(), tx, revision=REVISION,
                             loader=MeteringPolicy())


# --- building contracts --------------------------------------------------------------------

_POLICY = MeteringPolicy()


def stored(code: bytes, what: str) -> bytes:
    """code as the chain stores it: metered, and refused if over EIP-170."""
    metered = _POLICY.deployed_code(code)
    if len(metered) > MAX_CODE_SIZE_EIP170:
        raise ShapeError(f"{what}: {len(metered)} bytes metered, over EIP-170's "
                         f"{MAX_CODE_SIZE_EIP170}")
    return metered


def wat_bytes(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


def imports(names: Sequence[str]) -> str:
    out = []
    for name in dict.fromkeys(names):
        params, result = EEI[name]
        sig = (f" (param {params})" if params else "") + (f" (result {result})" if result
                                                          else "")
        out.append(f'(import "ethereum" "{name}" (func ${name}{sig}))')
    return "\n  ".join(out)


def module(names: Sequence[str], body: str, *, pages: int = 1, extra: str = "",
           locals_: str = "") -> str:
    """An Ewasm contract: the given imports, `pages` of memory, main = body."""
    return f"""(module
  {imports(names)}
  (memory {pages})
  (export "memory" (memory 0))
  {extra}
  (func $main (export "main") {locals_}
    {body}))"""


def res(expr: str) -> str:
    """Record an i32 result in the mask (bit `result` set)."""
    return (f"(local.set $mask (i32.or (local.get $mask) (i32.shl (i32.const 1) {expr})))")


def loop_contract(names: Sequence[str], body: str, *, unroll: int, reserve: int,
                  prologue: str = "", pages: int = 1, data: Sequence[tuple[int, bytes]] = (),
                  extra: str = "", step: str = "") -> str:
    """A contract that runs `body` `unroll` times per round while its gas is at least
    `reserve`, then finishes with (operations, mask). `step` runs once per operation
    after the body (e.g. a key increment); `$i` counts operations."""
    datas = "\n  ".join(f'(data (i32.const {off}) "{wat_bytes(b)}")' for off, b in data)
    one = body + ("\n      " + step if step else "")
    main = f"""{prologue}
    (block $done
      (loop $next
        (br_if $done (i64.lt_u (call $getGasLeft) (i64.const {reserve})))
        {(chr(10) + "        ").join([one] * unroll)}
        (local.set $n (i32.add (local.get $n) (i32.const {unroll})))
        (br $next)))
    (i32.store (i32.const {A_OUT}) (local.get $n))
    (i32.store (i32.const {A_OUT + 4}) (local.get $mask))
    (call $finish (i32.const {A_OUT}) (i32.const 8))"""
    return module(["getGasLeft", "finish", *names], main, pages=pages,
                  extra=datas + "\n  " + extra,
                  locals_="(local $n i32) (local $mask i32) (local $i i32) (local $len i32)")


def caller_data(extra: Sequence[tuple[int, bytes]] = ()) -> list[tuple[int, bytes]]:
    """The caller's fixed slots: the target address, four topics, a non-zero value."""
    topics = b"".join(keccak(bytes([k])) for k in range(4))
    return [(A_TARGET, TARGET), (A_TOPICS, topics), (A_VALUE, b"\x01" * 32), *extra]


EMPTY_WAT = module([], "")


def finisher(wat2wasm: Wat2Wasm, fn: str, length: int, pages: int) -> bytes:
    """A contract that ends with finish or revert of `length` bytes of its memory."""
    return wat2wasm(module([fn], f"(call ${fn} (i32.const 0) (i32.const {length}))",
                           pages=pages))


def accounts(caller: bytes, target: bytes | None = None,
             more: dict[bytes, Account] | None = None) -> dict[bytes, Account]:
    out = {CONTRACT: Account(code=stored(caller, "caller"))}
    if target is not None:
        out[TARGET] = Account(code=stored(target, "callee"))
    out.update(more or {})
    return out


# --- shapes: heavy callees called in a loop --------------------------------------------------

def call_loop(p: Params, callee: bytes, *, gas: int = 0, notes: dict | None = None,
              allowed: Sequence[int] = (0, 1), unroll: int = 4,
              probe_status: StatusCode = StatusCode.SUCCESS) -> Scenario:
    """A caller that loops call(TARGET, gas) with no value and no input."""
    body = res(f"(call $call (i64.const {gas}) (i32.const {A_TARGET}) (i32.const {A_ZERO}) "
               "(i32.const 0) (i32.const 0))")
    wat = loop_contract(["call"], body, unroll=unroll, reserve=unroll * (gas + 2_000) + 5_000,
                        data=caller_data())
    return Scenario(accounts(p.wat2wasm(wat), callee), allowed=frozenset(allowed),
                    probes=[(TARGET, probe_status)], notes=notes or {})


def _largest(make: Callable[[int], bytes], start: int, what: str) -> tuple[int, bytes]:
    """The largest n (from start down) whose make(n) stores within EIP-170."""
    n = start
    for _ in range(8):
        code = make(n)
        size = len(_POLICY.deployed_code(code))
        if size <= MAX_CODE_SIZE_EIP170:
            return n, code
        n -= max(1, (size - MAX_CODE_SIZE_EIP170) * n // size + 1)
    raise ShapeError(f"{what}: found no size within EIP-170")


def elements_callee(p: Params) -> tuple[int, bytes]:
    """A callee whose table is filled by one element segment of as many entries as fit."""
    def make(n: int) -> bytes:
        entries = " ".join(["$main"] * n)
        return p.wat2wasm(module([], "", extra=f"(table {n} funcref)\n  "
                                               f"(elem (i32.const 0) func {entries})"))
    return _largest(make, 24_600 if p.full else 500, "call_elements callee")


def shape_call_elements(p: Params) -> Scenario:
    """call(gas=0) in a loop of a callee whose one element segment has as many entries
    as fit in EIP-170's size (~24,500)."""
    n, code = elements_callee(p)
    return call_loop(p, code, notes={"elements": n, "callee_bytes": len(stored(code, "c"))})


def shape_call_data_segments(p: Params) -> Scenario:
    """A callee with as many 1-byte data segments as fit, each in its own 4 KiB page, so
    that every instantiation writes (and commits) that many pages."""
    def make(n: int) -> bytes:
        pages = (n * 4096) // PAGE + 1
        segs = "\n  ".join(f'(data (i32.const {k * 4096}) "\\01")' for k in range(n))
        return p.wat2wasm(module([], "", pages=pages, extra=segs))
    n, code = _largest(make, 2_800 if p.full else 100, "call_data_segments callee")
    return call_loop(p, code, notes={"segments": n, "callee_bytes": len(stored(code, "c"))})


def shape_call_table(p: Params) -> Scenario:
    """A callee whose table has the largest initial size the engine accepts."""
    from ewasm.limits import DEFAULT_LIMITS  # the published limit, not a guess

    n = DEFAULT_LIMITS.table_size if p.full else 4096
    code = p.wat2wasm(module([], "", extra=f"(table {n} funcref)"))
    return call_loop(p, code, notes={"table": n})


def shape_call_globals(p: Params) -> Scenario:
    """A callee with as many mutable i64 globals as fit (each initialised per instance)."""
    def make(n: int) -> bytes:
        return p.wat2wasm(module([], "", extra="\n  ".join(
            ["(global (mut i64) (i64.const 0))"] * n)))
    n, code = _largest(make, 5_000 if p.full else 100, "call_globals callee")
    return call_loop(p, code, notes={"globals": n, "callee_bytes": len(stored(code, "c"))})


def shape_call_functions(p: Params) -> Scenario:
    """A callee with as many (empty) functions as fit."""
    def make(n: int) -> bytes:
        return p.wat2wasm(module([], "", extra="\n  ".join(["(func)"] * n)))
    n, code = _largest(make, 8_000 if p.full else 100, "call_functions callee")
    return call_loop(p, code, notes={"functions": n, "callee_bytes": len(stored(code, "c"))})


def shape_call_imports(p: Params) -> Scenario:
    """A callee that imports getGasLeft as many times as fit (each import is linked)."""
    def make(n: int) -> bytes:
        imps = "\n  ".join(['(import "ethereum" "getGasLeft" (func (result i64)))'] * n)
        return p.wat2wasm(f"""(module
  {imps}
  (memory 1) (export "memory" (memory 0)) (func (export "main")))""")
    n, code = _largest(make, 1_200 if p.full else 20, "call_imports callee")
    return call_loop(p, code, notes={"imports": n, "callee_bytes": len(stored(code, "c"))})


# --- shapes: every EEI function in a tight loop ------------------------------------------------

def eei_loop(p: Params, names: Sequence[str], body: str, *, unroll: int = 16,
             op_gas: int = 300, reserve: int | None = None, allowed: Sequence[int] = (), prologue: str = "",
             pages: int = 1, data: Sequence[tuple[int, bytes]] = (), step: str = "",
             more: dict[bytes, Account] | None = None, target: bytes | None = None,
             call_data: bytes = b"", notes: dict | None = None, min_ops: int = 1,
             pad: int = 0) -> Scenario:
    extra_data = list(data)
    if pad:  # grow the caller's own code (codeCopy of its whole code)
        extra_data.append((BIG, bytes(range(1, 256)) * (pad // 255) + b"\x01" * (pad % 255)))
    if reserve is None:  # a round of operations and the finish
        reserve = unroll * op_gas + 5_000
    wat = loop_contract(names, body, unroll=unroll, reserve=reserve, prologue=prologue,
                        pages=pages, data=caller_data(extra_data), step=step)
    accs = accounts(p.wat2wasm(wat), p.wat2wasm(EMPTY_WAT) if target is None else target,
                    more)
    return Scenario(accs, data=call_data, allowed=frozenset(allowed), notes=notes or {},
                    min_ops=min_ops)


def big_len(p: Params, gas_per_byte: float, cap: int) -> int:
    """A 'largest length' the budget pays for 16 times over, within cap, in whole words."""
    n = int(p.budget / 16 / gas_per_byte)
    return max(32, min(cap, n) // 32 * 32)


def _getter(name: str, arg: bool) -> Callable[[Params], Scenario]:
    def build(p: Params) -> Scenario:
        body = (f"(call ${name} (i32.const {A_RESULT}))" if arg
                else f"(drop (call ${name}))")
        return eei_loop(p, [name], body)
    build.__doc__ = f"{name} in a loop unrolled 16 times."
    return build


def _call_kind(name: str) -> Callable[[Params], Scenario]:
    def build(p: Params) -> Scenario:
        value = f" (i32.const {A_ZERO})" if name in ("call", "callCode") else ""
        body = res(f"(call ${name} (i64.const 0) (i32.const {A_TARGET}){value} "
                   "(i32.const 0) (i32.const 0))")
        s = eei_loop(p, [name], body, unroll=4, allowed=(0, 1), op_gas=1_500)
        s.probes = [(TARGET, StatusCode.SUCCESS)]
        return s
    build.__doc__ = f"{name}(gas=0) of an empty contract in a loop."
    return build


def shape_use_gas(p: Params) -> Scenario:
    return eei_loop(p, ["useGas"], "(call $useGas (i64.const 1))")


def shape_get_external_balance(p: Params) -> Scenario:
    return eei_loop(p, ["getExternalBalance"],
                    f"(call $getExternalBalance (i32.const {A_TARGET}) (i32.const {A_RESULT}))",
                    op_gas=700)


def shape_get_block_hash(p: Params) -> Scenario:
    return eei_loop(p, ["getBlockHash"],
                    res(f"(call $getBlockHash (i64.const 0) (i32.const {A_RESULT}))"),
                    allowed=(0, 1), op_gas=1_200)


def shape_get_external_code_size(p: Params) -> Scenario:
    return eei_loop(p, ["getExternalCodeSize"],
                    f"(drop (call $getExternalCodeSize (i32.const {A_TARGET})))", op_gas=1_000)


INIT_REVERT_WAT = module(["revert"], "(call $revert (i32.const 0) (i32.const 0))")


def shape_create(p: Params) -> Scenario:
    """create of the same small init code (it reverts) in a loop: compiled once."""
    init = p.wat2wasm(INIT_REVERT_WAT)
    body = res(f"(call $create (i32.const {A_ZERO}) (i32.const {A_DATA}) "
               f"(i32.const {len(init)}) (i32.const {A_RESULT}))")
    return eei_loop(p, ["create"], body, unroll=1, reserve=60_000, allowed=(2,),
                    data=[(A_DATA, init)])


def shape_create2(p: Params) -> Scenario:
    """create2 of the same small init code (it reverts) with a new salt each time: the
    address differs, the code is compiled once."""
    init = p.wat2wasm(INIT_REVERT_WAT)
    body = res(f"(call $create2 (i32.const {A_ZERO}) (i32.const {A_DATA}) "
               f"(i32.const {len(init)}) (i32.const {A_KEY}) (i32.const {A_RESULT}))")
    return eei_loop(p, ["create2"], body, unroll=1, reserve=60_000, allowed=(2,),
                    data=[(A_DATA, init)],
                    step=f"(i32.store (i32.const {A_KEY}) (local.get $i))\n"
                         "      (local.set $i (i32.add (local.get $i) (i32.const 1)))")


def _copy_cost(n: int) -> int:
    return 3 + 3 * ((n + 31) // 32)


def _copy_shape(name: str, *, big: bool) -> Callable[[Params], Scenario]:
    """callDataCopy, codeCopy, returnDataCopy and externalCodeCopy, of 32 bytes or of the
    largest length their source allows: the code copies their whole source (as large as
    EIP-170 lets code be), the buffer copies the longest the budget pays for 16 times."""

    def build(p: Params) -> Scenario:
        call_data, target, pad, prologue, names = b"", None, 0, "", [name]
        length = "(i32.const 32)"
        if name == "callDataCopy":
            n = big_len(p, 4 + 3 / 32, 1 << 20) if big else 32  # the call data is paid for
            call_data = bytes(n)
            length = f"(i32.const {n})"
            body = f"(call $callDataCopy (i32.const {BIG}) (i32.const 0) {length})"
        elif name == "returnDataCopy":  # the return buffer of one call made first
            n = big_len(p, 3 / 32, 1 << 20) if big else 32
            target = finisher(p.wat2wasm, "finish", n, 1 + n // PAGE)
            names.append("call")
            prologue = (f"(drop (call $call (i64.const 100000) (i32.const {A_TARGET}) "
                        f"(i32.const {A_ZERO}) (i32.const 0) (i32.const 0)))")
            length = f"(i32.const {n})"
            body = f"(call $returnDataCopy (i32.const {BIG}) (i32.const 0) {length})"
        elif name == "codeCopy":  # the caller's own code, padded near EIP-170
            pad = MAX_CODE_SIZE_EIP170 - 3_000 if big else 0
            names.append("getCodeSize")
            prologue = "(local.set $len (call $getCodeSize))"
            if big:
                length = "(local.get $len)"
            n = MAX_CODE_SIZE_EIP170 if big else 32
            body = f"(call $codeCopy (i32.const {BIG}) (i32.const 0) {length})"
        else:  # externalCodeCopy of the target's code, as large as EIP-170 lets it be
            if big:
                target = blob_contract(bytes(MAX_CODE_SIZE_EIP170 - 200))[0]
                length = "(local.get $len)"
            names.append("getExternalCodeSize")
            prologue = f"(local.set $len (call $getExternalCodeSize (i32.const {A_TARGET})))"
            n = MAX_CODE_SIZE_EIP170 + 700 * 32 // 3 if big else 32
            body = (f"(call $externalCodeCopy (i32.const {A_TARGET}) (i32.const {BIG}) "
                    f"(i32.const 0) {length})")
        s = eei_loop(p, names, body, unroll=4 if big else 16,
                     op_gas=_copy_cost(n) + 300 if big else 1_000, prologue=prologue,
                     pages=2 + (len(call_data) + n) // PAGE, target=target,
                     call_data=call_data, pad=pad)
        if name == "codeCopy":
            s.notes["length"] = len(s.accounts[CONTRACT].code) if big else 32
        elif name == "externalCodeCopy":
            s.notes["length"] = len(s.accounts[TARGET].code) if big else 32
        else:
            s.notes["length"] = n
        return s
    return build


def shape_log(p: Params) -> Scenario:
    """log with no topics and no data: the most logs per gas."""
    return eei_loop(p, ["log"], "(call $log (i32.const 0) (i32.const 0) (i32.const 0) "
                    "(i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))", unroll=8,
                    op_gas=600)


def shape_log_topics(p: Params) -> Scenario:
    """log with four topics and 32 bytes of data (a Transfer event's shape)."""
    t = [A_TOPICS + 32 * k for k in range(4)]
    return eei_loop(p, ["log"], f"(call $log (i32.const {A_VALUE}) (i32.const 32) "
                    f"(i32.const 4) (i32.const {t[0]}) (i32.const {t[1]}) (i32.const {t[2]}) "
                    f"(i32.const {t[3]}))", unroll=8, op_gas=2_700)


def shape_log_data_max(p: Params) -> Scenario:
    """log with four topics and the longest data the budget pays for 16 times."""
    n = big_len(p, 8, 1 << 20)
    t = [A_TOPICS + 32 * k for k in range(4)]
    s = eei_loop(p, ["log"], f"(call $log (i32.const {BIG}) (i32.const {n}) (i32.const 4) "
                 f"(i32.const {t[0]}) (i32.const {t[1]}) (i32.const {t[2]}) (i32.const {t[3]}))",
                 unroll=1, op_gas=8 * n + 2_500, pages=2 + n // PAGE)
    s.notes["length"] = n
    return s


def shape_storage_store(p: Params) -> Scenario:
    """storageStore of one slot, alternating two non-zero values (5,000 gas each)."""
    body = (f"(i32.store8 (i32.const {A_VALUE}) (i32.add (i32.const 1) "
            "(i32.and (local.get $i) (i32.const 1))))\n"
            f"      (call $storageStore (i32.const {A_KEY}) (i32.const {A_VALUE}))")
    return eei_loop(p, ["storageStore"], body, unroll=8, op_gas=5_500,
                    step="(local.set $i (i32.add (local.get $i) (i32.const 1)))")


def shape_storage_new(p: Params) -> Scenario:
    """storageStore of a fresh slot each time (20,000 gas each): the state grows."""
    body = (f"(i32.store (i32.const {A_KEY}) (local.get $i))\n"
            f"      (call $storageStore (i32.const {A_KEY}) (i32.const {A_VALUE}))")
    return eei_loop(p, ["storageStore"], body, unroll=4, op_gas=20_500,
                    step="(local.set $i (i32.add (local.get $i) (i32.const 1)))")


def shape_storage_load(p: Params) -> Scenario:
    """storageLoad of a different (absent) slot each time."""
    body = (f"(i32.store (i32.const {A_KEY}) (local.get $i))\n"
            f"      (call $storageLoad (i32.const {A_KEY}) (i32.const {A_RESULT}))")
    return eei_loop(p, ["storageLoad"], body, unroll=8, op_gas=600,
                    step="(local.set $i (i32.add (local.get $i) (i32.const 1)))")


def _ender(fn: str, *, big: bool) -> Callable[[Params], Scenario]:
    """finish, revert or selfDestruct end a frame: a loop of calls to a callee that ends
    with it (finish/revert of 32 bytes, or of the callee's whole 64 MiB memory)."""

    def build(p: Params) -> Scenario:
        if fn == "selfDestruct":
            callee = p.wat2wasm(module(["selfDestruct"], "(call $selfDestruct (i32.const 0))",
                                       extra=f'(data (i32.const 0) "{wat_bytes(SENDER)}")'))
            allowed, gas = (0,), 10_000
        else:
            # The callee's whole memory (64 MiB at full size), or as much as the budget
            # pays for 8 times over: the output now pays 3 gas a word (after Byzantium).
            pages = max(1, min(MAX_PAGES if p.full else 16,
                               big_len(p, 3 / 2, MAX_PAGES * PAGE) // PAGE)) if big else 1
            size = pages * PAGE if big else 32
            callee = finisher(p.wat2wasm, fn, size, pages)
            # From after Byzantium the output pays 3 gas a word: the callee gets that
            # (and a margin), so that the whole output is copied each time.
            allowed = (0,) if fn == "finish" else (2,)
            gas = 3 * (-(-size // 32)) + 2_000 if big else 1_000
        s = call_loop(p, callee, gas=gas, allowed=allowed,
                      unroll=1 if big or fn == "selfDestruct" else 4,
                      probe_status=StatusCode.REVERT if fn == "revert" else StatusCode.SUCCESS)
        if big:
            s.notes["output"] = size
        return s
    return build


# --- shapes: memory.grow -------------------------------------------------------------------

def shape_memory_grow(p: Params) -> Scenario:
    """memory.grow by one page, then a write to it, until the engine's cap (results -1
    after that: bit 1 of the mask)."""
    body = res("(i32.eq (memory.grow (i32.const 1)) (i32.const -1))") + """
        (i32.store8 (i32.sub (i32.shl (memory.size) (i32.const 16)) (i32.const 1))
                    (i32.const 1))"""
    return eei_loop(p, [], body, unroll=4, op_gas=10_700, allowed=(0, 1))


def shape_memory_grow_call(p: Params) -> Scenario:
    """A callee that grows its memory to the engine's cap in one memory.grow and writes
    the last byte, called in a loop."""
    callee = p.wat2wasm(module([], """(drop (memory.grow (i32.const 1023)))
    (i32.store8 (i32.sub (i32.shl (memory.size) (i32.const 16)) (i32.const 1))
                (i32.const 1))"""))
    return call_loop(p, callee, gas=30_000, allowed=(0,), unroll=1)


# --- shapes: call chains ----------------------------------------------------------------------

# Each frame keeps back UNWIND gas for its own return (the call passes the rest, as the
# 63/64 rule allows), so that every frame of a chain finishes and the depth it reports is
# the depth reached.
UNWIND = 2_000
RECURSE_WAT = module(["getAddress", "getGasLeft", "call", "returnDataCopy", "finish"], f"""
    (call $getAddress (i32.const 0))
    (i32.store (i32.const 64) (i32.const 1))
    (if (i64.gt_u (call $getGasLeft) (i64.const {2 * UNWIND}))
      (then
        (if (i32.eqz (call $call (i64.sub (call $getGasLeft) (i64.const {UNWIND}))
                                 (i32.const 0) (i32.const 32) (i32.const 0) (i32.const 0)))
          (then
            (call $returnDataCopy (i32.const 64) (i32.const 0) (i32.const 4))
            (i32.store (i32.const 64) (i32.add (i32.load (i32.const 64)) (i32.const 1)))))))
    (call $finish (i32.const 64) (i32.const 4))""")


def shape_call_depth(p: Params) -> Scenario:
    """A contract that calls itself with all but UNWIND of its gas until its gas runs low
    or the depth reaches 1024 (which needs ~10^10 gas under the 63/64 rule: within a block
    the chain ends near depth 64 ln(gas / 6,000)); the caller starts chains in a loop and
    keeps the deepest depth reached."""
    body = f"""(if (i32.eqz (call $call (i64.const {I64_MAX}) (i32.const {A_TARGET})
                              (i32.const {A_ZERO}) (i32.const 0) (i32.const 0)))
          (then
            (call $returnDataCopy (i32.const {A_RESULT}) (i32.const 0) (i32.const 4))
            (if (i32.gt_u (i32.load (i32.const {A_RESULT})) (local.get $mask))
              (then (local.set $mask (i32.load (i32.const {A_RESULT})))))))"""
    wat = loop_contract(["call", "returnDataCopy"], body, unroll=1, reserve=50_000,
                        data=caller_data())
    return Scenario(accounts(p.wat2wasm(wat), p.wat2wasm(RECURSE_WAT)), depth=True,
                    probes=[(TARGET, StatusCode.SUCCESS)])


# --- shapes: CREATE with cold init code ------------------------------------------------------

def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _vec(items: Sequence[bytes]) -> bytes:
    return _uleb(len(items)) + b"".join(items)


def _section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + _uleb(len(payload)) + payload


def _name(s: str) -> bytes:
    return _uleb(len(s)) + s.encode()


# Per step: local.get a; i64.const c (2-byte LEB); op; local.set b: 8 bytes, 4 instructions,
# so a module at the instruction limit is also near the size limit.
_OPS = (0x7C, 0x7E, 0x85, 0x89, 0x7D, 0x83)  # i64.add mul xor rotl sub and
_STEPS_PER_FUNCTION = 2_000


def cold_init_code(size: int, salt: int) -> tuple[bytes, int]:
    """Init code of at most `size` bytes (and close to it) whose main reverts at once,
    carrying straight-line i64 code in functions it never calls; main's first
    instruction is an i64.const of a 10-byte LEB at the returned offset, which the
    creating contract rewrites (bytes 0-2) before each CREATE so that no two init codes
    are alike."""
    from ewasm.limits import DEFAULT_LIMITS  # the published limits

    rng = random.Random(salt)
    mark = bytes(0x80 | rng.randrange(128) for _ in range(9)) + b"\x7f"
    # The metering adds a charge (2 instructions) per function; stay clear of the limit.
    most = (DEFAULT_LIMITS.module_instructions * 95 // 100) // 4
    steps = min(most, max(1, (size - 100) // 8))
    while True:
        wasm = _cold_module(mark, steps)
        if len(wasm) <= size or steps == 1:
            break
        steps = max(1, steps - (len(wasm) - size + 7) // 8)
    offset = wasm.find(mark)
    if offset < 0 or wasm.count(mark) != 1:
        raise ShapeError("cold init code: the marker is not unique")
    return wasm, offset


def _cold_module(mark: bytes, steps_left: int) -> bytes:
    main = b"\x00" + b"\x42" + mark + b"\x1a" + b"\x41\x00\x41\x00\x10\x00\x0b"
    bodies = [main]
    k = 0
    while steps_left > 0:
        steps = min(steps_left, _STEPS_PER_FUNCTION)
        code = bytearray(b"\x01\x04\x7e")  # four i64 locals
        for _ in range(steps):
            a, b = k % 4, (k * 3 + 1) % 4
            c = 64 + (k * 2654435761) % 8000  # a 2-byte signed LEB
            code += bytes([0x20, a, 0x42, 0x80 | (c & 0x7F), (c >> 7) & 0x7F,
                           _OPS[k % len(_OPS)], 0x21, b])
            k += 1
        bodies.append(bytes(code) + b"\x0b")
        steps_left -= steps
    types = _vec([b"\x60\x00\x00", b"\x60\x02\x7f\x7f\x00"])
    imps = _vec([_name("ethereum") + _name("revert") + b"\x00\x01"])
    funcs = _vec([b"\x00"] * len(bodies))
    mems = _vec([b"\x00\x01"])
    exps = _vec([_name("main") + b"\x00\x01", _name("memory") + b"\x02\x00"])
    return (b"\0asm\x01\0\0\0" + _section(1, types) + _section(2, imps)
            + _section(3, funcs) + _section(5, mems) + _section(7, exps)
            + _section(10, _vec([_uleb(len(b)) + b for b in bodies])))


def blob_contract(payload: bytes) -> tuple[bytes, int]:
    """A valid contract (as stored: metered) whose code holds payload verbatim in a data
    segment; returns the code and the payload's offset in it."""
    pages = 1 + len(payload) // PAGE
    data = _vec([b"\x00\x41\x00\x0b" + _uleb(len(payload)) + payload])
    wasm = (b"\0asm\x01\0\0\0" + _section(1, _vec([b"\x60\x00\x00"]))
            + _section(3, _vec([b"\x00"])) + _section(5, _vec([b"\x00" + _uleb(pages)]))
            + _section(7, _vec([_name("main") + b"\x00\x00", _name("memory") + b"\x02\x00"]))
            + _section(10, _vec([b"\x02\x00\x0b"])) + _section(11, data))
    code = stored(wasm, "blob")
    at = code.rfind(payload)
    if at < 0:
        raise ShapeError("blob: the payload is not in the stored code")
    return code, at


def largest_init_code() -> int:
    """The largest init code the chain accepts: the revision's init-code limit, else the
    engine's module size limit less room for what metering adds."""
    from ewasm.limits import DEFAULT_LIMITS

    limit = rules(REVISION).max_initcode_size
    return limit if limit is not None else DEFAULT_LIMITS.module_size - 16 * 1024


def create_gas(size: int) -> int:
    """What a CREATE of `size` bytes of init code charges before its child runs."""
    return GAS_CREATE + rules(REVISION).initcode_byte_gas * size


PIECE = MAX_CODE_SIZE_EIP170 - 400  # a piece of init code in a contract, beside its module
COLD_SMALL = 256  # create_cold_small's init code


def _cold_size(p: Params, small: bool) -> int:
    if small:
        return COLD_SMALL
    return p.initcode_bytes or (largest_init_code() if p.full else 8 * 1024)


def _cold_reserve(size: int) -> int:
    return create_gas(size) + 30_000  # the charge, and the child's 63/64 of the rest


def _cold_min_budget(small: bool) -> Callable[[Params], int]:
    def need(p: Params) -> int:  # the pieces' copies and two CREATEs
        size = _cold_size(p, small)
        pieces = -(-size // PIECE)
        return 50_000 + pieces * 3_000 + _cold_reserve(size) + create_gas(size) + 5_000
    return need


def _create_cold(p: Params, small: bool) -> Scenario:
    size = _cold_size(p, small)
    init, mark_at = cold_init_code(size, p.salt)
    more: dict[bytes, Account] = {}
    prologue = []
    for i, k in enumerate(range(0, len(init), PIECE)):
        piece = init[k:k + PIECE]
        code, at = blob_contract(piece)
        more[bytes([BLOB_BASE]) * 19 + bytes([i])] = Account(code=code)
        # Piece i's address sits at A_DATA + 20 * i.
        prologue.append(f"(call $externalCodeCopy (i32.const {A_DATA + 20 * i}) "
                        f"(i32.const {BIG + k}) (i32.const {at}) (i32.const {len(piece)}))")
    addresses = b"".join(more)
    if A_DATA + len(addresses) > BIG or len(more) > 256:
        raise ShapeError("create_cold: too many pieces for the caller's address table")
    top = init[mark_at + 3]  # the marker's fourth byte stays as the salt made it
    spread = ("(i32.or (i32.or (i32.and (local.get $n) (i32.const 0x7f)) "
              "(i32.and (i32.shl (local.get $n) (i32.const 1)) (i32.const 0x7f00))) "
              "(i32.and (i32.shl (local.get $n) (i32.const 2)) (i32.const 0x7f0000)))")
    body = f"""(i32.store (i32.const {BIG + mark_at})
                   (i32.or (i32.const {0x808080 | top << 24}) {spread}))
        {res(f"(call $create (i32.const {A_ZERO}) (i32.const {BIG}) (i32.const {len(init)}) "
             f"(i32.const {A_RESULT}))")}"""
    s = eei_loop(p, ["create", "externalCodeCopy"], body, unroll=1,
                 reserve=_cold_reserve(len(init)), allowed=(2,),
                 prologue="\n    ".join(prologue), pages=2 + len(init) // PAGE,
                 data=[(A_DATA, addresses)], more=more)
    s.notes.update(init_code=len(init), pieces=len(more))
    return s


def shape_create_cold(p: Params) -> Scenario:
    """CREATE in a loop, each with distinct init code of the largest size the chain
    accepts (London: the init-code limit), so that every one is metered and compiled
    cold. The init code reverts at once (its 63/64 of the gas comes back): what the gas
    buys is the CREATE's charge (32,000 and the per-byte charge). The caller assembles
    the init code once from contracts that hold its pieces (externalCodeCopy: they must
    each be within EIP-170), then rewrites three bytes of it before each CREATE."""
    return _create_cold(p, small=False)


def shape_create_cold_small(p: Params) -> Scenario:
    """create_cold with init code of 256 bytes: the fixed cost of a cold compile, for
    the CREATE's fixed 32,000 gas."""
    return _create_cold(p, small=True)


# --- the reference ------------------------------------------------------------------------

TOKEN_SUPPLY = 10**12


def shape_token_transfer(p: Params) -> Scenario:
    """fixtures/contracts/token.wat's transfer(address,uint256) of 1 unit, one transaction
    each, until the budget is spent: what a typical call costs."""
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "fixtures" / "contracts" / "token.wat"
    token = stored(p.wat2wasm(src.read_text()), "token")
    word = TOKEN_SUPPLY.to_bytes(32, "big")
    storage = {b"\x01" + bytes(31): word, bytes(12) + SENDER: word}
    data = keccak(b"transfer(address,uint256)")[:4] + bytes(12) + RECIPIENT + \
        (1).to_bytes(32, "big")
    return Scenario({CONTRACT: Account(code=token, storage=storage)}, data=data,
                    tx_gas=100_000, expected_output=(1).to_bytes(32, "big"))


# --- the family ----------------------------------------------------------------------------

_GETTERS_WITH_ARG = ("getAddress", "getCaller", "getCallValue", "getBlockCoinbase",
                     "getBlockDifficulty", "getTxGasPrice", "getTxOrigin")
_GETTERS = ("getGasLeft", "getCallDataSize", "getCodeSize", "getBlockGasLimit",
            "getBlockNumber", "getBlockTimestamp", "getReturnDataSize")


def _shapes() -> dict[str, Shape]:
    out: list[Shape] = [
        Shape("token_transfer", "reference", shape_token_transfer.__doc__ or "",
              shape_token_transfer, min_budget=200_000),
        Shape("call_elements", "instantiation", shape_call_elements.__doc__ or "",
              shape_call_elements),
        Shape("call_data_segments", "instantiation", shape_call_data_segments.__doc__ or "",
              shape_call_data_segments),
        Shape("call_table", "instantiation", shape_call_table.__doc__ or "",
              shape_call_table),
        Shape("call_globals", "instantiation", shape_call_globals.__doc__ or "",
              shape_call_globals),
        Shape("call_functions", "instantiation", shape_call_functions.__doc__ or "",
              shape_call_functions),
        Shape("call_imports", "instantiation", shape_call_imports.__doc__ or "",
              shape_call_imports),
        Shape("memory_grow", "memory", shape_memory_grow.__doc__ or "", shape_memory_grow,
              min_budget=150_000),
        Shape("memory_grow_call", "memory", shape_memory_grow_call.__doc__ or "",
              shape_memory_grow_call, min_budget=150_000),
        Shape("call_depth", "depth", shape_call_depth.__doc__ or "", shape_call_depth,
              min_budget=150_000),
        Shape("storage_store", "storage", shape_storage_store.__doc__ or "",
              shape_storage_store, min_budget=200_000),
        Shape("storage_new", "storage", shape_storage_new.__doc__ or "", shape_storage_new,
              min_budget=300_000),
        Shape("storage_load", "storage", shape_storage_load.__doc__ or "",
              shape_storage_load),
        Shape("log", "log", shape_log.__doc__ or "", shape_log),
        Shape("log_topics", "log", shape_log_topics.__doc__ or "", shape_log_topics),
        Shape("log_data_max", "log", shape_log_data_max.__doc__ or "", shape_log_data_max,
              min_budget=200_000),
        Shape("create_cold", "create", shape_create_cold.__doc__ or "", shape_create_cold,
              min_budget_of=_cold_min_budget(small=False)),
        Shape("create_cold_small", "create", shape_create_cold_small.__doc__ or "",
              shape_create_cold_small, min_budget_of=_cold_min_budget(small=True)),
        Shape("eei_useGas", "eei", "useGas(1) in a loop", shape_use_gas),
    ]
    for name in _GETTERS_WITH_ARG:
        out.append(Shape(f"eei_{name}", "eei", f"{name} in a loop", _getter(name, True)))
    for name in _GETTERS:
        out.append(Shape(f"eei_{name}", "eei", f"{name} in a loop", _getter(name, False)))
    out += [
        Shape("eei_getExternalBalance", "eei", "getExternalBalance in a loop",
              shape_get_external_balance),
        Shape("eei_getBlockHash", "eei", "getBlockHash in a loop", shape_get_block_hash),
        Shape("eei_getExternalCodeSize", "eei", "getExternalCodeSize in a loop",
              shape_get_external_code_size),
    ]
    for name in ("call", "callCode", "callDelegate", "callStatic"):
        out.append(Shape(f"eei_{name}", "eei", f"{name}(gas=0) of an empty contract",
                         _call_kind(name)))
    out.append(Shape("eei_create2", "eei", shape_create2.__doc__ or "", shape_create2,
                     min_budget=150_000))
    out.append(Shape("eei_create", "eei", shape_create.__doc__ or "", shape_create,
                     min_budget=150_000))
    for name in ("callDataCopy", "codeCopy", "externalCodeCopy", "returnDataCopy"):
        out.append(Shape(f"eei_{name}", "eei", f"{name} of 32 bytes in a loop",
                         _copy_shape(name, big=False)))
        out.append(Shape(f"eei_{name}_max", "eei", f"{name} of its largest length in a loop",
                         _copy_shape(name, big=True), min_budget=300_000))
    out += [
        Shape("eei_finish", "eei", "a callee that finishes 32 bytes, called in a loop",
              _ender("finish", big=False)),
        Shape("eei_finish_max", "eei", "a callee that finishes its whole 64 MiB memory, "
              "called in a loop", _ender("finish", big=True)),
        Shape("eei_revert", "eei", "a callee that reverts 32 bytes, called in a loop",
              _ender("revert", big=False)),
        Shape("eei_revert_max", "eei", "a callee that reverts with its whole 64 MiB "
              "memory, called in a loop", _ender("revert", big=True)),
        Shape("eei_selfDestruct", "eei", "a callee that self-destructs, called in a loop",
              _ender("selfDestruct", big=False)),
    ]
    return {s.name: s for s in out}


SHAPES: dict[str, Shape] = _shapes()


def covered_eei() -> set[str]:
    """The EEI functions some eei_ shape loops on (storage and log have their own)."""
    names = {s.name[4:].removesuffix("_max") for s in SHAPES.values() if s.group == "eei"}
    return names | {"storageStore", "storageLoad", "log"}
