"""The WebAssembly spec suite, one test per .wast file: zero failures allowed."""

from __future__ import annotations

import pytest

from tests.spec.runner import run_file
from tests.spec.wast import SPEC_DIR, file_id, spec_files, wast2json_tool

if not SPEC_DIR.is_dir():
    pytest.skip(f"spec suite not found at {SPEC_DIR} (../shared sits beside the clone in CI)",
                allow_module_level=True)
if wast2json_tool() is None:
    pytest.skip("wast2json not installed (pip install -e '.[test]')", allow_module_level=True)

FILES = spec_files()


def test_spec_files_are_found():
    assert len(FILES) > 80, f"expected the spec suite under {SPEC_DIR}"


@pytest.mark.parametrize("path", FILES, ids=[file_id(p) for p in FILES])
def test_spec_file(path):
    result = run_file(path, file_id(path))
    reasons = ", ".join(f"{n} x {r}" for r, n in result.skip_reasons.most_common())
    print(f"{result.name}: {result.passed} passed, {result.failed} failed, "
          f"{result.skipped} skipped ({reasons})")
    assert result.failed == 0, "\n".join(result.failures[:50])
    assert result.passed + result.skipped > 0
