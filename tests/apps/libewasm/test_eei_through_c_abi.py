"""Every EEI host function through the C ABI, in both directions at once.

`load_vm(libewasm.so)` puts two C boundaries between the engine and the host: the Python
host behind loader.py's C host table, the engine behind libewasm.so's `execute`, each
with its own struct conversions (messages, results with create addresses and released
outputs, the 256-byte tx context, bytes32 and uint256 returns by value, log topics,
copied code). The EEI fixtures (fixtures/eei/*.wat) are run both through that path and
by `ewasm.execute` directly, on identical MockedHosts, and must give equal results and
leave equal records on the host (storage, calls with their messages, logs,
self-destructs, block-hash requests, account accesses). Each case also states the status
it must end with, so that an equivalence of two identical failures cannot pass as a
success. One case re-enters the VM from the host's `call` (a child contract run through
the same C path from the engine's worker thread).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

import ewasm
from evmc_bridge import CallKind, Flags, Message, Result, Revision, StatusCode, TxContext
from evmc_bridge.mocked_host import MockedAccount, MockedHost

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "eei"
S = StatusCode
GAS = 1_000_000

SELF = bytes(range(0x10, 0x24))
CALLER = bytes(range(0x30, 0x44))
OTHER = bytes(range(0x50, 0x64))
ABSENT = bytes(range(0x60, 0x74))
NEW = bytes(range(0xB0, 0xC4))
EXT_CODE = bytes(range(7, 97))
KEY = bytes(range(0xA0, 0xC0))
VALUE = bytes(range(0xC0, 0xE0))
HASH = bytes(range(0x40, 0x60))
TX = TxContext(tx_gas_price=0x0102030405, tx_origin=bytes(range(0x70, 0x84)),
               block_coinbase=bytes(range(0x90, 0xA4)), block_number=0x0A0B0C0D0E0F,
               block_timestamp=0x5F5E1000, block_gas_limit=0x0102030405060708,
               block_prev_randao=int.from_bytes(bytes(range(1, 33)), "big"), chain_id=66,
               block_base_fee=7, blob_base_fee=3)


def u32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


@pytest.fixture(scope="module")
def vm(library):
    from evmc_bridge.loader import load_vm

    with load_vm(library) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def code(wat) -> dict[str, bytes]:
    return {p.stem.removeprefix("eei_"): wat(p.read_text()) for p in FIXTURES.glob("eei_*.wat")}


def answer(message: Message) -> Result:
    """The host's `call`: a different, deterministic answer per kind of call."""
    if message.kind == CallKind.CREATE:
        return Result.make(S.SUCCESS, message.gas // 2, create_address=NEW)
    if message.kind == CallKind.DELEGATECALL:
        return Result.make(S.REVERT, message.gas - 7, b"no: " + message.input[:8])
    if message.kind == CallKind.CALLCODE:
        return Result.make(S.FAILURE)
    return Result.make(S.SUCCESS, message.gas - 100, b"out:" + message.input[:16]
                       + message.recipient)


def make_host(call_handler: Callable[[Message], Result] = answer) -> MockedHost:
    return MockedHost(
        accounts={SELF: MockedAccount(balance=10**18, storage={KEY: VALUE}),
                  OTHER: MockedAccount(balance=0x0102030405, code=EXT_CODE)},
        tx_context=TX, block_hashes={1234: HASH}, call_handler=call_handler)


def records(host: MockedHost) -> dict:
    return {"accounts": host.accounts, "calls": host.recorded_calls,
            "logs": host.recorded_logs, "selfdestructs": host.recorded_selfdestructs,
            "block_hashes": host.recorded_block_hashes,
            "accesses": host.recorded_account_accesses, "warm": host.warm_storage}


def message(data: bytes, flags: Flags = Flags.NONE, value: int = 0) -> Message:
    return Message(kind=CallKind.CALL, flags=flags, gas=GAS, recipient=SELF, sender=CALLER,
                   input=data, value=value, code_address=SELF)


# --- call data for the fixtures (layouts in each fixture's header comment) -----------------
def getters(selector: int, width: int) -> bytes:
    return u32(64, width, selector, 64)


def storage(selector: int) -> bytes:
    # key at 20, value (or the load's result) at 52; the finish window shows [52, 84)
    return u32(52, 32, selector, 20, 52) + KEY + (VALUE[::-1] if selector == 0 else bytes(32))


def log(n: int) -> bytes:
    topics = b"".join(bytes(range(32 * i + 1, 32 * i + 33)) for i in range(4))
    return u32(0, 0, 192, 18, n, 64, 96, 128, 160).ljust(64, b"\0") + topics + b"log data, in order"


def external(selector: int, who: bytes) -> bytes:
    return u32(0x100, 16, selector, 32, 0x100).ljust(32, b"\0") + who


def copy(selector: int, s: int, n: int) -> bytes:
    return u32(0x1000, n, selector, 0x1000, s, n) + OTHER + bytes(range(100))


def block_hash(number: int) -> bytes:
    return u32(20, 36) + struct.pack("<q", number) + u32(24, 20) + b"\xff" * 40


def end(selector: int, beneficiary: bytes = OTHER) -> bytes:
    tail = b"the output bytes"
    return u32(selector, 12 if selector != 2 else 12 + len(tail), len(tail)) + tail + beneficiary


def calls(*records: tuple[int, int, int, int, int]) -> bytes:
    """Records (kind, value, data length, gas, create result offset); every record's
    address is OTHER and its data the tail's storage-contract call data."""
    t = 16 + 32 * len(records)
    address_at, value_at, data_at = t, t + 20, t + 36
    tail = OTHER + (1000).to_bytes(16, "little") + storage(0)
    body = b"".join(struct.pack("<6Iq", kind, address_at, value_at if value else 0x7000,
                                data_at, length, result_at, gas)
                    for kind, value, length, gas, result_at in records)
    return u32(0x8000, 0x100, len(records), 0) + body + tail


ALL_CALLS = calls((0, 1, 8, 50_000, 0), (1, 1, 16, 40_000, 0), (2, 0, 4, 30_000, 0),
                  (3, 0, 0, 20_000, 0), (4, 1, 12, 0, 0x80C0), (0, 0, 3, 10_000, 0))

# name -> (fixture, call data, flags, the status both must end with)
CASES = {
    **{f"getter {sel}": ("getters", getters(sel, 32), Flags.NONE, S.SUCCESS)
       for sel in range(14)},
    "storageStore": ("storage", storage(0), Flags.NONE, S.SUCCESS),
    "storageLoad": ("storage", storage(1), Flags.NONE, S.SUCCESS),
    "storageStore static": ("storage", storage(0), Flags.STATIC, S.STATIC_MODE_VIOLATION),
    **{f"log {n} topics": ("log", log(n), Flags.NONE, S.SUCCESS) for n in range(5)},
    "log 5 topics": ("log", log(5), Flags.NONE, S.CONTRACT_VALIDATION_FAILURE),
    "external balance": ("external", external(0, OTHER), Flags.NONE, S.SUCCESS),
    "external code size": ("external", external(1, OTHER), Flags.NONE, S.SUCCESS),
    "external balance absent": ("external", external(0, ABSENT), Flags.NONE, S.SUCCESS),
    "callDataCopy": ("copy", copy(0, 2, 40), Flags.NONE, S.SUCCESS),
    "codeCopy": ("copy", copy(1, 3, 50), Flags.NONE, S.SUCCESS),
    "externalCodeCopy": ("copy", copy(2, 5, 60), Flags.NONE, S.SUCCESS),
    "externalCodeCopy past the end": ("copy", copy(2, 5, 90), Flags.NONE,
                                      S.INVALID_MEMORY_ACCESS),
    "returnDataCopy": ("copy", copy(3, 1, 20), Flags.NONE, S.SUCCESS),
    "block hash known": ("block_hash", block_hash(1234), Flags.NONE, S.SUCCESS),
    "block hash unknown": ("block_hash", block_hash(99), Flags.NONE, S.SUCCESS),
    "finish": ("end", end(0), Flags.NONE, S.SUCCESS),
    "revert": ("end", end(1), Flags.NONE, S.REVERT),
    "selfDestruct": ("end", end(2), Flags.NONE, S.SUCCESS),
    "selfDestruct to an absent account": ("end", end(2, ABSENT), Flags.NONE, S.SUCCESS),
    "unreachable": ("end", end(9), Flags.NONE, S.FAILURE),
    "all call kinds and create": ("calls", ALL_CALLS, Flags.NONE, S.SUCCESS),
    "calls in static mode": ("calls", calls((3, 0, 4, 20_000, 0), (0, 0, 4, 20_000, 0)),
                             Flags.STATIC, S.SUCCESS),
    "useGas": ("use_gas", u32(0, 0) + struct.pack("<q", 12345), Flags.NONE, S.SUCCESS),
    "useGas out of gas": ("use_gas", u32(0, 0) + struct.pack("<q", GAS), Flags.NONE,
                          S.OUT_OF_GAS),
    "useGas negative": ("use_gas", u32(0, 0) + struct.pack("<q", -1), Flags.NONE,
                        S.ARGUMENT_OUT_OF_RANGE),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_c_abi_both_ways_matches_direct_execute(vm, code, name):
    fixture, data, flags, status = CASES[name]
    direct_host, c_host = make_host(), make_host()
    expected = ewasm.execute(direct_host, Revision.BYZANTIUM, message(data, flags),
                             code[fixture], evm1_mode="fallback")
    assert expected.status == status, expected.message
    got = vm.execute(c_host, Revision.BYZANTIUM, message(data, flags), code[fixture])
    assert got == expected, got.message
    assert records(c_host) == records(direct_host)


def test_a_child_call_reenters_the_vm_through_both_c_boundaries(vm, code):
    """The host's `call` runs the callee (the storage fixture) through the same path:
    from the engine's worker thread back into libewasm.so, nested two levels deep."""

    def host_for(execute) -> MockedHost:
        def child(m: Message) -> Result:
            if m.kind != CallKind.CALL or m.depth > 1:
                return answer(m)
            return execute(host, Revision.BYZANTIUM, m, code["storage"])

        host = make_host(child)
        return host

    direct_host = host_for(lambda *a: ewasm.execute(*a, evm1_mode="fallback"))
    c_host = host_for(vm.execute)
    data = calls((0, 1, 64 + 20, 200_000, 0), (0, 0, 64 + 20, 100_000, 0))
    expected = ewasm.execute(direct_host, Revision.BYZANTIUM, message(data), code["calls"],
                             evm1_mode="fallback")
    assert expected.status == S.SUCCESS, expected.message
    # Both children stored VALUE[::-1] under KEY in the callee's (OTHER's) storage, and
    # each call answered 0 (success).
    assert direct_host.accounts[OTHER].storage == {KEY: VALUE[::-1]}
    assert expected.output[:8] == bytes(8)
    got = vm.execute(c_host, Revision.BYZANTIUM, message(data), code["calls"])
    assert got == expected, got.message
    assert records(c_host) == records(direct_host)
