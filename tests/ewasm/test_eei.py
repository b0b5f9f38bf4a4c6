"""The EEI one function (or rule) at a time, on the contracts of fixtures/eei/eei_*.wat.

Every expected gas figure is computed here from the gas table of
../shared/docs/eei.md (§2.3, §2.7); byte orders and bounds rules come from §2.1, §2.3,
§6.2 and §6.3; contract-interface rules from ewasm-contract-interface.md §1 and §7.
Nothing the engine computes is used as an expectation.

Every fixture first reads its whole call data into memory at 0 (getCallDataSize, then
callDataCopy: `read_cd(data)` gas) and most end with finish over a window the call data
names, so a test sees exactly the bytes an EEI function wrote.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

import ewasm
import gasmeter
from evmc_bridge import (
    ZERO_ADDRESS,
    ZERO_BYTES32,
    AccessStatus,
    CallKind,
    Flags,
    Message,
    Result,
    Revision,
    StatusCode,
    StorageStatus,
    TxContext,
)
from evmc_bridge.mocked_host import MockedAccount, MockedHost
from ewasm.contract import CONTRACT_FEATURES

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "eei"
S = StatusCode
GAS = 1_000_000
MEM = 65536  # every fixture has one page of memory
U32_MAX = 0xFFFFFFFF

# Addresses with no symmetry, so that any reversal or truncation shows.
SELF = bytes(range(0x10, 0x24))
CALLER = bytes(range(0x30, 0x44))
OTHER = bytes(range(0x50, 0x64))
ORIGIN = bytes(range(0x70, 0x84))
COINBASE = bytes(range(0x90, 0xA4))
NEW = bytes(range(0xB0, 0xC4))


def W(n: int) -> int:
    return (n + 31) // 32


def copy_gas(n: int) -> int:
    """callDataCopy / codeCopy / returnDataCopy: 3 + 3 per word."""
    return 3 + 3 * W(n)


def read_cd(data: bytes) -> int:
    """What every fixture spends reading its call data: getCallDataSize + callDataCopy."""
    return 2 + copy_gas(len(data))


def u32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


@pytest.fixture(scope="module")
def code(wat) -> dict[str, bytes]:
    return {p.stem.removeprefix("eei_"): wat(p.read_text()) for p in FIXTURES.glob("eei_*.wat")}


def run(contract: bytes, data: bytes = b"", host: MockedHost | None = None, *, gas: int = GAS,
        value: int = 0, flags: Flags = Flags.NONE, depth: int = 0,
        kind: CallKind = CallKind.CALL, **options) -> tuple[Result, MockedHost]:
    host = MockedHost() if host is None else host
    msg = Message(kind=kind, flags=flags, depth=depth, gas=gas, recipient=SELF, sender=CALLER,
                  input=data, value=value, code_address=SELF)
    return ewasm.execute(host, Revision.BYZANTIUM, msg, contract, **options), host


def assert_failed(result: Result, status: StatusCode) -> None:
    """A non-SUCCESS/REVERT end: that status, no gas and no output (eei.md §4.1 step 6)."""
    assert result.status == status, result.message
    assert result.gas_left == 0
    assert result.output == b""


def assert_ok(result: Result, gas_left: int, output: bytes | None = None) -> None:
    assert result.status == S.SUCCESS, result.message
    assert result.gas_left == gas_left
    if output is not None:
        assert result.output == output


TX = TxContext(tx_gas_price=0x0102030405, tx_origin=ORIGIN, block_coinbase=COINBASE,
               block_number=0x0A0B0C0D0E0F, block_timestamp=0x5F5E1000,
               block_gas_limit=0x0102030405060708,
               block_prev_randao=int.from_bytes(bytes(range(1, 33)), "big"))


# --- getters (eei_getters.wat) --------------------------------------------------------------
def getters_data(selector: int, r: int, window: int, fill: bytes = b"") -> bytes:
    return u32(r, window, selector, r) + fill


@pytest.mark.parametrize("selector,expected", [(0, SELF), (1, CALLER), (2, ORIGIN),
                                               (3, COINBASE)],
                         ids=["getAddress", "getCaller", "getTxOrigin", "getBlockCoinbase"])
def test_address_getters_write_20_bytes_verbatim(code, selector, expected):
    # r points into a run of 0xff in the call data: exactly 20 bytes must change.
    data = getters_data(selector, 16, 24, b"\xff" * 24)
    r, _ = run(code["getters"], data, MockedHost(tx_context=TX))
    assert_ok(r, GAS - read_cd(data) - 2, expected + b"\xff" * 4)


U128_CASES = [
    (0x0102030405060708090A0B0C0D0E0F10, bytes.fromhex("100f0e0d0c0b0a090807060504030201")),
    (5, b"\x05" + bytes(15)),
    (2**128 - 1, b"\xff" * 16),
]


@pytest.mark.parametrize("value,expected", U128_CASES)
def test_get_call_value_is_u128_little_endian(code, value, expected):
    data = getters_data(4, 16, 20, b"\xee" * 20)
    r, _ = run(code["getters"], data, value=value)
    assert_ok(r, GAS - read_cd(data) - 2, expected + b"\xee" * 4)


@pytest.mark.parametrize("value,expected", U128_CASES)
def test_get_tx_gas_price_is_u128_little_endian(code, value, expected):
    data = getters_data(5, 16, 20, b"\xee" * 20)
    r, _ = run(code["getters"], data, MockedHost(tx_context=TxContext(tx_gas_price=value)))
    assert_ok(r, GAS - read_cd(data) - 2, expected + b"\xee" * 4)


@pytest.mark.parametrize("value", [2**128, 2**255 + 1])
def test_call_value_of_128_bits_or_more_is_out_of_range(code, value):
    r, _ = run(code["getters"], getters_data(4, 0x100, 16), value=value)
    assert_failed(r, S.ARGUMENT_OUT_OF_RANGE)


def test_gas_price_of_128_bits_or_more_is_out_of_range(code):
    host = MockedHost(tx_context=TxContext(tx_gas_price=2**128))
    r, _ = run(code["getters"], getters_data(5, 0x100, 16), host)
    assert_failed(r, S.ARGUMENT_OUT_OF_RANGE)


@pytest.mark.parametrize("difficulty,expected", [
    (int.from_bytes(bytes(range(1, 33)), "big"), bytes(range(32, 0, -1))),
    (0x020000, b"\x00\x00\x02" + bytes(29)),
    (2**256 - 1, b"\xff" * 32),
])
def test_get_block_difficulty_is_u256_little_endian_of_prev_randao(code, difficulty, expected):
    data = getters_data(6, 16, 36, b"\xee" * 36)
    host = MockedHost(tx_context=TxContext(block_prev_randao=difficulty))
    r, _ = run(code["getters"], data, host)
    assert_ok(r, GAS - read_cd(data) - 2, expected + b"\xee" * 4)


WRITERS = [(0, 20), (1, 20), (2, 20), (3, 20), (4, 16), (5, 16), (6, 32)]
WRITER_IDS = ["getAddress", "getCaller", "getTxOrigin", "getBlockCoinbase", "getCallValue",
              "getTxGasPrice", "getBlockDifficulty"]


@pytest.mark.parametrize("selector,width", WRITERS, ids=WRITER_IDS)
def test_getter_result_must_fit_in_memory(code, selector, width):
    host = MockedHost(tx_context=TX)
    data = getters_data(selector, MEM - width, width)
    r, _ = run(code["getters"], data, host, value=1)
    assert_ok(r, GAS - read_cd(data) - 2)
    assert len(r.output) == width
    for bad in (MEM - width + 1, MEM, U32_MAX):  # U32_MAX + width wraps to a small number
        data = u32(0, 0, selector, bad)  # finish over (0, 0): only the getter can fail
        r, _ = run(code["getters"], data, host, value=1)
        assert_failed(r, S.INVALID_MEMORY_ACCESS)


def number_getter(code, selector: int, host: MockedHost | None = None,
                  fill: bytes = b"") -> tuple[Result, bytes]:
    data = getters_data(selector, 0x100, 8, fill)
    r, _ = run(code["getters"], data, host)
    return r, data


def test_get_gas_left_reports_the_counter_after_its_own_charge(code):
    r, data = number_getter(code, 7)
    expected = GAS - read_cd(data) - 2
    assert_ok(r, expected, struct.pack("<q", expected))


def test_get_call_data_size(code):
    r, data = number_getter(code, 8, fill=bytes(77))
    assert len(data) == 93
    assert_ok(r, GAS - read_cd(data) - 2, struct.pack("<Q", 93))


def test_get_code_size_is_the_size_of_the_code_passed(code):
    r, data = number_getter(code, 9)
    assert_ok(r, GAS - read_cd(data) - 2, struct.pack("<Q", len(code["getters"])))


def test_get_code_size_is_the_size_of_the_sent_code_when_given(code):
    data = getters_data(9, 0x100, 8, b"")
    metered = gasmeter.inject(code["getters"], features=CONTRACT_FEATURES)
    r, _ = run(metered, data, sent_code=code["getters"])
    assert r.status == S.SUCCESS and r.output == struct.pack("<Q", len(code["getters"]))
    r, _ = run(metered, data)
    assert r.status == S.SUCCESS and r.output == struct.pack("<Q", len(metered))


@pytest.mark.parametrize("selector,field", [(10, "block_gas_limit"), (11, "block_number"),
                                            (12, "block_timestamp")])
def test_block_number_getters(code, selector, field):
    r, data = number_getter(code, selector, MockedHost(tx_context=TX))
    assert_ok(r, GAS - read_cd(data) - 2, struct.pack("<q", getattr(TX, field)))


def test_get_return_data_size_is_zero_before_any_call(code):
    r, data = number_getter(code, 13)
    assert_ok(r, GAS - read_cd(data) - 2, bytes(8))


def test_out_of_gas_in_an_eei_charge(code):
    data = getters_data(0, 0x100, 0)
    need = read_cd(data) + 2
    r, _ = run(code["getters"], data, gas=need)
    assert_ok(r, 0, b"")
    r, _ = run(code["getters"], data, gas=need - 1)
    assert_failed(r, S.OUT_OF_GAS)
    # The copy charge (3 + 3 per word) as well.
    r, _ = run(code["getters"], data, gas=read_cd(data) - 1)
    assert_failed(r, S.OUT_OF_GAS)


# --- useGas (eei_use_gas.wat) ----------------------------------------------------------------
def use_gas_data(amount: int) -> bytes:
    return u32(0, 0) + struct.pack("<q", amount)


@pytest.mark.parametrize("amount", [0, 1, 12345])
def test_use_gas_charges_exactly_the_amount(code, amount):
    data = use_gas_data(amount)
    r, _ = run(code["use_gas"], data)
    assert_ok(r, GAS - read_cd(data) - amount, b"")


def test_use_gas_of_all_that_is_left_and_one_more(code):
    left = GAS - read_cd(use_gas_data(0))
    r, _ = run(code["use_gas"], use_gas_data(left))
    assert_ok(r, 0)
    r, _ = run(code["use_gas"], use_gas_data(left + 1))
    assert_failed(r, S.OUT_OF_GAS)


@pytest.mark.parametrize("amount", [-1, -(2**63)])
def test_use_gas_with_a_negative_amount_is_out_of_range(code, amount):
    r, _ = run(code["use_gas"], use_gas_data(amount))
    assert_failed(r, S.ARGUMENT_OUT_OF_RANGE)


# --- the four copies (eei_copy.wat) ----------------------------------------------------------
R0 = 0x1000
COPY_TAIL = bytes(range(100))
EXT_CODE = bytes(range(7, 97))  # 90 bytes
RETURNED = bytes(range(200, 256))  # 56 bytes
COPIES = ["callDataCopy", "codeCopy", "externalCodeCopy", "returnDataCopy"]


def copy_data(selector: int, r: int, s: int, n: int, window: tuple[int, int] | None = None
              ) -> bytes:
    fo, fl = window if window is not None else (r, n)
    return u32(fo, fl, selector, r, s, n) + OTHER + COPY_TAIL


def copy_host() -> MockedHost:
    host = MockedHost(accounts={OTHER: MockedAccount(code=EXT_CODE)})
    host.call_handler = lambda m: Result.make(S.SUCCESS, 0, RETURNED)
    return host


def copy_source(code, which: str, data: bytes) -> bytes:
    """What the copy reads from; for callDataCopy the call data itself."""
    return {"callDataCopy": data, "codeCopy": code["copy"], "externalCodeCopy": EXT_CODE,
            "returnDataCopy": RETURNED}[which]


def copy_cost(which: str, n: int) -> int:
    if which == "externalCodeCopy":
        return 700 + 3 * W(n)
    if which == "returnDataCopy":
        return 700 + copy_gas(n)  # the callStatic that fills the buffer forwards 0 gas
    return copy_gas(n)


# (source offset, length, result offset, ok) with S = the source's length.
COPY_CASES = {
    "whole source": (lambda S: (0, S, R0), True),
    "tail of the source": (lambda S: (1, S - 1, R0), True),
    "one byte past the end (no zero fill)": (lambda S: (1, S, R0), False),
    "zero length at the end": (lambda S: (S, 0, R0), True),
    "zero length past the end": (lambda S: (S + 1, 0, R0), False),
    "source offset + length wraps": (lambda S: (U32_MAX, 2, R0), False),
    "destination at the end of memory": (lambda S: (0, 16, MEM - 16), True),
    "destination one byte past memory": (lambda S: (0, 16, MEM - 15), False),
    "zero length at the end of memory": (lambda S: (0, 0, MEM), True),
    "zero length past memory": (lambda S: (0, 0, MEM + 1), False),
    "destination offset + length wraps": (lambda S: (0, 2, U32_MAX), False),
}


@pytest.mark.parametrize("case", COPY_CASES)
@pytest.mark.parametrize("which", COPIES)
def test_copy_bounds(code, which, case):
    make, ok = COPY_CASES[case]
    # The call data's length does not depend on the arguments it carries.
    s, n, r = make(len(copy_source(code, which, copy_data(0, 0, 0, 0))))
    if which == "externalCodeCopy" and case == "zero length past the end":
        # eei.md §2.3: externalCodeCopy fails only "if fewer than len bytes copied", so a
        # zero-length read is never short, wherever it starts.
        ok = True
    # A failing case finishes over (0, 0), so that only the copy can fail.
    data = copy_data(COPIES.index(which), r, s, n, None if ok else (0, 0))
    source = copy_source(code, which, data)
    result, _ = run(code["copy"], data, copy_host())
    if ok:
        assert_ok(result, GAS - read_cd(data) - copy_cost(which, n), source[s:s + n])
    else:
        assert_failed(result, S.INVALID_MEMORY_ACCESS)


def test_external_code_copy_reads_the_address_verbatim(code):
    data = copy_data(2, R0, 3, 5)
    r, host = run(code["copy"], data, copy_host())
    assert_ok(r, GAS - read_cd(data) - 700 - 3, EXT_CODE[3:8])
    assert OTHER in host.recorded_account_accesses


def test_external_code_copy_of_an_absent_account(code):
    data = copy_data(2, R0, 0, 0)
    r, _ = run(code["copy"], data)
    assert_ok(r, GAS - read_cd(data) - 700, b"")
    r, _ = run(code["copy"], copy_data(2, R0, 0, 1, (0, 0)))
    assert_failed(r, S.INVALID_MEMORY_ACCESS)


def test_return_data_copy_of_an_empty_buffer(code):
    host = MockedHost(call_result=Result.make(S.SUCCESS, 0, b""))
    data = copy_data(3, R0, 0, 0)
    r, host = run(code["copy"], data, host)
    assert_ok(r, GAS - read_cd(data) - 700 - 3, b"")
    assert [m.gas for m in host.recorded_calls] == [0]
    for s, n in ((0, 1), (1, 0)):
        r, _ = run(code["copy"], copy_data(3, R0, s, n, (0, 0)),
                   MockedHost(call_result=Result.make(S.SUCCESS, 0, b"")))
        assert_failed(r, S.INVALID_MEMORY_ACCESS)


def test_code_copy_sees_the_sent_code_not_the_metered_code(code):
    contract = code["copy"]
    data = copy_data(1, R0, 0, len(contract))
    plain, _ = run(contract, data)
    assert_ok(plain, GAS - read_cd(data) - copy_gas(len(contract)), contract)
    # The engine runs code as given; a metering caller passes the original as sent_code.
    metered_code = gasmeter.inject(contract, features=CONTRACT_FEATURES)
    seen, _ = run(metered_code, copy_data(1, R0, 0, len(metered_code)))
    assert seen.status == S.SUCCESS and seen.output == metered_code
    metered, _ = run(metered_code, data, sent_code=contract)
    assert metered.status == S.SUCCESS and metered.output == contract
    assert metered.gas_left < plain.gas_left


def test_copy_gas_counts_whole_words(code):
    for n, words in ((31, 1), (32, 1), (33, 2), (64, 2), (65, 3)):
        data = copy_data(0, R0, 0, n)
        r, _ = run(code["copy"], data)
        assert_ok(r, GAS - read_cd(data) - (3 + 3 * words))


# --- storage (eei_storage.wat) ---------------------------------------------------------------
KEY = bytes(range(32))
LE5 = (5).to_bytes(32, "little")  # a contract's little-endian 5: EVM word 0x0500..00
SEVENS = b"\x07" * 32


def storage_data(selector: int, key: bytes = KEY, value: bytes = LE5, *, k: int = 32,
                 v: int = 64, window: tuple[int, int] = (0, 0)) -> bytes:
    return u32(*window, selector, k, v).ljust(32, b"\0") + key + value


def host_with_slot(value: bytes | None) -> MockedHost:
    storage = {} if value is None else {KEY: value}
    return MockedHost(accounts={SELF: MockedAccount(storage=storage)})


@pytest.mark.parametrize("before,value,cost", [
    (None, LE5, 20000),  # zero -> non-zero
    (SEVENS, LE5, 5000),  # non-zero -> non-zero
    (None, ZERO_BYTES32, 5000),  # zero -> zero
    (SEVENS, ZERO_BYTES32, 5000),  # non-zero -> zero (refunds are the host's job)
    (LE5, LE5, 5000),  # unchanged
])
def test_storage_store_gas_and_bytes32_verbatim(code, before, value, cost):
    data = storage_data(0, value=value)
    r, host = run(code["storage"], data, host_with_slot(before))
    assert_ok(r, GAS - read_cd(data) - cost, b"")
    assert host.accounts[SELF].storage == {KEY: value}
    assert LE5[0] == 5 and LE5[1:] == bytes(31)


def test_storage_store_runs_out_of_gas_on_the_create_surcharge(code):
    data = storage_data(0)
    r, host = run(code["storage"], data, host_with_slot(None), gas=read_cd(data) + 19999)
    assert_failed(r, S.OUT_OF_GAS)
    assert host.accounts[SELF].storage == {}
    r, host = run(code["storage"], data, host_with_slot(None), gas=read_cd(data) + 20000)
    assert_ok(r, 0)


def test_storage_load_is_verbatim_from_the_recipients_storage(code):
    host = host_with_slot(SEVENS[:31] + b"\x01")
    host.accounts[OTHER] = MockedAccount(storage={KEY: LE5})
    data = storage_data(1, v=0x100, window=(0x100, 32))
    r, _ = run(code["storage"], data, host)
    assert_ok(r, GAS - read_cd(data) - 200, SEVENS[:31] + b"\x01")
    r, _ = run(code["storage"], data)  # empty slot
    assert_ok(r, GAS - read_cd(data) - 200, ZERO_BYTES32)


def test_storage_store_then_load_round_trips(code):
    r, host = run(code["storage"], storage_data(0))
    assert r.status == S.SUCCESS
    r, _ = run(code["storage"], storage_data(1, v=0x100, window=(0x100, 32)), host)
    assert r.output == LE5


@pytest.mark.parametrize("selector,k,v", [(0, MEM - 31, 64), (0, 32, MEM - 31),
                                          (1, MEM - 31, 0x100), (1, 32, MEM - 31),
                                          (0, U32_MAX, 64), (1, 32, U32_MAX)])
def test_storage_pointers_must_be_in_memory(code, selector, k, v):
    r, host = run(code["storage"], storage_data(selector, k=k, v=v))
    assert_failed(r, S.INVALID_MEMORY_ACCESS)
    assert SELF not in host.accounts


def test_storage_store_in_static_mode_charges_5000_first(code):
    data = storage_data(0)
    r, host = run(code["storage"], data, flags=Flags.STATIC)
    assert_failed(r, S.STATIC_MODE_VIOLATION)
    assert SELF not in host.accounts
    r, _ = run(code["storage"], data, flags=Flags.STATIC, gas=read_cd(data) + 5000)
    assert_failed(r, S.STATIC_MODE_VIOLATION)
    r, _ = run(code["storage"], data, flags=Flags.STATIC, gas=read_cd(data) + 4999)
    assert_failed(r, S.OUT_OF_GAS)


def test_storage_load_is_allowed_in_static_mode(code):
    data = storage_data(1, v=0x100, window=(0x100, 32))
    r, _ = run(code["storage"], data, host_with_slot(LE5), flags=Flags.STATIC)
    assert_ok(r, GAS - read_cd(data) - 200, LE5)


# --- log (eei_log.wat) -----------------------------------------------------------------------
TOPICS = [bytes(range(32 * i + 1, 32 * i + 33)) for i in range(4)]
LOG_DATA = b"log data, in order"
TOPIC_AT = [64 + 32 * i for i in range(4)]
DATA_AT = 192


def log_data(n: int, *, d: int = DATA_AT, length: int = len(LOG_DATA),
             t: list[int] | None = None) -> bytes:
    t = TOPIC_AT if t is None else t
    return (u32(0, 0, d, length, n, *t).ljust(64, b"\0") + b"".join(TOPICS) + LOG_DATA)


def log_cost(n: int, length: int) -> int:
    return 375 + 375 * n + 8 * length


@pytest.mark.parametrize("n", range(5))
def test_log_topics_verbatim_data_and_gas(code, n):
    data = log_data(n)
    r, host = run(code["log"], data)
    assert_ok(r, GAS - read_cd(data) - log_cost(n, len(LOG_DATA)), b"")
    assert host.recorded_logs == [(SELF, LOG_DATA, tuple(TOPICS[:n]))]


def test_log_with_more_than_four_topics_is_a_validation_failure(code):
    r, host = run(code["log"], log_data(5))
    assert_failed(r, S.CONTRACT_VALIDATION_FAILURE)
    assert host.recorded_logs == []


def test_log_gas_uses_the_raw_topic_count(code):
    # 375 * (2**32 - 1) is more than GAS: out of gas before the topic-count check.
    r, _ = run(code["log"], log_data(U32_MAX))
    assert_failed(r, S.OUT_OF_GAS)


def test_log_unused_topic_pointers_are_not_checked(code):
    data = log_data(1, t=[TOPIC_AT[0], U32_MAX, MEM + 1, MEM])
    r, host = run(code["log"], data)
    assert_ok(r, GAS - read_cd(data) - log_cost(1, len(LOG_DATA)))
    assert host.recorded_logs == [(SELF, LOG_DATA, (TOPICS[0],))]


@pytest.mark.parametrize("t2,ok", [(MEM - 32, True), (MEM - 31, False), (U32_MAX, False)])
def test_log_used_topic_pointers_are_checked(code, t2, ok):
    data = log_data(2, t=[TOPIC_AT[0], t2, 0, 0])
    r, host = run(code["log"], data)
    if ok:
        assert_ok(r, GAS - read_cd(data) - log_cost(2, len(LOG_DATA)))
        assert host.recorded_logs == [(SELF, LOG_DATA, (TOPICS[0], ZERO_BYTES32))]
    else:
        assert_failed(r, S.INVALID_MEMORY_ACCESS)
        assert host.recorded_logs == []


@pytest.mark.parametrize("d,length,ok", [
    (MEM, 0, True),  # zero length at the end of memory
    (MEM + 1, 0, False),  # zero length is still checked
    (MEM - 4, 5, False),
    (U32_MAX, 1, False),  # offset + length wraps to 0
])
def test_log_data_bounds(code, d, length, ok):
    data = log_data(0, d=d, length=length)
    r, host = run(code["log"], data)
    if ok:
        assert_ok(r, GAS - read_cd(data) - log_cost(0, length))
        assert host.recorded_logs == [(SELF, b"", ())]
    else:
        assert_failed(r, S.INVALID_MEMORY_ACCESS)


def test_log_in_static_mode(code):
    data = log_data(2)
    r, host = run(code["log"], data, flags=Flags.STATIC)
    assert_failed(r, S.STATIC_MODE_VIOLATION)
    assert host.recorded_logs == []
    # The static check comes before the topic-count check...
    r, _ = run(code["log"], log_data(5), flags=Flags.STATIC)
    assert_failed(r, S.STATIC_MODE_VIOLATION)
    # ...and after the charge.
    r, _ = run(code["log"], data, flags=Flags.STATIC,
               gas=read_cd(data) + log_cost(2, len(LOG_DATA)) - 1)
    assert_failed(r, S.OUT_OF_GAS)


# --- getBlockHash (eei_block_hash.wat) -------------------------------------------------------
HASH = bytes(range(0x40, 0x60))


def block_hash_data(number: int, r: int, rc_at: int = 20,
                    window: tuple[int, int] = (20, 36)) -> bytes:
    # rc_at 20 overwrites the (already read) rc field; [24, 56) is a run of 0xff, so the
    # default window shows the return code and 32 bytes at r = 24.
    return u32(*window) + struct.pack("<q", number) + u32(r, rc_at) + b"\xff" * 40


def test_block_hash_written_verbatim(code):
    data = block_hash_data(1234, 24)
    r, host = run(code["block_hash"], data, MockedHost(block_hashes={1234: HASH}))
    assert_ok(r, GAS - read_cd(data) - 800, u32(0) + HASH)
    assert host.recorded_block_hashes == [1234]


def test_unknown_block_returns_1_and_leaves_memory_alone(code):
    data = block_hash_data(1235, 24)
    r, host = run(code["block_hash"], data, MockedHost(block_hashes={1234: HASH}))
    assert_ok(r, GAS - read_cd(data) - 800, u32(1) + b"\xff" * 32)
    assert host.recorded_block_hashes == [1235]


@pytest.mark.parametrize("r_offset", [MEM - 31, U32_MAX])
def test_unknown_block_does_not_check_the_result_pointer(code, r_offset):
    data = block_hash_data(99, r_offset, window=(20, 4))
    r, _ = run(code["block_hash"], data)
    assert_ok(r, GAS - read_cd(data) - 800, u32(1))
    # The same pointer for a known block is a bad access.
    r, _ = run(code["block_hash"], data, MockedHost(block_hashes={99: HASH}))
    assert_failed(r, S.INVALID_MEMORY_ACCESS)


def test_block_number_reaches_the_host_as_int64(code):
    data = block_hash_data(-1, 24)  # i64 0xffff_ffff_ffff_ffff
    r, host = run(code["block_hash"], data)
    assert r.status == S.SUCCESS
    assert host.recorded_block_hashes == [-1]


# --- external accounts (eei_external.wat) ----------------------------------------------------
def external_data(selector: int, *, a: int = 32, r: int = 0x100,
                  window: tuple[int, int] | None = None, width: int = 16) -> bytes:
    window = (r, width) if window is None else window
    return u32(*window, selector, a, r).ljust(32, b"\0") + OTHER


@pytest.mark.parametrize("balance,expected", [
    (0x0102030405, bytes.fromhex("0504030201") + bytes(11)),
    (2**128 - 1, b"\xff" * 16),
    (None, bytes(16)),  # absent account
])
def test_get_external_balance_is_u128_little_endian(code, balance, expected):
    accounts = {} if balance is None else {OTHER: MockedAccount(balance=balance)}
    data = external_data(0)
    r, host = run(code["external"], data, MockedHost(accounts=accounts))
    assert_ok(r, GAS - read_cd(data) - 400, expected)
    assert OTHER in host.recorded_account_accesses  # the address is read verbatim


def test_external_balance_of_128_bits_or_more_is_out_of_range(code):
    host = MockedHost(accounts={OTHER: MockedAccount(balance=2**128)})
    r, _ = run(code["external"], external_data(0), host)
    assert_failed(r, S.ARGUMENT_OUT_OF_RANGE)


@pytest.mark.parametrize("size", [0, 77])
def test_get_external_code_size(code, size):
    host = MockedHost(accounts={OTHER: MockedAccount(code=bytes(range(size)))})
    data = external_data(1, width=4)
    r, host = run(code["external"], data, host)
    assert_ok(r, GAS - read_cd(data) - 700, u32(size))
    assert OTHER in host.recorded_account_accesses


@pytest.mark.parametrize("selector,a,r", [(0, MEM - 19, 0x100), (0, 32, MEM - 15),
                                          (1, MEM - 19, 0x100), (0, U32_MAX, 0x100)])
def test_external_pointers_must_be_in_memory(code, selector, a, r):
    host = MockedHost(accounts={OTHER: MockedAccount(balance=1)})
    res, _ = run(code["external"], external_data(selector, a=a, r=r, window=(0, 0)), host)
    assert_failed(res, S.INVALID_MEMORY_ACCESS)


# --- finish, revert, selfDestruct, return, trap (eei_end.wat) --------------------------------
END_TAIL = b"the output bytes"


def end_data(selector: int, a: int = 12, b: int = len(END_TAIL)) -> bytes:
    return u32(selector, a, b) + END_TAIL + OTHER


def test_finish_returns_memory_and_gas(code):
    data = end_data(0)
    r, _ = run(code["end"], data)
    assert_ok(r, GAS - read_cd(data), END_TAIL)


def test_revert_keeps_gas_and_returns_output(code):
    data = end_data(1)
    r, _ = run(code["end"], data)
    assert r.status == S.REVERT
    assert r.gas_left == GAS - read_cd(data)
    assert r.output == END_TAIL


def test_main_returning_is_success_with_empty_output(code):
    data = end_data(3)
    r, _ = run(code["end"], data)
    assert_ok(r, GAS - read_cd(data), b"")


def test_a_trap_is_failure_with_no_gas(code):
    r, _ = run(code["end"], end_data(9))
    assert_failed(r, S.FAILURE)


@pytest.mark.parametrize("selector", [0, 1], ids=["finish", "revert"])
@pytest.mark.parametrize("a,b,ok", [
    (MEM, 0, True), (MEM - 1, 1, True),
    (MEM + 1, 0, False),  # zero length is still checked
    (MEM - 1, 2, False),
    (U32_MAX, 1, False),  # offset + length wraps to 0
])
def test_finish_and_revert_bounds(code, selector, a, b, ok):
    data = end_data(selector, a, b)
    r, _ = run(code["end"], data)
    if ok:
        assert r.status == (S.SUCCESS, S.REVERT)[selector]
        assert r.gas_left == GAS - read_cd(data)
        assert r.output == bytes(b)
    else:
        assert_failed(r, S.INVALID_MEMORY_ACCESS)


@pytest.mark.parametrize("exists,cost", [(True, 5000), (False, 5000 + 25000)])
def test_self_destruct(code, exists, cost):
    # A beneficiary that exists with no balance costs no more; an absent one 25000 more,
    # although no value moves (Hera, eei.md §6.3 item 4).
    accounts = {OTHER: MockedAccount(balance=0)} if exists else {}
    data = end_data(2, a=12 + len(END_TAIL))
    r, host = run(code["end"], data, MockedHost(accounts=accounts))
    assert_ok(r, GAS - read_cd(data) - cost, b"")
    assert host.recorded_selfdestructs == [(SELF, OTHER)]


def test_self_destruct_out_of_gas_on_the_new_account_charge(code):
    data = end_data(2, a=12 + len(END_TAIL))
    r, host = run(code["end"], data, gas=read_cd(data) + 29999)
    assert_failed(r, S.OUT_OF_GAS)
    assert host.recorded_selfdestructs == []
    r, host = run(code["end"], data, gas=read_cd(data) + 30000)
    assert_ok(r, 0, b"")


def test_self_destruct_in_static_mode(code):
    data = end_data(2, a=12 + len(END_TAIL))
    host = MockedHost(accounts={OTHER: MockedAccount()})
    r, host = run(code["end"], data, host, flags=Flags.STATIC)
    assert_failed(r, S.STATIC_MODE_VIOLATION)
    assert host.recorded_selfdestructs == []
    r, _ = run(code["end"], data, host, flags=Flags.STATIC, gas=read_cd(data) + 4999)
    assert_failed(r, S.OUT_OF_GAS)


@pytest.mark.parametrize("a", [MEM - 19, U32_MAX])
def test_self_destruct_beneficiary_must_be_in_memory(code, a):
    r, host = run(code["end"], end_data(2, a=a))
    assert_failed(r, S.INVALID_MEMORY_ACCESS)
    assert host.recorded_selfdestructs == []


# --- call family and create (eei_calls.wat) --------------------------------------------------
KIND = {"call": 0, "callCode": 1, "callDelegate": 2, "callStatic": 3, "create": 4}
CALLS = ["call", "callCode", "callDelegate", "callStatic"]
OUT = 0x8000  # return codes at OUT + 4i, buffer size at OUT + 0x40, buffer at OUT + 0x44
CREATED = OUT + 0x20  # where create records write the new address
WINDOW = 0x44 + 128
PAY = 0x200  # call data from here on: the bytes records point at


class Calls:
    """Call data for eei_calls.wat: records, and the bytes they point at."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.payload = bytearray()

    def put(self, blob: bytes) -> int:
        offset = PAY + len(self.payload)
        self.payload += blob
        return offset

    def add(self, kind: str, *, gas: int = 0, to: bytes = OTHER, value: int | bytes = 0,
            inp: bytes = b"", addr_off: int | None = None, value_off: int | None = None,
            data_off: int | None = None, data_len: int | None = None,
            result_off: int = CREATED) -> Calls:
        raw = value if isinstance(value, bytes) else value.to_bytes(16, "little")
        a = self.put(to) if addr_off is None else addr_off
        v = self.put(raw) if value_off is None else value_off
        d = self.put(inp) if data_off is None else data_off
        n = len(inp) if data_len is None else data_len
        self.records.append(struct.pack("<6Iq", KIND[kind], a, v, d, n, result_off, gas))
        return self

    def data(self) -> bytes:
        head = u32(OUT, WINDOW, len(self.records), 0) + b"".join(self.records)
        assert len(head) <= PAY
        return head.ljust(PAY, b"\0") + bytes(self.payload)


@dataclass
class CallsOut:
    codes: list[int]
    created: bytes
    returned: bytes


def parse(result: Result, count: int) -> CallsOut:
    out = result.output
    assert len(out) == WINDOW, result.message
    size = struct.unpack_from("<I", out, 0x40)[0]
    assert size <= WINDOW - 0x44
    return CallsOut(list(struct.unpack_from(f"<{count}i", out)), out[0x20:0x34],
                    out[0x44:0x44 + size])


def tail_gas(returned: bytes) -> int:
    """getReturnDataSize + returnDataCopy of the final buffer."""
    return 2 + copy_gas(len(returned))


def funded(balance: int = 10**9, *, other: bool = True) -> MockedHost:
    accounts = {SELF: MockedAccount(balance=balance)}
    if other:
        accounts[OTHER] = MockedAccount()
    return MockedHost(accounts=accounts)


def replay(host: MockedHost, *results: Result) -> MockedHost:
    """The host answers its calls with these results, in order."""
    it = iter(results)
    host.call_handler = lambda m: next(it)
    return host


CALL_EXPECTED = {
    # kind, recipient, code_address, sender, value, flags, stipend, transfer fee
    "call": (CallKind.CALL, OTHER, OTHER, SELF, 7, Flags.NONE, 2300, 9000),
    "callCode": (CallKind.CALLCODE, SELF, OTHER, SELF, 7, Flags.NONE, 2300, 9000),
    # callDelegate: the caller and the apparent value (9) are inherited; the stipend too.
    "callDelegate": (CallKind.DELEGATECALL, SELF, OTHER, CALLER, 9, Flags.NONE, 2300, 0),
    "callStatic": (CallKind.CALL, OTHER, OTHER, SELF, 0, Flags.STATIC, 0, 0),
}


@pytest.mark.parametrize("name", CALLS)
def test_call_message_fields_gas_and_return_buffer(code, name):
    host = funded()
    host.call_result = Result.make(S.SUCCESS, 100, b"child output")
    data = Calls().add(name, gas=50_000, value=7, inp=b"input bytes").data()
    r, host = run(code["calls"], data, host, value=9, depth=5)
    kind, recipient, code_address, sender, value, flags, stipend, fee = CALL_EXPECTED[name]
    [m] = host.recorded_calls
    assert (m.kind, m.recipient, m.code_address, m.sender) == (kind, recipient, code_address,
                                                                sender)
    assert (m.value, m.flags, m.depth, m.input) == (value, flags, 6, b"input bytes")
    assert m.gas == 50_000 + stipend
    assert m.create2_salt == ZERO_BYTES32
    out = parse(r, 1)
    assert out.codes == [0] and out.returned == b"child output"
    spent = read_cd(data) + 700 + fee + 50_000 - 100 + tail_gas(b"child output")
    assert_ok(r, GAS - spent)


@pytest.mark.parametrize("value,expected", [
    (b"\x01" + bytes(15), 1),
    (bytes(15) + b"\x01", 2**120),
    (bytes.fromhex("0201") + bytes(14), 0x0102),
], ids=["1", "2**120", "0x0102"])
def test_call_value_argument_is_u128_little_endian(code, value, expected):
    data = Calls().add("call", value=value).add("callCode", value=value).data()
    r, host = run(code["calls"], data, funded(balance=2**127))
    assert [m.value for m in host.recorded_calls] == [expected, expected]
    assert parse(r, 2).codes == [0, 0]


@pytest.mark.parametrize("name", CALLS)
def test_call_gas_is_capped_at_all_but_one_64th(code, name):
    data = Calls().add(name, gas=10**15).data()
    host = funded()
    host.call_result = Result.make(S.SUCCESS, 0)
    r, host = run(code["calls"], data, host)
    left = GAS - read_cd(data) - 700
    cap = left - left // 64
    assert [m.gas for m in host.recorded_calls] == [cap]
    assert_ok(r, GAS - read_cd(data) - 700 - cap - tail_gas(b""))


@pytest.mark.parametrize("offset", [0, -1])
def test_call_gas_below_the_cap_is_forwarded_as_asked(code, offset):
    probe = Calls().add("callStatic", gas=0).data()
    left = GAS - read_cd(probe) - 700
    cap = left - left // 64
    data = Calls().add("callStatic", gas=cap + offset).data()
    assert len(data) == len(probe)
    r, host = run(code["calls"], data, funded())
    assert [m.gas for m in host.recorded_calls] == [cap + offset]
    # The callee returns all its gas (MockedHost's default).
    assert_ok(r, GAS - read_cd(data) - 700 - tail_gas(b""))


@pytest.mark.parametrize("name,value,exists,fee,stipend", [
    ("call", 1, True, 9000, 2300),
    ("call", 1, False, 9000 + 25000, 2300),  # value to an absent account
    ("call", 0, False, 0, 0),  # no value: no new-account fee
    ("callCode", 1, False, 9000, 2300),  # callCode never pays the new-account fee
    ("callCode", 0, True, 0, 0),
])
def test_call_value_transfer_and_new_account_fees(code, name, value, exists, fee, stipend):
    host = funded(other=exists)
    host.call_result = Result.make(S.SUCCESS, 0)
    data = Calls().add(name, gas=1000, value=value).data()
    r, host = run(code["calls"], data, host)
    assert [(m.gas, m.value) for m in host.recorded_calls] == [(1000 + stipend, value)]
    assert_ok(r, GAS - read_cd(data) - 700 - fee - 1000 - tail_gas(b""))


@pytest.mark.parametrize("msg_value,stipend", [(0, 0), (1, 2300)])
def test_call_delegate_stipend_follows_the_inherited_value(code, msg_value, stipend):
    host = funded(balance=0)
    host.call_result = Result.make(S.SUCCESS, 0)
    data = Calls().add("callDelegate", gas=1000).data()
    r, host = run(code["calls"], data, host, value=msg_value)
    assert [(m.gas, m.value) for m in host.recorded_calls] == [(1000 + stipend, msg_value)]
    # No transfer fee and no balance check: nothing moves.
    assert_ok(r, GAS - read_cd(data) - 700 - 1000 - tail_gas(b""))


def test_the_stipend_comes_back_when_the_callee_leaves_it(code):
    # gasLeft += result.gas_left (eei.md §2.3 step 9), which includes an unused stipend.
    data = Calls().add("call", gas=1000, value=1).data()
    r, host = run(code["calls"], data, funded())  # the callee returns all 3300
    assert [m.gas for m in host.recorded_calls] == [3300]
    assert_ok(r, GAS - read_cd(data) - 700 - 9000 - 1000 + 3300 - tail_gas(b""))


@pytest.mark.parametrize("name", [*CALLS, "create"])
def test_depth_limit_returns_1_without_calling_the_host(code, name):
    data = Calls().add(name, gas=1000, value=1).data()
    r, host = run(code["calls"], data, funded(), depth=1024, value=1)
    assert host.recorded_calls == []
    assert parse(r, 1).codes == [1]
    base = 32000 if name == "create" else 700  # the value fee is not reached
    assert_ok(r, GAS - read_cd(data) - base - tail_gas(b""))
    r, host = run(code["calls"], data, funded(), depth=1023, value=1)
    assert [m.depth for m in host.recorded_calls] == [1024]


@pytest.mark.parametrize("name", ["call", "callCode", "create"])
def test_insufficient_balance_returns_1_and_keeps_the_return_buffer(code, name):
    data = Calls().add("callStatic").add(name, gas=1000, value=7).data()
    host = replay(funded(balance=6), Result.make(S.SUCCESS, 0, b"earlier"))
    r, host = run(code["calls"], data, host)
    assert len(host.recorded_calls) == 1  # only the callStatic
    out = parse(r, 2)
    assert out.codes == [0, 1] and out.returned == b"earlier"
    cost = 32000 if name == "create" else 700 + 9000
    assert_ok(r, GAS - read_cd(data) - 700 - cost - tail_gas(b"earlier"))


@pytest.mark.parametrize("name", ["call", "callCode", "create"])
def test_balance_equal_to_the_value_is_enough(code, name):
    data = Calls().add(name, gas=1000, value=7).data()
    r, host = run(code["calls"], data, funded(balance=7))
    assert len(host.recorded_calls) == 1 and host.recorded_calls[0].value == 7
    assert parse(r, 1).codes == [0]


@pytest.mark.parametrize("name", ["call", "callCode", "create"])
def test_balance_of_128_bits_or_more_is_out_of_range(code, name):
    data = Calls().add(name, gas=1000, value=1).data()
    r, host = run(code["calls"], data, funded(balance=2**128))
    assert_failed(r, S.ARGUMENT_OUT_OF_RANGE)
    assert host.recorded_calls == []


def test_balance_is_not_read_for_a_call_without_value(code):
    data = Calls().add("call", gas=1000).data()
    r, host = run(code["calls"], data, funded(balance=2**200))
    assert parse(r, 1).codes == [0] and len(host.recorded_calls) == 1


@pytest.mark.parametrize("status,rc", [(S.SUCCESS, 0), (S.REVERT, 2), (S.FAILURE, 1),
                                       (S.OUT_OF_GAS, 1), (S.INVALID_MEMORY_ACCESS, 1),
                                       (S.CONTRACT_VALIDATION_FAILURE, 1)])
@pytest.mark.parametrize("name", CALLS)
def test_call_return_codes_and_buffer(code, name, status, rc):
    host = funded()
    host.call_result = Result.make(status, 40, b"out!")
    back = 40 if status in (S.SUCCESS, S.REVERT) else 0
    data = Calls().add(name, gas=1000).data()
    r, _ = run(code["calls"], data, host)
    out = parse(r, 1)
    assert out.codes == [rc] and out.returned == b"out!"
    assert_ok(r, GAS - read_cd(data) - 700 - 1000 + back - tail_gas(b"out!"))


def test_each_call_replaces_the_return_buffer(code):
    data = Calls().add("callStatic").add("call").data()
    host = replay(funded(), Result.make(S.SUCCESS, 0, b"first and longer"),
                  Result.make(S.SUCCESS, 0, b""))
    r, _ = run(code["calls"], data, host)
    out = parse(r, 2)
    assert out.codes == [0, 0] and out.returned == b""
    host = replay(funded(), Result.make(S.SUCCESS, 0, b"first and longer"),
                  Result.make(S.REVERT, 0, b"second"))
    r, _ = run(code["calls"], data, host)
    out = parse(r, 2)
    assert out.codes == [0, 2] and out.returned == b"second"


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("gas", [-1, -(2**63)])
def test_negative_call_gas_is_out_of_range(code, name, gas):
    r, host = run(code["calls"], Calls().add(name, gas=gas).data(), funded())
    assert_failed(r, S.ARGUMENT_OUT_OF_RANGE)
    assert host.recorded_calls == []


@pytest.mark.parametrize("name", [*CALLS, "create"])
def test_zero_length_input_is_not_bounds_checked(code, name):
    data = Calls().add(name, data_off=U32_MAX, data_len=0).data()
    r, host = run(code["calls"], data, funded())
    assert [m.input for m in host.recorded_calls] == [b""]
    assert parse(r, 1).codes == [0]


@pytest.mark.parametrize("name", [*CALLS, "create"])
@pytest.mark.parametrize("data_off,data_len", [(MEM - 3, 4), (U32_MAX, 2), (MEM + 1, 1)])
def test_non_empty_input_must_be_in_memory(code, name, data_off, data_len):
    data = Calls().add(name, data_off=data_off, data_len=data_len).data()
    r, host = run(code["calls"], data, funded())
    assert_failed(r, S.INVALID_MEMORY_ACCESS)
    assert host.recorded_calls == []


@pytest.mark.parametrize("name", CALLS)
def test_call_input_is_checked_before_the_charge_and_the_depth_limit(code, name):
    # eei.md §2.3 call steps 3-5: input bounds, then 700, then depth.
    data = Calls().add(name, gas=1000, data_off=MEM - 3, data_len=4).data()
    r, host = run(code["calls"], data, funded(), depth=1024)
    assert_failed(r, S.INVALID_MEMORY_ACCESS)
    r, host = run(code["calls"], data, funded(), gas=read_cd(data) + 699)
    assert_failed(r, S.INVALID_MEMORY_ACCESS)
    assert host.recorded_calls == []


@pytest.mark.parametrize("depth,balance", [(1024, 10**9), (0, 6)])
def test_create_input_is_checked_after_the_depth_and_balance_checks(code, depth, balance):
    # eei.md §2.3 create steps 4-6: depth, balance, then the initcode bounds.
    data = Calls().add("create", value=7, data_off=MEM - 3, data_len=4).data()
    r, host = run(code["calls"], data, funded(balance), depth=depth)
    assert parse(r, 1).codes == [1]
    assert_ok(r, GAS - read_cd(data) - 32000 - tail_gas(b""))
    assert host.recorded_calls == []


@pytest.mark.parametrize("name,field,offset", [
    ("call", "addr_off", MEM - 19), ("callCode", "addr_off", MEM - 19),
    ("callDelegate", "addr_off", MEM - 19), ("callStatic", "addr_off", U32_MAX),
    ("call", "value_off", MEM - 15), ("callCode", "value_off", U32_MAX),
    ("create", "value_off", MEM - 15),
])
def test_address_and_value_must_be_in_memory(code, name, field, offset):
    data = Calls().add(name, **{field: offset}).data()
    r, host = run(code["calls"], data, funded())
    assert_failed(r, S.INVALID_MEMORY_ACCESS)
    assert host.recorded_calls == []


def test_call_with_value_in_static_mode_fails_before_any_gas(code):
    data = Calls().add("call", gas=1000, value=1).data()
    r, host = run(code["calls"], data, funded(), flags=Flags.STATIC)
    assert_failed(r, S.STATIC_MODE_VIOLATION)
    # Not even the 700 is needed to see the violation.
    r, host = run(code["calls"], data, funded(), flags=Flags.STATIC, gas=read_cd(data))
    assert_failed(r, S.STATIC_MODE_VIOLATION)
    assert host.recorded_calls == []


@pytest.mark.parametrize("name,value", [("call", 0), ("callCode", 3), ("callDelegate", 0),
                                        ("callStatic", 0)])
def test_calls_allowed_in_static_mode_pass_the_flag_on(code, name, value):
    host = funded()
    host.call_result = Result.make(S.SUCCESS, 0)
    data = Calls().add(name, gas=1000, value=value).data()
    r, host = run(code["calls"], data, host, flags=Flags.STATIC)
    [m] = host.recorded_calls
    assert m.flags == Flags.STATIC and m.value == value
    fee, stipend = (9000, 2300) if value else (0, 0)
    assert m.gas == 1000 + stipend
    assert_ok(r, GAS - read_cd(data) - 700 - fee - 1000 - tail_gas(b""))


def test_create_in_static_mode_charges_32000_first(code):
    data = Calls().add("create").data()
    r, host = run(code["calls"], data, funded(), flags=Flags.STATIC)
    assert_failed(r, S.STATIC_MODE_VIOLATION)
    r, _ = run(code["calls"], data, funded(), flags=Flags.STATIC, gas=read_cd(data) + 32000)
    assert_failed(r, S.STATIC_MODE_VIOLATION)
    r, _ = run(code["calls"], data, funded(), flags=Flags.STATIC, gas=read_cd(data) + 31999)
    assert_failed(r, S.OUT_OF_GAS)
    assert host.recorded_calls == []


INIT = b"\0asm\x01\0\0\0 initcode"


def test_create_message_gas_and_new_address(code):
    host = funded()
    host.call_result = Result.make(S.SUCCESS, 500, b"", create_address=NEW)
    data = Calls().add("create", value=bytes.fromhex("0201") + bytes(14), inp=INIT).data()
    r, host = run(code["calls"], data, host, depth=3, value=9)
    [m] = host.recorded_calls
    assert (m.kind, m.recipient, m.sender, m.value, m.input) == (
        CallKind.CREATE, ZERO_ADDRESS, SELF, 0x0102, INIT)
    assert (m.depth, m.flags) == (4, Flags.NONE)
    left = GAS - read_cd(data) - 32000
    assert m.gas == left - left // 64
    out = parse(r, 1)
    assert out.codes == [0] and out.created == NEW and out.returned == b""
    assert_ok(r, GAS - read_cd(data) - 32000 - m.gas + 500 - tail_gas(b""))


def test_successful_create_clears_the_return_buffer(code):
    data = Calls().add("callStatic").add("create", inp=INIT).data()
    host = replay(funded(), Result.make(S.SUCCESS, 0, b"previous"),
                  Result.make(S.SUCCESS, 0, b"constructor output", create_address=NEW))
    r, _ = run(code["calls"], data, host)
    out = parse(r, 2)
    assert out.codes == [0, 0] and out.created == NEW and out.returned == b""


@pytest.mark.parametrize("status,rc,back", [(S.REVERT, 2, 300), (S.FAILURE, 1, 0),
                                            (S.OUT_OF_GAS, 1, 0)])
def test_failed_create_leaves_its_output_in_the_buffer(code, status, rc, back):
    host = funded()
    host.call_result = Result.make(status, 300, b"reason", create_address=NEW)
    data = Calls().add("create", inp=INIT).data()
    r, _ = run(code["calls"], data, host)
    out = parse(r, 1)
    # The address is written only on success.
    assert out.codes == [rc] and out.created == bytes(20) and out.returned == b"reason"
    left = GAS - read_cd(data) - 32000
    forwarded = left - left // 64
    assert_ok(r, GAS - read_cd(data) - 32000 - forwarded + back - tail_gas(b"reason"))


@pytest.mark.parametrize("result_off", [MEM - 19, U32_MAX])
def test_create_result_pointer_is_checked_after_the_child_ran(code, result_off):
    host = funded()
    host.call_result = Result.make(S.SUCCESS, 0, create_address=NEW)
    data = Calls().add("create", inp=INIT, result_off=result_off).data()
    r, host = run(code["calls"], data, host)
    assert_failed(r, S.INVALID_MEMORY_ACCESS)
    assert len(host.recorded_calls) == 1


# --- contract interface ----------------------------------------------------------------------
GOOD = '(module (memory 1) (export "memory" (memory 0)) (func (export "main")))'
BAD_CONTRACTS = {
    "no main": '(module (memory 1) (export "memory" (memory 0)))',
    "main with params": '(module (memory 1) (export "memory" (memory 0)) '
                        '(func (export "main") (param i32)))',
    "main with a result": '(module (memory 1) (export "memory" (memory 0)) '
                          '(func (export "main") (result i32) (i32.const 0)))',
    "main is not a function": '(module (memory 1) (export "memory" (memory 0)) '
                              '(global (export "main") i32 (i32.const 0)))',
    "extra export": '(module (memory 1) (export "memory" (memory 0)) (func (export "main")) '
                    '(func (export "other")))',
    "memory exported twice": '(module (memory 1) (export "memory" (memory 0)) '
                             '(export "memory2" (memory 0)) (func (export "main")))',
    "no memory export": '(module (memory 1) (func (export "main")))',
    "memory exported under another name": '(module (memory 1) (export "mem" (memory 0)) '
                                          '(func (export "main")))',
    "start function": '(module (memory 1) (export "memory" (memory 0)) '
                      '(func $main (export "main")) (start $main))',
    "other namespace": '(module (import "env" "finish" (func (param i32 i32))) (memory 1) '
                       '(export "memory" (memory 0)) (func (export "main")))',
    "unknown EEI name": '(module (import "ethereum" "getChainId" (func (param i32))) '
                        '(memory 1) (export "memory" (memory 0)) (func (export "main")))',
    "wrong signature": '(module (import "ethereum" "finish" (func (param i32))) (memory 1) '
                       '(export "memory" (memory 0)) (func (export "main")))',
    "wrong result type": '(module (import "ethereum" "getGasLeft" (func (result i32))) '
                         '(memory 1) (export "memory" (memory 0)) (func (export "main")))',
    "memory import": '(module (import "ethereum" "memory" (memory 1)) '
                     '(export "memory" (memory 0)) (func (export "main")))',
    "float instruction": '(module (memory 1) (export "memory" (memory 0)) '
                         '(func (export "main") (drop (f64.add (f64.const 1) (f64.const 2)))))',
    "debug import without debug": '(module (import "debug" "print32" (func (param i32))) '
                                  '(memory 1) (export "memory" (memory 0)) '
                                  '(func (export "main")))',
}


def test_a_minimal_contract_is_valid(wat):
    r, _ = run(wat(GOOD), gas=1000)
    assert_ok(r, 1000, b"")


@pytest.mark.parametrize("name", BAD_CONTRACTS)
def test_contract_validation_failures(wat, name):
    r, _ = run(wat(BAD_CONTRACTS[name]))
    assert_failed(r, S.CONTRACT_VALIDATION_FAILURE)


# --- debug namespace (eei.md §2.5) -------------------------------------------------------------
# name: (param types, call arguments, what stderr must contain). Memory holds "hello" at 64;
# the key at 0 is 32 zero bytes, whose slot DEBUG_HOST fills with "stored" + zeros.
STORED = b"stored".ljust(32, b"\0")
DEBUG_CALLS = {
    "print32": ("i32", "(i32.const 42)", ["42", "2a"]),
    "print64": ("i64", "(i64.const 0x123456789)", ["4886718345", "123456789"]),
    "printMem": ("i32 i32", "(i32.const 64) (i32.const 5)", ["hello"]),
    "printMemHex": ("i32 i32", "(i32.const 64) (i32.const 5)", [b"hello".hex()]),
    "printStorage": ("i32", "(i32.const 0)", ["stored"]),
    "printStorageHex": ("i32", "(i32.const 0)", [STORED.hex()]),
}


def debug_contract(wat, name: str, args: str | None = None) -> bytes:
    params, default_args, _ = DEBUG_CALLS[name]
    return wat(f"""
(module
  (import "debug" "{name}" (func $f (param {params})))
  (memory 1) (export "memory" (memory 0))
  (data (i32.const 64) "hello")
  (func (export "main") (call $f {default_args if args is None else args})))
""")


def debug_host() -> MockedHost:
    return MockedHost(accounts={SELF: MockedAccount(storage={ZERO_BYTES32: STORED})})


@pytest.mark.parametrize("name", DEBUG_CALLS)
def test_debug_import_needs_debug_mode(wat, name):
    r, _ = run(debug_contract(wat, name), gas=1000)
    assert_failed(r, S.CONTRACT_VALIDATION_FAILURE)


@pytest.mark.parametrize("name", DEBUG_CALLS)
def test_debug_functions_print_to_stderr_for_no_gas(wat, capfd, name):
    contract = debug_contract(wat, name)
    capfd.readouterr()
    r, _ = run(contract, host=debug_host(), gas=1000, debug=True)
    assert_ok(r, 1000, b"")
    out, err = capfd.readouterr()
    assert out == ""
    for expected in DEBUG_CALLS[name][2]:
        assert expected in err.lower()


@pytest.mark.parametrize("name", ["printMem", "printMemHex"])
@pytest.mark.parametrize("args", [f"(i32.const {MEM - 1}) (i32.const 2)",
                                  "(i32.const -1) (i32.const 2)"])
def test_debug_print_mem_out_of_range_is_an_internal_error(wat, name, args):
    # Hera checks the range with an assert, not with the EEI's memory check.
    r, _ = run(debug_contract(wat, name, args), gas=1000, debug=True)
    assert_failed(r, S.INTERNAL_ERROR)


@pytest.mark.parametrize("name", ["printStorage", "printStorageHex"])
@pytest.mark.parametrize("key", [MEM - 31, U32_MAX])
def test_debug_print_storage_key_must_be_in_memory(wat, name, key):
    r, _ = run(debug_contract(wat, name, f"(i32.const {key})"), host=debug_host(), gas=1000,
               debug=True)
    assert_failed(r, S.INVALID_MEMORY_ACCESS)


MINIMAL = bytes.fromhex("0061736d01000000010401600000030201000503010001071102066d656d6f7279020004"
                        "6d61696e00000a040102000b")


@pytest.mark.parametrize("blob", [b"\x60\x00\x60\x00\xf3", b"", b"\0asm\x01\0\0"],
                         ids=["EVM code", "empty", "7-byte Wasm preamble"])
def test_non_wasm_code(blob):
    r, _ = run(blob, gas=1000)
    assert_failed(r, S.FAILURE)
    r, _ = run(blob, gas=1000, evm1_mode="fallback")
    assert_failed(r, S.REJECTED)


@pytest.mark.parametrize("version", ["02000000", "0d000000", "00000001"])
def test_wrong_wasm_version(version):
    r, _ = run(MINIMAL[:4] + bytes.fromhex(version) + MINIMAL[8:], gas=1000)
    assert_failed(r, S.CONTRACT_VALIDATION_FAILURE)


def constructor(wat, payload: bytes, end: str = "finish") -> bytes:
    """Initcode whose main ends with finish (or revert) of `payload`, a data segment."""
    escaped = "".join(f"\\{b:02x}" for b in payload)
    return wat(f"""
(module
  (import "ethereum" "{end}" (func $end (param i32 i32)))
  (memory 1) (export "memory" (memory 0))
  (data (i32.const 16) "{escaped}")
  (func (export "main") (call $end (i32.const 16) (i32.const {len(payload)}))))
""")


def test_create_deploys_a_valid_contract_as_it_is(wat):
    r, _ = run(constructor(wat, MINIMAL), kind=CallKind.CREATE)
    assert_ok(r, GAS, MINIMAL)


@pytest.mark.parametrize("name", ["start function", "extra export", "main with params"])
def test_create_of_invalid_wasm_is_a_validation_failure(wat, name):
    deployed = wat(BAD_CONTRACTS[name])
    r, _ = run(constructor(wat, deployed), kind=CallKind.CREATE)
    assert_failed(r, S.CONTRACT_VALIDATION_FAILURE)
    # The same output from a call is just output: only deployed code is validated.
    r, _ = run(constructor(wat, deployed))
    assert_ok(r, GAS, deployed)


def test_create_of_wasm_with_a_wrong_version_is_a_validation_failure(wat):
    r, _ = run(constructor(wat, MINIMAL[:4] + b"\x02\0\0\0" + MINIMAL[8:]),
               kind=CallKind.CREATE)
    assert_failed(r, S.CONTRACT_VALIDATION_FAILURE)


@pytest.mark.parametrize("payload", [b"\x60\x00\x60\x00\xf3", b"", b"\0asm\x01\0\0",
                                     b"plain data"])
def test_create_of_non_wasm_output_returns_it_untouched(wat, payload):
    r, _ = run(constructor(wat, payload), kind=CallKind.CREATE)
    assert_ok(r, GAS, payload)


def test_create_that_reverts_is_not_validated(wat):
    invalid = wat(BAD_CONTRACTS["start function"])
    r, _ = run(constructor(wat, invalid, "revert"), kind=CallKind.CREATE)
    assert r.status == S.REVERT and r.gas_left == GAS and r.output == invalid


# --- the vectors of ewasm-contract-interface.md §7 -------------------------------------------
ECHO = bytes.fromhex(
    "0061736d010000000113046000006000017f60037f7f7f0060027f7f0002460308657468657265756d0f6765"
    "7443616c6c4461746153697a65000108657468657265756d0c63616c6c44617461436f707900020865746865"
    "7265756d0666696e6973680003030201000503010001071102066d656d6f72790200046d61696e00030a1801"
    "1601017f1000210041004100200010014100200010020b")
STORE = bytes.fromhex(
    "0061736d01000000010d036000006000017f60027f7f0002340208657468657265756d0f67657443616c6c44"
    "61746153697a65000108657468657265756d0c73746f7261676553746f72650002030201000503010001071102"
    "066d656d6f72790200046d61696e00020a11010f00412010003602004100412010010b")


def test_vector_minimal_contract():
    assert len(MINIMAL) == 48
    r, _ = run(MINIMAL, b"ignored", gas=1000)
    assert_ok(r, 1000, b"")


@pytest.mark.parametrize("n,gas", [(5, 8), (0, 5), (64, 11)])
def test_vector_echo(n, gas):
    data = bytes(range(100, 100 + n))
    r, _ = run(ECHO, data, gas=1000)
    assert_ok(r, 1000 - gas, data)


@pytest.mark.parametrize("n,gas,value", [(5, 20002, b"\x05" + bytes(31)), (0, 5002, bytes(32))])
def test_vector_store(n, gas, value):
    r, host = run(STORE, bytes(n), gas=100_000)
    assert_ok(r, 100_000 - gas, b"")
    assert host.accounts[SELF].storage == {bytes(32): value}


def test_vector_store_under_a_static_call():
    r, _ = run(STORE, bytes(5), gas=100_000, flags=Flags.STATIC)
    assert_failed(r, S.STATIC_MODE_VIOLATION)
    r, _ = run(STORE, bytes(5), gas=5002, flags=Flags.STATIC)
    assert_failed(r, S.STATIC_MODE_VIOLATION)
    r, _ = run(STORE, bytes(5), gas=5001, flags=Flags.STATIC)
    assert_failed(r, S.OUT_OF_GAS)


# --- MockedHost itself ---------------------------------------------------------------------------
def test_mocked_host_storage_status():
    host = MockedHost()
    one, two = b"\x01" * 32, b"\x02" * 32
    assert host.set_storage(SELF, KEY, ZERO_BYTES32) == StorageStatus.ASSIGNED
    assert host.set_storage(SELF, KEY, one) == StorageStatus.ADDED
    assert host.set_storage(SELF, KEY, one) == StorageStatus.ASSIGNED
    assert host.set_storage(SELF, KEY, two) == StorageStatus.MODIFIED
    assert host.set_storage(SELF, KEY, ZERO_BYTES32) == StorageStatus.DELETED
    assert host.get_storage(SELF, KEY) == ZERO_BYTES32
    assert host.get_storage(OTHER, KEY) == ZERO_BYTES32


def test_mocked_host_accounts_and_code():
    host = MockedHost(accounts={OTHER: MockedAccount(balance=3, code=b"abcdef")})
    assert host.account_exists(OTHER) and not host.account_exists(SELF)
    assert host.get_balance(OTHER) == 3 and host.get_balance(SELF) == 0
    assert host.get_code_size(OTHER) == 6 and host.copy_code(OTHER, 2, 10) == b"cdef"
    assert host.copy_code(SELF, 0, 4) == b""
    # keccak256("abcdef") and an absent account's zero hash.
    assert host.get_code_hash(OTHER) == bytes.fromhex(
        "acd0c377fe36d5b209125185bc3ac41155ed1bf7103ef9f0c2aff4320460b6df")
    assert host.get_code_hash(SELF) == ZERO_BYTES32
    assert host.recorded_account_accesses[:2] == [OTHER, SELF]


def test_mocked_host_calls_logs_and_hashes():
    host = MockedHost(block_hashes={5: HASH})
    msg = Message(gas=77, recipient=OTHER)
    assert host.call(msg) == Result.make(S.SUCCESS, 77)
    host.call_result = Result.make(S.REVERT, 1, b"x")
    assert host.call(msg).status == S.REVERT
    host.call_handler = lambda m: Result.make(S.SUCCESS, m.gas - 7)
    assert host.call(msg).gas_left == 70
    assert host.recorded_calls == [msg, msg, msg]
    assert host.get_block_hash(5) == HASH and host.get_block_hash(6) == ZERO_BYTES32
    assert host.recorded_block_hashes == [5, 6]
    host.emit_log(SELF, b"d", [TOPICS[0]])
    assert host.recorded_logs == [(SELF, b"d", (TOPICS[0],))]
    assert host.selfdestruct(SELF, OTHER) is True and host.selfdestruct(SELF, CALLER) is False
    assert host.recorded_selfdestructs == [(SELF, OTHER), (SELF, CALLER)]
    assert host.access_account(NEW) == AccessStatus.COLD
    assert host.access_account(NEW) == AccessStatus.WARM
    assert host.access_storage(NEW, KEY) == AccessStatus.COLD
    assert host.access_storage(NEW, KEY) == AccessStatus.WARM
