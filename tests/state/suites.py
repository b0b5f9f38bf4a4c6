"""What the state-test test files share: a skip for a suite of ../shared that is absent,
and each fixture file parsed once per process (at collection, then by the test)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from state.statetest import load_tests


def needs(suite: Path, what: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not suite.is_dir(), reason=f"{what} not found at {suite} (the ../shared folder sits "
                                   "beside the clone in CI)")


@cache
def parsed_tests(path: str) -> dict:
    return {t.name: t for t in load_tests(Path(path))}
