"""The host's limits never decide a contract's result (issue 19, points 3-4).

* The linear memory of one execution's frames is bounded by a published, deterministic
  budget (ewasm.execute.MEMORY_BUDGET_PAGES): each frame may grow only into what the
  frames below it leave, the same on every machine.
* A frame's memory is given back when the frame returns, not when the garbage collector
  gets to it.
* When the host runs out (address space, memory), the whole execution ends with
  EVMC_INTERNAL_ERROR and the transaction is not applied (state.errors.ExecutionFailed):
  never a FAILURE of one frame that its caller would see and go on from.
"""

from __future__ import annotations

import dataclasses
import importlib

import pytest

import ewasm
from evmc_bridge import CallKind, Message, Revision, StatusCode, TxContext
from evmc_bridge.mocked_host import MockedHost
from ewasm.runtime import vmem
from state.backend import Account
from state.errors import ExecutionFailed
from state.host import StateHost
from state.memory import MemoryBackend
from state.root import state_root
from state.transaction import BlockEnv, Transaction, apply_transaction

execute_module = importlib.import_module("ewasm.execute")

SELF = b"\x5e" * 20
SENDER = bytes.fromhex("a94f5374fce5edbc8e2a8697c15331677e6ebf0b")
GROW = 10  # pages each frame tries to add

# Frame at depth d (call data byte 0): grows its memory by GROW pages once, then calls
# itself at d + 1 (up to MAX_DEPTH); finishes [its size in pages][the call's status]
# [the callee's output], so the test reads every frame's size and how the chain ended.
SELF_CALLER = f"""
(module
  (import "ethereum" "getCallDataSize" (func $cds (result i32)))
  (import "ethereum" "callDataCopy" (func $cdc (param i32 i32 i32)))
  (import "ethereum" "getAddress" (func $addr (param i32)))
  (import "ethereum" "call" (func $call (param i64 i32 i32 i32 i32) (result i32)))
  (import "ethereum" "getReturnDataSize" (func $rds (result i32)))
  (import "ethereum" "returnDataCopy" (func $rdc (param i32 i32 i32)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (memory 1)
  (export "memory" (memory 0))
  (func (export "main") (local $depth i32) (local $n i32)
    (if (call $cds) (then (call $cdc (i32.const 0) (i32.const 0) (i32.const 1))))
    (local.set $depth (i32.load8_u (i32.const 0)))
    (drop (memory.grow (i32.const {GROW})))
    (i32.store (i32.const 100) (memory.size))
    (if (i32.ge_u (local.get $depth) (i32.const 40))
      (then (call $finish (i32.const 100) (i32.const 4))))
    (i32.store8 (i32.const 0) (i32.add (local.get $depth) (i32.const 1)))
    (call $addr (i32.const 20))
    (i32.store (i32.const 104)
      (call $call (i64.const 0x7fffffffffffffff) (i32.const 20) (i32.const 40)
                  (i32.const 0) (i32.const 1)))
    (local.set $n (call $rds))
    (call $rdc (i32.const 108) (i32.const 0) (local.get $n))
    (call $finish (i32.const 100) (i32.add (i32.const 8) (local.get $n)))))
"""


def _frames(output: bytes) -> list[tuple[int, int]]:
    """(size in pages, status of its call) per frame, outermost first."""
    out = []
    while len(output) >= 8:
        out.append((int.from_bytes(output[:4], "little"), int.from_bytes(output[4:8], "little")))
        output = output[8:]
    if len(output) == 4:
        out.append((int.from_bytes(output, "little"), -1))
    return out


def _expected(budget: int) -> list[tuple[int, int]]:
    """The model: a frame's share is what the frames below it leave; it starts if its
    one page fits, and its growth succeeds if the GROW pages fit too."""
    sizes, used = [], 0
    while budget - used >= 1:
        size = 1 + GROW if budget - used >= 1 + GROW else 1
        sizes.append(size)
        used += size
    # every frame's call succeeded except the last one's, whose callee had no page left
    return [(s, 0) for s in sizes[:-1]] + [(sizes[-1], 1)]


def _call(code: bytes) -> tuple[StatusCode, bytes]:
    backend = MemoryBackend.from_accounts({SELF: Account(code=code)})
    host = StateHost(backend, TxContext(), Revision.BYZANTIUM)
    msg = Message(kind=CallKind.CALL, gas=10**12, recipient=SELF, code_address=SELF,
                  sender=SENDER)
    result = host.message_call(msg)
    return result.status, result.output


@pytest.mark.parametrize("budget", [40, 64, 95])
def test_frames_share_one_memory_budget(wat, monkeypatch, budget):
    monkeypatch.setattr(execute_module, "MEMORY_BUDGET_PAGES", budget)
    status, output = _call(wat(SELF_CALLER))
    assert status == StatusCode.SUCCESS
    frames = _frames(output)
    assert frames == _expected(budget)
    assert sum(size for size, _ in frames) <= budget


def test_the_default_budget_holds_the_default_frames(wat):
    # 40 frames of 11 pages (440) fit in the published 4096: the chain runs to its end.
    status, output = _call(wat(SELF_CALLER))
    assert status == StatusCode.SUCCESS
    frames = _frames(output)
    assert len(frames) == 41 and all(size == 1 + GROW for size, _ in frames)


def test_memories_of_frames_beyond_the_pool_are_freed_on_return(wat):
    prepared = execute_module.prepare_contract(wat(SELF_CALLER))
    prepared.pool.clear()
    held = [prepared.acquire(1000) for _ in range(execute_module.POOL_PER_CONTRACT + 3)]
    for instance in held:
        prepared.release(instance)
    alive = [i.memory._release.alive for i in held]
    assert alive.count(True) == execute_module.POOL_PER_CONTRACT
    assert all(i.memory.desc.size == 0 for i, a in zip(held, alive, strict=True) if not a)


def test_running_out_of_address_space_fails_the_whole_transaction(wat, monkeypatch):
    code = wat(SELF_CALLER)
    backend = MemoryBackend.from_accounts({SELF: Account(code=code),
                                           SENDER: Account(balance=10**18)})
    before = state_root(backend)
    execute_module._cache.clear()
    real, calls = vmem.reserve, []

    def reserve(size):  # the fifth memory cannot be had: a machine limit, at depth 4
        if size >= 65536:
            calls.append(size)
            if len(calls) == 5:
                raise OSError(12, "Cannot allocate memory")
        return real(size)

    monkeypatch.setattr(vmem, "reserve", reserve)
    tx = Transaction(sender=SENDER, to=SELF, nonce=0, gas_limit=10**7, gas_price=1,
                     value=0, data=b"")
    env = BlockEnv(coinbase=b"\xc0" * 20, number=1, timestamp=1000, gas_limit=10**7,
                   difficulty=0x20000)
    with pytest.raises(ExecutionFailed, match="cannot reserve"):
        apply_transaction(backend, env, tx)
    assert state_root(backend) == before  # nothing applied: no nonce, no fee
    assert len(calls) == 5
    execute_module._cache.clear()


# --- compiling costs gas (issue 19 point 2): init code per byte, and a size limit -------
from evmc_bridge.constants import GAS_INITCODE_BYTE_EWASM, MAX_INITCODE_SIZE_EWASM  # noqa: E402
from evmc_bridge.forks import rules  # noqa: E402
from state.errors import InvalidTransaction  # noqa: E402
from state.transaction import check_transaction, intrinsic_gas  # noqa: E402

# create(value at 0, init code [64, 64 + n), result at 32) with n from call data; then
# finish with create's status and the gas left around it.
CREATOR = """
(module
  (import "ethereum" "callDataCopy" (func $cdc (param i32 i32 i32)))
  (import "ethereum" "create" (func $create (param i32 i32 i32 i32) (result i32)))
  (import "ethereum" "getGasLeft" (func $gas (result i64)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (memory 8)
  (export "memory" (memory 0))
  (func (export "main") (local $n i32)
    (call $cdc (i32.const 0) (i32.const 0) (i32.const 4))
    (local.set $n (i32.load (i32.const 0)))
    (i32.store (i32.const 0) (i32.const 0))
    (i64.store (i32.const 8) (call $gas))
    (i32.store (i32.const 16) (call $create (i32.const 0) (i32.const 64) (local.get $n)
                                            (i32.const 32)))
    (i64.store (i32.const 20) (call $gas))
    (call $finish (i32.const 8) (i32.const 20))))
"""


def _create_with(wat, revision: Revision, n: int) -> tuple[StatusCode, int, int]:
    """(status of the frame, create's status (-1: none), gas spent on create + getGasLeft)"""
    backend = MemoryBackend.from_accounts({SELF: Account(code=wat(CREATOR))})
    host = StateHost(backend, TxContext(), revision)
    msg = Message(kind=CallKind.CALL, gas=10**8, recipient=SELF, code_address=SELF,
                  sender=SENDER, input=n.to_bytes(4, "little"))
    r = host.message_call(msg)
    if r.status != StatusCode.SUCCESS:
        return r.status, -1, 0
    before = int.from_bytes(r.output[:8], "little")
    status = int.from_bytes(r.output[8:12], "little")
    after = int.from_bytes(r.output[12:20], "little")
    return r.status, status, before - after


def test_byzantium_rules_have_no_init_code_charge_as_hera():
    fork = rules(Revision.BYZANTIUM)
    assert fork.initcode_byte_gas == 0 and fork.max_initcode_size is None
    later = rules(Revision.LONDON)
    assert later.initcode_byte_gas == GAS_INITCODE_BYTE_EWASM
    assert later.max_initcode_size == MAX_INITCODE_SIZE_EWASM


def test_create_pays_per_byte_of_init_code_after_byzantium(wat):
    # Init code that is not Wasm fails to deploy, but only after create has charged.
    spent = {}
    for rev in (Revision.BYZANTIUM, Revision.LONDON):
        for n in (0, 1000):
            status, create_status, gas = _create_with(wat, rev, n)
            assert status == StatusCode.SUCCESS and create_status != -1
            spent[rev, n] = gas
    # The junk init code never runs as Wasm (it is not), so what create spends besides
    # its charge does not depend on the length: Byzantium charges nothing per byte,
    # London 24 gas a byte.
    assert spent[Revision.BYZANTIUM, 1000] == spent[Revision.BYZANTIUM, 0]
    assert spent[Revision.LONDON, 1000] - spent[Revision.LONDON, 0] == \
        1000 * GAS_INITCODE_BYTE_EWASM


def test_create_over_the_init_code_limit_runs_out_of_gas_before_reading(wat):
    status, _, _ = _create_with(wat, Revision.LONDON, MAX_INITCODE_SIZE_EWASM + 1)
    assert status == StatusCode.OUT_OF_GAS
    # At the limit it is charged and runs (the memory holds 512 KiB: it can be read).
    status, create_status, _ = _create_with(wat, Revision.LONDON, MAX_INITCODE_SIZE_EWASM)
    assert status == StatusCode.SUCCESS and create_status != -1
    # Byzantium has no limit (Hera).
    status, _, _ = _create_with(wat, Revision.BYZANTIUM, MAX_INITCODE_SIZE_EWASM + 1)
    assert status == StatusCode.SUCCESS


def test_creation_transactions_pay_for_and_limit_their_init_code():
    wasm = b"\0asm" + b"\1" * 996  # Wasm init code (its validity does not matter here)
    tx = Transaction(sender=SENDER, to=None, nonce=0, gas_limit=10**7, gas_price=1, value=0,
                     data=wasm)
    call = Transaction(sender=SENDER, to=SELF, nonce=0, gas_limit=10**7, gas_price=1,
                       value=0, data=wasm)
    # A creation costs what a call with the same data costs, plus the creation's base
    # (EIP-2) and, after Byzantium, 24 gas a byte of init code.
    for rev, per_byte in ((Revision.BYZANTIUM, 0), (Revision.LONDON, GAS_INITCODE_BYTE_EWASM)):
        assert intrinsic_gas(tx, rev) - intrinsic_gas(call, rev) == \
            rules(rev).tx_create_gas + 1000 * per_byte
    big = Transaction(sender=SENDER, to=None, nonce=0, gas_limit=3 * 10**7, gas_price=1,
                      value=0, data=b"\0asm" + b"\1" * (MAX_INITCODE_SIZE_EWASM - 3))
    backend = MemoryBackend.from_accounts({SENDER: Account(balance=10**18)})
    env = BlockEnv(coinbase=b"\xc0" * 20, number=1, timestamp=1000, gas_limit=3 * 10**7,
                   difficulty=0, base_fee=0)
    with pytest.raises(InvalidTransaction, match="max initcode size exceeded"):
        check_transaction(backend, env, big, Revision.LONDON)
    # EVM init code is not compiled: neither the charge nor the limit applies to it.
    evm = dataclasses.replace(tx, data=b"\x60\x00" * 500)
    assert intrinsic_gas(evm, Revision.LONDON) - intrinsic_gas(
        dataclasses.replace(call, data=evm.data), Revision.LONDON) == rules(
        Revision.LONDON).tx_create_gas
    check_transaction(backend, env, dataclasses.replace(big, data=b"\x60" * len(big.data)),
                      Revision.LONDON)


def test_the_code_size_limit_is_the_hosts_option(wat):
    # Init code that finishes 30,000 bytes of its memory as the code to deploy (not Wasm,
    # so stored as it is): over EIP-170's 24,576.
    init = wat("""(module (import "ethereum" "finish" (func $f (param i32 i32)))
      (memory 1) (export "memory" (memory 0))
      (func (export "main") (call $f (i32.const 0) (i32.const 30000))))""")
    outcomes = {}
    for limit in ("fork", None, 40_000, 20_000):
        backend = MemoryBackend()
        host = StateHost(backend, TxContext(), Revision.LONDON, max_code_size=limit)
        msg = Message(kind=CallKind.CREATE, gas=10**8, sender=SENDER, input=init)
        r = host.create(msg, SELF)
        outcomes[limit] = (r.status, len(backend.get_code(SELF)))
    assert outcomes["fork"][0] == StatusCode.FAILURE  # EIP-170 at London
    assert outcomes[None] == (StatusCode.SUCCESS, 30000)
    assert outcomes[40_000] == (StatusCode.SUCCESS, 30000)
    assert outcomes[20_000] == (StatusCode.FAILURE, 0)


def test_apply_transaction_runs_frames_on_the_vm_given(wat):
    seen = []

    def vm(host, revision, message, code, **options):
        seen.append(message.depth)
        return ewasm.execute(host, revision, message, code, **options)

    backend = MemoryBackend.from_accounts({SELF: Account(code=wat(SELF_CALLER)),
                                           SENDER: Account(balance=10**18)})
    tx = Transaction(sender=SENDER, to=SELF, nonce=0, gas_limit=10**7, gas_price=1,
                     value=0, data=b"\x27")  # depth 39: two frames
    env = BlockEnv(coinbase=b"\xc0" * 20, number=1, timestamp=1000, gas_limit=10**7,
                   difficulty=0x20000)
    out = apply_transaction(backend, env, tx, vm=vm)
    assert out.status == StatusCode.SUCCESS and seen == [0, 1]


# --- RSS (issue 19 point 3, at full size: nightly) ----------------------------------------
# Grows the memory a page at a time as far as it may, writing every 4 KiB page.
GROW_ALL = """    (block $full (loop $grow
      (local.set $p (memory.grow (i32.const 1)))
      (br_if $full (i32.eq (local.get $p) (i32.const -1)))
      (local.set $a (i32.mul (local.get $p) (i32.const 65536)))
      (loop $touch
        (i64.store (local.get $a) (i64.const -1))
        (local.set $a (i32.add (local.get $a) (i32.const 4096)))
        (br_if $touch (i32.rem_u (local.get $a) (i32.const 65536))))
      (br $grow)))
"""

# Grows its memory as far as it may, writing every page, then calls itself; the top
# frame reports how deep the chain went.
GREEDY = """
(module
  (import "ethereum" "getCallDataSize" (func $cds (result i32)))
  (import "ethereum" "callDataCopy" (func $cdc (param i32 i32 i32)))
  (import "ethereum" "getAddress" (func $addr (param i32)))
  (import "ethereum" "getGasLeft" (func $gas (result i64)))
  (import "ethereum" "call" (func $call (param i64 i32 i32 i32 i32) (result i32)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (memory 1)
  (export "memory" (memory 0))
  (func (export "main") (local $p i32) (local $a i32)
    (if (call $cds) (then (call $cdc (i32.const 0) (i32.const 0) (i32.const 4))))
{GROW_ALL}    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (call $addr (i32.const 32))
    (drop (call $call (call $gas) (i32.const 32) (i32.const 64) (i32.const 0) (i32.const 4)))
    (call $finish (i32.const 0) (i32.const 4))))
""".replace("{GROW_ALL}", GROW_ALL)

# The start of both RSS probes: the code to run and the process's resident memory.
_PROBE_HEAD = r"""
import resource, sys, time
sys.path[:0] = {paths!r}
from evmc_bridge import CallKind, Message, Revision, TxContext
from state.backend import Account
from state.host import StateHost
from state.memory import MemoryBackend
code = bytes.fromhex({code!r})
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
"""

_RSS_PROBE = _PROBE_HEAD + r"""backend = MemoryBackend.from_accounts({{b"\x5e" * 20: Account(code=code)}})
host = StateHost(backend, TxContext(), Revision.LONDON)
msg = Message(kind=CallKind.CALL, gas=30_000_000, recipient=b"\x5e" * 20,
              code_address=b"\x5e" * 20)
host.message_call(Message(kind=CallKind.CALL, gas=1000, recipient=b"\x5e" * 20,
                          code_address=b"\x5e" * 20))  # compiled and warm
before, peak0 = rss(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
r = host.message_call(msg)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
time.sleep(1)
print(r.status, before, max(peak, peak0), rss())
"""


def _rss_within_bounds(script: str) -> None:
    """Run an RSS probe in a fresh process: the peak may rise at most 512 MiB over
    where it started, and a second after the answer RSS is back within 64 MiB."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    status, before, peak, after = map(int, out.stdout.split())
    assert peak - before <= 512 * 2**20, f"peak RSS grew by {(peak - before) >> 20} MiB"
    assert after - before <= 64 * 2**20, f"RSS stayed {(after - before) >> 20} MiB higher"


def _root() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parents[2])


@pytest.mark.nightly
def test_a_greedy_self_calling_contract_stays_within_512_mib(wat):
    _rss_within_bounds(_RSS_PROBE.format(paths=[_root()], code=wat(GREEDY).hex()))

_RLIMIT_PROBE = r"""
import resource, sys
sys.path[:0] = {paths!r}
from pathlib import Path
from evmc_bridge import Revision
from evmc_bridge.mocked_host import MockedHost
from state.backend import Account
from state.errors import ExecutionFailed
from state.memory import MemoryBackend
from state.root import state_root
from state.transaction import BlockEnv, Transaction, apply_transaction
code = bytes.fromhex({code!r})
sender = bytes.fromhex("a94f5374fce5edbc8e2a8697c15331677e6ebf0b")
target = b"\xab" * 20
def run():
    backend = MemoryBackend.from_accounts({{target: Account(code=code),
                                            sender: Account(balance=10**18)}})
    tx = Transaction(sender=sender, to=target, nonce=0, gas_limit=30_000_000, gas_price=1,
                     value=0, data=b"")
    env = BlockEnv(coinbase=b"\xc0" * 20, number=1, timestamp=1000, gas_limit=30_000_000,
                   difficulty=0x20000)
    try:
        out = apply_transaction(backend, env, tx, revision=Revision.LONDON)
    except ExecutionFailed as exc:
        return "failed", state_root(backend).hex()
    return "applied", state_root(backend).hex()
run()  # compiled and warm, then under the limit if one is asked for
if {limit!r}:
    with open("/proc/self/statm") as f:
        size = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (size + {limit!r}, size + {limit!r}))
print(*run())
"""


def test_address_space_limits_give_the_same_root_or_an_internal_error(wat):
    """Issue 19 point 4: the same transaction (a 1-page contract that writes a slot at
    each depth and calls itself, 30 M gas) with and without an RLIMIT_AS that stops it
    long before its end: the same state root, or ExecutionFailed (nothing applied),
    never a different root."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = wat((root / "fixtures/state/recurse.wat").read_text()).hex()
    outcomes = []
    for limit in (0, 1536 * 2**20):
        script = _RLIMIT_PROBE.format(paths=[str(root)], code=code, limit=limit)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        outcomes.append(out.stdout.split())
    (free_kind, free_root), (limited_kind, limited_root) = outcomes
    assert free_kind == "applied"
    # Under the limit the chain cannot reach depth 1024 (64 MiB reserved a frame):
    # the transaction is refused as a whole, never applied with a shallower chain.
    assert limited_kind == "failed"
    assert limited_root != free_root  # not applied: the pre-state's root


# Init code that grows and writes all the memory it may, then creates a copy of itself
# (its own code, read with codeCopy): the self-creating shape of issue 19, no deployed
# contract needed.
GREEDY_CREATOR = """
(module
  (import "ethereum" "getCodeSize" (func $size (result i32)))
  (import "ethereum" "codeCopy" (func $copy (param i32 i32 i32)))
  (import "ethereum" "create" (func $create (param i32 i32 i32 i32) (result i32)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (memory 1)
  (export "memory" (memory 0))
  (func (export "main") (local $p i32) (local $a i32) (local $n i32)
    (local.set $n (call $size))
    (call $copy (i32.const 1024) (i32.const 0) (local.get $n))
{GROW_ALL}    (drop (call $create (i32.const 0) (i32.const 1024) (local.get $n) (i32.const 512)))
    (call $finish (i32.const 0) (i32.const 0))))
""".replace("{GROW_ALL}", GROW_ALL)

_RSS_CREATE_PROBE = _PROBE_HEAD + r"""def create(gas):
    host = StateHost(MemoryBackend(), TxContext(), Revision.BYZANTIUM)
    return host.create(Message(kind=CallKind.CREATE, gas=gas, sender=b"\x5e" * 20,
                               input=code), b"\xcc" * 20)
create(1000)
before = rss()
r = create(30_000_000)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
time.sleep(1)
print(int(r.status), before, peak, rss())
"""


@pytest.mark.nightly
def test_a_greedy_self_creating_init_code_stays_within_512_mib(wat):
    _rss_within_bounds(_RSS_CREATE_PROBE.format(paths=[_root()],
                                                code=wat(GREEDY_CREATOR).hex()))


def test_a_table_counts_against_the_memory_budget(wat, monkeypatch):
    # 100,000 entries of 32 bytes: 49 pages of host memory, with the 1-page memory 50.
    code = wat("""(module (memory 1) (export "memory" (memory 0)) (table 100000 funcref)
      (func (export "main")))""")
    msg = Message(kind=CallKind.CALL, gas=1000)
    monkeypatch.setattr(execute_module, "MEMORY_BUDGET_PAGES", 49)
    r = ewasm.execute(MockedHost(), Revision.BYZANTIUM, msg, code)
    assert r.status == StatusCode.FAILURE and "50 pages" in r.message
    monkeypatch.setattr(execute_module, "MEMORY_BUDGET_PAGES", 50)
    assert ewasm.execute(MockedHost(), Revision.BYZANTIUM, msg, code).status == \
        StatusCode.SUCCESS


# finish/revert of [0, n) where n is the call data's first 4 bytes, after a 1024-page
# memory: the output charge after Byzantium (3 gas a word, after the range check).
BIG_FINISH = """(module
  (import "ethereum" "callDataCopy" (func $cdc (param i32 i32 i32)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (import "ethereum" "revert" (func $revert (param i32 i32)))
  (memory 1024) (export "memory" (memory 0))
  (func (export "main")
    (call $cdc (i32.const 0) (i32.const 0) (i32.const 5))
    (if (i32.load8_u (i32.const 4))
      (then (call $revert (i32.const 0) (i32.load (i32.const 0)))))
    (call $finish (i32.const 0) (i32.load (i32.const 0)))))"""


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("revert", [0, 1])
def test_finish_and_revert_pay_for_their_output_after_byzantium(wat, native, revert,
                                                                monkeypatch):
    monkeypatch.setattr(execute_module, "USE_NATIVE_EEI", native)
    execute_module.clear_cache()
    code = wat(BIG_FINISH)

    def run(rev, n, gas=10**8):
        data = n.to_bytes(4, "little") + bytes([revert])
        return ewasm.execute(MockedHost(), rev, Message(gas=gas, input=data), code)

    status = StatusCode.REVERT if revert else StatusCode.SUCCESS
    n = 64 * 2**20  # the whole memory
    byz, lon = run(Revision.BYZANTIUM, n), run(Revision.LONDON, n)
    assert byz.status == lon.status == status and len(lon.output) == n
    assert byz.gas_left - lon.gas_left == 3 * (n // 32)
    # One gas short of the charge: out of gas, nothing copied; out of range: that first.
    need = 10**8 - lon.gas_left
    short = run(Revision.LONDON, n, gas=need - 1)
    assert short.status == StatusCode.OUT_OF_GAS and short.output == b""
    assert run(Revision.LONDON, n + 1).status == StatusCode.INVALID_MEMORY_ACCESS
    execute_module.clear_cache()
