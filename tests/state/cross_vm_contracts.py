"""The contracts of the cross-VM tests (test_cross_vm.py) and of bench/bench_evm.py:
WAT helpers for the Wasm side (evm_asm for the EVM side), and the four-frame chain
EVM -> Wasm -> EVM -> Wasm. No pytest here: the bench imports it."""

from __future__ import annotations

from collections.abc import Callable

from state.backend import Account
from tests.state.evm_asm import Label, Ref, asm

SENDER = bytes.fromhex("a94f5374fce5edbc8e2a8697c15331677e6ebf0b")
COINBASE = bytes.fromhex("2adc25665018aa1fe0e6bc666dac8fc2697ff9ba")
E1, W2, E3, W4 = (bytes([b]) * 20 for b in (0xE1, 0xB2, 0xE3, 0xB4))
MARK = bytes(range(0x40, 0x60))  # 32 bytes W4 finishes with


def word(n: int | bytes) -> bytes:
    return n.rjust(32, b"\0") if isinstance(n, bytes) else n.to_bytes(32, "big")


def wat_bytes(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


IMPORTS = {
    "storageStore": "(param i32 i32)", "storageLoad": "(param i32 i32)",
    "call": "(param i64 i32 i32 i32 i32) (result i32)",
    "callCode": "(param i64 i32 i32 i32 i32) (result i32)",
    "callDelegate": "(param i64 i32 i32 i32) (result i32)",
    "callStatic": "(param i64 i32 i32 i32) (result i32)",
    "create": "(param i32 i32 i32 i32) (result i32)",
    "create2": "(param i32 i32 i32 i32 i32) (result i32)",
    "callDataCopy": "(param i32 i32 i32)", "getCallDataSize": "(result i32)",
    "returnDataCopy": "(param i32 i32 i32)", "getReturnDataSize": "(result i32)",
    "getCaller": "(param i32)", "getCallValue": "(param i32)", "getAddress": "(param i32)",
    "getGasLeft": "(result i64)", "log": "(param i32 i32 i32 i32 i32 i32 i32)",
    "finish": "(param i32 i32)", "revert": "(param i32 i32)",
}


def module(body: str, data: dict[int, bytes] | None = None, pages: int = 1) -> str:
    """A contract importing every function it names as $name (from IMPORTS)."""
    used = [n for n in IMPORTS if f"${n} " in body or f"${n})" in body]
    imports = "\n".join(f'(import "ethereum" "{n}" (func ${n} {IMPORTS[n]}))' for n in used)
    segments = "\n".join(f'(data (i32.const {off}) "{wat_bytes(b)}")'
                         for off, b in (data or {}).items())
    return f"""(module {imports}
      (memory (export "memory") {pages}) {segments}
      (func (export "main") (local $r i32) {body}))"""


def sstore_byte(key: int, value: str) -> str:
    """storage[key] = word(value) for a byte-sized i32 expression, through memory 0..64."""
    return f"""(i64.store (i32.const 0) (i64.const 0)) (i64.store (i32.const 8) (i64.const 0))
      (i64.store (i32.const 16) (i64.const 0)) (i64.store (i32.const 24) (i64.const 0))
      (i64.store (i32.const 32) (i64.const 0)) (i64.store (i32.const 40) (i64.const 0))
      (i64.store (i32.const 48) (i64.const 0)) (i64.store (i32.const 56) (i64.const 0))
      (i32.store8 (i32.const 31) (i32.const {key})) (i32.store8 (i32.const 63) {value})
      (call $storageStore (i32.const 0) (i32.const 32))"""


def call_evm(target: bytes, op: str = "CALL", out: int = 64) -> list:
    """CALL-family call of `target` with this frame's call data, the output to mem[out]."""
    args = [32, out, "CALLDATASIZE", 0]
    if op in ("CALL", "CALLCODE"):
        args.append(0)  # value
    return ["CALLDATASIZE", 0, 0, "CALLDATACOPY", *args, target, "GAS", op]


def chain4_accounts(wat: Callable[[str], bytes]) -> dict[bytes, Account]:
    """E1 -> W2 -> E3 -> W4, each writing its storage; E3 reverts when the call data is
    not zero (see test_cross_vm.py for what each writes)."""
    e1 = asm(1, 0, "SSTORE", *call_evm(W2), 1, "SSTORE", 64, "MLOAD", 2, "SSTORE", "STOP")
    w2 = wat(module(f"""{sstore_byte(0, "(i32.const 2)")}
      (call $callDataCopy (i32.const 200) (i32.const 0) (call $getCallDataSize))
      (local.set $r (call $call (i64.const 1000000) (i32.const 100) (i32.const 120)
                                (i32.const 200) (call $getCallDataSize)))
      {sstore_byte(1, "(local.get $r)")}
      (call $returnDataCopy (i32.const 300) (i32.const 0) (call $getReturnDataSize))
      (call $finish (i32.const 300) (call $getReturnDataSize))""", {100: E3}))
    # E3: slot0 = 3, CALL W4 (output to mem[0..32]), slot1 = success; then RETURN mem[0..32],
    # or REVERT it when the call data is not zero.
    e3 = asm(3, 0, "SSTORE", 32, 0, 0, 0, 0, W4, "GAS", "CALL", 1, "SSTORE",
             0, "CALLDATALOAD", "ISZERO", Ref("ok"), "JUMPI", 32, 0, "REVERT",
             Label("ok"), 32, 0, "RETURN")
    w4 = wat(module(f"""{sstore_byte(0, "(i32.const 4)")}
      (call $log (i32.const 100) (i32.const 32) (i32.const 0) (i32.const 0) (i32.const 0)
                 (i32.const 0) (i32.const 0))
      (call $finish (i32.const 100) (i32.const 32))""", {100: MARK}))
    return {E1: Account(code=e1, nonce=1), W2: Account(code=w2, nonce=1),
            E3: Account(code=e3, nonce=1), W4: Account(code=w4, nonce=1)}


