"""The EVM behind StateHost (state/evm.py) against plain py-evm, in one run (issue 21 point 7).

    python bench/bench_evm.py [--rounds 5]

Prints, each the median of interleaved rounds:

* Mgas/s of EVM code: a loop of arithmetic, memory and storage opcodes, and the Solidity
  token's `transfer` (../shared/peers/Token.json), through StateHost.message_call (the
  host, the dispatch, the EVM adapter and py-evm's interpreter) and through plain py-evm
  (`computation_class.apply_message` on py-evm's own state), with the same gas used;
* a transaction into an EVM contract (state.transaction.apply_transaction: intrinsic
  gas, fees, EIP-161 clean-up, the state root not included): the token's transfer and a
  counter (SLOAD, ADD, SSTORE, RETURN), bar 0.5 ms;
* a 4-frame mixed transaction, EVM -> Wasm -> EVM -> Wasm (tests/state/
  cross_vm_contracts.py), bar 5 ms;
* the alt_bn128 pairing of 2 pairs: the native precompile (py_ecc) against the Ewasm
  contract `ecpairing_rust.wasm` of ../shared/fixtures run on this engine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_hash.auto import keccak  # noqa: E402

from evmc_bridge import CallKind, Message, Revision, StatusCode, TxContext  # noqa: E402
from state.backend import Account  # noqa: E402
from state.host import StateHost  # noqa: E402
from state.memory import MemoryBackend  # noqa: E402
from state.transaction import BlockEnv, Transaction, apply_transaction  # noqa: E402
from tests.state.cross_vm_contracts import E1, chain4_accounts  # noqa: E402
from tests.state.evm_asm import Label, Ref, asm  # noqa: E402

REVISION = Revision.LONDON  # the chain's rules (the token is evmVersion paris: no PUSH0)
SENDER = bytes.fromhex("a94f5374fce5edbc8e2a8697c15331677e6ebf0b")
RECIPIENT = b"\x22" * 20
CONTRACT = b"\xc0" * 20
COINBASE = b"\xcb" * 20
GAS = 10_000_000


def word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def loop_code(n: int) -> bytes:
    """n rounds of arithmetic, a memory write and read, a SHA3 and an SSTORE of a changing
    value to one slot (after the first, 5,000 gas each): a mix of cheap and host opcodes."""
    return asm(n, Label("top"), "DUP1", "DUP1", "MUL", 7, "ADD", 0, "MSTORE", 0, "MLOAD",
               32, 0, "SHA3", "ADD", 1, "SSTORE", 1, "SWAP1", "SUB", "DUP1", Ref("top"), "JUMPI",
               "STOP")


def arith_code(n: int) -> bytes:
    """n rounds of stack and arithmetic opcodes only (no memory, storage or hashing)."""
    return asm(n, Label("top"), "DUP1", "DUP1", "MUL", "DUP2", "ADD", 3, "DIV", "POP",
               1, "SWAP1", "SUB", "DUP1", Ref("top"), "JUMPI", "STOP")


# A small contract: a counter (SLOAD, ADD, SSTORE) that returns the new value.
COUNTER = asm(0, "SLOAD", 1, "ADD", "DUP1", 0, "SSTORE", 0, "MSTORE", 32, 0, "RETURN")


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def ours(code: bytes, data: bytes, storage: dict[bytes, bytes]) -> Callable[[], int]:
    backend = MemoryBackend.from_accounts({CONTRACT: Account(code=code, storage=storage),
                                           SENDER: Account(balance=10**24)})

    def one() -> int:
        snap = backend.snapshot()
        host = StateHost(backend, TxContext(tx_origin=SENDER, block_number=1), REVISION)
        r = host.message_call(Message(kind=CallKind.CALL, gas=GAS, recipient=CONTRACT,
                                      code_address=CONTRACT, sender=SENDER, input=data))
        backend.revert(snap)
        if r.status != StatusCode.SUCCESS:
            raise SystemExit(f"ours: {r.status.name} {r.message}")
        return GAS - r.gas_left
    return one


def plain(code: bytes, data: bytes, storage: dict[bytes, bytes]) -> Callable[[], int]:
    limit = sys.getrecursionlimit()
    from eth.constants import BLANK_ROOT_HASH
    from eth.db.atomic import AtomicDB
    from eth.vm.execution_context import ExecutionContext
    from eth.vm.forks.london.state import LondonState
    from eth.vm.message import Message as EvmMessage
    sys.setrecursionlimit(limit)

    ctx = ExecutionContext(coinbase=COINBASE, timestamp=1, block_number=1, difficulty=0,
                           mix_hash=bytes(32), gas_limit=30_000_000, prev_hashes=[],
                           chain_id=1)
    state = LondonState(AtomicDB(), ctx, BLANK_ROOT_HASH)
    state.set_code(CONTRACT, code)
    for k, v in storage.items():
        state.set_storage(CONTRACT, int.from_bytes(k, "big"), int.from_bytes(v, "big"))
    state.set_balance(SENDER, 10**24)
    state.persist()
    tctx = state.get_transaction_context_class()(gas_price=1, origin=SENDER)
    msg = EvmMessage(gas=GAS, to=CONTRACT, sender=SENDER, value=0, data=data, code=code)

    def one() -> int:
        snap = state.snapshot()
        c = state.computation_class.apply_message(state, msg, tctx)
        state.revert(snap)
        if c.is_error:
            raise SystemExit(f"py-evm: {c.error}")
        return c.get_gas_used()
    return one


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    return (time.perf_counter() - t) / repeats, out


def token() -> tuple[bytes, bytes, dict[bytes, bytes]]:
    peers = ROOT.parent / "shared" / "peers" / "Token.json"
    code = bytes.fromhex(json.loads(peers.read_text())["deployedBytecode"][2:])
    data = bytes.fromhex("a9059cbb") + bytes(12) + RECIPIENT + word(1)
    slot = keccak(bytes(12) + SENDER + word(1))  # balanceOf: mapping at slot 1
    return code, data, {word(0): word(10**30), slot: word(10**30)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import wasmtime

    def wat2wasm(text: str) -> bytes:
        return bytes(wasmtime.wat2wasm(text))

    results: dict[str, object] = {}
    # 1. Mgas/s, ours against plain py-evm, interleaved rounds.
    workloads = {"arith loop": (arith_code(20000), b"", {}),
                 "storage loop": (loop_code(1000), b"", {}), "token transfer": token(),
                 "counter": (COUNTER, b"", {})}
    for name, (code, data, storage) in workloads.items():
        a, b = ours(code, data, storage), plain(code, data, storage)
        reps = 3 if name.endswith("loop") else 200
        ta, tb, gas = [], [], None
        for _ in range(args.rounds):
            t, ga = timed(a, reps)
            ta.append(t)
            t, gb = timed(b, reps)
            tb.append(t)
            if ga != gb:
                raise SystemExit(f"{name}: gas used differs: ours {ga}, py-evm {gb}")
            gas = ga
        results[name] = {"gas": gas, "ours_ms": median(ta) * 1e3, "pyevm_ms": median(tb) * 1e3,
                         "ours_mgas_s": gas / median(ta) / 1e6,
                         "pyevm_mgas_s": gas / median(tb) / 1e6,
                         "ratio": median(ta) / median(tb)}

    # 2. A transaction into the EVM token, and 3. the 4-frame mixed transaction.
    code, data, storage = token()
    env = BlockEnv(coinbase=COINBASE, number=1, timestamp=1, gas_limit=30_000_000,
                   difficulty=0)
    chain = chain4_accounts(wat2wasm)
    for name, accounts, to, txdata, bar in (
            ("tx into the EVM token", {CONTRACT: Account(code=code, storage=storage)},
             CONTRACT, data, 0.5),
            ("tx into an EVM counter", {CONTRACT: Account(code=COUNTER)}, CONTRACT, b"",
             0.5),
            ("4-frame mixed tx (EVM>Wasm>EVM>Wasm)", chain, E1, b"", 5.0)):
        backend = MemoryBackend.from_accounts({SENDER: Account(balance=10**24), **accounts})
        nonce = [0]

        def one(backend=backend, nonce=nonce, to=to, txdata=txdata, name=name) -> None:
            tx = Transaction(sender=SENDER, to=to, nonce=nonce[0], gas_limit=1_000_000,
                             gas_price=1, value=0, data=txdata)
            out = apply_transaction(backend, env, tx, revision=REVISION)
            backend.clear_touched()
            nonce[0] += 1
            if out.status != StatusCode.SUCCESS:
                raise SystemExit(f"{name}: {out.status} {out.error}")
        samples = [timed(one, 100)[0] for _ in range(args.rounds)]
        results[name] = {"ms": median(samples) * 1e3, "bar_ms": bar}

    # 4. The pairing: native against the Ewasm contract.
    results["pairing (2 pairs)"] = pairing(args.rounds)

    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    for name in workloads:
        r = results[name]
        print(f"{name:16} {r['gas']:>9,} gas   ours {r['ours_ms']:8.2f} ms "
              f"{r['ours_mgas_s']:5.2f} Mgas/s   py-evm {r['pyevm_ms']:8.2f} ms "
              f"{r['pyevm_mgas_s']:5.2f} Mgas/s   ours/py-evm {r['ratio']:.2f}x")
    for name in ("tx into the EVM token", "tx into an EVM counter",
                 "4-frame mixed tx (EVM>Wasm>EVM>Wasm)"):
        r = results[name]
        print(f"{name:38} {r['ms']:6.3f} ms  (bar {r['bar_ms']} ms)")
    p = results["pairing (2 pairs)"]
    if p is None:
        print("pairing: ../shared/fixtures/contracts/precompiles not found")
    else:
        print(f"pairing (2 pairs): native {p['native_ms']:.1f} ms, Ewasm contract "
              f"{p['wasm_ms']:.1f} ms (run only; the contract charges its own gas)")
    return 0


def pairing(rounds: int) -> dict | None:
    vectors = ROOT.parent / "shared" / "fixtures" / "contracts" / "precompiles"
    if not vectors.is_dir():
        return None
    import ewasm
    from evmc_bridge.mocked_host import MockedHost
    from state.precompiles import precompiles, run

    v = json.loads((vectors / "test_vectors.json").read_text())["ecpairing_orig"][1]
    data = bytes.fromhex(v["input"][2:])
    entry = precompiles(Revision.ISTANBUL)[(8).to_bytes(20, "big")]
    wasm = (vectors / "ecpairing_rust.wasm").read_bytes()
    msg = Message(gas=10**9, input=data)

    def native() -> None:
        r = run(entry, data, 10**6)
        assert r.status == StatusCode.SUCCESS and r.output == bytes.fromhex(v["expected"][2:])

    def contract() -> None:
        r = ewasm.execute(MockedHost(), Revision.BYZANTIUM, msg, wasm)
        assert r.status == StatusCode.SUCCESS, r.message

    tn = [timed(native, 1)[0] for _ in range(rounds)]
    tw = [timed(contract, 1)[0] for _ in range(rounds)]
    return {"native_ms": median(tn) * 1e3, "wasm_ms": median(tw) * 1e3}


if __name__ == "__main__":
    sys.exit(main())
