"""A second real client: ethers.js v6 (npm) deploys the token, transfers (through the
node's unlocked account and with its own key), calls and reads logs, against
`ewasm node`. Skipped, saying why, where Node.js or the ethers package is missing: the
package is found under $EWASM_ETHERS_DIR (a directory with node_modules/ethers, as
`npm install --prefix DIR ethers@6` makes) or on Node's own search path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import SUPPLY
from .node import Node

SCRIPT = Path(__file__).with_name("ethers_client.cjs")


def _ethers_env() -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js (node) is not installed: the ethers.js test needs it")
    env = dict(os.environ)
    where = os.environ.get("EWASM_ETHERS_DIR")
    if where:
        env["NODE_PATH"] = str(Path(where) / "node_modules")
    probe = subprocess.run([node, "-e", "const {ethers} = require('ethers');"
                            "console.log(ethers.version)"], capture_output=True, text=True,
                           env=env, timeout=60)
    if probe.returncode:
        pytest.skip("the ethers npm package is not installed (npm install --prefix DIR "
                    "ethers@6, then EWASM_ETHERS_DIR=DIR)")
    if not probe.stdout.startswith("6."):
        pytest.skip(f"ethers {probe.stdout.strip()} found; this test is for ethers v6")
    return env


def test_ethers_deploys_transfers_calls_and_reads_logs(tmp_path, token_wasm):
    env = _ethers_env()
    node = Node(tmp_path / "chain.db")
    try:
        out = subprocess.run(["node", str(SCRIPT), node.url, "0x" + token_wasm.hex()],
                             capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        r = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        assert node.stop() == 0
    alice, bob = r["aliceAddress"], r["bobAddress"]
    assert r["chainId"] == "1337" and r["deployStatus"] == 1
    assert r["code"] > 2 + 2 * len(token_wasm)  # stored metered
    assert r["supply"] == str(SUPPLY)
    assert r["transferStatus"] == [1, 1]
    assert (r["alice"], r["bob"]) == (str(SUPPLY - 750), "750")
    assert r["logs"] == [[alice, bob, "1000"], [bob, alice, "250"]]
    assert r["toBob"] == 1 and r["bobNonce"] == 1
