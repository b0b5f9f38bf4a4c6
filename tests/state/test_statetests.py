"""The Ewasm state tests (../shared/fixtures/ewasm-state-tests) through the runner, and
the runner itself: mutated fixtures must fail, the CLI's outputs and exit codes, the
filler loader's YAML quirks and the diff against `expect`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from eth_hash.auto import keccak

from apps.statetest_cli import main as statetest_main
from state.backend import Account
from state.errors import StateTestError
from state.memory import MemoryBackend
from state.statetest import run_case, run_paths
from state.statetest.filler import (
    diff_against_expect,
    expect_entries,
    find_filler,
    load_filler,
    load_yaml,
    to_address,
    to_int,
)
from state.statetest.fixture import hex_bytes, parse_test, sender_of
from state.statetest.runner import discover, group_of
from tests.state.suites import needs, parsed_tests

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SUITE = SHARED / "fixtures" / "ewasm-state-tests"
# group -> engine options. wrc20 was filled by an older Hera built with its debug
# namespace (the contract imports debug.printStorageHex).
GROUPS = {"filled": {}, "benchmarking/filled": {}, "wrc20": {"debug": "true"}}
EXPECTED_COUNTS = {"filled": 226, "benchmarking/filled": 25, "wrc20": 1}
SENDER = bytes.fromhex("a94f5374fce5edbc8e2a8697c15331677e6ebf0b")

# Only the tests that read the fixtures are skipped without them: the loader and diff
# unit tests at the end need nothing from ../shared.
needs_suite = needs(SUITE, "shared state tests")




def _cases() -> list:
    if not SUITE.is_dir():
        return []
    out = []
    for group in GROUPS:
        for f in discover([SUITE / group]):
            if f.name == "test_vectors.json":
                continue
            for name, test in parsed_tests(str(f)).items():
                for fork, index, _ in test.cases():
                    out.append(pytest.param(group, str(f), name, fork, index,
                                            id=f"{group}/{name}[{fork}]"))
    return out


CASES = _cases()


# --- (a) every fixture ---------------------------------------------------------------

@needs_suite
def test_the_suite_is_complete():
    counts = {g: sum(1 for c in CASES if c.values[0] == g) for g in GROUPS}
    assert counts == EXPECTED_COUNTS


@needs_suite
@pytest.mark.parametrize("group,path,name,fork,index", CASES)
def test_fixture(group, path, name, fork, index):
    r = run_case(parsed_tests(path)[name], fork, index, options=GROUPS[group], group=group)
    assert r.status == "pass", (
        f"{r.id}: {r.error}\n root expected {r.expected_root}\n        actual {r.actual_root}"
        f"\n logs expected {r.expected_logs}\n        actual {r.actual_logs}\n"
        + "\n".join(r.diff))


@needs_suite
@pytest.mark.parametrize("group,path,name,fork,index", CASES)
def test_fixture_with_the_evm_off(group, path, name, fork, index):
    """The same suite with `-o evm=false`: code that is not Wasm is refused, as before
    the EVM (issue 21: 252/252 with the EVM on and off)."""
    options = {**GROUPS[group], "evm": "false"}
    r = run_case(parsed_tests(path)[name], fork, index, options=options, group=group)
    assert r.status == "pass", f"{r.id}: {r.error}"


# --- (b) a changed fixture fails -----------------------------------------------------

def _copy(tmp_path: Path, name: str, with_filler: bool = True) -> Path:
    """filled/<name>.json (+ fillers/<name>Filler.yml) under tmp_path, as in the suite."""
    d = tmp_path / "filled"
    d.mkdir(exist_ok=True)
    shutil.copy(SUITE / "filled" / f"{name}.json", d)
    if with_filler:
        (tmp_path / "fillers").mkdir(exist_ok=True)
        shutil.copy(SUITE / "fillers" / f"{name}Filler.yml", tmp_path / "fillers")
    return d / f"{name}.json"


def _edit(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(next(iter(data.values())))
    path.write_text(json.dumps(data))


def _flip_code_byte(t: dict) -> None:
    acc = t["pre"]["0xc100000000000000000000000000000000000001"]
    code = bytearray(hex_bytes(acc["code"]))
    # The last byte is inside the callee's data segment (the bytes it returns): the
    # module stays valid, only its code hash and output change.
    code[-1] ^= 0x01
    acc["code"] = "0x" + code.hex()


def _flip_hex(key: str):
    def edit(t: dict) -> None:
        post = t["post"]["Byzantium"][0]
        post[key] = post[key][:-1] + ("0" if post[key][-1] != "0" else "1")
    return edit


@needs_suite
@pytest.mark.parametrize("edit", [_flip_code_byte, _flip_hex("hash"), _flip_hex("logs")],
                         ids=["code byte", "post hash", "logs hash"])
def test_a_changed_fixture_fails(tmp_path, edit, capsys):
    path = _copy(tmp_path, "callDelegate")
    assert [r.status for r in run_paths([path])] == ["pass"]
    _edit(path, edit)
    [r] = run_paths([path])
    assert r.status == "fail"
    assert (r.expected_root != r.actual_root) or (r.expected_logs != r.actual_logs)
    assert statetest_main([str(path), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "callDelegate" in out and "MISMATCH" in out


@needs_suite
def test_a_changed_logs_hash_fails_on_a_test_with_logs(tmp_path):
    path = _copy(tmp_path, "log1Topic", with_filler=False)
    [r] = run_paths([path])
    assert r.status == "pass" and r.actual_logs != keccak(b"\xc0").hex()
    _edit(path, _flip_hex("logs"))
    [r] = run_paths([path])
    assert r.status == "fail" and r.actual_root == r.expected_root


# --- (c) the command line ------------------------------------------------------------

@needs_suite
def test_cli_exit_codes_json_and_filter(tmp_path, capsys):
    for name in ("callDelegate", "storageLoad", "getAddress"):
        _copy(tmp_path, name)
    folder = tmp_path / "filled"
    assert statetest_main([str(folder)]) == 0
    out = capsys.readouterr().out
    assert "3/3 passed" in out and "filled" in out

    assert statetest_main([str(folder), "--json", "-k", "get*"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records] == ["getAddress"]
    rec = records[0]
    assert {"name", "file", "fork", "status", "expected_root", "actual_root",
            "expected_logs", "actual_logs", "time", "error"} <= rec.keys()
    assert rec["status"] == "pass" and rec["fork"] == "Byzantium" and rec["error"] == ""
    assert rec["expected_root"] == rec["actual_root"] and len(rec["actual_root"]) == 64
    assert rec["expected_logs"] == rec["actual_logs"] == keccak(b"\xc0").hex()
    assert isinstance(rec["time"], float) and Path(rec["file"]).name == "getAddress.json"

    assert statetest_main([str(folder), "--json", "-k", "orageLo"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["storageLoad"]
    assert statetest_main([str(folder), "--json", "--fork", "byzantium"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3

    # Usage errors: nothing to run, a bad path, a malformed option.
    assert statetest_main([str(tmp_path / "missing")]) == 2
    assert statetest_main([str(folder), "-k", "nothing-matches"]) == 2
    assert statetest_main([str(folder), "--fork", "Istanbul"]) == 2
    assert statetest_main([str(folder), "-o", "no-equals-sign"]) == 2
    assert statetest_main([str(tmp_path / "fillers")]) == 2  # no JSON files there
    assert statetest_main(["--no-such-flag", str(folder)]) == 2
    assert statetest_main([]) == 2


@needs_suite
def test_cli_failure_exit_code_and_json_record(tmp_path, capsys):
    path = _copy(tmp_path, "getAddress")
    _edit(path, _flip_hex("hash"))
    assert statetest_main([str(path), "--json"]) == 1
    [rec] = json.loads(capsys.readouterr().out)
    assert rec["status"] == "fail" and rec["expected_root"] != rec["actual_root"]


@needs_suite
def test_a_folder_scan_skips_json_that_is_not_a_state_test(tmp_path):
    _copy(tmp_path, "getAddress")
    (tmp_path / "filled" / "vectors.json").write_text('[{"input": "00"}]')
    assert [r.name for r in run_paths([tmp_path / "filled"])] == ["getAddress"]
    # Named explicitly, it is an error rather than silence.
    [r] = run_paths([tmp_path / "filled" / "vectors.json"])
    assert r.status == "error" and "not a filled state-test" in r.error


@needs_suite
def test_groups_are_folders_relative_to_the_common_root():
    files = [SUITE / "filled" / "getAddress.json",
             SUITE / "benchmarking" / "filled" / "mul256.json",
             SUITE / "wrc20" / "wrc20_handwritten.json"]
    results = run_paths(files, options={"debug": "true"})
    assert [r.group for r in results] == ["filled", "benchmarking/filled", "wrc20"]
    assert [r.status for r in results] == ["pass"] * 3
    assert {r.group for r in run_paths([SUITE / "filled"], pattern="getAddress")} == {"filled"}
    assert group_of(files[0], SUITE) == "filled"


@needs_suite
def test_parallel_run_gives_the_same_results():
    files = sorted((SUITE / "filled").glob("call*.json"))[:6] + [
        SUITE / "benchmarking" / "filled" / "mul256.json"]
    seen = []
    one = [(r.name, r.status, r.actual_root, r.actual_logs) for r in run_paths(files, jobs=1)]
    two = [(r.name, r.status, r.actual_root, r.actual_logs)
           for r in run_paths(files, jobs=2, on_file=lambda p, batch: seen.append(p))]
    assert one == two and len(one) == 7
    assert sorted(seen) == sorted(files)  # progress saw every file once


@needs_suite
def test_cli_parallel_gives_the_same_statuses(tmp_path, capsys):
    for name in ("callDelegate", "storageLoad", "getAddress", "log1Topic", "codeCopy"):
        _copy(tmp_path, name, with_filler=False)
    _edit(tmp_path / "filled" / "storageLoad.json", _flip_hex("hash"))  # one failure
    runs = {}
    for jobs in ("1", "2"):
        assert statetest_main([str(tmp_path / "filled"), "--json", "-j", jobs]) == 1
        runs[jobs] = [(r["name"], r["status"], r["actual_root"], r["actual_logs"])
                      for r in json.loads(capsys.readouterr().out)]
    assert runs["1"] == runs["2"]
    assert [(n, st) for n, st, _, _ in runs["1"]] == [
        ("callDelegate", "pass"), ("codeCopy", "pass"), ("getAddress", "pass"),
        ("log1Topic", "pass"), ("storageLoad", "fail")]


@needs_suite
def test_failure_diff_names_the_account_and_slot(tmp_path, capsys):
    path = _copy(tmp_path, "callDelegate")
    filler = tmp_path / "fillers" / "callDelegateFiller.yml"
    text = filler.read_text()
    # What the filler expects: b1..01's slot 0 holds c1..01's address (callDelegate runs
    # c1's code on b1's storage), and the sender's balance. Change both expectations,
    # and the filled hash so that the case fails and the diff is computed.
    stored = "0xb100000000000000000000000000000000000001000000000000000000000000"
    assert text.count(stored) == 1 and text.count("balance: '99999958298'") == 1
    text = text.replace(stored, stored.replace("0xb1", "0xb2"))
    text = text.replace("balance: '99999958298'", "balance: '99999959298'")
    filler.write_text(text)
    _edit(path, _flip_hex("hash"))
    [r] = run_paths([path])
    assert r.status == "fail"
    assert find_filler(path, "callDelegate") == filler
    assert ("0xa94f5374fce5edbc8e2a8697c15331677e6ebf0b balance: expected 99999959298, "
            "got 99999958298 (-1000)") in r.diff
    [slot_line] = [line for line in r.diff if "storage" in line]
    assert slot_line.startswith("0xb100000000000000000000000000000000000001 storage[0x00]: "
                                "expected 0xb2"), slot_line
    assert "got 0xb1" in slot_line
    assert len(r.diff) == 2, r.diff
    assert statetest_main([str(path), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "storage[0x00]" in out and "(-1000)" in out


@needs_suite
def test_a_filler_beside_the_filled_file_is_found(tmp_path):
    shutil.copy(SUITE / "wrc20" / "wrc20_handwritten.json", tmp_path)
    shutil.copy(SUITE / "wrc20" / "wrc20_handwrittenFiller.yml", tmp_path)
    # Without the debug namespace the contract is rejected: the storage the filler
    # expects is missing, and the diff says which slots.
    [r] = run_paths([tmp_path / "wrc20_handwritten.json"])
    assert r.status == "fail" and "debug" in r.error
    owner = "0xed09375dc6b20050d242d1611af97ee4a6e93cad"
    assert f"{owner} storage[0x00]: expected 0x0f4240" + "0" * 48 + ", got 0x00 (absent)" \
        in r.diff
    assert [r.status for r in run_paths([tmp_path], options={"debug": "true"})] == ["pass"]


# --- fixture parsing -------------------------------------------------------------------

def _raw_test(**tx) -> dict:
    transaction = {"data": ["0x", "0x0001"], "gasLimit": ["0x0186a0"], "value": ["0x00", "0x0a"],
                   "gasPrice": "0x01", "nonce": "0x00",
                   "secretKey": "0x45a915e4d060149eb4365960e6a7a45f334393093061116b197e3240065ff2d8",
                   "to": "0xc100000000000000000000000000000000000001"}
    transaction.update(tx)
    return {"env": {"currentCoinbase": "0x2adc25665018aa1fe0e6bc666dac8fc2697ff9ba",
                    "currentDifficulty": "0x020000", "currentGasLimit": "0x05500000",
                    "currentNumber": "0x01", "currentTimestamp": "0x03e8",
                    "previousHash": "0x" + "00" * 32},
            "pre": {"0xc100000000000000000000000000000000000001": {
                "balance": "0x0a", "nonce": "0x01", "code": "0x",
                "storage": {"0x00": "0x01", "0x01": "0x00", "0x0100": "0xff"}}},
            "transaction": transaction,
            "post": {"Byzantium": [{"indexes": {"data": 1, "gas": 0, "value": 1},
                                    "hash": "0x" + "11" * 32, "logs": "0x" + "22" * 32}]}}


def test_fixture_parsing():
    t = parse_test("t", _raw_test(), Path("t.json"))
    acc = t.pre[bytes.fromhex("c1" + "00" * 18 + "01")]
    assert acc.nonce == 1 and acc.balance == 10 and acc.code == b""
    # zero values are absent; slots and values are 32-byte big-endian
    assert acc.storage == {(0).to_bytes(32, "big"): (1).to_bytes(32, "big"),
                           (256).to_bytes(32, "big"): (255).to_bytes(32, "big")}
    assert t.env.number == 1 and t.env.timestamp == 1000 and t.env.gas_limit == 0x05500000
    assert t.env.difficulty == 0x020000 and len(t.env.coinbase) == 20
    [(fork, index, post)] = t.cases()
    assert (fork, index, post.indexes) == ("Byzantium", 0, (1, 0, 1))
    assert post.hash == b"\x11" * 32 and post.logs == b"\x22" * 32
    assert list(t.cases({"istanbul"})) == []
    tx = t.build_transaction(post.indexes)
    assert tx.sender == SENDER and tx.to == bytes.fromhex("c1" + "00" * 18 + "01")
    assert (tx.data, tx.value, tx.gas_limit, tx.gas_price, tx.nonce) == (
        b"\x00\x01", 10, 100000, 1, 0)
    with pytest.raises(IndexError, match="gas=1"):
        t.build_transaction((0, 1, 0))
    assert parse_test("c", _raw_test(to=""), Path("c.json")).build_transaction(
        (0, 0, 0)).to is None


def test_sender_is_derived_once_per_key():
    key = bytes.fromhex("45a915e4d060149eb4365960e6a7a45f334393093061116b197e3240065ff2d8")
    sender_of.cache_clear()
    assert sender_of(key) == SENDER
    parse_test("a", _raw_test(), Path("a.json"))
    parse_test("b", _raw_test(), Path("b.json"))
    assert sender_of.cache_info().misses == 1


def test_testeth_block_hash_rule():
    env = parse_test("t", _raw_test(), Path("t.json")).env  # block 1
    assert env.block_hash(0) == keccak(b"0")
    assert env.block_hash(0).hex().startswith("044852b2")
    assert env.block_hash(1) == bytes(32) and env.block_hash(-1) == bytes(32)
    raw = _raw_test()
    raw["env"]["currentNumber"] = hex(5000)
    env = parse_test("t", raw, Path("t.json")).env
    assert env.block_hash(4999) == keccak(b"4999") and env.block_hash(4744) == keccak(b"4744")
    assert env.block_hash(4743) == bytes(32)


# --- (d) filler YAML quirks and the expect diff ----------------------------------------

QUIRKS = """\
x:
  pre:
    1000000000000000000000000000000000000001:
      balance: 0x10
      code: 0x600160
      nonce: ''
      storage: {0: '0x01', 10: 2}
  expect:
    - indexes: {data: !!int -1, gas: !!int -1, value: !!int -1}
      network: [ALL]
      result:
        b94f5374fce5edbc8e2a8697c15331677e6ebf0b:
          balance: '0x10'
          nonce: ''
          storage: {0: '0x01', 10: 2}
        0000000000000000000000000000000000000010:
          shouldnotexist: '1'
        0xC100000000000000000000000000000000000001:
          code: |
            (module (memory 1) (export "memory" (memory 0)))
    - indexes: {data: [1, 2], gas: 0, value: -1}
      network: ['>=Byzantium']
      result:
        b94f5374fce5edbc8e2a8697c15331677e6ebf0b:
          nonce: 7
"""


def test_plain_yaml_would_mangle_what_the_filler_loader_keeps():
    # What a YAML 1.1 loader does to these values, and so what the loader must not do.
    plain = yaml.safe_load(QUIRKS)["x"]
    assert 1000000000000000000000000000000000000001 in plain["pre"]
    assert plain["pre"][1000000000000000000000000000000000000001]["code"] == 0x600160
    assert 8 in plain["expect"][0]["result"]  # 0...010 read as octal

    x = load_yaml(QUIRKS)["x"]
    acc = x["pre"]["1000000000000000000000000000000000000001"]
    assert acc["balance"] == "0x10" and acc["code"] == "0x600160" and acc["nonce"] == ""
    assert acc["storage"] == {"0": "0x01", "10": "2"}
    result = x["expect"][0]["result"]
    assert "0000000000000000000000000000000000000010" in result
    assert x["expect"][0]["indexes"] == {"data": -1, "gas": -1, "value": -1}  # !!int
    assert x["expect"][1]["indexes"] == {"data": ["1", "2"], "gas": "0", "value": "-1"}


def test_filler_numbers_and_addresses():
    assert to_int("") == 0 and to_int("0x") == 0 and to_int("0x1f") == 31
    assert to_int("42") == 42 and to_int(7) == 7 and to_int("0010") == 10
    a = bytes.fromhex("0000000000000000000000000000000000000010")
    assert to_address("0000000000000000000000000000000000000010") == a
    assert to_address("0x0000000000000000000000000000000000000010") == a
    assert to_address(1000000000000000000000000000000000000001) == bytes.fromhex(
        "1000000000000000000000000000000000000001")
    assert to_address("0xeD09375DC6B20050d242d1611af97eE4A6E93CAd").hex() == \
        "ed09375dc6b20050d242d1611af97ee4a6e93cad"
    with pytest.raises(StateTestError):
        to_address("0x" + "11" * 21)


def _quirks_filler(tmp_path: Path) -> dict:
    (tmp_path / "xFiller.yml").write_text(QUIRKS)
    return load_filler(tmp_path / "xFiller.yml", "x")


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


B94F = bytes.fromhex("b94f5374fce5edbc8e2a8697c15331677e6ebf0b")
C1 = bytes.fromhex("c100000000000000000000000000000000000001")


def test_diff_against_expect_agreeing_state(tmp_path):
    filler = _quirks_filler(tmp_path)
    good = MemoryBackend.from_accounts({
        B94F: Account(balance=16, storage={_word(0): _word(1), _word(10): _word(2)}),
        C1: Account(code=b"\0asm\1\0\0\0")})
    # c1..01's code is Wasm text in the filler: not compared, so no line for it.
    assert diff_against_expect(good, filler, "Byzantium") == []
    # The same through the parsed entries and through the raw list.
    assert diff_against_expect(good, expect_entries(filler), "Byzantium") == \
        diff_against_expect(good, filler["expect"], "Byzantium")


def test_diff_against_expect_differences(tmp_path):
    filler = _quirks_filler(tmp_path)
    gone = bytes.fromhex("0000000000000000000000000000000000000010")
    bad = MemoryBackend.from_accounts({
        B94F: Account(balance=30016, nonce=1, storage={_word(0): _word(1),
                                                        _word(11): _word(2)}),
        gone: Account(balance=1)})
    lines = diff_against_expect(bad, filler, "Byzantium", (0, 0, 0))
    name = "0x" + B94F.hex()
    assert lines == [
        f"{name} balance: expected 16, got 30016 (+30000)",
        f"{name} nonce: expected 0, got 1 (+1)",
        f"{name} storage[0x0a]: expected 0x02, got 0x00 (absent)",
        f"{name} storage[0x0b]: expected 0x00, got 0x02",
        "0x0000000000000000000000000000000000000010 should not exist but does",
        "0xc100000000000000000000000000000000000001 should exist but does not",
    ]
    # The second entry applies to data index 1 or 2, gas 0, any value, Byzantium or later.
    lines = diff_against_expect(bad, filler, "Byzantium", (2, 0, 5))
    assert f"{name} nonce: expected 7, got 1 (-6)" in lines
    assert not any("nonce: expected 7" in s for s in
                   diff_against_expect(bad, filler, "Byzantium", (2, 1, 0)))
    assert not any("nonce: expected 7" in s for s in
                   diff_against_expect(bad, filler, "Homestead", (2, 0, 0)))
    assert diff_against_expect(bad, {"expect": []}, "Byzantium") == [
        "(no expect entry for Byzantium data=0 gas=0 value=0)"]


def test_diff_compares_hex_code(tmp_path):
    expect = [{"indexes": {"data": -1, "gas": -1, "value": -1}, "network": ["Byzantium"],
               "result": {C1.hex(): {"code": "0x6001"}}}]
    same = MemoryBackend.from_accounts({C1: Account(code=b"\x60\x01")})
    other = MemoryBackend.from_accounts({C1: Account(code=b"\x60\x02")})
    assert diff_against_expect(same, expect, "Byzantium") == []
    assert diff_against_expect(other, expect, "Byzantium") == [
        f"0x{C1.hex()} code: expected 2 bytes 0x6001, got 2 bytes 0x6002"]
    # "" is no code, which is compared; Wasm text never is.
    expect[0]["result"][C1.hex()]["code"] = ""
    assert diff_against_expect(other, expect, "Byzantium") == [
        f"0x{C1.hex()} code: expected 0 bytes 0x, got 2 bytes 0x6002"]
    expect[0]["result"][C1.hex()]["code"] = "(module (func $main (export \"main\")))"
    assert diff_against_expect(other, expect, "Byzantium") == []


@needs_suite
def test_every_filler_of_the_suite_loads():
    names = 0
    for f in sorted((SUITE / "fillers").glob("*Filler.yml")) + [
            SUITE / "wrc20" / "wrc20_handwrittenFiller.yml"]:
        name = f.name.removesuffix("Filler.yml")
        entries = expect_entries(load_filler(f, name))
        assert entries and all(e.applies("Byzantium", (0, 0, 0)) for e in entries), f
        for e in entries:
            for address in e.result:
                to_address(address)
        names += 1
    assert names == 227


@needs_suite
def test_the_ewasm_command_forwards_statetest(tmp_path, capsys):
    from apps.cli import main as ewasm_main

    path = _copy(tmp_path, "getAddress", with_filler=False)
    assert ewasm_main(["statetest", str(path), "--json"]) == 0
    [rec] = json.loads(capsys.readouterr().out)
    assert rec["name"] == "getAddress" and rec["status"] == "pass"
    assert ewasm_main(["statetest", str(tmp_path / "missing")]) == 2
    assert ewasm_main(["statetest", "-h"]) == 0
    assert "ewasm statetest" in capsys.readouterr().out


def test_the_ewasm_command_imports_the_runner_only_for_statetest():
    import subprocess
    import sys

    code = ("import sys, apps.cli; "
            "print(any(m.startswith(('state.statetest', 'rich', 'yaml')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


@needs_suite
def test_progress_bar_on_stderr(tmp_path, capsys):
    path = _copy(tmp_path, "getAddress", with_filler=False)
    assert statetest_main([str(path), "--progress", "--json"]) == 0
    captured = capsys.readouterr()
    assert "statetest" in captured.err and "1/1" in captured.err and "1 passed" in captured.err
    assert json.loads(captured.out)[0]["status"] == "pass"
    assert statetest_main([str(path), "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
    # By default only a terminal gets the bar; captured stderr is not one.
    assert statetest_main([str(path)]) == 0
    assert capsys.readouterr().err == ""
