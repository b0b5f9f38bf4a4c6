"""StateHost and apply_transaction on the project's own contracts (fixtures/state)."""

from __future__ import annotations

from pathlib import Path

import pytest

import ewasm
from evmc_bridge import CallKind, Message, Result, Revision, StatusCode, TxContext
from state.backend import Account, Log
from state.host import StateHost, create_address
from state.memory import MemoryBackend
from state.transaction import BlockEnv, Transaction, apply_transaction

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "state"
SENDER = bytes.fromhex("a94f5374fce5edbc8e2a8697c15331677e6ebf0b")
COINBASE = bytes.fromhex("2adc25665018aa1fe0e6bc666dac8fc2697ff9ba")
PARENT = b"\xab" * 20
CHILD = b"\xcd" * 20


def key(*head: int) -> bytes:
    return bytes(head) + bytes(32 - len(head))


@pytest.fixture(scope="module")
def code(wat):
    return {p.stem: wat(p.read_text()) for p in FIXTURES.glob("*.wat")}


def env(gas_limit: int = 10**7) -> BlockEnv:
    return BlockEnv(coinbase=COINBASE, number=1, timestamp=1000, gas_limit=gas_limit,
                    difficulty=0x20000)


def test_nested_calls_reach_exactly_depth_1024(code):
    backend = MemoryBackend.from_accounts({PARENT: Account(code=code["recurse"])})
    host = StateHost(backend, TxContext(), Revision.BYZANTIUM)
    msg = Message(kind=CallKind.CALL, gas=10**17, recipient=PARENT, code_address=PARENT,
                  sender=SENDER)
    result = host.message_call(msg)
    assert result.status == StatusCode.SUCCESS
    storage = backend.get_account(PARENT).storage
    # Depths 0..1024 ran (1025 frames); the frame at 1024 was refused a further call.
    depths = sorted(int.from_bytes(k[:4], "little") for k in storage)
    assert depths == list(range(1025))


def parent_calls_child(code, mode: int):
    """A transaction to `revert_child`, which calls `child` in the given mode (0 finish,
    1 revert, 2 trap); returns the backend after it and the outcome."""
    backend = MemoryBackend.from_accounts({
        PARENT: Account(code=code["revert_child"]),
        CHILD: Account(code=code["child"]),
        SENDER: Account(balance=10**18),
    })
    tx = Transaction(sender=SENDER, to=PARENT, nonce=0, gas_limit=10**6, gas_price=1,
                     value=0, data=CHILD + bytes([mode]))
    return backend, apply_transaction(backend, env(), tx)


@pytest.mark.parametrize("mode,ret", [(0, 0), (1, 2), (2, 1)])
def test_child_outcome_commits_or_reverts_its_frame(code, mode, ret):
    backend, out = parent_calls_child(code, mode)
    assert out.status == StatusCode.SUCCESS
    assert backend.get_storage(PARENT, key(0, 1)) == key(16 + ret)
    child_slot = backend.get_storage(CHILD, key(7))
    parent_log = Log(PARENT, (), b"\x01")
    if mode == 0:  # finish: the child's storage write and log survive
        assert child_slot == key(9)
        assert out.logs == [parent_log, Log(CHILD, (), b"\x09")]
    else:  # revert or trap: the child's frame is rolled back, the parent's is not
        assert child_slot == bytes(32)
        assert out.logs == [parent_log]
    spent = 10**18 - backend.get_balance(SENDER)
    assert spent == out.gas_used and backend.get_balance(COINBASE) == spent


def test_trapping_child_consumes_its_gas_and_revert_returns_it(code):
    used = {}
    for mode in (1, 2):
        used[mode] = parent_calls_child(code, mode)[1].gas_used
    # The trap burns the 50000 forwarded; the revert gives back what the child left.
    assert used[2] - used[1] > 50000 - 30000


def test_failed_top_level_call_keeps_nonce_and_fee_only(code):
    backend = MemoryBackend.from_accounts({
        CHILD: Account(code=code["child"]),
        SENDER: Account(balance=10**18),
    })
    tx = Transaction(sender=SENDER, to=CHILD, nonce=0, gas_limit=100000, gas_price=2,
                     value=5, data=b"\x02")
    out = apply_transaction(backend, env(), tx)
    assert out.status == StatusCode.FAILURE and out.gas_used == 100000
    assert backend.get_nonce(SENDER) == 1
    assert backend.get_balance(SENDER) == 10**18 - 200000  # the value went back
    assert backend.get_balance(CHILD) == 0 and backend.get_storage(CHILD, key(7)) == bytes(32)
    assert out.logs == []


def deployer(wat, runtime: bytes) -> bytes:
    """Creation code whose constructor finishes with `runtime` (held in a data segment)."""
    escaped = "".join(f"\\{b:02x}" for b in runtime)
    return wat(f"""(module
      (import "ethereum" "finish" (func $finish (param i32 i32)))
      (memory 1) (data (i32.const 0) "{escaped}")
      (export "memory" (memory 0)) (export "main" (func $main))
      (func $main (call $finish (i32.const 0) (i32.const {len(runtime)}))))""")


def test_creation_transaction_deploys_at_the_derived_address(code, wat):
    runtime = code["child"]
    initcode = deployer(wat, runtime)
    backend = MemoryBackend.from_accounts({SENDER: Account(balance=10**18, nonce=3)})
    tx = Transaction(sender=SENDER, to=None, nonce=3, gas_limit=10**6, gas_price=1, value=7,
                     data=initcode)
    out = apply_transaction(backend, env(), tx)
    address = create_address(SENDER, 3)
    assert out.status == StatusCode.SUCCESS and out.contract_address == address
    assert backend.get_code(address) == runtime
    assert backend.get_nonce(address) == 1 and backend.get_balance(address) == 7


def test_invalid_transactions_change_nothing():
    backend = MemoryBackend.from_accounts({SENDER: Account(balance=10**6)})
    before = backend.to_accounts()
    for tx, why in [
        (Transaction(SENDER, CHILD, 1, 21000, 1, 0, b""), "nonce"),
        (Transaction(SENDER, CHILD, 0, 20999, 1, 0, b""), "intrinsic"),
        (Transaction(SENDER, CHILD, 0, 10**8, 1, 0, b""), "block"),
        (Transaction(SENDER, CHILD, 0, 21000, 100, 0, b""), "balance"),
    ]:
        out = apply_transaction(backend, env(), tx)
        assert not out.valid and why in out.error
        assert backend.to_accounts() == before


def test_selfdestruct_refund_is_capped_at_half_the_gas_used(wat):
    contract = wat("""(module
      (import "ethereum" "selfDestruct" (func $sd (param i32)))
      (memory 1) (export "memory" (memory 0)) (export "main" (func $main))
      (func $main (call $sd (i32.const 0))))""")
    backend = MemoryBackend.from_accounts({
        PARENT: Account(code=contract, balance=50),
        SENDER: Account(balance=10**18),
    })
    tx = Transaction(SENDER, PARENT, 0, 100000, 1, 0, b"")
    out = apply_transaction(backend, env(), tx)
    # 21000 + 5000 + 25000 (the zero address does not exist) = 51000, refund 24000 < 25500
    assert out.gas_used == 51000 - 24000
    assert not backend.exists(PARENT)
    assert backend.get_balance(bytes(20)) == 50


class RecordingVM:
    """A VM that is not the engine: records what it is asked, returns its own result."""

    def __init__(self, output: bytes = b"") -> None:
        self.calls: list[tuple[Message, bytes, dict]] = []
        self.output = output

    def __call__(self, host, revision, message, code, **options):
        self.calls.append((message, code, options))
        return Result.make(StatusCode.SUCCESS, message.gas - 1, self.output)


def test_the_vm_is_injected_and_runs_every_frame_with_the_evm_off():
    vm = RecordingVM(b"out")
    backend = MemoryBackend.from_accounts({PARENT: Account(code=b"\x60\x00")})  # not Wasm
    host = StateHost(backend, TxContext(), Revision.BYZANTIUM, vm=vm, evm=None,
                     engine_options={"flag": 1})
    msg = Message(kind=CallKind.CALL, gas=100, recipient=PARENT, code_address=PARENT,
                  sender=SENDER)
    r = host.message_call(msg)
    assert (r.status, r.gas_left, r.output) == (StatusCode.SUCCESS, 99, b"out")
    assert vm.calls == [(msg, b"\x60\x00", {"flag": 1})]


def test_a_rewriting_loader_passes_the_sent_code_to_the_vm():
    class Tagging:
        def init_code(self, code):
            return code + b"!"

        def deployed_code(self, code):
            return code.upper()

    vm = RecordingVM(b"runtime")
    host = StateHost(MemoryBackend(), TxContext(), Revision.BYZANTIUM, vm=vm, evm=None,
                     loader=Tagging())
    msg = Message(kind=CallKind.CREATE, gas=10**6, sender=SENDER, input=b"init")
    r = host.create(msg, CHILD)
    assert r.status == StatusCode.SUCCESS and r.create_address == CHILD
    (child, ran, options), = vm.calls
    assert ran == b"init!" and options == {"sent_code": b"init"}
    assert host.backend.get_code(CHILD) == b"RUNTIME"


def test_a_loader_refusal_is_a_validation_failure_and_reverts():
    class Refusing:
        def init_code(self, code):
            raise ewasm.ContractValidationError("no main export")

        def deployed_code(self, code):  # pragma: no cover - never reached
            return code

    backend = MemoryBackend()
    host = StateHost(backend, TxContext(), Revision.BYZANTIUM, vm=RecordingVM(), evm=None,
                     loader=Refusing())
    r = host.create(Message(kind=CallKind.CREATE, gas=10**6, sender=SENDER, input=b"x"),
                    CHILD)
    assert r.status == StatusCode.CONTRACT_VALIDATION_FAILURE
    assert "no main export" in r.message and not backend.exists(CHILD)
