"""The layer order holds: no package imports a package above it, lazy imports included.

Bottom to top: the EVMC vocabulary (types, Host protocol, the interface map, constants,
fork rules), the engine, the metering transform, state, chain, the applications. The walk
reads every import statement of every module (inside functions too) and every
`importlib.import_module("literal")`, so an edge hidden in a function body still counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("evmc_bridge", "ewasm", "gasmeter", "state", "chain", "apps")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path, root).split(".")
    if path.name != "__init__.py":
        package.pop()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def _violations(root: Path = ROOT, layers: tuple[str, ...] = LAYERS) -> list[str]:
    rank = {name: i for i, name in enumerate(layers)}
    out = []
    for layer in layers:
        for path in sorted((root / layer).rglob("*.py")):
            for line, name in _imports(path, root):
                top = name.split(".")[0]
                if top in rank and rank[top] > rank[layer]:
                    out.append(f"{path.relative_to(root)}:{line} ({layer}) imports {name} "
                               f"({top} is above it)")
    return out


def test_every_layer_is_a_package():
    for layer in LAYERS:
        assert (ROOT / layer / "__init__.py").is_file(), layer


def test_no_layer_imports_a_higher_one():
    assert _violations() == []


def test_the_walk_sees_lazy_and_relative_imports(tmp_path):
    """The checker itself can fail: a planted lazy upward import is reported."""
    pkg = tmp_path / "low"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(
        "import os\n"
        "def f():\n"
        "    import high.thing\n"
        "    from . import sibling\n"
        "    importlib.import_module('high')\n")
    (tmp_path / "high").mkdir()
    (tmp_path / "high" / "__init__.py").write_text("from low import mod\n")
    found = _violations(tmp_path, ("low", "high"))
    assert len(found) == 2 and all("imports high" in v for v in found), found
    names = [n for _, n in _imports(pkg / "mod.py", tmp_path)]
    assert names == ["os", "high.thing", "low", "high"]
