"""Fillers (YAML/JSON sources of filled tests) and a readable diff against `expect`.

`expect` is a partial oracle (testeth's compareStates): balance, nonce and code are
compared when given; storage, when given, must match exactly in both directions;
`shouldnotexist` asks for the account's absence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..backend import StateBackend


def find_filler(filled: Path, name: str) -> Path | None:
    d = filled.parent
    for candidate in (d / f"{name}Filler.yml", d / f"{name}Filler.json",
                      d.parent / "fillers" / f"{name}Filler.yml",
                      d.parent / "fillers" / f"{name}Filler.json"):
        if candidate.exists():
            return candidate
    return None


def load_filler(path: Path, name: str) -> dict[str, Any]:
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    return data.get(name) or next(iter(data.values()))


def _int(value: Any) -> int:
    """Filler numbers: ints (YAML), decimal or 0x-hex strings, '' meaning 0."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text in ("", "0x"):
        return 0
    return int(text, 16) if text.lower().startswith("0x") else int(text)


def _address(value: Any) -> bytes:
    text = value if isinstance(value, str) else f"{value:040x}"
    text = text.strip()
    return bytes.fromhex(text[2:] if text.lower().startswith("0x") else text)


def expect_for(filler: dict[str, Any], fork: str,
               indexes: tuple[int, int, int]) -> dict[str, Any] | None:
    for entry in filler.get("expect", []):
        nets = entry.get("network", ["ALL"])
        if "ALL" not in nets and fork not in nets:
            continue
        idx = entry.get("indexes", {})
        want = (idx.get("data", -1), idx.get("gas", -1), idx.get("value", -1))
        if all(w == -1 or w == i for w, i in zip(want, indexes, strict=True)):
            return entry.get("result", {})
    return None


def diff_against_expect(backend: StateBackend, result: dict[str, Any]) -> list[str]:
    """Readable lines, one per difference between the post state and `expect`."""
    out: list[str] = []
    for raw_address, want in result.items():
        address = _address(raw_address)
        name = "0x" + address.hex()
        acc = backend.get_account(address)
        want = want or {}
        if want.get("shouldnotexist"):
            if acc is not None:
                out.append(f"{name} should not exist but does")
            continue
        if acc is None:
            out.append(f"{name} should exist but does not")
            continue
        if "balance" in want and _int(want["balance"]) != acc.balance:
            b = _int(want["balance"])
            out.append(f"{name} balance: expected {b}, got {acc.balance} ({acc.balance - b:+d})")
        if "nonce" in want and _int(want["nonce"]) != acc.nonce:
            out.append(f"{name} nonce: expected {_int(want['nonce'])}, got {acc.nonce}")
        code = want.get("code")
        if isinstance(code, str) and not code.lstrip().startswith("("):
            expected_code = bytes.fromhex(code[2:] if code.startswith("0x") else code)
            if expected_code != acc.code:
                out.append(f"{name} code: expected {len(expected_code)} bytes "
                           f"{expected_code[:16].hex()}..., got {len(acc.code)} bytes "
                           f"{acc.code[:16].hex()}...")
        if "storage" in want:
            expected = {_int(k): _int(v) for k, v in (want["storage"] or {}).items()}
            actual = {int.from_bytes(k, "big"): int.from_bytes(v, "big")
                      for k, v in acc.storage.items()}
            for slot in sorted(set(expected) | set(actual)):
                e, a = expected.get(slot, 0), actual.get(slot, 0)
                if e != a:
                    out.append(f"{name} storage[{slot:#x}]: expected {e:#x}, got {a:#x}"
                               + (" (absent)" if slot not in actual else ""))
    return out
