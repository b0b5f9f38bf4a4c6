"""The EEI one function at a time, with the probe contracts of fixtures/eei (Wasm text
written for this project). Expected gas is computed here from eei.md's table."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import ewasm
from evmc_bridge import (
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

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "eei"
SELF = bytes(range(1, 21))
CALLER = bytes(range(101, 121))
OTHER = b"\xee" * 20
GAS = 1_000_000
S = StatusCode


def W(n: int) -> int:
    return (n + 31) // 32


def copy(n: int) -> int:
    return 3 + 3 * W(n)


@dataclass
class Host:
    """A minimal EVMC host recording what the engine asks of it."""

    storage: dict = field(default_factory=dict)
    balances: dict = field(default_factory=dict)
    codes: dict = field(default_factory=dict)
    hashes: dict = field(default_factory=dict)
    tx: TxContext = field(default_factory=TxContext)
    result: Result | None = None
    calls: list = field(default_factory=list)
    logs: list = field(default_factory=list)
    destructs: list = field(default_factory=list)

    def account_exists(self, a): return a in self.balances or a in self.codes
    def get_storage(self, a, k): return self.storage.get((a, k), bytes(32))
    def set_storage(self, a, k, v):
        self.storage[(a, k)] = v
        return StorageStatus.MODIFIED
    def get_balance(self, a): return self.balances.get(a, 0)
    def get_code_size(self, a): return len(self.codes.get(a, b""))
    def get_code_hash(self, a): return bytes(32)
    def copy_code(self, a, off, n): return self.codes.get(a, b"")[off:off + n]
    def selfdestruct(self, a, b):
        self.destructs.append((a, b))
        return True
    def call(self, m):
        self.calls.append(m)
        return self.result or Result.make(S.SUCCESS, m.gas)
    def get_tx_context(self): return self.tx
    def get_block_hash(self, n): return self.hashes.get(n, bytes(32))
    def emit_log(self, a, d, t): self.logs.append((a, d, tuple(t)))
    def access_account(self, a): return AccessStatus.COLD
    def access_storage(self, a, k): return AccessStatus.COLD


@pytest.fixture(scope="module")
def probe(wat):
    return {p.stem.removeprefix("probe_"): wat(p.read_text()) for p in FIXTURES.glob("*.wat")}


def run(code, host=None, data=b"", *, gas=GAS, value=0, flags=Flags.NONE, depth=0):
    host = host or Host()
    msg = Message(kind=CallKind.CALL, flags=flags, depth=depth, gas=gas, recipient=SELF,
                  sender=CALLER, input=data, value=value)
    return ewasm.execute(host, Revision.BYZANTIUM, msg, code), host


def header(*words: int, size: int = 64) -> bytes:
    return struct.pack(f"<{len(words)}I", *words).ljust(size, b"\0")


# --- getters and byte order --------------------------------------------------------------
def test_getters_byte_order_and_gas(probe):
    tx = TxContext(tx_gas_price=0x0102030405, tx_origin=b"\x0a" * 19 + b"\x0b",
                   block_coinbase=b"\xc0" * 19 + b"\xc1", block_number=0x1122334455,
                   block_timestamp=1000, block_gas_limit=0x7766554433,
                   block_prev_randao=(1 << 200) + 0xABCD)
    r, _ = run(probe["getters"], Host(tx=tx), data=b"xyz", value=(1 << 127) + 5)
    assert r.status == S.SUCCESS and r.gas_left == GAS - 13 * 2
    out = r.output
    assert out[0:20] == SELF and out[20:40] == CALLER  # addresses verbatim
    assert out[40:60] == tx.tx_origin and out[60:80] == tx.block_coinbase
    assert out[80:96] == ((1 << 127) + 5).to_bytes(16, "little")  # u128 LE
    assert out[96:112] == (0x0102030405).to_bytes(16, "little")
    assert out[112:144] == ((1 << 200) + 0xABCD).to_bytes(32, "little")  # u256 LE
    assert struct.unpack_from("<qqqII", out, 144) == (
        0x7766554433, 0x1122334455, 1000, 3, len(probe["getters"]))
    # getGasLeft reports the counter after its own charge: the 13th charge of 2.
    assert struct.unpack_from("<q", out, 176)[0] == GAS - 13 * 2


@pytest.mark.parametrize("field_,value", [("value", 1 << 128), ("tx_gas_price", 1 << 128)])
def test_u128_values_that_do_not_fit_are_out_of_range(probe, field_, value):
    if field_ == "value":
        r, _ = run(probe["getters"], value=value)
    else:
        r, _ = run(probe["getters"], Host(tx=TxContext(tx_gas_price=value)))
    assert r.status == S.ARGUMENT_OUT_OF_RANGE and r.gas_left == 0


# --- copies ---------------------------------------------------------------------------------
@pytest.mark.parametrize("result,src,n,ok", [
    (200, 0, 64, True), (200, 10, 54, True), (200, 10, 55, False),  # source strictly in range
    (200, 64, 0, True), (200, 65, 0, False),  # zero length still checked
    (65536 - 64, 0, 64, True), (65536 - 63, 0, 64, False),  # destination in memory
    (0xFFFFFFFF, 0, 2, False),  # 32-bit wrap of offset + length
])
def test_call_data_copy_bounds(probe, result, src, n, ok):
    data = header(0, result, src, n)
    r, _ = run(probe["copy"], data=data)
    if ok:
        assert r.status == S.SUCCESS and r.output == data[src:src + n]
        assert r.gas_left == GAS - copy(64) - copy(n)
    else:
        assert r.status == S.INVALID_MEMORY_ACCESS and r.gas_left == 0


def test_code_copy_sees_the_code_passed_and_is_strict(probe):
    code = probe["copy"]
    r, _ = run(code, data=header(1, 300, 8, 20))
    assert r.status == S.SUCCESS and r.output == code[8:28]
    r, _ = run(code, data=header(1, 300, len(code) - 4, 5))
    assert r.status == S.INVALID_MEMORY_ACCESS and r.gas_left == 0


def test_return_data_copy_of_an_empty_buffer(probe):
    r, _ = run(probe["copy"], data=header(2, 300, 0, 0))
    assert r.status == S.SUCCESS and r.gas_left == GAS - copy(64) - 3
    r, _ = run(probe["copy"], data=header(2, 300, 0, 1))
    assert r.status == S.INVALID_MEMORY_ACCESS


# --- storage --------------------------------------------------------------------------------
def test_storage_is_verbatim_bytes32_and_priced_by_zero_to_nonzero(probe):
    key = bytes(range(32))
    value = (5).to_bytes(4, "little") + bytes(28)  # an LE 5 is 0x05000000.. as an EVM word
    r, host = run(probe["storage"], data=key + value)
    assert r.status == S.SUCCESS and r.output == value
    assert host.storage[(SELF, key)] == value
    assert r.gas_left == GAS - copy(64) - 20000 - 200
    r, host = run(probe["storage"], host, data=key + b"\x07" * 32)  # nonzero -> nonzero
    assert r.gas_left == GAS - copy(64) - 5000 - 200


def test_storage_store_in_static_mode(probe):
    r, host = run(probe["storage"], data=bytes(64), flags=Flags.STATIC)
    assert r.status == S.STATIC_MODE_VIOLATION and host.storage == {}
    # The base cost is charged before the static check.
    r, _ = run(probe["storage"], data=bytes(64), flags=Flags.STATIC, gas=copy(64) + 4999)
    assert r.status == S.OUT_OF_GAS


# --- log -----------------------------------------------------------------------------------
def _log_data(d, n, k, topics=(), extra=b""):
    offsets = [64 + 32 * i for i in range(4)]
    body = b"".join(topics).ljust(128, b"\0") + extra
    return header(d, n, k, *offsets, size=64) + body


def test_log_topics_verbatim_data_and_gas(probe):
    topics = [bytes([i]) * 32 for i in (1, 2, 3)]
    data = _log_data(192, 5, 3, topics, b"hello")
    r, host = run(probe["log"], data=data)
    assert r.status == S.SUCCESS
    assert host.logs == [(SELF, b"hello", tuple(topics))]
    assert r.gas_left == GAS - 2 - copy(len(data)) - (375 + 375 * 3 + 8 * 5)


def test_log_rules(probe):
    r, _ = run(probe["log"], data=_log_data(0, 0, 5))
    assert r.status == S.CONTRACT_VALIDATION_FAILURE and r.gas_left == 0
    r, _ = run(probe["log"], data=_log_data(65536, 0, 0))  # zero length, offset checked
    assert r.status == S.SUCCESS
    r, _ = run(probe["log"], data=_log_data(65537, 0, 0))
    assert r.status == S.INVALID_MEMORY_ACCESS
    r, _ = run(probe["log"], data=_log_data(0, 1, 0), flags=Flags.STATIC)
    assert r.status == S.STATIC_MODE_VIOLATION
    # Unused topic pointers are not checked.
    data = bytearray(_log_data(0, 0, 1))
    struct.pack_into("<I", data, 16, 0xFFFFFFF0)
    assert run(probe["log"], data=bytes(data))[0].status == S.SUCCESS


# --- calls ---------------------------------------------------------------------------------
def _call_data(kind, gas, address=OTHER, value=0, inp=b""):
    return (struct.pack("<IIq", kind, len(inp), gas) + address + value.to_bytes(16, "little")
            ).ljust(64, b"\0") + inp


def test_call_message_gas_and_return_buffer(probe):
    host = Host(balances={SELF: 10**6, OTHER: 1})
    host.result = Result.make(S.SUCCESS, 1234, b"child out")
    data = _call_data(0, 50000, value=7, inp=b"in!")
    r, _ = run(probe["call"], host, data)
    [m] = host.calls
    assert (m.kind, m.recipient, m.code_address, m.sender, m.value, m.input, m.depth) == (
        CallKind.CALL, OTHER, OTHER, SELF, 7, b"in!", 1)
    assert m.gas == 50000 + 2300  # stipend for a value transfer
    assert r.status == S.SUCCESS and r.output == struct.pack("<II", 0, 9) + b"child out"
    spent = 2 + copy(len(data)) + 700 + 9000 + 50000 - 1234 + 2 + copy(9)
    assert r.gas_left == GAS - spent


def test_call_to_absent_account_with_value_and_forwarding_cap(probe):
    host = Host(balances={SELF: 10**6})
    data = _call_data(0, 10**9, value=1)
    r, _ = run(probe["call"], host, data, gas=100000)
    left = 100000 - 2 - copy(len(data)) - 700 - 9000 - 25000
    forwarded = left - left // 64
    assert host.calls[0].gas == forwarded + 2300
    assert r.status == S.SUCCESS


@pytest.mark.parametrize("kind,ckind", [(1, CallKind.CALLCODE), (2, CallKind.DELEGATECALL),
                                        (3, CallKind.CALL)])
def test_call_kinds_fill_the_message(probe, kind, ckind):
    host = Host(balances={SELF: 100})
    r, _ = run(probe["call"], host, _call_data(kind, 5000, value=3), value=9)
    [m] = host.calls
    assert m.kind == ckind and m.code_address == OTHER
    if kind == 1:  # callCode: own storage, explicit value, no new-account fee
        assert (m.recipient, m.sender, m.value, m.gas) == (SELF, SELF, 3, 5000 + 2300)
    elif kind == 2:  # callDelegate: caller and apparent value inherited, stipend too
        assert (m.recipient, m.sender, m.value, m.gas) == (SELF, CALLER, 9, 5000 + 2300)
    else:  # callStatic
        assert (m.recipient, m.sender, m.value, m.flags) == (OTHER, SELF, 0, Flags.STATIC)


@pytest.mark.parametrize("status,code", [(S.SUCCESS, 0), (S.REVERT, 2), (S.FAILURE, 1),
                                         (S.OUT_OF_GAS, 1)])
def test_call_return_codes(probe, status, code):
    host = Host()
    host.result = Result.make(status, 10, b"r")
    r, _ = run(probe["call"], host, _call_data(0, 100))
    assert struct.unpack_from("<I", r.output)[0] == code


def test_call_depth_balance_and_static_value(probe):
    host = Host(balances={SELF: 5})
    r, _ = run(probe["call"], host, _call_data(0, 100), depth=1024)
    assert struct.unpack_from("<I", r.output)[0] == 1 and host.calls == []
    r, _ = run(probe["call"], host, _call_data(0, 100, value=6))
    assert struct.unpack_from("<I", r.output)[0] == 1 and host.calls == []
    r, _ = run(probe["call"], host, _call_data(0, 100, value=1), flags=Flags.STATIC)
    assert r.status == S.STATIC_MODE_VIOLATION
    r, _ = run(probe["call"], host, _call_data(0, -1))
    assert r.status == S.ARGUMENT_OUT_OF_RANGE
    # Zero-length input is not bounds-checked; the address always is.
    data = bytearray(_call_data(0, 100))
    struct.pack_into("<I", data, 4, 0)
    assert run(probe["call"], host, bytes(data))[0].status == S.SUCCESS


# --- the rest ------------------------------------------------------------------------------
def _misc(which, a=0, b=0, c=0, d=0, tail=b""):
    return struct.pack("<IIIIq", which, a, b, c, d).ljust(32, b"\0") + tail


def test_use_gas(probe):
    r, _ = run(probe["misc"], data=_misc(0, d=1000))
    assert r.status == S.SUCCESS and r.gas_left == GAS - 2 - copy(32) - 1000
    assert run(probe["misc"], data=_misc(0, d=-1))[0].status == S.ARGUMENT_OUT_OF_RANGE
    assert run(probe["misc"], data=_misc(0, d=GAS))[0].status == S.OUT_OF_GAS


def test_block_hash(probe):
    h = bytes(range(32, 64))
    host = Host(hashes={7: h})
    r, _ = run(probe["misc"], host, _misc(1, a=500, d=7))
    assert r.output == h and r.gas_left == GAS - 2 - copy(32) - 800
    # Unknown block: 1, and the result pointer is not checked.
    r, _ = run(probe["misc"], host, _misc(1, a=0xFFFFFFFF, d=8))
    assert r.status == S.SUCCESS and r.output == struct.pack("<I", 1)


def test_external_account_queries(probe):
    code = bytes(range(50))
    host = Host(balances={OTHER: 0x0102}, codes={OTHER: code})
    r, _ = run(probe["misc"], host, _misc(2, a=200, tail=OTHER))
    assert r.output == (0x0102).to_bytes(16, "little") and r.gas_left == GAS - 2 - copy(52) - 400
    r, _ = run(probe["misc"], host, _misc(3, tail=OTHER))
    assert r.output == struct.pack("<I", 50) and r.gas_left == GAS - 2 - copy(52) - 700
    r, _ = run(probe["misc"], host, _misc(4, a=300, b=10, c=40, tail=OTHER))
    assert r.output == code[10:50] and r.gas_left == GAS - 2 - copy(52) - 700 - 3 * W(40)
    r, _ = run(probe["misc"], host, _misc(4, a=300, b=10, c=41, tail=OTHER))
    assert r.status == S.INVALID_MEMORY_ACCESS  # a short copy is a bad access
    host.balances[OTHER] = 1 << 128
    assert run(probe["misc"], host, _misc(2, tail=OTHER))[0].status == S.ARGUMENT_OUT_OF_RANGE


def test_self_destruct(probe):
    host = Host(balances={OTHER: 1})
    r, _ = run(probe["misc"], host, _misc(5, tail=OTHER))
    assert r.status == S.SUCCESS and r.output == b"" and host.destructs == [(SELF, OTHER)]
    assert r.gas_left == GAS - 2 - copy(52) - 5000
    r, _ = run(probe["misc"], Host(), _misc(5, tail=OTHER))
    assert r.gas_left == GAS - 2 - copy(52) - 5000 - 25000  # absent beneficiary
    r, _ = run(probe["misc"], Host(), _misc(5, tail=OTHER), flags=Flags.STATIC)
    assert r.status == S.STATIC_MODE_VIOLATION


def test_finish_and_revert(probe):
    r, _ = run(probe["misc"], data=_misc(6, a=4, b=8))
    assert r.status == S.SUCCESS and r.output == _misc(6, a=4, b=8)[4:12]
    r, _ = run(probe["misc"], data=_misc(7, a=0, b=4))
    assert r.status == S.REVERT and r.output == b"\x07\0\0\0"
    assert r.gas_left == GAS - 2 - copy(32)  # revert keeps the gas
    r, _ = run(probe["misc"], data=_misc(7, a=65537, b=0))
    assert r.status == S.INVALID_MEMORY_ACCESS and r.gas_left == 0


def test_create(probe):
    new = b"\x77" * 20
    host = Host(balances={SELF: 100})
    host.result = Result.make(S.SUCCESS, 500, b"ignored", create_address=new)
    init = b"\0asm" + bytes(10)
    data = _misc(8, a=1000, b=len(init), tail=bytes(32) + (9).to_bytes(16, "little")
                 + bytes(16) + init)
    r, _ = run(probe["misc"], host, data)
    [m] = host.calls
    assert (m.kind, m.value, m.input, m.sender, m.recipient) == (
        CallKind.CREATE, 9, init, SELF, bytes(20))
    left = GAS - 2 - copy(len(data)) - 32000
    assert m.gas == left - left // 64
    assert r.output == struct.pack("<II", 0, 0)  # success clears the return buffer
    host.result = Result.make(S.REVERT, 0, b"why")
    r, _ = run(probe["misc"], host, data)
    assert r.output == struct.pack("<II", 2, 3)
    assert run(probe["misc"], host, data, flags=Flags.STATIC)[0].status == \
        S.STATIC_MODE_VIOLATION


# --- contract interface ------------------------------------------------------------------------
BAD_CONTRACTS = {
    "no main": '(module (memory 1) (export "memory" (memory 0)))',
    "main with params": '(module (memory 1) (export "memory" (memory 0)) '
                        '(func (export "main") (param i32)))',
    "extra export": '(module (memory 1) (export "memory" (memory 0)) (func (export "main")) '
                    '(func (export "x")))',
    "no memory export": '(module (memory 1) (func (export "main")) (func (export "x")))',
    "start": '(module (memory 1) (export "memory" (memory 0)) (func $m (export "main")) '
             '(start $m))',
    "namespace": '(module (import "env" "finish" (func (param i32 i32))) (memory 1) '
                 '(export "memory" (memory 0)) (func (export "main")))',
    "unknown name": '(module (import "ethereum" "foobar" (func)) (memory 1) '
                    '(export "memory" (memory 0)) (func (export "main")))',
    "signature": '(module (import "ethereum" "finish" (func (param i32))) (memory 1) '
                 '(export "memory" (memory 0)) (func (export "main")))',
    "float": '(module (memory 1) (export "memory" (memory 0)) '
             '(func (export "main") (drop (f32.const 1))))',
    "debug without debug mode": '(module (import "debug" "print32" (func (param i32))) '
                                '(memory 1) (export "memory" (memory 0)) (func (export "main")))',
}


@pytest.mark.parametrize("name", BAD_CONTRACTS)
def test_invalid_contracts(wat, name):
    r, _ = run(wat(BAD_CONTRACTS[name]))
    assert r.status == S.CONTRACT_VALIDATION_FAILURE and r.gas_left == 0, r.message


def test_debug_namespace_in_debug_mode(wat):
    code = wat(BAD_CONTRACTS["debug without debug mode"])
    msg = Message(gas=100)
    assert ewasm.execute(Host(), Revision.BYZANTIUM, msg, code, debug=True).gas_left == 100


def test_non_wasm_and_wrong_version():
    msg = Message(gas=100)
    assert ewasm.execute(Host(), Revision.BYZANTIUM, msg, b"\x60\x00\x60\x00").status == \
        S.FAILURE
    assert ewasm.execute(Host(), Revision.BYZANTIUM, msg, b"\x60\x00",
                         evm1_mode="fallback").status == S.REJECTED
    code = bytes.fromhex("0061736d02000000")
    assert ewasm.execute(Host(), Revision.BYZANTIUM, msg, code).status == \
        S.CONTRACT_VALIDATION_FAILURE


@pytest.mark.parametrize("n,gas", [(5, 8), (0, 5), (64, 11)])
def test_documented_echo_vector(n, gas):
    # ewasm-contract-interface.md §7: getCallDataSize + callDataCopy + finish.
    code = bytes.fromhex(
        "0061736d010000000113046000006000017f60037f7f7f0060027f7f0002460308657468657265756d"
        "0f67657443616c6c4461746153697a65000108657468657265756d0c63616c6c44617461436f707900"
        "0208657468657265756d0666696e6973680003030201000503010001071102066d656d6f7279020004"
        "6d61696e00030a18011601017f1000210041004100200010014100200010020b")
    data = bytes(range(n))
    r, _ = run(code, data=data, gas=1000)
    assert r.status == S.SUCCESS and r.output == data and r.gas_left == 1000 - gas


def test_metering_charges_instructions(probe):
    plain, _ = run(probe["getters"])
    metered = ewasm.execute(Host(), Revision.BYZANTIUM,
                            Message(gas=GAS, recipient=SELF, sender=CALLER),
                            probe["getters"], metering=True)
    assert metered.status == S.SUCCESS and metered.gas_left < plain.gas_left - 100
