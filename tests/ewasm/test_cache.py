"""The object cache as a trust boundary (issue 20, point 1) and as a bounded LRU (issue
19, point 5).

The attack of issue 20, reproduced: the native code of a module that returns 1337 is
planted in the cache entry of a victim module that returns 42, under the header the
engine used to accept (the key, a public function of the Wasm bytes, and a SHA-256 of the
payload). Every later `ewasm run victim.wasm` must print 42. A forged artefact (a victim's
artefact carrying the planted code) must be refused by `ewasm run`."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ewasm
from ewasm.compiled import ARTEFACT_MAGIC, cache_key
from ewasm.compiler import cache as cachemod
from ewasm.compiler.cache import CacheError, ObjectCache, installation_secret, parse_size
from ewasm.compiler.pipeline import BASELINE, OPTIMIZED
from ewasm.compiler.target import TargetSpec

VICTIM_WAT = '(module (func (export "main") (result i32) (i32.const 42)))'
PLANTED_WAT = '(module (func (export "main") (result i32) (i32.const 1337)))'


@pytest.fixture
def key_file(tmp_path, monkeypatch) -> Path:
    """A secret of this test's own, outside every cache directory the test makes."""
    path = tmp_path / "config" / "cache.key"
    monkeypatch.setenv("EWASM_CACHE_KEY_FILE", str(path))
    return path


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("EWASM_CACHE_DIR", str(d))
    return d


@pytest.fixture(scope="module")
def victim(wat) -> bytes:
    return wat(VICTIM_WAT)


@pytest.fixture(scope="module")
def planted_code(wat) -> bytes:
    """Native code that returns 1337: what the attacker wants run."""
    return ewasm.compile(wat(PLANTED_WAT), cache=False, tier="optimized").object_code


def victim_keys(wasm: bytes) -> list[bytes]:
    """The keys `ewasm.compile(wasm)` looks up (tier "auto": optimised, then baseline)."""
    return [cache_key(wasm, ewasm.Features.all(), TargetSpec.portable(), False, pipe)
            for pipe in (OPTIMIZED, BASELINE)]


def old_style_entry(key: bytes, payload: bytes) -> bytes:
    """The entry format the engine used to accept: anyone can compute it."""
    return struct.pack("<8sI32sQ32s", b"EWASMOBJ", 1, key, len(payload),
                       hashlib.sha256(payload).digest()) + payload


def plant(directory: Path, key: bytes, blob: bytes) -> Path:
    path = ObjectCache(directory).path(key)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(blob)
    return path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "apps.cli", *args], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ),
                          cwd=cwd or Path(__file__).resolve().parents[2])


# --- planted entries ---------------------------------------------------------------------
def test_a_planted_entry_is_recompiled_never_run(victim, planted_code, key_file, cache_dir):
    for key in victim_keys(victim):
        plant(cache_dir, key, old_style_entry(key, planted_code))
    compiled = ewasm.compile(victim)
    assert ewasm.instantiate(compiled).invoke("main") == [42]
    assert compiled.object_code != planted_code
    # The entry is now this installation's own, and it serves later compiles.
    entry = ObjectCache(cache_dir).path(compiled.cache_key).read_bytes()
    assert planted_code not in entry
    assert ewasm.compile(victim).object_code == compiled.object_code


def test_the_planted_code_would_run_if_it_were_authenticated(victim, planted_code, key_file,
                                                             cache_dir):
    """The control: the same payload, signed with this installation's secret, is what
    runs. Only the HMAC keeps the planted code out."""
    secret = installation_secret(key_file)
    for key in victim_keys(victim):
        plant(cache_dir, key, cachemod.pack_entry(key, planted_code, secret))
    assert ewasm.instantiate(ewasm.compile(victim)).invoke("main") == [1337]


def test_an_entry_signed_by_another_installation_is_recompiled(victim, planted_code, tmp_path,
                                                               key_file, cache_dir):
    other = installation_secret(tmp_path / "elsewhere" / "cache.key")
    assert other != installation_secret(key_file)
    for key in victim_keys(victim):
        plant(cache_dir, key, cachemod.pack_entry(key, planted_code, other))
    assert ewasm.instantiate(ewasm.compile(victim)).invoke("main") == [42]


def test_ewasm_run_never_runs_a_planted_entry_in_later_processes(victim, planted_code, tmp_path,
                                                                 key_file, cache_dir):
    """Issue 20's reproduction: plant, then run the victim in two fresh processes."""
    src = tmp_path / "victim.wasm"
    src.write_bytes(victim)
    for key in victim_keys(victim):
        plant(cache_dir, key, old_style_entry(key, planted_code))
    for _ in range(2):
        p = run_cli("run", str(src), "--invoke", "main")
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == "42"


def test_entries_from_a_restored_cache_of_another_machine_are_recompiled(victim, tmp_path,
                                                                         monkeypatch,
                                                                         cache_dir):
    """A CI cache restored from elsewhere brings entries, not the secret: they miss."""
    monkeypatch.setenv("EWASM_CACHE_KEY_FILE", str(tmp_path / "machine-a" / "cache.key"))
    first = ewasm.compile(victim, tier="optimized")
    path = ObjectCache(cache_dir).path(first.cache_key)
    blob_a = path.read_bytes()
    monkeypatch.setenv("EWASM_CACHE_KEY_FILE", str(tmp_path / "machine-b" / "cache.key"))
    again = ewasm.compile(victim, tier="optimized")
    assert again.object_code == first.object_code  # recompiled: compiles are deterministic
    assert path.read_bytes() != blob_a  # and re-signed by machine b


def test_entries_that_are_not_regular_files_are_misses(victim, key_file, cache_dir, tmp_path):
    (key,) = victim_keys(victim)[:1]
    path = ObjectCache(cache_dir).path(key)
    path.parent.mkdir(parents=True, mode=0o700)
    os.mkfifo(path)  # a read would block forever without O_NONBLOCK
    assert ObjectCache(cache_dir).get(key) is None
    path.unlink()
    target = tmp_path / "elsewhere.obj"
    target.write_bytes(b"x" * 100)
    path.symlink_to(target)
    assert ObjectCache(cache_dir).get(key) is None
    assert ewasm.instantiate(ewasm.compile(victim, tier="optimized")).invoke("main") == [42]


# --- forged artefacts --------------------------------------------------------------------
def forge(artefact: bytes, code: bytes) -> bytes:
    """The victim's artefact (header, key and Wasm) carrying other native code."""
    head = struct.Struct("<8sIBB2x32sQQ")
    magic, fmt, tier, gas, key, wlen, olen = head.unpack_from(artefact)
    wasm = artefact[head.size:head.size + wlen]
    return head.pack(magic, fmt, tier, gas, key, wlen, len(code)) + wasm + code


def test_a_forged_artefact_is_refused_by_ewasm_run(victim, planted_code, tmp_path, key_file):
    artefact = ewasm.compile(victim, cache=False, tier="optimized").serialize()
    forged = forge(artefact, planted_code)
    assert forged[:8] == ARTEFACT_MAGIC
    # Named as a module, as a download would be: recognised by its bytes, refused.
    disguised = tmp_path / "contract.wasm"
    disguised.write_bytes(forged)
    p = run_cli("run", str(disguised), "--invoke", "main")
    assert p.returncode != 0 and "1337" not in p.stdout
    assert "--allow-precompiled" in p.stderr
    # The header check alone cannot tell: the forgery carries a valid key.
    assert ewasm.instantiate(ewasm.CompiledModule.deserialize(forged)).invoke("main") == [1337]


def test_deserialize_with_verify_re_derives_the_code(victim, planted_code):
    artefact = ewasm.compile(victim, cache=False, tier="optimized").serialize()
    genuine = ewasm.CompiledModule.deserialize(artefact, verify=True)
    assert ewasm.instantiate(genuine).invoke("main") == [42]
    with pytest.raises(ewasm.CompileError, match="not what this engine compiles"):
        ewasm.CompiledModule.deserialize(forge(artefact, planted_code), verify=True)


# --- the directory -----------------------------------------------------------------------
@pytest.mark.parametrize("mode,who", [(0o770, "group"), (0o707, "others"),
                                      (0o777, "group and others")])
def test_a_cache_directory_writable_by_others_is_refused(victim, tmp_path, key_file, mode,
                                                         who, monkeypatch):
    d = tmp_path / "shared-cache"
    d.mkdir()
    os.chmod(d, mode)
    monkeypatch.setenv("EWASM_CACHE_DIR", str(d))
    with pytest.raises(CacheError, match=f"writable by {who}"):
        ewasm.compile(victim)
    assert not any(d.iterdir())  # nothing read, nothing written
    src = tmp_path / "victim.wasm"
    src.write_bytes(victim)
    p = run_cli("run", str(src), "--invoke", "main")
    assert p.returncode == 1
    assert p.stderr.startswith("error: CacheError: cache directory") and "chmod go-w" in p.stderr


def test_a_cache_directory_of_another_user_is_refused(victim, tmp_path, key_file, monkeypatch):
    if os.geteuid() == 0:
        d = tmp_path / "theirs"
        d.mkdir(mode=0o755)
        os.chown(d, 65534, 65534)
    else:
        d = Path("/")  # root's
    monkeypatch.setenv("EWASM_CACHE_DIR", str(d))
    with pytest.raises(CacheError, match="belongs to uid"):
        ewasm.compile(victim)


def test_a_missing_cache_directory_is_created_private(tmp_path, key_file):
    d = tmp_path / "new" / "cache"
    cache = ObjectCache(d)
    cache.put(b"\1" * 32, b"payload")
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache.path(b"\1" * 32).parent.stat().st_mode) == 0o700
    assert cache.get(b"\1" * 32) == b"payload"


def test_a_cache_location_that_cannot_be_created_turns_the_cache_off(victim, tmp_path,
                                                                      monkeypatch):
    """Unusable is not untrusted: the engine compiles as if there were no cache."""
    monkeypatch.setenv("EWASM_CACHE_KEY_FILE", str(tmp_path / "conf" / "cache.key"))
    for variable, value in (("EWASM_CACHE_DIR", "/proc/no/such/cache"),
                            ("EWASM_CACHE_KEY_FILE", "/proc/no/such/cache.key")):
        monkeypatch.setenv("EWASM_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setenv(variable, value)
        cachemod._warned.clear()
        with pytest.warns(RuntimeWarning, match="compile cache is off"):
            compiled = ewasm.compile(victim, tier="optimized")
        assert ewasm.instantiate(compiled).invoke("main") == [42]
        cache = ObjectCache()
        assert cache.get(compiled.cache_key) is None and cache.unavailable
    with pytest.raises(cachemod.CacheUnavailable):
        cachemod.check_directory("/proc/no/such/cache")


# --- the secret --------------------------------------------------------------------------
def test_the_secret_is_a_private_file_created_once(tmp_path):
    path = tmp_path / "conf" / "cache.key"
    secret = installation_secret(path)
    assert len(secret) == 32 and path.read_bytes() == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    cachemod._secrets.clear()  # as a new process would
    assert installation_secret(path) == secret
    assert [p.name for p in path.parent.iterdir()] == ["cache.key"]  # no temporary left


def test_processes_starting_at_once_agree_on_one_secret(tmp_path):
    path = tmp_path / "conf" / "cache.key"
    code = ("import sys; from ewasm.compiler.cache import installation_secret; "
            "print(installation_secret(sys.argv[1]).hex())")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outs = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert outs == {path.read_bytes().hex()}


def test_a_symlinked_secret_is_refused_and_its_target_left_alone(tmp_path):
    target = tmp_path / "victim-file"
    target.write_bytes(b"important")
    conf = tmp_path / "conf"
    conf.mkdir(mode=0o700)
    (conf / "cache.key").symlink_to(target)
    with pytest.raises(CacheError, match="link"):
        installation_secret(conf / "cache.key")
    assert target.read_bytes() == b"important"
    # A dangling link is not followed to create a file either.
    (conf / "cache.key").unlink()
    (conf / "cache.key").symlink_to(tmp_path / "would-be-created")
    with pytest.raises(CacheError, match="link"):
        installation_secret(conf / "cache.key")
    assert not (tmp_path / "would-be-created").exists()


def test_a_readable_secret_is_refused(tmp_path):
    path = tmp_path / "conf" / "cache.key"
    installation_secret(path)
    cachemod._secrets.clear()
    os.chmod(path, 0o644)
    with pytest.raises(CacheError, match="must be 0600"):
        installation_secret(path)


def test_a_secret_in_a_directory_writable_by_others_is_refused(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    os.chmod(conf, 0o777)
    with pytest.raises(CacheError, match="writable by"):
        installation_secret(conf / "cache.key")


def test_a_secret_inside_the_cache_directory_is_refused(tmp_path):
    cache = ObjectCache(tmp_path / "cache", key_file=tmp_path / "cache" / "keys" / "cache.key")
    with pytest.raises(CacheError, match="inside the cache directory"):
        cache.get(b"\0" * 32)


# --- the bound ---------------------------------------------------------------------------
def entry_size(payload: int) -> int:
    return cachemod._HEADER.size + payload


def age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_the_cache_evicts_the_least_recently_used_entries(tmp_path, key_file):
    keys = [bytes([k]) * 32 for k in range(5)]
    cache = ObjectCache(tmp_path / "c", max_size=3 * entry_size(1000))
    for i, k in enumerate(keys[:3]):
        cache.put(k, bytes([i]) * 1000)
        age(cache.path(k), 1000 - 100 * i)  # written oldest first
    assert cache.size() == 3 * entry_size(1000)
    # A hit on the oldest entry makes it the most recently used.
    assert cache.get(keys[0]) == bytes([0]) * 1000
    assert cache.path(keys[0]).stat().st_mtime > time.time() - 60
    cache.put(keys[3], b"\3" * 1000)
    assert cache.size() <= cache.max_size
    assert cache.get(keys[1]) is None  # the least recently used went first
    assert cache.get(keys[0]) == bytes([0]) * 1000
    assert cache.get(keys[3]) == b"\3" * 1000


def test_other_processes_writes_count_toward_the_bound(tmp_path, key_file):
    d = tmp_path / "c"
    bound = 4 * entry_size(1000)
    ObjectCache(d, max_size=bound).put(b"\1" * 32, b"a" * 1000)  # this process scans
    code = ("import sys; from ewasm.compiler.cache import ObjectCache; "
            f"c = ObjectCache({str(d)!r}, max_size={bound}); "
            "[c.put(bytes([k]) * 32, b'b' * 1000) for k in range(10, 20)]")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    cache = ObjectCache(d, max_size=bound)
    assert cache.size() <= bound
    for k in range(2, 12):  # this process writes again: it rescans and trims
        cache.put(bytes([k]) * 32, b"c" * 1000)
    assert cache.size() <= bound


def test_an_entry_over_the_bound_is_not_stored_and_zero_stores_nothing(tmp_path, key_file):
    small = ObjectCache(tmp_path / "a", max_size=entry_size(10))
    small.put(b"\1" * 32, b"x" * 11)
    assert small.get(b"\1" * 32) is None and small.size() == 0
    off = ObjectCache(tmp_path / "b", max_size=0)
    off.put(b"\1" * 32, b"x")
    assert off.get(b"\1" * 32) is None and off.size() == 0


def test_stale_temporary_files_are_removed_by_a_trim(tmp_path, key_file):
    cache = ObjectCache(tmp_path / "c", max_size=10_000)
    cache.put(b"\1" * 32, b"x")
    stale = cache.path(b"\1" * 32).parent / ".tmp-dead"
    stale.write_bytes(b"y" * 100)
    age(stale, 2 * 3600)
    fresh = cache.path(b"\1" * 32).parent / ".tmp-busy"
    fresh.write_bytes(b"z")
    cache.trim()
    assert not stale.exists() and fresh.exists()


def test_the_bound_comes_from_the_environment(monkeypatch, tmp_path, key_file):
    assert ObjectCache(tmp_path).max_size == cachemod.DEFAULT_MAX_SIZE == 1 << 30
    monkeypatch.setenv("EWASM_CACHE_MAX_SIZE", "64M")
    assert ObjectCache(tmp_path).max_size == 64 << 20
    monkeypatch.setenv("EWASM_CACHE_MAX_SIZE", "lots")
    with pytest.raises(CacheError, match="EWASM_CACHE_MAX_SIZE"):
        ObjectCache(tmp_path)


@pytest.mark.parametrize("text,size", [("0", 0), ("4096", 4096), ("64k", 65536),
                                       ("512M", 512 << 20), ("1GiB", 1 << 30),
                                       (" 2 GB ", 2 << 30), ("1T", 1 << 40)])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "-1", "1.5G", "12Q", "G"])
def test_parse_size_refuses(text):
    with pytest.raises(ValueError):
        parse_size(text)
