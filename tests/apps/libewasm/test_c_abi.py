"""The engine through the EVMC C ABI, both directions.

libewasm.so is built once per session (`apps.libewasm.build`); a C host (evmc_host.c,
compiled here with the system cc) dlopens it as EVMC's loader does and runs contracts
against storage, logs and calls implemented in C; `evmc_bridge.load_vm` drives the same
library from Python. Expected values: the contract's documented behaviour (outputs,
statuses, what the host saw) and, for gas, `ewasm.execute` called directly on a Python
host that behaves as the C one does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import apps.libewasm.embedded
import ewasm
import gasmeter
from chain.wrap import wrap_deploy
from evmc_bridge import CallKind, Message, Result, Revision, StatusCode, StorageStatus, TxContext
from evmc_bridge.loader import EvmcLoadError, EvmcOptionError, create_function_names, load_vm
from ewasm.contract import CONTRACT_FEATURES

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SELF, CALLER = b"\x01" * 20, b"\x02" * 20
BALANCE = 1_000_000
CONTRACTS = ["storage", "call_value", "revert", "burn", "invalid", "trivial", "self_copy"]


@pytest.fixture(scope="session")
def c_host(cc, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evmc-host") / "evmc_host"
    subprocess.run([cc, "-O1", "-Wall", "-Werror", "-o", str(out), str(HERE / "evmc_host.c"),
                    "-ldl", "-lpthread"], check=True)
    return out


@pytest.fixture(scope="session")
def wasm(tmp_path_factory, wat) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("evmc-wasm")
    files = {}
    for name in CONTRACTS:
        files[name] = d / f"{name}.wasm"
        files[name].write_bytes(wat((ROOT / "fixtures/evmc" / f"{name}.wat").read_text()))
    files["token"] = d / "token.wasm"
    files["token"].write_bytes(wat((ROOT / "fixtures/contracts/token.wat").read_text()))
    files["evm"] = d / "evm.bin"
    files["evm"].write_bytes(bytes.fromhex("6000600055"))  # PUSH1 0 PUSH1 0 SSTORE
    return files


class MirrorHost:
    """In Python, what evmc_host.c's host does: every account exists with 1,000,000 wei,
    storage in a table, logs counted, calls answered SUCCESS with all gas and 0xcafe."""

    def __init__(self) -> None:
        self.storage: dict[tuple[bytes, bytes], bytes] = {}
        self.logs = 0
        self.call_value = 0

    def account_exists(self, address): return True  # noqa: E704
    def get_balance(self, address): return BALANCE  # noqa: E704
    def get_code_size(self, address): return 0  # noqa: E704
    def get_code_hash(self, address): return bytes(32)  # noqa: E704
    def copy_code(self, address, offset, size): return b""  # noqa: E704
    def selfdestruct(self, address, beneficiary): return True  # noqa: E704
    def get_tx_context(self): return TxContext()  # noqa: E704
    def get_block_hash(self, number): return bytes(32)  # noqa: E704
    def access_account(self, address): return 1  # noqa: E704
    def access_storage(self, address, key): return 1  # noqa: E704

    def get_storage(self, address, key):
        return self.storage.get((address, key), bytes(32))

    def set_storage(self, address, key, value):
        added = (address, key) not in self.storage
        self.storage[address, key] = value
        return StorageStatus.ADDED if added else StorageStatus.MODIFIED

    def call(self, message):
        self.call_value = message.value
        return Result(StatusCode.SUCCESS, message.gas, 0, b"\xca\xfe")

    def emit_log(self, address, data, topics):
        self.logs += 1


def selector(sig: str) -> bytes:
    from eth_hash.auto import keccak

    return keccak(sig.encode())[:4]


# name -> (contract, input, gas)
CASES = {
    "store-load": ("storage", b"\x11" * 32 + b"\x22" * 32, 100_000),
    "call-value": ("call_value", b"\x33" * 20 + (1000).to_bytes(16, "little"), 300_000),
    "revert": ("revert", b"reverted!", 50_000),
    "out-of-gas": ("burn", b"", 100_000),
    "invalid": ("invalid", b"", 77_777),
    "token-transfer": ("token", selector("transfer(address,uint256)") + bytes(12)
                       + b"\x44" * 20 + (1000).to_bytes(32, "big"), 500_000),
    "evm-code": ("evm", b"", 50_000),
}


def direct(contract: bytes, data: bytes, gas: int) -> tuple[Result, MirrorHost]:
    host = MirrorHost()
    msg = Message(gas=gas, recipient=SELF, sender=CALLER, input=data, code_address=SELF)
    return ewasm.execute(host, Revision.LONDON, msg, contract, evm1_mode="fallback"), host


def run_c(c_host: Path, library: Path, *args: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
           "EWASM_CACHE_DIR": os.environ["EWASM_CACHE_DIR"]}  # a clean C process
    proc = subprocess.run([str(c_host), str(library), *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_library_identifies_itself_and_checks_options(c_host, library):
    out = run_c(c_host, library, "info")
    assert "abi=12 name=ewasm version=0.1.0 capabilities=2" in out
    # SUCCESS 0, INVALID_NAME 1, INVALID_VALUE 2; a NULL value is an invalid value, but
    # the name is checked first (evmc-vmtester's set_option_empty_value).
    assert ("set_option metering=true:0 debug=false:0 nope=1:1 metering=maybe:2 "
            "cache-dir=/:2 null-value:2 unknown-null:1") in out
    # NULL host, message and code: refused as EVMC_INTERNAL_ERROR with no gas, no crash.
    assert "null-arguments status=-1 gas_left=0" in out


def test_contracts_through_the_c_host(c_host, library, wasm):
    args = []
    for name, (contract, data, gas) in CASES.items():
        args += [name, str(wasm[contract]), data.hex() or "", str(gas)]
    lines = run_c(c_host, library, "run", *args).splitlines()
    got = {}
    for line in lines:
        m = re.fullmatch(r"(\S+) status=(-?\d+) gas_left=(\d+) output=([0-9a-f]*) logs=(\d+) "
                         r"storage=(\d+) call_value=(\d+)", line)
        assert m, line
        got[m[1]] = (int(m[2]), int(m[3]), bytes.fromhex(m[4]), int(m[5]), int(m[6]),
                     int(m[7]))
    assert set(got) == set(CASES)

    status, gas_left, output, logs, slots, value = got["store-load"]
    assert (status, output, slots) == (0, b"\x22" * 32, 1)
    status, gas_left, output, logs, slots, value = got["call-value"]
    assert (status, output, value) == (0, bytes(4) + b"\xca\xfe", 1000)
    status, gas_left, output, *_ = got["revert"]
    assert (status, output) == (2, b"reverted!") and 0 < gas_left < 50_000
    assert got["out-of-gas"][:3] == (3, 0, b"")
    assert got["invalid"][:3] == (13, 0, b"")  # validation failure: all gas used
    status, gas_left, output, logs, slots, value = got["token-transfer"]
    assert (status, output, logs, slots) == (0, (1).to_bytes(32, "big"), 1, 3)
    assert got["evm-code"][:3] == (-2, 0, b"")  # EVMC_REJECTED, as Hera's fallback mode

    # Gas and outputs are what the engine gives when called directly.
    for name, (contract, data, gas) in CASES.items():
        r, host = direct(wasm[contract].read_bytes(), data, gas)
        assert (int(r.status), r.gas_left, r.output) == got[name][:3], name
        assert (host.logs, len(host.storage), host.call_value) == got[name][3:], name


def test_two_c_threads_execute_concurrently_on_one_vm(c_host, library, wasm):
    out = run_c(c_host, library, "threads", "2", "250", str(wasm["storage"]))
    assert out.strip() == "threads=2 iterations=250 failures=0"


def test_capabilities_add_evm1_under_evm1mode_evm(library):
    with load_vm(library) as vm:
        assert vm.capabilities == 2  # EVMC_CAPABILITY_EWASM
        vm.set_option("evm1mode", "evm")
        assert vm.capabilities == 3  # and EVMC_CAPABILITY_EVM1: it runs EVM code itself
        vm.set_option("evm1mode", "fallback")
        assert vm.capabilities == 2


def test_load_vm_gives_the_same_results_as_direct_execute(library, wasm):
    with load_vm(library) as vm:
        assert (vm.name, vm.version, vm.capabilities) == ("ewasm", "0.1.0", 2)
        for name, (contract, data, gas) in CASES.items():
            code = wasm[contract].read_bytes()
            expected, expected_host = direct(code, data, gas)
            host = MirrorHost()
            msg = Message(gas=gas, recipient=SELF, sender=CALLER, input=data,
                          code_address=SELF)
            r = vm.execute(host, Revision.LONDON, msg, code)
            assert r == expected, name
            assert (host.storage, host.logs, host.call_value) == (
                expected_host.storage, expected_host.logs, expected_host.call_value), name


def test_load_vm_options(library, wasm, tmp_path):
    code = wasm["storage"].read_bytes()
    msg = Message(gas=100_000, recipient=SELF, sender=CALLER, code_address=SELF,
                  input=b"\x05" * 64)
    stored = gasmeter.inject(code, features=CONTRACT_FEATURES)
    with load_vm(library, metering=True) as vm:
        metered = vm.execute(MirrorHost(), Revision.LONDON, msg, stored)
    with load_vm(library, metering="false") as vm:
        plain = vm.execute(MirrorHost(), Revision.LONDON, msg, stored)
        unmetered = vm.execute(MirrorHost(), Revision.LONDON, msg, code)
    assert plain.status == metered.status == unmetered.status == StatusCode.SUCCESS
    assert plain.output == metered.output == unmetered.output == b"\x05" * 32
    # A CALL runs the code as the host stored it, metering on or off.
    assert plain.gas_left == metered.gas_left < unmetered.gas_left
    with pytest.raises(EvmcOptionError, match="unknown option"):
        load_vm(library, engine="wabt")
    with pytest.raises(EvmcOptionError, match="invalid value"):
        load_vm(library, debug="perhaps")


CREATE = Message(kind=CallKind.CREATE, gas=1_000_000, recipient=SELF, sender=CALLER,
                 code_address=SELF)


def test_metering_at_create_charges_a_created_then_called_contract_once(library, wasm):
    """Hera's policy through the C ABI: init code metered before it runs, the code it
    returns metered before it is stored, the CALL running the stored code as it is."""
    runtime = wasm["storage"].read_bytes()
    init = wrap_deploy(runtime)
    call = Message(gas=100_000, recipient=SELF, sender=CALLER, code_address=SELF,
                   input=b"\x05" * 64)
    with load_vm(library, metering=True) as vm:
        created = vm.execute(MirrorHost(), Revision.LONDON, CREATE, init)
        assert created.status == StatusCode.SUCCESS, created.message
        called = vm.execute(MirrorHost(), Revision.LONDON, call, created.output)
    with load_vm(library, metering=False) as vm:
        created_plain = vm.execute(MirrorHost(), Revision.LONDON, CREATE, init)
        called_plain = vm.execute(MirrorHost(), Revision.LONDON, call, created.output)
    assert created.output == gasmeter.inject(runtime, features=CONTRACT_FEATURES)
    assert created_plain.output == runtime
    assert created.gas_left < created_plain.gas_left  # the init code was metered
    assert called.status == called_plain.status == StatusCode.SUCCESS
    # Charged once: as the stored code run with metering off, and as the engine directly.
    expected = direct(created.output, call.input, call.gas)[0].gas_left
    assert called.gas_left == called_plain.gas_left == expected
    assert called.gas_left < direct(runtime, call.input, call.gas)[0].gas_left


def test_metered_init_code_copies_itself_as_it_was_sent(library, wasm):
    """codeCopy/getCodeSize in metered init code see the code sent, not the metered copy
    (creation modules that copy their runtime out of themselves depend on it)."""
    init = wasm["self_copy"].read_bytes()
    with load_vm(library, metering=True) as vm:
        created = vm.execute(MirrorHost(), Revision.LONDON, CREATE, init)
    assert created.status == StatusCode.SUCCESS, created.message
    assert created.output == gasmeter.inject(init, features=CONTRACT_FEATURES)


def test_a_python_exception_inside_execute_is_an_internal_error(library, wasm, monkeypatch):
    def boom(*args):
        raise RuntimeError("engine bug")

    monkeypatch.setattr(apps.libewasm.embedded, "_execute", boom)
    msg = Message(gas=100_000, recipient=SELF, sender=CALLER, code_address=SELF)
    with load_vm(library) as vm:
        r = vm.execute(MirrorHost(), Revision.LONDON, msg, wasm["trivial"].read_bytes())
    assert (r.status, r.gas_left, r.output) == (StatusCode.INTERNAL_ERROR, 0, b"")


def test_a_host_exception_is_raised_from_load_vm_execute(library, wasm):
    class Broken(MirrorHost):
        def get_storage(self, address, key):
            raise KeyError("host bug")

    msg = Message(gas=100_000, recipient=SELF, sender=CALLER, code_address=SELF,
                  input=b"\x01" * 64)
    with load_vm(library) as vm:
        with pytest.raises(KeyError, match="host bug"):
            vm.execute(Broken(), Revision.LONDON, msg, wasm["storage"].read_bytes())


def test_create_function_names_follow_evmc_loader_rules():
    assert create_function_names("/x/libewasm.so") == ["evmc_create_ewasm", "evmc_create"]
    assert create_function_names("libssvm-evmc.so.1.2") == ["evmc_create_ssvm_evmc",
                                                            "evmc_create"]
    assert create_function_names("hera.dylib") == ["evmc_create_hera", "evmc_create"]


def test_loading_what_is_not_an_abi_12_vm_fails_with_a_typed_error(cc, tmp_path):
    with pytest.raises(EvmcLoadError, match="cannot open"):
        load_vm(tmp_path / "libnothere.so")
    src = tmp_path / "old.c"
    src.write_text("""
        #include <stddef.h>
        struct vm { int abi; const char* name; const char* version; void* fns[4]; };
        static struct vm the_vm = {11, "old", "1", {NULL, NULL, NULL, NULL}};
        struct vm* evmc_create_oldvm(void) { return &the_vm; }
        int unrelated(void) { return 0; }
    """)
    lib = tmp_path / "liboldvm.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    with pytest.raises(EvmcLoadError, match="ABI version 11"):
        load_vm(lib)
    other = tmp_path / "libother.so"
    shutil.copy(lib, other)  # evmc_create_other and evmc_create are both missing
    with pytest.raises(EvmcLoadError, match="no evmc_create_other"):
        load_vm(other)


def test_build_command(cc, tmp_path):
    import sys

    proc = subprocess.run([sys.executable, "-m", "apps.libewasm", "build", "--output",
                           str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "libewasm.so").exists()
    nm = subprocess.run(["nm", "-D", "--defined-only", str(tmp_path / "libewasm.so")],
                        capture_output=True, text=True).stdout
    assert re.search(r" T evmc_create_ewasm$", nm, re.M)
    assert re.search(r" T evmc_create$", nm, re.M)


def test_cache_dir_option_moves_the_compile_cache(library, wasm, tmp_path, monkeypatch):
    monkeypatch.setenv("EWASM_CACHE_DIR", os.environ["EWASM_CACHE_DIR"])  # restored after
    cache = tmp_path / "cache"
    msg = Message(gas=100_000, recipient=SELF, sender=CALLER, code_address=SELF)
    # A module never compiled before: the trivial one with a fresh custom section.
    payload = b"\x04salt" + os.urandom(16)
    code = wasm["trivial"].read_bytes() + b"\x00" + bytes([len(payload)]) + payload
    with load_vm(library, cache_dir=str(cache)) as vm:
        r = vm.execute(MirrorHost(), Revision.LONDON, msg, code)
    assert r.status == StatusCode.SUCCESS
    assert any(cache.rglob("*")), "nothing compiled into the new cache directory"


@pytest.mark.parametrize("revision", [99, -1, int(Revision.HOMESTEAD)])
def test_bad_revisions_are_refused_as_internal_errors(library, wasm, revision):
    msg = Message(gas=100_000, recipient=SELF, sender=CALLER, code_address=SELF)
    with load_vm(library) as vm:
        r = vm.execute(MirrorHost(), revision, msg, wasm["trivial"].read_bytes())
    assert (r.status, r.gas_left) == (StatusCode.INTERNAL_ERROR, 0)


def test_a_python_error_in_set_option_is_an_invalid_value(library, monkeypatch):
    def boom(*args):
        raise RuntimeError("option bug")

    monkeypatch.setattr(apps.libewasm.embedded, "set_option", boom)
    with pytest.raises(EvmcOptionError, match="invalid value"):
        load_vm(library, metering=True)


# --- misuse of the ABI: pointers with sizes (issue 20, point 6) ---------------------------
TX_ORIGIN_WAT = """(module
  (import "ethereum" "getTxOrigin" (func $origin (param i32)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (memory 1) (export "memory" (memory 0))
  (func (export "main") (call $origin (i32.const 0)) (call $finish (i32.const 0) (i32.const 20))))"""


def test_unreadable_pointers_are_internal_errors_not_crashes(c_host, library, wasm, wat,
                                                             tmp_path):
    """NULL with a size (and a size no buffer has) in the message and in the host's
    answers: each execution ends as EVMC_INTERNAL_ERROR with no gas left, the C host
    process survives, and the VM keeps working."""
    tx = tmp_path / "tx_origin.wasm"
    tx.write_bytes(wat(TX_ORIGIN_WAT))
    out = run_c(c_host, library, "misuse", str(wasm["storage"]), str(wasm["call_value"]),
                str(tx))
    got = dict(re.fullmatch(r"(\S+) status=(-?\d+) gas_left=(-?\d+)", line).group(1, 2)
               for line in out.splitlines())
    refused = ["null-input", "huge-input", "null-msg-code", "call-null-output",
               "call-huge-output", "tx-null-blob-hashes", "tx-null-initcodes"]
    assert {case: got[case] for case in refused} == {case: "-1" for case in refused}
    assert all(f"{case} status=-1 gas_left=0" in out for case in refused)
    # The same contracts with readable answers succeed, after all that.
    assert (got["tx-ok"], got["call-ok"], got["storage-ok"]) == ("0", "0", "0")


def test_the_span_check_names_what_it_refused(library):
    import apps.libewasm.embedded as embedded

    with load_vm(library):  # binds the embedded module to the library's cffi
        ffi = embedded.ffi
        host = embedded.CHost(None, None)
        with pytest.raises(embedded.HostMisuse, match="output_data is NULL with a size of 7"):
            host._check("call result output_data", ffi.NULL, 7)
        assert "output_data" in host.error  # what fails the whole execution
        assert embedded._bad_span("x", ffi.NULL, 0) is None
        assert embedded._bad_span("x", ffi.new("char[1]"), 1) is None
        assert "implausible" in embedded._bad_span("x", ffi.new("char[1]"),
                                                   embedded.MAX_SPAN + 1)


def test_cache_dir_option_refuses_a_directory_others_can_write(library, tmp_path,
                                                               monkeypatch):
    monkeypatch.setenv("EWASM_CACHE_DIR", os.environ["EWASM_CACHE_DIR"])  # restored after
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(EvmcOptionError, match="invalid value"):
        load_vm(library, cache_dir=str(shared))
    assert os.environ["EWASM_CACHE_DIR"] != str(shared)
    private = tmp_path / "private"
    with load_vm(library, cache_dir=str(private)):
        assert os.environ["EWASM_CACHE_DIR"] == str(private)
    assert oct(private.stat().st_mode & 0o777) == "0o700"


def test_cache_max_size_option(library, monkeypatch):
    monkeypatch.setenv("EWASM_CACHE_MAX_SIZE", "1G")  # restored after
    with load_vm(library, cache_max_size="64M"):
        assert os.environ["EWASM_CACHE_MAX_SIZE"] == str(64 << 20)
    with pytest.raises(EvmcOptionError, match="invalid value"):
        load_vm(library, cache_max_size="lots")
