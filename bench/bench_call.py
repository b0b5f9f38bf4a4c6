"""Per-call cost of a contract call, against py-evm and wasmtime-py, in one run (issue 15).

Workloads, all under London rules, each checked on every call (status SUCCESS and the
expected output, or the run stops):
  trivial   fixtures/evmc/trivial.wat: main does nothing
  small     reads its call data (getCallDataSize, callDataCopy) and finishes it (68 bytes)
  token     fixtures/contracts/token.wat, metered as the chain stores it, a
            transfer(address,uint256) of 1 unit from a sender it has a balance for

Levels (ours; py-evm's equivalent, from ../shared/peers/exec_pyevm.py, beside it):
  execute (MockedHost)       ewasm.execute over evmc_bridge's MockedHost
  execute (StateHost)        ewasm.execute over a StateHost on a MemoryBackend
                             (py-evm: computation_class.apply_computation)
  message_call (StateHost)   StateHost.message_call: + snapshot/commit, code load
                             (py-evm: computation_class.apply_message)
  apply_transaction          state.transaction.apply_transaction, then clear_touched as
                             the chain does (py-evm: state.apply_transaction of a
                             SpoofTransaction, then lock_changes)
wasmtime-py does the per-message work of `execute (MockedHost)` for trivial and small: a new
Store, an instance and a call of main per message, the imports defined once in a Linker as
Python callbacks doing the same memory copies (`Linker.instantiate`, and `InstancePre`).
Its `finish` records the output and returns rather than unwinding (main ends right after
it), which favours wasmtime.

Hosts are made once per batch (one StateHost serves a batch of execute or message_call
calls, as a transaction's host serves its frames); compiled code is warm (every case runs
before the clock starts). Each round runs every case for --calls calls, --chunk calls at a
time, the cases taking turns in a fresh shuffled order each turn, so that every case sees the
same stretch of a noisy machine; a figure is the median over rounds of the per-call time, a
ratio the median of the per-round ratios (paired) next to the ratio of the medians.

    python bench/bench_call.py [--rounds 7] [--calls 300] [--json] [--shared PATH]
    python bench/bench_call.py --profile [--rounds 0]   # + cProfile of 2,000 token
                                                        #   executes over StateHost
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eth_hash.auto import keccak

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ewasm  # noqa: E402
from evmc_bridge import CallKind, Message, Revision, StatusCode, TxContext  # noqa: E402
from evmc_bridge.mocked_host import MockedAccount, MockedHost  # noqa: E402
from gasmeter import MeteringPolicy  # noqa: E402
from state.backend import Account  # noqa: E402
from state.host import StateHost  # noqa: E402
from state.memory import MemoryBackend  # noqa: E402
from state.transaction import BlockEnv, Transaction, apply_transaction  # noqa: E402

REVISION = Revision.LONDON
CHAIN_ID = 1337
GAS = 200_000
BASE_FEE = 10**8
PRIORITY_FEE = 10**9
MAX_FEE = 10**10
SUPPLY = 10**12

CONTRACT = b"\x11" * 20
SENDER = b"\x22" * 20
RECIPIENT = b"\xa0" * 20
COINBASE = b"\xcc" * 20

SMALL_WAT = """
(module
  (import "ethereum" "getCallDataSize" (func $getCallDataSize (result i32)))
  (import "ethereum" "callDataCopy" (func $callDataCopy (param i32 i32 i32)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (memory 1)
  (export "memory" (memory 0))
  (func (export "main") (local $n i32)
    (local.set $n (call $getCallDataSize))
    (call $callDataCopy (i32.const 0) (i32.const 0) (local.get $n))
    (call $finish (i32.const 0) (local.get $n))))
"""

OURS_LEVELS = ("execute (MockedHost)", "execute (StateHost)", "message_call (StateHost)",
               "apply_transaction")
PYEVM_LEVEL = {"execute (StateHost)": "apply_computation",
               "message_call (StateHost)": "apply_message",
               "apply_transaction": "apply_transaction"}


def word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def transfer_data(to: bytes, amount: int) -> bytes:
    return keccak(b"transfer(address,uint256)")[:4] + bytes(12) + to + word(amount)


class BenchFailure(RuntimeError):
    """A call did not do what it must: the figures would mean nothing."""


def check(what: str, status: StatusCode, output: bytes, expected: bytes,
          message: str = "") -> None:
    if status != StatusCode.SUCCESS or output != expected:
        raise BenchFailure(f"{what}: status {status!r}, output {output.hex() or '-'} "
                           f"(expected SUCCESS, {expected.hex() or '-'}) {message}")


@dataclass
class Case:
    """One measured thing: `batch(n)` runs n calls (each checked) and returns seconds."""

    workload: str
    level: str
    engine: str  # "ewasm", "py-evm", "wasmtime", "wasmtime-pre"
    batch: Callable[[int], float]
    # Given the calls made so far, what is wrong with the state they left ("" if nothing).
    verify: Callable[[int], str] | None = None
    per_call_us: list[float] = field(default_factory=list)
    made: int = 0

    def run(self, n: int) -> float:
        dt = self.batch(n)
        self.made += n
        return dt

    def check_state(self) -> None:
        problem = self.verify(self.made) if self.verify is not None else ""
        if problem:
            raise BenchFailure(f"{self.workload} {self.level} ({self.engine}): {problem}")

    @property
    def key(self) -> tuple[str, str, str]:
        return self.workload, self.level, self.engine


def timed(prepare: Callable[[], Callable[[], None]],
          finish: Callable[[], None] | None = None) -> Callable[[int], float]:
    """A batch runner: prepare() (untimed) gives the one-call function, then n calls are
    timed; finish() (untimed) afterwards."""

    def batch(n: int) -> float:
        one = prepare()
        t = time.perf_counter()
        for _ in range(n):
            one()
        dt = time.perf_counter() - t
        if finish is not None:
            finish()
        return dt

    return batch


# --- ours -----------------------------------------------------------------------------------

@dataclass
class Workload:
    name: str
    code: bytes
    data: bytes
    output: bytes
    storage: dict[bytes, bytes] = field(default_factory=dict)
    transfers: bool = False  # moves one unit SENDER -> RECIPIENT per call


def env() -> BlockEnv:
    return BlockEnv(coinbase=COINBASE, number=1, timestamp=1_700_000_000,
                    gas_limit=30_000_000, difficulty=0, chain_id=CHAIN_ID, base_fee=BASE_FEE)


def tx_context() -> TxContext:
    return TxContext(tx_gas_price=BASE_FEE + PRIORITY_FEE, tx_origin=SENDER,
                     block_coinbase=COINBASE, block_number=1, block_timestamp=1_700_000_000,
                     block_gas_limit=30_000_000, chain_id=CHAIN_ID, block_base_fee=BASE_FEE)


def message(w: Workload) -> Message:
    return Message(kind=CallKind.CALL, gas=GAS, recipient=CONTRACT, sender=SENDER,
                   code_address=CONTRACT, input=w.data)


def ours_cases(w: Workload) -> list[Case]:
    """The four levels for w; for the token each case checks, at the end, that the
    recipient holds one unit per call made."""
    msg = message(w)
    execute = ewasm.execute

    def holds(read: Callable[[], int]) -> Callable[[int], str] | None:
        if not w.transfers:
            return None
        return lambda calls: "" if read() == calls else (
            f"recipient holds {read()} after {calls} transfers of 1")

    # execute over MockedHost
    accounts = {CONTRACT: MockedAccount(code=w.code, storage=dict(w.storage))}
    mocked = MockedHost(accounts=accounts, tx_context=tx_context())

    def mocked_one() -> None:
        r = execute(mocked, REVISION, msg, w.code)
        check(f"{w.name} execute (MockedHost)", r.status, r.output, w.output, r.message)

    def mocked_reset() -> None:  # what it records grows with every call
        mocked.recorded_logs.clear()
        mocked.recorded_account_accesses.clear()

    def mocked_balance() -> int:
        key = bytes(12) + RECIPIENT
        return int.from_bytes(accounts[CONTRACT].storage.get(key, bytes(32)), "big")

    cases = [Case(w.name, OURS_LEVELS[0], "ewasm", timed(lambda: mocked_one, mocked_reset),
                  holds(mocked_balance))]

    def backend_with_contract() -> MemoryBackend:
        return MemoryBackend.from_accounts({
            CONTRACT: Account(code=w.code, storage=dict(w.storage)),
            SENDER: Account(balance=10**24),
        })

    def balance_of(backend: MemoryBackend) -> Callable[[], int]:
        key = bytes(12) + RECIPIENT
        return lambda: int.from_bytes(backend.get_storage(CONTRACT, key), "big")

    # execute over StateHost, and StateHost.message_call: one host per batch
    for level, via_host in ((OURS_LEVELS[1], False), (OURS_LEVELS[2], True)):
        backend = backend_with_contract()

        def prepare(backend=backend, via_host=via_host, level=level) -> Callable[[], None]:
            host = StateHost(backend, tx_context(), REVISION)
            what = f"{w.name} {level}"
            if via_host:
                def one() -> None:
                    r = host.message_call(msg)
                    check(what, r.status, r.output, w.output, r.message)
            else:
                def one() -> None:
                    r = execute(host, REVISION, msg, w.code)
                    check(what, r.status, r.output, w.output, r.message)
            return one

        cases.append(Case(w.name, level, "ewasm", timed(prepare, backend.clear_touched),
                          holds(balance_of(backend))))

    # apply_transaction
    be_tx = backend_with_contract()
    block = env()
    loader = MeteringPolicy()  # as the chain passes it (used only by CREATEs)
    nonce = [0]

    def tx_one() -> None:
        tx = Transaction(sender=SENDER, to=CONTRACT, nonce=nonce[0], gas_limit=GAS,
                         gas_price=BASE_FEE + PRIORITY_FEE, value=0, data=w.data,
                         max_fee=MAX_FEE)
        out = apply_transaction(be_tx, block, tx, revision=REVISION, loader=loader)
        if not out.valid:
            raise BenchFailure(f"{w.name} apply_transaction: invalid: {out.error}")
        check(f"{w.name} apply_transaction", out.status, out.output, w.output, out.error)
        be_tx.clear_touched()  # as the chain does after each transaction
        nonce[0] += 1

    cases.append(Case(w.name, OURS_LEVELS[3], "ewasm", timed(lambda: tx_one),
                      holds(balance_of(be_tx))))
    return cases


# --- wasmtime-py ----------------------------------------------------------------------------

def wasmtime_cases(name: str, wasm: bytes, data: bytes, output: bytes) -> list[Case]:
    import wasmtime

    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, wasm)
    linker = wasmtime.Linker(engine)
    cell: dict = {}  # the running message's memory and output
    i32 = wasmtime.ValType.i32()

    def get_call_data_size() -> int:
        return len(data)

    def call_data_copy(caller, result_offset: int, data_offset: int, length: int) -> None:
        if data_offset + length > len(data):
            raise BenchFailure("callDataCopy out of range")
        cell["memory"].write(caller, data[data_offset:data_offset + length], result_offset)

    def finish(caller, offset: int, length: int) -> None:
        cell["output"] = bytes(cell["memory"].read(caller, offset, offset + length))

    imports = {"getCallDataSize": (wasmtime.FuncType([], [i32]), get_call_data_size, False),
               "callDataCopy": (wasmtime.FuncType([i32, i32, i32], []), call_data_copy, True),
               "finish": (wasmtime.FuncType([i32, i32], []), finish, True)}
    for imp in module.imports:
        ty, fn, caller = imports[imp.name]
        linker.define_func(imp.module, imp.name, ty, fn, access_caller=caller)
    pre = linker.instantiate_pre(module)

    def run(instantiate: Callable) -> None:
        store = wasmtime.Store(engine)
        inst = instantiate(store)
        exports = inst.exports(store)
        cell["memory"] = exports["memory"]
        cell["output"] = b""
        exports["main"](store)
        if cell["output"] != output:
            raise BenchFailure(f"{name} wasmtime: output {cell['output'].hex()}")

    def plain() -> None:
        run(lambda store: linker.instantiate(store, module))

    def prepared() -> None:
        run(pre.instantiate)

    return [Case(name, OURS_LEVELS[0], "wasmtime", timed(lambda: plain)),
            Case(name, OURS_LEVELS[0], "wasmtime-pre", timed(lambda: prepared))]


# --- py-evm ---------------------------------------------------------------------------------

def pyevm_cases(token_json: Path) -> tuple[list[Case], str]:
    """exec_pyevm.py's three levels, one transfer of 1 SENDER -> RECIPIENT a call."""
    import eth
    from eth.constants import BLANK_ROOT_HASH
    from eth.db.atomic import AtomicDB
    from eth.vm.execution_context import ExecutionContext
    from eth.vm.forks.london.state import LondonState
    from eth.vm.forks.london.transactions import LondonTransactionBuilder
    from eth.vm.message import Message as EvmMessage
    from eth.vm.spoof import SpoofTransaction

    code = bytes.fromhex(json.loads(token_json.read_text())["deployedBytecode"][2:])
    data = transfer_data(RECIPIENT, 1)
    true = word(1)

    def slot(who: bytes) -> int:  # balanceOf is storage slot 1
        return int.from_bytes(keccak(bytes(12) + who + word(1)), "big")

    cases = []
    for ours_level, level in PYEVM_LEVEL.items():
        ctx = ExecutionContext(coinbase=COINBASE, timestamp=1, block_number=1, difficulty=0,
                               mix_hash=b"\x00" * 32, gas_limit=30_000_000, prev_hashes=[],
                               chain_id=CHAIN_ID, base_fee_per_gas=BASE_FEE)
        state = LondonState(AtomicDB(), ctx, BLANK_ROOT_HASH)
        state.set_code(CONTRACT, code)
        state.set_storage(CONTRACT, 0, SUPPLY)
        state.set_storage(CONTRACT, slot(SENDER), SUPPLY)
        state.set_balance(SENDER, 10**24)
        state.persist()
        tctx = state.get_transaction_context_class()(gas_price=BASE_FEE + PRIORITY_FEE,
                                                     origin=SENDER)
        comp = state.computation_class
        msg = EvmMessage(gas=GAS, to=CONTRACT, sender=SENDER, value=0, data=data, code=code)

        def fail(c, level=level) -> None:
            raise BenchFailure(f"py-evm {level}: {c.error if c.is_error else c.output.hex()}")

        if level == "apply_transaction":
            nonce = [0]

            def one(state=state, nonce=nonce, fail=fail) -> None:
                utx = LondonTransactionBuilder.new_unsigned_dynamic_fee_transaction(
                    chain_id=CHAIN_ID, nonce=nonce[0], max_priority_fee_per_gas=PRIORITY_FEE,
                    max_fee_per_gas=MAX_FEE, gas=GAS, to=CONTRACT, value=0, data=data,
                    access_list=[])
                c = state.apply_transaction(SpoofTransaction(utx, from_=SENDER))
                state.lock_changes()
                if c.is_error or c.output != true:
                    fail(c)
                nonce[0] += 1
        else:
            apply = comp.apply_message if level == "apply_message" else comp.apply_computation

            def one(state=state, apply=apply, msg=msg, tctx=tctx, fail=fail) -> None:
                c = apply(state, msg, tctx)
                state.lock_changes()
                if c.is_error or c.output != true:
                    fail(c)

        def verify(calls: int, state=state) -> str:
            got = state.get_storage(CONTRACT, slot(RECIPIENT))
            return "" if got == calls else f"recipient holds {got} after {calls} transfers"

        cases.append(Case("token", ours_level, "py-evm", timed(lambda one=one: one), verify))
    return cases, f"py-evm {eth.__version__}"


# --- the run --------------------------------------------------------------------------------

def workloads(wat2wasm: Callable[[str], bytes]) -> list[Workload]:
    trivial = wat2wasm((ROOT / "fixtures/evmc/trivial.wat").read_text())
    small = wat2wasm(SMALL_WAT)
    token = MeteringPolicy().meter(wat2wasm((ROOT / "fixtures/contracts/token.wat")
                                            .read_text()))
    storage = {b"\x01" + bytes(31): word(SUPPLY), bytes(12) + SENDER: word(SUPPLY)}
    small_data = transfer_data(RECIPIENT, 1)  # 68 bytes, as a transfer's
    return [Workload("trivial", trivial, b"", b""),
            Workload("small", small, small_data, small_data),
            Workload("token", token, transfer_data(RECIPIENT, 1), word(1), storage,
                     transfers=True)]


def median_ratio(num: Case, den: Case) -> tuple[float, float]:
    """(ratio of the medians, median of the per-round ratios) of num's time to den's."""
    of_medians = statistics.median(num.per_call_us) / statistics.median(den.per_call_us)
    paired = statistics.median(a / b for a, b in zip(num.per_call_us, den.per_call_us,
                                                     strict=True))
    return of_medians, paired


# Where each side of the hand-off to the engine's worker thread sits idle: the caller in
# Event.wait while the worker runs the call, the worker in its queue between calls. Their
# tottime is wall time the other thread spends working, so they are listed apart.
HANDSHAKE_WAITS = ("<method 'acquire' of '_thread.lock' objects>",
                   "<method 'get' of '_queue.SimpleQueue' objects>")


def profile(w: Workload, calls: int, top: int = 15) -> tuple[list[dict], list[dict]]:
    """cProfile of `calls` token executes over one StateHost: the calling thread and, if
    the engine runs the code on a worker thread, that thread too (stats merged). Returns
    the top entries by tottime, and the idle waits of the thread hand-off apart."""
    from ewasm.runtime.stack import run_on_big_stack

    backend = MemoryBackend.from_accounts({
        CONTRACT: Account(code=w.code, storage=dict(w.storage)),
        SENDER: Account(balance=10**24)})
    host = StateHost(backend, tx_context(), REVISION)
    msg = message(w)
    ewasm.execute(host, REVISION, msg, w.code)  # warm
    here = cProfile.Profile()
    worker = None
    if run_on_big_stack(threading.get_ident) != threading.get_ident():
        worker = cProfile.Profile()
        run_on_big_stack(worker.enable)
    here.enable()
    for _ in range(calls):
        r = ewasm.execute(host, REVISION, msg, w.code)
        check("token execute (StateHost), profiled", r.status, r.output, w.output, r.message)
    here.disable()
    if worker is not None:
        run_on_big_stack(worker.disable)
    stats = pstats.Stats(here)
    if worker is not None:
        stats.add(worker)
    rows = []
    for func, (_cc, nc, tt, ct, _callers) in stats.stats.items():
        filename, line, name = func
        where = name if filename == "~" else f"{shorten(filename)}:{line}({name})"
        rows.append(dict(function=where, ncalls=nc, tottime_s=tt, cumtime_s=ct,
                         tottime_us_per_execute=tt / calls * 1e6))
    rows.sort(key=lambda r: r["tottime_s"], reverse=True)
    waits = [r for r in rows if r["function"] in HANDSHAKE_WAITS]
    return [r for r in rows if r["function"] not in HANDSHAKE_WAITS][:top], waits


def shorten(filename: str) -> str:
    p = Path(filename)
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        parts = p.parts
        for anchor in ("site-packages", "lib"):
            if anchor in parts:
                return "/".join(parts[parts.index(anchor) + 1:])
        return filename


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7,
                    help="interleaved rounds (median over them); 0: no table")
    ap.add_argument("--calls", type=int, default=300, help="calls per case per round")
    ap.add_argument("--chunk", type=int, default=30,
                    help="a round runs the cases in turn, this many calls at a time (in a "
                         "fresh shuffled order each turn)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"),
                    help="the shared directory (its peers/Token.json is py-evm's token)")
    ap.add_argument("--profile", action="store_true",
                    help="also profile token executes over StateHost (top 15 by tottime)")
    ap.add_argument("--profile-calls", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=15, help="seed of the per-round case order")
    args = ap.parse_args()
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print

    try:
        import wasmtime
    except ImportError:
        print("wasmtime is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2

    def wat2wasm(text: str) -> bytes:
        return bytes(wasmtime.wat2wasm(text))

    ws = workloads(wat2wasm)
    report: dict = dict(revision=REVISION.name, rounds=args.rounds, calls=args.calls,
                        engines={"ewasm": "this engine",
                                 "wasmtime": f"wasmtime-py {wasmtime_version()}"})
    if args.rounds > 0:
        cases: list[Case] = []
        for w in ws:
            cases += ours_cases(w)
        for w in ws[:2]:
            cases += wasmtime_cases(w.name, w.code, w.data, w.output)
        token_json = Path(args.shared) / "peers" / "Token.json"
        pyevm_note = ""
        if not token_json.is_file():
            pyevm_note = f"py-evm rows skipped: {token_json} not found (pass --shared)"
        else:
            try:
                c, name = pyevm_cases(token_json)
            except ImportError as exc:
                pyevm_note = (f"py-evm rows skipped: py-evm is not installed ({exc}); "
                              "pip install 'py-evm>=0.12.1b1,<0.13'")
            else:
                cases += c
                report["engines"]["py-evm"] = name
        if pyevm_note:
            log(pyevm_note)
            report["skipped"] = pyevm_note

        warm = max(1, min(args.calls, 50))
        for case in cases:  # compile, fill caches, first-call effects
            case.run(warm)
        rng = random.Random(args.seed)
        chunks = [args.chunk] * (args.calls // args.chunk)
        if args.calls % args.chunk:
            chunks.append(args.calls % args.chunk)
        t0 = time.perf_counter()
        for rnd in range(args.rounds):
            spent = dict.fromkeys(map(id, cases), 0.0)
            for n in chunks:  # every case runs all through the round, not in one burst
                order = list(cases)
                rng.shuffle(order)
                for case in order:
                    spent[id(case)] += case.run(n)
            for case in cases:
                case.per_call_us.append(spent[id(case)] / args.calls * 1e6)
            log(f"  round {rnd + 1}/{args.rounds} done ({time.perf_counter() - t0:.0f} s)")
        for case in cases:
            case.check_state()
        tables(cases, report, log)

    if args.profile:
        token = next(w for w in ws if w.name == "token")
        t = time.perf_counter()
        rows, waits = profile(token, args.profile_calls)
        wall = time.perf_counter() - t
        report["profile"] = dict(calls=args.profile_calls, top=rows, handoff_waits=waits,
                                 wall_s=round(wall, 3))
        log(f"\ncProfile: {args.profile_calls} token-transfer ewasm.execute calls over "
            f"StateHost ({wall:.1f} s under the profiler, so us/call is inflated), top "
            f"{len(rows)} by tottime, both threads")
        log(f"  {'ncalls':>8} {'tottime s':>10} {'us/call':>11} {'cumtime s':>10}  function")
        for r in rows:
            log(f"  {r['ncalls']:8d} {r['tottime_s']:10.3f} {r['tottime_us_per_execute']:11.1f} "
                f"{r['cumtime_s']:10.3f}  {r['function']}")
        if waits:
            log("  idle waits of the worker-thread hand-off (not work; each is the other "
                "side's busy time):")
            for r in waits:
                log(f"  {r['ncalls']:8d} {r['tottime_s']:10.3f} "
                    f"{r['tottime_us_per_execute']:11.1f} {r['cumtime_s']:10.3f}  "
                    f"{r['function']}")
    if args.json:
        print(json.dumps(report, indent=1))
    return 0


def wasmtime_version() -> str:
    from importlib.metadata import version
    try:
        return version("wasmtime")
    except Exception:
        return "?"


def tables(cases: list[Case], report: dict, log: Callable[..., None]) -> None:
    by = {c.key: c for c in cases}
    med = {k: statistics.median(c.per_call_us) for k, c in by.items()}
    rounds = len(next(iter(by.values())).per_call_us)
    calls = report["calls"]
    report["per_call_us"] = [
        dict(workload=w, level=lv, engine=e, median=round(med[(w, lv, e)], 2),
             rounds=[round(x, 2) for x in by[(w, lv, e)].per_call_us])
        for (w, lv, e) in by]

    def cell(k: tuple[str, str, str]) -> str:
        return f"{med[k]:9.1f}" if k in med else f"{'-':>9}"

    log(f"\nper-call microseconds, {REVISION.name}, median of {rounds} interleaved rounds "
        f"x {calls} calls")
    log(f"{'contract':9} {'level':26} {'ewasm':>9} {'py-evm':>9} {'wasmtime':>9} "
        f"{'wt-pre':>9}   py-evm level")
    for w in ("trivial", "small", "token"):
        for lv in OURS_LEVELS:
            peer = PYEVM_LEVEL.get(lv, "") if (w, lv, "py-evm") in med else ""
            log(f"{w:9} {lv:26} {cell((w, lv, 'ewasm'))} {cell((w, lv, 'py-evm'))} "
                f"{cell((w, lv, 'wasmtime'))} {cell((w, lv, 'wasmtime-pre'))}   {peer}")
    log("wasmtime: new Store + Linker.instantiate + main per message; wt-pre: new Store + "
        "InstancePre.instantiate + main")

    bars = []  # (label, measured, unit, bar text, ok or None)
    small = ("small", OURS_LEVELS[0], "ewasm")
    bars.append(("small contract: ewasm.execute (MockedHost)", med[small], "us", "<= 20 us",
                 med[small] <= 20))
    for variant, what in (("wasmtime", "Linker.instantiate + call"),
                          ("wasmtime-pre", "InstancePre.instantiate + call")):
        for w in ("small", "trivial"):
            k = (w, OURS_LEVELS[0], variant)
            ours = by[(w, OURS_LEVELS[0], "ewasm")]
            of_medians, paired = median_ratio(by[k], ours)
            is_bar = w == "small" and variant == "wasmtime"
            bars.append((f"{w}: wasmtime-py {what} / ewasm", (of_medians, paired), "x",
                         ">= 4x" if is_bar else "(info)", paired >= 4 if is_bar else None))
    for lv, peer in PYEVM_LEVEL.items():
        k = ("token", lv, "py-evm")
        if k not in by:
            continue
        of_medians, paired = median_ratio(by[k], by[("token", lv, "ewasm")])
        is_bar = lv != "message_call (StateHost)"
        bars.append((f"token transfer: py-evm {peer} / ewasm {lv}", (of_medians, paired), "x",
                     ">= 10x (aim 20x)" if is_bar else "(info)",
                     paired >= 10 if is_bar else None))

    width = max(len(b[0]) for b in bars)
    log(f"\n{'ratio = peer time / ours (higher is better for us)':{width}}  "
        f"{'of medians':>10} {'paired':>8}  bar")
    failed = 0
    report["bars"] = []
    for label, value, unit, bar, ok in bars:
        if unit == "us":
            shown = f"{value:8.1f} us" + " " * 9
        else:
            shown = f"{value[0]:9.2f}x {value[1]:7.2f}x"
        verdict = "" if ok is None else ("ok" if ok else "MISSED")
        failed += ok is False
        log(f"{label:{width}}  {shown}  {bar:17} {verdict}")
        entry = dict(label=label, bar=bar, met=ok)
        if unit == "us":
            entry["us"] = round(value, 2)
        else:
            entry["ratio_of_medians"] = round(value[0], 3)
            entry["ratio_paired"] = round(value[1], 3)
        report["bars"].append(entry)
    log(f"({failed} bar(s) missed; a bar is judged on the paired ratio)" if failed
        else "(all bars met)")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchFailure as exc:
        print(f"bench_call: FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
