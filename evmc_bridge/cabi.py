"""EVMC ABI 12 in C: the one place that owns the struct layouts, enums and function-pointer
types both directions of the bridge use (written from ../shared/docs/evmc.md §5, not
copied from EVMC's headers), and the conversions between those structs and the Python
values of `evmc_bridge.types`.

`CDEF` is valid both as cffi declarations and as C (the embedded library compiles it),
so the layout the Python side reads is the layout the C side was built with;
`check_layout` asserts the sizes evmc.md measured on the real headers.
"""

from __future__ import annotations

import struct
from typing import Any

from .errors import BadMessageError
from .types import CallKind, Flags, Message, Result, StatusCode, TxContext

ABI_VERSION = 12

CDEF = """
typedef struct evmc_bytes32 { uint8_t bytes[32]; } evmc_bytes32;
typedef struct evmc_bytes32 evmc_uint256be;
typedef struct evmc_address { uint8_t bytes[20]; } evmc_address;
typedef uint32_t evmc_capabilities_flagset;

struct evmc_message {
    int32_t kind;
    uint32_t flags;
    int32_t depth;
    int64_t gas;
    evmc_address recipient;
    evmc_address sender;
    const uint8_t* input_data;
    size_t input_size;
    evmc_uint256be value;
    evmc_bytes32 create2_salt;
    evmc_address code_address;
    const uint8_t* code;
    size_t code_size;
};

struct evmc_result;
typedef void (*evmc_release_result_fn)(const struct evmc_result* result);

struct evmc_result {
    int32_t status_code;
    int64_t gas_left;
    int64_t gas_refund;
    const uint8_t* output_data;
    size_t output_size;
    evmc_release_result_fn release;
    evmc_address create_address;
    uint8_t padding[4];
};

struct evmc_tx_initcode { evmc_bytes32 hash; const uint8_t* code; size_t code_size; };

struct evmc_tx_context {
    evmc_uint256be tx_gas_price;
    evmc_address tx_origin;
    evmc_address block_coinbase;
    int64_t block_number;
    int64_t block_timestamp;
    int64_t block_gas_limit;
    evmc_uint256be block_prev_randao;
    evmc_uint256be chain_id;
    evmc_uint256be block_base_fee;
    evmc_uint256be blob_base_fee;
    const evmc_bytes32* blob_hashes;
    size_t blob_hashes_count;
    const struct evmc_tx_initcode* initcodes;
    size_t initcodes_count;
};

struct evmc_host_context;

struct evmc_host_interface {
    bool (*account_exists)(struct evmc_host_context*, const evmc_address*);
    evmc_bytes32 (*get_storage)(struct evmc_host_context*, const evmc_address*,
                                const evmc_bytes32*);
    int32_t (*set_storage)(struct evmc_host_context*, const evmc_address*,
                           const evmc_bytes32*, const evmc_bytes32*);
    evmc_uint256be (*get_balance)(struct evmc_host_context*, const evmc_address*);
    size_t (*get_code_size)(struct evmc_host_context*, const evmc_address*);
    evmc_bytes32 (*get_code_hash)(struct evmc_host_context*, const evmc_address*);
    size_t (*copy_code)(struct evmc_host_context*, const evmc_address*, size_t, uint8_t*,
                        size_t);
    bool (*selfdestruct)(struct evmc_host_context*, const evmc_address*,
                         const evmc_address*);
    struct evmc_result (*call)(struct evmc_host_context*, const struct evmc_message*);
    struct evmc_tx_context (*get_tx_context)(struct evmc_host_context*);
    evmc_bytes32 (*get_block_hash)(struct evmc_host_context*, int64_t);
    void (*emit_log)(struct evmc_host_context*, const evmc_address*, const uint8_t*, size_t,
                     const evmc_bytes32[], size_t);
    int32_t (*access_account)(struct evmc_host_context*, const evmc_address*);
    int32_t (*access_storage)(struct evmc_host_context*, const evmc_address*,
                              const evmc_bytes32*);
    evmc_bytes32 (*get_transient_storage)(struct evmc_host_context*, const evmc_address*,
                                          const evmc_bytes32*);
    void (*set_transient_storage)(struct evmc_host_context*, const evmc_address*,
                                  const evmc_bytes32*, const evmc_bytes32*);
};

struct evmc_vm;
typedef void (*evmc_destroy_fn)(struct evmc_vm*);
typedef struct evmc_result (*evmc_execute_fn)(struct evmc_vm*,
    const struct evmc_host_interface*, struct evmc_host_context*, int32_t,
    const struct evmc_message*, const uint8_t*, size_t);
typedef evmc_capabilities_flagset (*evmc_get_capabilities_fn)(struct evmc_vm*);
typedef int32_t (*evmc_set_option_fn)(struct evmc_vm*, const char*, const char*);

struct evmc_vm {
    const int abi_version;
    const char* name;
    const char* version;
    evmc_destroy_fn destroy;
    evmc_execute_fn execute;
    evmc_get_capabilities_fn get_capabilities;
    evmc_set_option_fn set_option;
};
"""

# Sizes measured with gcc on EVMC 12's headers (evmc.md §5.4).
LAYOUT = {"struct evmc_message": 184, "struct evmc_result": 72,
          "struct evmc_tx_context": 256, "struct evmc_vm": 56,
          "struct evmc_host_interface": 16 * 8}

MESSAGE_SIZE = 184
SET_OPTION_SUCCESS, SET_OPTION_INVALID_NAME, SET_OPTION_INVALID_VALUE = 0, 1, 2


def check_layout(ffi: Any) -> None:
    for name, size in LAYOUT.items():
        if ffi.sizeof(name) != size:
            raise AssertionError(f"sizeof({name}) is {ffi.sizeof(name)}, EVMC 12 says {size}")
    offsets = {"recipient": 24, "sender": 44, "input_data": 64, "input_size": 72,
               "value": 80, "create2_salt": 112, "code_address": 144}
    if any(ffi.offsetof("struct evmc_message", f) != o for f, o in offsets.items()) or \
            ffi.offsetof("struct evmc_result", "create_address") != 48:
        raise AssertionError("EVMC 12 field offsets differ from evmc.md §5.4")


# --- conversions (ffi passed in: the embedded library and the loader have their own) -----
def get_bytes(ffi: Any, array: Any, size: int) -> bytes:
    return bytes(ffi.buffer(array, size))


def u256(ffi: Any, word: Any) -> int:
    return int.from_bytes(ffi.buffer(word.bytes, 32), "big")


def set_u256(word: Any, value: int) -> None:
    word.bytes[0:32] = value.to_bytes(32, "big")


# evmc_message's scalar head: kind, flags, depth, (pad), gas (evmc.md §5.4).
_MESSAGE_HEAD = struct.Struct("<iIi4xq")
_KINDS = {int(k): k for k in CallKind}


def message_from_c(ffi: Any, msg: Any) -> Message:
    """The message as Python values; BadMessageError for a kind EVMC does not define.
    Read as one copy of the struct (one call into cffi, not one per field: this runs for
    every execution a C host asks for)."""
    raw = ffi.buffer(msg, MESSAGE_SIZE)[:]
    kind, flags, depth, gas = _MESSAGE_HEAD.unpack_from(raw)
    ckind = _KINDS.get(kind)
    if ckind is None:
        raise BadMessageError(f"call kind {kind} is not EVMC's")
    size = msg.input_size
    data = bytes(ffi.buffer(msg.input_data, size)) if size else b""
    return Message(kind=ckind, flags=Flags(flags), depth=depth, gas=gas,
                   recipient=raw[24:44], sender=raw[44:64], input=data,
                   value=int.from_bytes(raw[80:112], "big"), create2_salt=raw[112:144],
                   code_address=raw[144:164])


def message_to_c(ffi: Any, message: Message) -> tuple[Any, list]:
    """A new evmc_message; the list keeps the buffers it points to alive."""
    msg = ffi.new("struct evmc_message*")
    keep: list = []
    msg.kind = int(message.kind)
    msg.flags = int(message.flags)
    msg.depth = message.depth
    msg.gas = message.gas
    msg.recipient.bytes[0:20] = message.recipient
    msg.sender.bytes[0:20] = message.sender
    if message.input:
        buf = ffi.from_buffer(message.input)
        keep.append(buf)
        msg.input_data = buf
        msg.input_size = len(message.input)
    set_u256(msg.value, message.value)
    msg.create2_salt.bytes[0:32] = message.create2_salt
    msg.code_address.bytes[0:20] = message.code_address
    return msg, keep


def result_from_c(ffi: Any, res: Any) -> Result:
    """Copy an evmc_result (the caller releases it)."""
    out = get_bytes(ffi, res.output_data, res.output_size) if res.output_size else b""
    try:
        status = StatusCode(res.status_code)
    except ValueError:
        return Result(StatusCode.INTERNAL_ERROR,
                      message=f"unknown status code {res.status_code}")
    return Result(status, res.gas_left, res.gas_refund, out,
                  get_bytes(ffi, res.create_address.bytes, 20))


def tx_context_from_c(ffi: Any, ctx: Any) -> TxContext:
    return TxContext(tx_gas_price=u256(ffi, ctx.tx_gas_price),
                     tx_origin=get_bytes(ffi, ctx.tx_origin.bytes, 20),
                     block_coinbase=get_bytes(ffi, ctx.block_coinbase.bytes, 20),
                     block_number=ctx.block_number, block_timestamp=ctx.block_timestamp,
                     block_gas_limit=ctx.block_gas_limit,
                     block_prev_randao=u256(ffi, ctx.block_prev_randao),
                     chain_id=u256(ffi, ctx.chain_id),
                     block_base_fee=u256(ffi, ctx.block_base_fee),
                     blob_base_fee=u256(ffi, ctx.blob_base_fee),
                     blob_hashes=tuple(get_bytes(ffi, ctx.blob_hashes[i].bytes, 32)
                                       for i in range(ctx.blob_hashes_count)))


def tx_context_to_c(ffi: Any, tx: TxContext, out: Any) -> None:
    """Fill a struct evmc_tx_context (no blob hashes or initcodes: Ewasm reads neither)."""
    set_u256(out.tx_gas_price, tx.tx_gas_price)
    out.tx_origin.bytes[0:20] = tx.tx_origin
    out.block_coinbase.bytes[0:20] = tx.block_coinbase
    out.block_number = tx.block_number
    out.block_timestamp = tx.block_timestamp
    out.block_gas_limit = tx.block_gas_limit
    set_u256(out.block_prev_randao, tx.block_prev_randao)
    set_u256(out.chain_id, tx.chain_id)
    set_u256(out.block_base_fee, tx.block_base_fee)
    set_u256(out.blob_base_fee, tx.blob_base_fee)
