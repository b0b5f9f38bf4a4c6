"""The Ewasm state tests (../shared/fixtures/ewasm-state-tests) through the runner, and
the runner itself: mutated fixtures must fail, the CLI's outputs and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from state.statetest import load_tests
from state.statetest.cli import main as statetest_main
from state.statetest.filler import _int, diff_against_expect, load_filler
from state.statetest.runner import discover, run_case, run_paths

SUITE = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "ewasm-state-tests"
GROUPS = {"filled": {}, "benchmarking/filled": {},
          # Filled by an older Hera built with its debug namespace (debug.printStorageHex).
          "wrc20": {"debug": "true"}}
EXPECTED_COUNTS = {"filled": 226, "benchmarking/filled": 25, "wrc20": 1}


def _cases():
    if not SUITE.exists():
        return []
    out = []
    for group in GROUPS:
        for f in discover([SUITE / group]):
            for test in load_tests(f):
                for fork, entries in test.posts.items():
                    for i in range(len(entries)):
                        out.append(pytest.param(test, fork, i, group,
                                                id=f"{group}/{test.name}[{fork}]"))
    return out


CASES = _cases()
needs_suite = pytest.mark.skipif(not SUITE.exists(),
                                 reason=f"shared state tests not found at {SUITE} "
                                        "(they sit beside the clone in CI)")


@needs_suite
def test_the_suite_is_complete():
    counts = {g: sum(1 for c in CASES if c.values[3] == g) for g in GROUPS}
    assert counts == EXPECTED_COUNTS


@needs_suite
@pytest.mark.parametrize("test,fork,index,group", CASES)
def test_fixture(test, fork, index, group):
    r = run_case(test, fork, index, group, GROUPS[group])
    assert r.status == "pass", (
        f"{r.id}: {r.error}\n root expected {r.expected_root} actual {r.actual_root}\n"
        f" logs expected {r.expected_logs} actual {r.actual_logs}\n" + "\n".join(r.diff))


def _copy(tmp_path: Path, name: str) -> Path:
    d = tmp_path / "filled"
    d.mkdir(exist_ok=True)
    (tmp_path / "fillers").mkdir(exist_ok=True)
    shutil.copy(SUITE / "filled" / f"{name}.json", d)
    shutil.copy(SUITE / "fillers" / f"{name}Filler.yml", tmp_path / "fillers")
    return d / f"{name}.json"


def _edit(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(next(iter(data.values())))
    path.write_text(json.dumps(data))


def _flip_code_byte(t):
    acc = t["pre"]["0xb100000000000000000000000000000000000001"]
    code = bytearray(bytes.fromhex(acc["code"][2:]))
    code[-1] ^= 0x01  # a byte of the data segment: still valid, different behaviour
    acc["code"] = "0x" + code.hex()


def _flip_hex(field):
    def edit(t):
        post = t["post"]["Byzantium"][0]
        post[field] = post[field][:-1] + ("0" if post[field][-1] != "0" else "1")
    return edit


@needs_suite
@pytest.mark.parametrize("edit", [_flip_code_byte, _flip_hex("hash"), _flip_hex("logs")],
                         ids=["code byte", "post hash", "logs hash"])
def test_a_changed_fixture_fails(tmp_path, edit):
    path = _copy(tmp_path, "callDelegate")
    assert [r.status for r in run_paths([path])] == ["pass"]
    _edit(path, edit)
    assert [r.status for r in run_paths([path])] == ["fail"]
    assert statetest_main([str(path)]) == 1


@needs_suite
def test_cli_exit_codes_json_and_filter(tmp_path, capsys):
    for name in ("callDelegate", "storageLoad", "getAddress"):
        _copy(tmp_path, name)
    folder = tmp_path / "filled"
    assert statetest_main([str(folder)]) == 0
    capsys.readouterr()
    assert statetest_main([str(folder), "--json", "-k", "get*"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records] == ["getAddress"]
    assert {"name", "file", "fork", "status", "expected_root", "actual_root",
            "expected_logs", "actual_logs", "time", "error"} <= records[0].keys()
    assert records[0]["expected_root"] == records[0]["actual_root"]
    assert statetest_main([str(folder), "--json", "-k", "storage"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["storageLoad"]
    assert statetest_main([str(tmp_path / "missing")]) == 2
    assert statetest_main([str(folder), "-k", "nothing-matches"]) == 2
    assert statetest_main([str(folder), "-o", "nosuch=1"]) == 2


@needs_suite
def test_parallel_run_gives_the_same_results():
    files = sorted((SUITE / "filled").glob("call*.json"))[:8]
    one = [(r.name, r.status, r.actual_root) for r in run_paths(files, jobs=1)]
    two = [(r.name, r.status, r.actual_root) for r in run_paths(files, jobs=2)]
    assert one == two and len(one) == 8


@needs_suite
def test_failure_diff_names_the_account_and_slot(tmp_path, capsys):
    path = _copy(tmp_path, "callDelegate")
    filler = tmp_path / "fillers" / "callDelegateFiller.yml"
    text = filler.read_text()
    expect = load_filler(filler, "callDelegate")["expect"][0]["result"]
    # Change what the filler expects (the sender's balance) and make
    # the filled hash disagree so that the case fails and the diff is computed.
    sender = next(a for a in expect if "a94f" in str(a))
    old_balance = str(expect[sender]["balance"])
    # (the number also appears in a comment: replace the value, not the first match)
    text = text.replace(f"balance: '{old_balance}'",
                        f"balance: '{_int(old_balance) + 1000}'")
    filler.write_text(text)
    _edit(path, _flip_hex("hash"))
    [r] = run_paths([path])
    assert r.status == "fail"
    assert any("a94f5374" in line and "balance" in line and "-1000" in line
               for line in r.diff), r.diff
    assert statetest_main([str(path)]) == 1
    assert "balance" in capsys.readouterr().out


def test_filler_yaml_quirks(tmp_path):
    (tmp_path / "xFiller.yml").write_text(
        "x:\n  expect:\n    - indexes: {data: !!int -1, gas: !!int -1, value: !!int -1}\n"
        "      network: [ALL]\n      result:\n"
        "        b94f5374fce5edbc8e2a8697c15331677e6ebf0b:\n"
        "          balance: '0x10'\n          nonce: ''\n"
        "          storage: {0: '0x01', 10: 2}\n")
    result = load_filler(tmp_path / "xFiller.yml", "x")["expect"][0]["result"]
    from state.backend import Account
    from state.memory import MemoryBackend

    addr = bytes.fromhex("b94f5374fce5edbc8e2a8697c15331677e6ebf0b")
    good = MemoryBackend.from_accounts({addr: Account(balance=16, storage={
        (0).to_bytes(32, "big"): (1).to_bytes(32, "big"),
        (10).to_bytes(32, "big"): (2).to_bytes(32, "big")})})
    assert diff_against_expect(good, result) == []
    bad = MemoryBackend.from_accounts({addr: Account(balance=16, nonce=1, storage={
        (0).to_bytes(32, "big"): (1).to_bytes(32, "big"),
        (11).to_bytes(32, "big"): (2).to_bytes(32, "big")})})
    lines = diff_against_expect(bad, result)
    assert any("nonce" in s for s in lines)
    assert any("storage[0xa]" in s and "absent" in s for s in lines)
    assert any("storage[0xb]" in s for s in lines)
    assert _int("") == 0 and _int("0x1f") == 31 and _int("42") == 42 and _int(7) == 7
