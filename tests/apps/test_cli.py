"""The `ewasm` command line: exit codes, one-line errors, outputs."""

from __future__ import annotations

import json
import subprocess
import sys


def run(*args: str):
    return subprocess.run([sys.executable, "-m", "apps.cli", *args], capture_output=True,
                          text=True)


def test_demo_runs_the_embedded_example():
    p = run("demo")
    assert p.returncode == 0, p.stderr
    assert "fib(27) = 196418" in p.stdout
    assert "MEMORY_OUT_OF_BOUNDS" in p.stdout


def test_run_validate_compile(wat, tmp_path):
    src = tmp_path / "m.wasm"
    src.write_bytes(wat('(module (func (export "add") (param i64 i64) (result i64) '
                        '(i64.add (local.get 0) (local.get 1))))'))
    p = run("validate", str(src))
    assert p.returncode == 0 and "valid" in p.stdout
    p = run("run", str(src), "--invoke", "add", "40", "0x2", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["results"] == [42]
    art = tmp_path / "m.art"
    assert run("compile", str(src), "-o", str(art)).returncode == 0
    p = run("run", str(art), "--invoke", "add", "-1", "1", "--allow-precompiled")
    assert p.returncode == 0 and p.stdout.strip() == "0"


def test_run_refuses_an_artefact_without_allow_precompiled(wat, tmp_path):
    """Native code in an artefact runs unchecked: `ewasm run` asks the user to vouch for
    it, whatever the file is called (here: an artefact named as a Wasm module)."""
    src = tmp_path / "m.wasm"
    src.write_bytes(wat('(module (func (export "f") (result i32) (i32.const 5)))'))
    disguised = tmp_path / "download.wasm"
    assert run("compile", str(src), "-o", str(disguised)).returncode == 0
    p = run("run", str(disguised), "--invoke", "f")
    assert p.returncode == 1 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "precompiled artefact" in lines[0]
    assert "--allow-precompiled" in lines[0]
    p = run("run", str(disguised), "--invoke", "f", "--allow-precompiled")
    assert p.returncode == 0 and p.stdout.strip() == "5"


def test_bad_input_gives_one_line_error(tmp_path, wat):
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\0asm\1\0\0\0\x01\x05")
    for args in (("validate", str(bad)), ("run", str(bad), "--invoke", "f")):
        p = run(*args)
        assert p.returncode == 1
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: DecodeError")
    trap = tmp_path / "trap.wasm"
    trap.write_bytes(wat('(module (func (export "t") unreachable))'))
    p = run("run", str(trap), "--invoke", "t")
    assert p.returncode == 1 and "unreachable" in p.stderr
    p = run("validate", str(tmp_path / "missing.wasm"))
    assert p.returncode != 0 and "cannot read" in p.stderr
