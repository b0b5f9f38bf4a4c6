"""state.evm, the EVM behind StateHost: the pitfalls issue 21's prototype met, one test
each (dispatch before any VM, the recursion limit py-evm raises at import, a touched
self-destruct beneficiary, EIP-716's RIPEMD-160 touch, refunds and logs written through
to the host), failures that must stay typed, hostile code, and evm1mode=evm through
libewasm.so."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evmc_bridge import CallKind, Message, Result, Revision, StatusCode, TxContext
from state.backend import Account, Log
from state.evm import execute_evm
from state.host import StateHost
from state.memory import MemoryBackend
from tests.state.evm_asm import asm
from tests.state.test_cross_vm import SENDER, run, storage, word

ROOT = Path(__file__).resolve().parents[2]
C = b"\xc1" * 20
X = b"\x0e" * 20


def host_for(accounts: dict[bytes, Account], revision: Revision = Revision.BYZANTIUM,
             **kw) -> StateHost:
    return StateHost(MemoryBackend.from_accounts(accounts), TxContext(), revision, **kw)


def call(host: StateHost, to: bytes, gas: int = 100_000, data: bytes = b"") -> Result:
    return host.message_call(Message(kind=CallKind.CALL, gas=gas, recipient=to,
                                     code_address=to, sender=SENDER, input=data))


# --- dispatch ----------------------------------------------------------------------

def test_code_given_to_the_wrong_vm_would_succeed_so_the_host_dispatches():
    """py-evm runs `\\0asm...` as STOP (0x00): given to it, broken Wasm would "succeed".
    The host sends anything with the prefix to the Wasm engine, which fails it."""
    blob = b"\0asm\x01\x00"  # 6 bytes: Hera's 8-byte rule would call it EVM code
    host = host_for({C: Account(code=blob)})
    direct = execute_evm(host, Revision.BYZANTIUM,
                         Message(gas=1000, recipient=C, code_address=C), blob)
    assert (direct.status, direct.gas_left) == (StatusCode.SUCCESS, 1000)
    r = call(host, C)
    assert (r.status, r.gas_left) == (StatusCode.FAILURE, 0)


def test_with_the_evm_off_evm_code_fails_as_before():
    code = asm(1, 0, "SSTORE", "STOP")
    assert call(host_for({C: Account(code=code)}), C).status == StatusCode.SUCCESS
    host = host_for({C: Account(code=code)}, evm=None)
    r = call(host, C)
    assert r.status == StatusCode.FAILURE and "not Wasm" in r.message
    assert host.backend.get_storage(C, word(0)) == word(0)


# --- the recursion limit ------------------------------------------------------------

def test_py_evm_s_recursion_limit_is_contained():
    code = """if 1:
        import sys
        before = sys.getrecursionlimit()
        from evmc_bridge import Message, Revision, TxContext
        from state.host import StateHost
        from state.memory import MemoryBackend
        import state.evm
        host = StateHost(MemoryBackend(), TxContext(), Revision.BYZANTIUM)
        assert "eth" not in sys.modules, "py-evm imported before the first EVM frame"
        state.evm.warm_up()
        assert "eth" in sys.modules
        after_import = sys.getrecursionlimit()
        r = state.evm.execute_evm(host, Revision.BYZANTIUM, Message(gas=10), b"\\x00")
        print(before, after_import, sys.getrecursionlimit(), r.status.name)"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.split()
    assert out == [out[0], out[0], out[0], "SUCCESS"] and int(out[0]) < 100_000


def test_a_1024_deep_evm_recursion_runs_on_the_callers_stack():
    """An EVM contract calling itself with one less in its call data, from depth 0 on the
    calling thread: the frame at 1024 is refused (CALL pushes 0)."""
    code = asm(0, "CALLDATALOAD", "DUP1", 1, "SWAP1", "SSTORE",  # storage[n] = 1
               1, "SWAP1", "SUB", 0, "MSTORE",  # call data of the next: n - 1
               0, 0, 32, 0, 0, "ADDRESS", "GAS", "CALL", 1, "ADD", 5000, "SSTORE", "STOP")
    host = host_for({C: Account(code=code)})
    r = call(host, C, gas=9 * 10**18, data=word(2000))
    assert r.status == StatusCode.SUCCESS, r.message
    s = storage(host.backend, C)
    # Depths 0..1024 wrote n = 2000..976. Slot 5000 is 1 + the success of each frame's
    # CALL, written innermost first: the one at 1024 failed (1), the outermost's is last.
    assert sorted(k for k in s if k != 5000) == list(range(976, 2001))
    assert s[5000] == 2


# --- the pitfalls ---------------------------------------------------------------------

def test_a_self_destruct_beneficiary_is_touched():
    """A contract without balance self-destructs to an empty account: touched, the
    beneficiary is removed at the end of the transaction (EIP-161)."""
    code = asm(X, "SELFDESTRUCT")
    backend, out = run({C: Account(code=code), X: Account()}, C)
    assert out.status == StatusCode.SUCCESS
    assert not backend.exists(X) and not backend.exists(C)


@pytest.mark.parametrize("target,survives", [(3, False), (2, True)])
def test_eip716_the_ripemd160_touch_survives_a_failed_call(target, survives):
    """A call to 0x03 with too little gas fails, and its touch stays: 0x03, empty, is
    removed. For 0x02 the failed call's touch is undone with it, and it stays."""
    pre = target.to_bytes(20, "big")
    code = asm(0, 0, 0, 0, 0, pre, 1, "CALL", 0, "SSTORE", "STOP")
    backend, out = run({C: Account(code=code), pre: Account()}, C)
    assert out.status == StatusCode.SUCCESS
    assert backend.exists(pre) == survives


def test_an_evm_frame_s_refund_reaches_the_transaction():
    code = asm(0, 0, "SSTORE", "STOP")  # clears slot 0
    backend, out = run({C: Account(code=code, storage={word(0): word(1)})}, C)
    # 21,000 + 3 + 3 + 5,000 = 26,006 used, refund min(15,000, 26,006 // 2) = 13,003.
    assert out.gas_used == 26_006 - 13_003
    # Reverted, the frame's refund goes with it.
    code = asm(0, 0, "SSTORE", 0, 0, "REVERT")
    backend, out = run({C: Account(code=code, storage={word(0): word(1)})}, C)
    assert out.status == StatusCode.REVERT and out.gas_used == 26_006 + 6
    assert backend.get_storage(C, word(0)) == word(1)


def test_evm_logs_reach_the_host_in_emission_order(wat):
    from tests.state.test_cross_vm import module

    w = b"\xb7" * 20
    callee = wat(module("""(call $log (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0)
                            (i32.const 0) (i32.const 0) (i32.const 0))""", {0: b"W"}))
    code = asm(0x41, 0, "MSTORE8", 7, 1, 0, "LOG1",  # LOG1("A", topic 7)
               0, 0, 0, 0, 0, w, "GAS", "CALL", "POP",
               0x42, 0, "MSTORE8", 1, 0, "LOG0", "STOP")
    backend, out = run({C: Account(code=code), w: Account(code=callee)}, C)
    assert out.logs == [Log(C, (word(7),), b"A"), Log(w, (), b"W"), Log(C, (), b"B")]


def test_an_evm_create_bumps_the_creator_s_nonce_once():
    runtime = asm("STOP")
    init = asm(runtime[0], 0, "MSTORE8", 1, 0, "RETURN")
    code = asm(*[x for x in (int.from_bytes(init, "big"), 0, "MSTORE")],
               len(init), 32 - len(init), 0, "CREATE", 0, "SSTORE", "STOP")
    backend, out = run({C: Account(code=code, nonce=3)}, C)
    from state.host import create_address

    assert out.status == StatusCode.SUCCESS
    assert backend.get_nonce(C) == 4
    assert storage(backend, C) == {0: int.from_bytes(create_address(C, 3), "big")}
    assert backend.get_code(create_address(C, 3)) == runtime


# --- typed failures -------------------------------------------------------------------

@pytest.mark.parametrize("code,status", [
    (asm(1, "JUMP"), StatusCode.BAD_JUMP_DESTINATION),
    (asm("ADD"), StatusCode.STACK_UNDERFLOW),
    (bytes([0x0C]), StatusCode.UNDEFINED_INSTRUCTION),
    (asm("INVALID"), StatusCode.UNDEFINED_INSTRUCTION),
    (asm(1, 0, "SSTORE") * 10, StatusCode.OUT_OF_GAS),
    (asm(0, 0, "REVERT"), StatusCode.REVERT),
    (asm(1, 0, 0, "RETURNDATACOPY"), StatusCode.INVALID_MEMORY_ACCESS),
])
def test_failures_keep_their_evmc_status(code, status):
    r = call(host_for({C: Account(code=code)}), C, gas=30_000)
    assert r.status == status
    assert r.gas_left == (30_000 - 6 if status == StatusCode.REVERT else 0)


def test_a_static_frame_s_sstore_is_a_static_mode_violation():
    host = host_for({C: Account(code=asm(1, 0, "SSTORE"))})
    r = host.message_call(Message(kind=CallKind.CALL, flags=1, gas=30_000, recipient=C,
                                  code_address=C, sender=SENDER))
    assert (r.status, r.gas_left) == (StatusCode.STATIC_MODE_VIOLATION, 0)


def test_a_nested_internal_error_ends_the_evm_frame_the_same_way():
    def broken(host, revision, message, code, **options):
        return Result.make(StatusCode.INTERNAL_ERROR, message="host out of memory")

    w = b"\xb8" * 20
    caller = asm(0, 0, 0, 0, 0, w, "GAS", "CALL", 0, "SSTORE", "STOP")
    host = host_for({C: Account(code=caller), w: Account(code=b"\0asm\x01\0\0\0")},
                    vm=broken)
    r = call(host, C)
    assert r.status == StatusCode.INTERNAL_ERROR and "out of memory" in r.message
    assert host.backend.get_storage(C, word(0)) == word(0)


def test_an_unsupported_revision_is_an_internal_error():
    r = execute_evm(host_for({}), Revision.OSAKA, Message(gas=10), b"\x00")
    assert r.status == StatusCode.INTERNAL_ERROR and "OSAKA" in r.message


def test_hostile_code_never_raises_nor_is_an_internal_error():
    """Random code, biased towards the opcodes that reach the host (calls, creates,
    storage, logs, self-destruct): every outcome is a contract status."""
    rng = random.Random(21)
    hot = [0xF0, 0xF1, 0xF2, 0xF4, 0xF5, 0xFA, 0xFF, 0x54, 0x55, 0xA0, 0xA2, 0x31, 0x3B,
           0x3C, 0x3F, 0x40, 0x5A, 0x3D, 0x3E]
    seen = set()
    def operand() -> bytes:  # small offsets and sizes, gas, and addresses worth calling
        return rng.choice([asm(rng.randrange(64)), asm(rng.randrange(64)), asm("GAS"),
                           asm(C), asm(X), asm(rng.randrange(1, 10))])

    for _ in range(300):
        parts = [operand() for _ in range(rng.randrange(4, 12))]
        for _ in range(rng.randrange(1, 12)):
            r = rng.random()
            parts.append(bytes([rng.choice(hot)]) if r < 0.4 else operand() if r < 0.7
                         else bytes([rng.randrange(256)]))
        code = b"".join(parts)
        rev = rng.choice([Revision.BYZANTIUM, Revision.CONSTANTINOPLE, Revision.ISTANBUL])
        host = host_for({C: Account(code=code, balance=10**6), X: Account(code=code)}, rev)
        r = call(host, C, gas=200_000, data=bytes(rng.randrange(256) for _ in range(40)))
        assert r.status != StatusCode.INTERNAL_ERROR, (code.hex(), rev, r.message)
        seen.add(r.status)
    assert StatusCode.SUCCESS in seen and len(seen) >= 4


# --- evm1mode=evm through libewasm.so ------------------------------------------------

@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="no C compiler to build libewasm.so")
def test_libewasm_evm1mode(tmp_path):
    import evmc_bridge
    from apps.libewasm.build import build_library
    from evmc_bridge.mocked_host import MockedHost

    lib = build_library(tmp_path / "lib")
    code = asm(0x2A, 5, "SSTORE", 0x2B, 0, "MSTORE", 32, 0, "RETURN")
    msg = Message(kind=CallKind.CALL, gas=100_000, recipient=C, code_address=C)
    statuses = {}
    for mode in ("reject", "fallback", "evm"):
        vm = evmc_bridge.load_vm(str(lib), evm1mode=mode)
        host = MockedHost()
        r = vm.execute(host, Revision.BYZANTIUM, msg, code)
        statuses[mode] = r.status
        if mode == "evm":
            assert r.output == word(0x2B) and r.gas_left == 100_000 - 20_024
            assert host.get_storage(C, word(5)) == word(0x2A)
    assert statuses == {"reject": StatusCode.FAILURE, "fallback": StatusCode.REJECTED,
                        "evm": StatusCode.SUCCESS}
    with pytest.raises(evmc_bridge.EvmcError):
        evmc_bridge.load_vm(str(lib), evm1mode="evm2wasm")
