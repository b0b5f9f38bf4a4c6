"""EVMC 12 (ABI 12) data types as Python values.

Byte strings stand for EVMC's fixed-size structs: an address is 20 bytes, a bytes32 32
bytes; `evmc_uint256be` values (value, balance, gas price, difficulty, chain id) are
Python ints here and become big-endian only at the C boundary. Enum numbers are EVMC's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .constants import ZERO_ADDRESS, ZERO_BYTES32
from .errors import UnknownRevisionError

UINT256_MAX = (1 << 256) - 1
INT64_MAX = (1 << 63) - 1


class StatusCode(enum.IntEnum):
    SUCCESS = 0
    FAILURE = 1
    REVERT = 2
    OUT_OF_GAS = 3
    INVALID_INSTRUCTION = 4
    UNDEFINED_INSTRUCTION = 5
    STACK_OVERFLOW = 6
    STACK_UNDERFLOW = 7
    BAD_JUMP_DESTINATION = 8
    INVALID_MEMORY_ACCESS = 9
    CALL_DEPTH_EXCEEDED = 10
    STATIC_MODE_VIOLATION = 11
    PRECOMPILE_FAILURE = 12
    CONTRACT_VALIDATION_FAILURE = 13
    ARGUMENT_OUT_OF_RANGE = 14
    WASM_UNREACHABLE_INSTRUCTION = 15
    WASM_TRAP = 16
    INSUFFICIENT_BALANCE = 17
    INTERNAL_ERROR = -1
    REJECTED = -2
    OUT_OF_MEMORY = -3


class Revision(enum.IntEnum):
    FRONTIER = 0
    HOMESTEAD = 1
    TANGERINE_WHISTLE = 2
    SPURIOUS_DRAGON = 3
    BYZANTIUM = 4
    CONSTANTINOPLE = 5
    PETERSBURG = 6
    ISTANBUL = 7
    BERLIN = 8
    LONDON = 9
    PARIS = 10
    SHANGHAI = 11
    CANCUN = 12
    PRAGUE = 13
    OSAKA = 14
    EXPERIMENTAL = 15

    @classmethod
    def parse(cls, name: str) -> Revision:
        """A revision from its name, case-insensitively (`Byzantium`, `byzantium`)."""
        try:
            return cls[name.strip().upper().replace(" ", "_")]
        except KeyError:
            raise UnknownRevisionError(f"unknown revision {name!r}; known: "
                             f"{', '.join(r.name.lower() for r in cls)}") from None


class CallKind(enum.IntEnum):
    CALL = 0
    DELEGATECALL = 1
    CALLCODE = 2
    CREATE = 3
    CREATE2 = 4
    EOFCREATE = 5


class Flags(enum.IntFlag):
    NONE = 0
    STATIC = 1
    DELEGATED = 2


class Capability(enum.IntFlag):
    EVM1 = 1
    EWASM = 2
    PRECOMPILES = 4


class StorageStatus(enum.IntEnum):
    """evmc_storage_status since EVMC 10 (EIP-2200 cases)."""

    ASSIGNED = 0
    ADDED = 1
    DELETED = 2
    MODIFIED = 3
    DELETED_ADDED = 4
    MODIFIED_DELETED = 5
    DELETED_RESTORED = 6
    ADDED_DELETED = 7
    MODIFIED_RESTORED = 8


class AccessStatus(enum.IntEnum):
    COLD = 0
    WARM = 1


@dataclass(frozen=True, slots=True)
class Message:
    """evmc_message. `recipient` is the account whose storage and balance the code acts
    on; `code_address` the account whose code runs (they differ for DELEGATECALL and
    CALLCODE: EVMC 10+ semantics, which this engine follows when it builds messages)."""

    kind: CallKind = CallKind.CALL
    flags: Flags = Flags.NONE
    depth: int = 0
    gas: int = 0
    recipient: bytes = ZERO_ADDRESS
    sender: bytes = ZERO_ADDRESS
    input: bytes = b""
    value: int = 0
    create2_salt: bytes = ZERO_BYTES32
    code_address: bytes = ZERO_ADDRESS
    code: bytes | None = None  # EVMC 12: code of EOF create; unused by Ewasm

    @property
    def is_static(self) -> bool:
        return bool(self.flags & Flags.STATIC)


@dataclass(frozen=True, slots=True)
class Result:
    """evmc_result. EVMC's rule: gas_left is 0 unless SUCCESS or REVERT, gas_refund 0
    unless SUCCESS; `Result.make` enforces it so no caller can get it wrong."""

    status: StatusCode
    gas_left: int = 0
    gas_refund: int = 0
    output: bytes = b""
    create_address: bytes = ZERO_ADDRESS
    # Why it failed, for people (not part of EVMC; never read by a host's logic).
    message: str = field(default="", compare=False)

    @classmethod
    def make(cls, status: StatusCode, gas_left: int = 0, output: bytes = b"", *,
             gas_refund: int = 0, create_address: bytes = ZERO_ADDRESS,
             message: str = "") -> Result:
        if type(status) is not StatusCode:
            status = StatusCode(status)
        if status is not StatusCode.SUCCESS:
            gas_refund = 0
            if status is not StatusCode.REVERT:
                gas_left = 0
        if type(output) is not bytes:
            output = bytes(output)
        return cls(status, gas_left, gas_refund, output, create_address, message)

    @property
    def ok(self) -> bool:
        return self.status == StatusCode.SUCCESS


@dataclass(frozen=True, slots=True)
class TxContext:
    """evmc_tx_context (ABI 12). `block_prev_randao` is the difficulty before Paris."""

    tx_gas_price: int = 0
    tx_origin: bytes = ZERO_ADDRESS
    block_coinbase: bytes = ZERO_ADDRESS
    block_number: int = 0
    block_timestamp: int = 0
    block_gas_limit: int = 0
    block_prev_randao: int = 0
    chain_id: int = 0
    block_base_fee: int = 0
    blob_base_fee: int = 0
    blob_hashes: tuple[bytes, ...] = ()
    initcodes: tuple[tuple[bytes, bytes], ...] = ()
