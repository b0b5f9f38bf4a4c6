"""The values several layers share, defined once: zero values, empty roots and hashes,
limits, and the gas schedule (Hera's GasSchedule for the EEI, eei.md §2.7, and the
transaction rules' costs). What changes with the revision is in `forks`, built from these.
"""

from __future__ import annotations

# --- zero values -----------------------------------------------------------------------
ZERO_ADDRESS = bytes(20)
ZERO_BYTES32 = bytes(32)  # EVMC's zero bytes32: the zero word, the zero hash

# --- empty roots and hashes (checked against keccak in tests/evmc_bridge) ----------------
EMPTY_CODE_HASH = bytes.fromhex(  # keccak256(b"")
    "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
EMPTY_TRIE_ROOT = bytes.fromhex(  # keccak256(rlp(b"")): the root of an empty trie
    "56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")
EMPTY_OMMERS_HASH = bytes.fromhex(  # keccak256(rlp([]))
    "1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347")

# --- limits ----------------------------------------------------------------------------
UINT256_LIMIT = 1 << 256
U128_LIMIT = 1 << 128  # an EEI value (balance, call value) is 128 bits
NONCE_LIMIT = 1 << 64  # EIP-2681
MAX_CALL_DEPTH = 1024

# --- gas: the EEI's schedule (Hera's GasSchedule, Byzantium) -------------------------------
GAS_BASE = 2
GAS_VERYLOW = 3
GAS_COPY_WORD = 3
GAS_BALANCE = 400
GAS_BLOCKHASH = 800
GAS_EXTCODE = 700
GAS_STORAGE_LOAD = 200
GAS_STORAGE_CHANGE = 5000
GAS_STORAGE_CREATE_EXTRA = 15000
GAS_LOG = 375
GAS_LOG_TOPIC = 375
GAS_LOG_DATA = 8
GAS_CALL = 700
GAS_VALUE_TRANSFER = 9000
GAS_VALUE_STIPEND = 2300
GAS_NEW_ACCOUNT = 25000
GAS_CREATE = 32000
GAS_CREATE2_WORD = 6  # EIP-1014: CREATE2 hashes its init code, 6 gas a word (as SHA3)
GAS_SELFDESTRUCT = 5000

# --- gas: transactions and creation (the fork-dependent ones are chosen in `forks`) --------
GAS_TX = 21000
GAS_TX_CREATE = 32000  # Homestead on
GAS_TX_DATA_ZERO = 4
GAS_TX_DATA_NONZERO = 68
GAS_TX_DATA_NONZERO_EIP2028 = 16  # Istanbul on
GAS_ACCESS_LIST_ADDRESS = 2400  # EIP-2930, Berlin on
GAS_ACCESS_LIST_KEY = 1900
GAS_CODE_DEPOSIT = 200  # per byte of stored code
REFUND_SSTORE_CLEAR = 15000
REFUND_SELFDESTRUCT = 24000  # until London (EIP-3529)
MAX_CODE_SIZE_EIP170 = 24576  # Spurious Dragon on
# Compiling init code costs gas, from the revision after the Ewasm state tests'
# (Byzantium) on, as EIP-3860 prices EVM init code: per byte, from bench_compile's worst
# cold compile (20.4 ms per KB, ~20 us a byte, at the bar of 1,000 ns per gas: 20 gas a
# byte, and a fifth more), and a size limit checked before anything is compiled (twice
# the largest benchmark contract, 128 KB: at the worst rate ~5 s, for 6.3 M gas).
GAS_INITCODE_BYTE_EWASM = 24
MAX_INITCODE_SIZE_EWASM = 256 * 1024
# finish/revert's output is copied out of the frame's memory, up to 64 MiB, which Hera
# charged nothing for: from after Byzantium it pays what a copy pays, per 32-byte word
# (GAS_COPY_WORD), checked after the range and before anything is copied.
GAS_OUTPUT_WORD_EWASM = 3
