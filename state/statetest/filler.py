"""Fillers (the YAML/JSON sources of filled tests) and a readable diff of a post state
against their `expect` section (../shared/docs/state-tests.md §3).

`expect` is a partial oracle, compared as testeth's compareStates does: balance, nonce
and code only when given; storage, when given, exactly in both directions;
`shouldnotexist` asks for the account's absence, anything else for its presence."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..backend import StateBackend
from ..errors import StateTestError


def find_filler(filled: Path | str, name: str) -> Path | None:
    """The filler of test `name` in the filled file `filled`: beside it, or in a
    `fillers` folder beside the filled file's folder."""
    d = Path(filled).parent
    for candidate in (d / f"{name}Filler.yml", d / f"{name}Filler.yaml",
                      d / f"{name}Filler.json", d.parent / "fillers" / f"{name}Filler.yml",
                      d.parent / "fillers" / f"{name}Filler.json"):
        if candidate.is_file():
            return candidate
    return None


# libyaml's parser when PyYAML was built with it (several times faster on the big
# fillers); the resolver, which is what is changed below, is Python in both.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StringLoader(_SafeLoader):
    """YAML with every untagged scalar left a string, as testeth (yaml-cpp) reads it.

    PyYAML's YAML 1.1 resolvers would turn `10:` into 10 (fine), but `0x1f` into 31
    (losing the length of hex code), a digit-only address such as
    `1000000000000000000000000000000000000001` into an int, `0777` into octal 511 and
    `1_000` into 1000; the filler format means none of that. Explicit tags (`!!int -1`)
    still apply, and booleans and null keep their usual meaning.
    """


_StringLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                           "tag:yaml.org,2002:timestamp")]
    for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_StringLoader)  # noqa: S506 - a SafeLoader subclass


def load_filler(path: Path | str, name: str | None = None) -> dict[str, Any]:
    """The filler object of test `name` (the only one when name is None or absent)."""
    path = Path(path)
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else load_yaml(text)
    if not isinstance(data, dict) or not data:
        raise StateTestError(f"{path}: not a filler (expected {{name: {{env, pre, ...}}}})")
    if name is not None and name in data:
        return data[name]
    return next(iter(data.values()))


def to_int(value: Any) -> int:
    """A filler number: int, decimal or 0x-hex string, '' meaning 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text in ("", "0x", "0X"):
        return 0
    return int(text, 16) if text[:2] in ("0x", "0X") else int(text, 10)


def to_address(value: Any) -> bytes:
    """A filler address, with or without 0x, any case. A digit-only address that a
    plain YAML loader turned into an int is read back as its hex digits."""
    text = str(value).strip()
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    raw = bytes.fromhex(text.rjust(40, "0"))
    if len(raw) != 20:
        raise StateTestError(f"address {value!r} is not 20 bytes")
    return raw


def is_wasm_text(code: str) -> bool:
    return code.lstrip().startswith("(")


def _hex_code(code: Any) -> bytes | None:
    """Expected code as bytes, or None when it cannot be compared: absent, or Wasm text
    (`(module ...`), whose bytes in the fixtures are Binaryen's encoding, which no tool
    here reproduces exactly (../shared/docs/state-tests.md §3)."""
    if code is None:
        return None
    text = str(code).strip()
    if is_wasm_text(text):
        return None
    try:
        return bytes.fromhex(text.removeprefix("0x").removeprefix("0X"))
    except ValueError:
        return None  # some other source form (e.g. with comments): not comparable


def _preview(code: bytes) -> str:
    return f"0x{code[:16].hex()}{'..' if len(code) > 16 else ''}"


def _hex(n: int) -> str:
    digits = f"{n:x}"
    return "0x" + digits.rjust(len(digits) + len(digits) % 2, "0")


def _short(address: bytes) -> str:
    return "0x" + address.hex()


@dataclass(frozen=True)
class ExpectEntry:
    # -1 in the filler means every index; here that is None. A list is also allowed.
    data: frozenset[int] | None
    gas: frozenset[int] | None
    value: frozenset[int] | None
    networks: tuple[str, ...]
    result: dict[str, Any]

    def applies(self, fork: str, indexes: tuple[int, int, int]) -> bool:
        if not _network_matches(self.networks, fork):
            return False
        return all(want is None or i in want
                   for want, i in zip((self.data, self.gas, self.value), indexes, strict=True))


def _index_set(raw: Any) -> frozenset[int] | None:
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else [raw]
    values = {to_int(i) for i in items}
    return None if -1 in values else frozenset(values)


_FORK_ORDER = ["frontier", "homestead", "eip150", "tangerinewhistle", "eip158",
               "spuriousdragon", "byzantium", "constantinople", "constantinoplefix",
               "petersburg", "istanbul", "berlin", "london", "paris", "shanghai", "cancun"]


def _fork_rank(name: str) -> int | None:
    key = name.strip().lower()
    return _FORK_ORDER.index(key) if key in _FORK_ORDER else None


def _network_matches(networks: Sequence[str], fork: str) -> bool:
    for net in networks:
        net = str(net).strip()
        if net.upper() == "ALL" or net.lower() == fork.lower():
            return True
        # Newer fillers write ranges such as ">=Byzantium".
        for op in (">=", "<=", ">", "<"):
            if net.startswith(op):
                a, b = _fork_rank(fork), _fork_rank(net[len(op):])
                if a is not None and b is not None and {
                        ">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[op]:
                    return True
                break
    return False


def expect_entries(filler: dict[str, Any]) -> list[ExpectEntry]:
    out = []
    for raw in filler.get("expect") or []:
        idx = raw.get("indexes") or {}
        nets = raw.get("network") or ["ALL"]
        out.append(ExpectEntry(_index_set(idx.get("data", -1)), _index_set(idx.get("gas", -1)),
                               _index_set(idx.get("value", -1)),
                               tuple(str(n) for n in (nets if isinstance(nets, list) else [nets])),
                               raw.get("result") or {}))
    return out


def diff_against_expect(backend: StateBackend,
                        expect: Iterable[ExpectEntry | dict[str, Any]] | dict[str, Any],
                        fork: str, indexes: tuple[int, int, int] = (0, 0, 0)) -> list[str]:
    """Readable lines, one per difference between the post state in backend and every
    `expect` entry that applies to fork and indexes.

    expect: a filler (with an `expect` key), its `expect` list, or ExpectEntry values.
    An empty list means the state agrees with what the filler states."""
    if isinstance(expect, dict):
        entries = expect_entries(expect)
    else:
        entries = [e if isinstance(e, ExpectEntry) else expect_entries({"expect": [e]})[0]
                   for e in expect]
    matching = [e for e in entries if e.applies(fork, indexes)]
    if not matching:
        d, g, v = indexes
        return [f"(no expect entry for {fork} data={d} gas={g} value={v})"]
    out: list[str] = []
    for entry in matching:
        for raw_address, want in entry.result.items():
            out.extend(_diff_account(backend, to_address(raw_address), want or {}))
    return out


def _diff_account(backend: StateBackend, address: bytes, want: dict[str, Any]) -> list[str]:
    name = _short(address)
    acc = backend.get_account(address)
    if "shouldnotexist" in want and to_int(want["shouldnotexist"]) != 0:
        return [f"{name} should not exist but does"] if acc is not None else []
    if acc is None:
        return [f"{name} should exist but does not"]
    out = []
    for field in ("balance", "nonce"):
        if field in want:
            e, a = to_int(want[field]), getattr(acc, field)
            if e != a:
                out.append(f"{name} {field}: expected {e}, got {a} ({a - e:+d})")
    e_code = _hex_code(want.get("code"))
    if e_code is not None and e_code != acc.code:
        out.append(f"{name} code: expected {len(e_code)} bytes {_preview(e_code)}, "
                   f"got {len(acc.code)} bytes {_preview(acc.code)}")
    if "storage" in want:
        expected = {to_int(k): to_int(v) for k, v in (want["storage"] or {}).items()}
        actual = {int.from_bytes(k, "big"): int.from_bytes(v, "big")
                  for k, v in acc.storage.items()}
        for slot in sorted(set(expected) | set(actual)):
            e, a = expected.get(slot, 0), actual.get(slot, 0)
            if e != a:
                out.append(f"{name} storage[{_hex(slot)}]: expected {_hex(e)}, got {_hex(a)}"
                           + (" (absent)" if not a else ""))
    return out
