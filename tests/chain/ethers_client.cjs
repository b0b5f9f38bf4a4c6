// ethers.js v6 against `ewasm node`: deploy the token (its runtime module, which the node
// wraps), transfer, call, read logs; prints one JSON line for tests/chain/test_ethers.py.
//
//   NODE_PATH=DIR/node_modules node ethers_client.cjs URL TOKEN_WASM_HEX
"use strict";
const { ethers } = require("ethers");

const ABI = [
  "function totalSupply() view returns (uint256)",
  "function balanceOf(address owner) view returns (uint256)",
  "function transfer(address to, uint256 value) returns (bool)",
  "event Transfer(address indexed from, address indexed to, uint256 value)",
];

async function main() {
  const [url, code] = process.argv.slice(2);
  const provider = new ethers.JsonRpcProvider(url, undefined, { staticNetwork: true });
  const network = await provider.getNetwork();
  const alice = await provider.getSigner(0);  // an unlocked dev account: eth_sendTransaction
  // A key of its own too: ethers signs, the node gets eth_sendRawTransaction.
  const bob = new ethers.Wallet(
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d", provider);
  const factory = new ethers.ContractFactory(ABI, code, alice);
  const token = await factory.deploy();
  const deployment = await token.deploymentTransaction().wait();
  const address = await token.getAddress();
  const supply = await token.totalSupply();  // the first call mints to its caller... in a call
  const sent = await (await token.transfer(bob.address, 1000n)).wait();
  const back = await (await token.connect(bob).transfer(alice.address, 250n)).wait();
  const logs = await token.queryFilter(token.filters.Transfer(), 0, "latest");
  const toBob = await token.queryFilter(token.filters.Transfer(null, bob.address), 0);
  console.log(JSON.stringify({
    chainId: network.chainId.toString(),
    deployStatus: deployment.status,
    address,
    code: (await provider.getCode(address)).length,
    supply: supply.toString(),
    transferStatus: [sent.status, back.status],
    alice: (await token.balanceOf(alice.address)).toString(),
    bob: (await token.balanceOf(bob.address)).toString(),
    logs: logs.map((l) => [l.args.from, l.args.to, l.args.value.toString()]),
    toBob: toBob.length,
    bobNonce: await provider.getTransactionCount(bob.address),
    aliceAddress: alice.address,
    bobAddress: bob.address,
  }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
