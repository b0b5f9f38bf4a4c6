"""The local Ewasm chain: a persistent chain with instant mining (`Chain`), its block store
(blocks, transactions, receipts and logs, committed with the state), the contract loader
(validation, metering, ahead-of-time compilation), signed transactions, blocks and
receipts, and a JSON-RPC node for web3.py (`ewasm node`)."""
