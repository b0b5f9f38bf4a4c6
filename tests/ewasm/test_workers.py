"""How compile workers start: only the engine is imported, never code from the current
directory or a path the user did not choose (issue 20, point 2).

A planted `ewasm/` (and `llvmlite/`) package in the caller's working directory must not
run, for both ways the engine is installed: `pip install -e .` (setuptools' import hook
maps the packages to the project; no directory of them is on sys.path) and a plain
`pip install .` (the packages sit in a site-packages directory)."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

import ewasm
from ewasm.compiler import workers

ROOT = Path(ewasm.__file__).resolve().parent.parent
# Whatever a module's size, every compile runs in the workers.
MODULE_WAT = '(module (func (export "f") (result i32) (i32.const 7)))'


def _plant(cwd: Path) -> Path:
    """Packages in `cwd` that leave a marker file when imported; the marker's path."""
    marker = cwd / "planted-code-ran"
    for name in ("ewasm", "llvmlite", "evmc_bridge"):
        (cwd / name).mkdir()
        (cwd / name / "__init__.py").write_text(
            f"open({str(marker)!r}, 'a').write({name!r} + '\\n')\n")
    return marker


@pytest.fixture(scope="module")
def module(wat) -> bytes:
    return wat(MODULE_WAT)


def test_worker_path_is_absolute_with_the_engine_first(monkeypatch):
    monkeypatch.setattr(sys, "path", ["", ".", "no/such/dir", *sys.path])
    paths = workers.worker_path()
    assert paths[0] == str(ROOT)
    assert all(os.path.isabs(p) for p in paths)
    assert "" not in paths and len(paths) == len(set(paths))


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="reads /proc/PID/cwd")
def test_workers_run_in_a_fixed_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pool = workers.WorkerPool(1, ewasm.compiler.target.TargetSpec.portable())
    try:
        pool.warm()
        (worker,) = pool._idle
        assert os.readlink(f"/proc/{worker.proc.pid}/cwd") == workers.WORKER_CWD
        cmdline = Path(f"/proc/{worker.proc.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1] == b"-I"
    finally:
        pool.close()


def test_an_editable_install_ignores_packages_planted_in_the_cwd(tmp_path, module):
    """`ewasm run` (the console script of this editable install) in a directory holding
    a planted `ewasm/` runs the real engine, in the host and in its workers."""
    script = Path(sys.executable).parent / "ewasm"
    if not script.exists():
        pytest.skip("no `ewasm` console script beside this interpreter")
    marker = _plant(tmp_path)
    (tmp_path / "m.wasm").write_bytes(module)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    out = subprocess.run([str(script), "run", "m.wasm", "--invoke", "f"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "7"
    assert not marker.exists(), marker.read_text()


def test_a_plain_install_ignores_packages_planted_in_the_cwd(tmp_path, module):
    """The engine copied into a site directory of its own (as `pip install .` puts it),
    imported by a host whose path has no import hook: the workers import that copy."""
    installed = tmp_path / "site-packages"
    for name in ("ewasm", "evmc_bridge"):
        shutil.copytree(ROOT / name, installed / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    seen = tmp_path / "imports-of-the-copy"
    seen.mkdir()
    with open(installed / "ewasm" / "compiler" / "worker.py", "a") as f:
        f.write(f"\nimport os as _os\nopen(_os.path.join({str(seen)!r}, "
                "str(_os.getpid())), 'w').close()\n")
    cwd = tmp_path / "work"
    cwd.mkdir()
    marker = _plant(cwd)
    # -S: no site processing, so no .pth file (such as this checkout's editable hook)
    # can supply ewasm; dependencies come from the site directories, added by hand.
    deps = [p for p in site.getsitepackages() if os.path.isdir(p)]
    path = [str(installed), *deps]
    host = (f"import os, sys; sys.path[:0] = {path!r}; import ewasm; "
            f"assert ewasm.__file__.startswith({str(installed)!r}), ewasm.__file__; "
            f"print(os.getpid(), ewasm.instantiate({module!r}, cache=False).invoke('f')[0])")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    out = subprocess.run([sys.executable, "-I", "-S", "-c", host], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    host_pid, result = out.stdout.split()
    assert result == "7"
    assert not marker.exists(), marker.read_text()
    # The copy's worker module was imported by a process other than the host: a worker.
    assert {p.name for p in seen.iterdir()} - {host_pid}
