"""`../shared/peers/loadgen.py ewasm`, with the Solidity token (../shared/peers/Token.json,
EVM code) deployed on `ewasm node` instead of fixtures/contracts/token.wat: the same load
on the EVM side of this chain, next to Hardhat and ganache running the same bytecode.

    python bench/loadgen_evm_token.py [loadgen's ewasm arguments: --transfers N ...]

loadgen.py is shared material and stays as it is: this runs its main() with `launch`
returning Token.json's creation code for the ewasm target.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT.parent / "shared" / "peers"


def main() -> int:
    spec = importlib.util.spec_from_file_location("loadgen", PEERS / "loadgen.py")
    if spec is None or spec.loader is None or not (PEERS / "loadgen.py").exists():
        print(f"the load generator is not at {PEERS} (../shared sits beside the clone)")
        return 2
    loadgen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loadgen)
    creation = bytes.fromhex(json.loads((PEERS / "Token.json").read_text())["bytecode"][2:])
    launch = loadgen.launch

    def launch_evm_token(args, tmp):
        proc, port, _wasm_token = launch(args, tmp)
        return proc, port, creation

    loadgen.launch = launch_evm_token
    sys.argv = [str(PEERS / "loadgen.py"), "ewasm", "--project", str(ROOT), *sys.argv[1:]]
    return loadgen.main()


if __name__ == "__main__":
    sys.exit(main())
