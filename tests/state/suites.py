"""What the state-test test files share: a skip for a suite of ../shared that is absent,
each fixture file parsed once per process (at collection, then by the test), the cases of
a suite as pytest parameters, and the check of one case."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path

import pytest

from state.statetest import load_tests, run_case
from state.statetest.runner import discover


def needs(suite: Path, what: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not suite.is_dir(), reason=f"{what} not found at {suite} (the ../shared folder sits "
                                   "beside the clone in CI)")


@cache
def parsed_tests(path: str) -> dict:
    return {t.name: t for t in load_tests(Path(path))}


def case_params(suite: Path, fork: str, group_of: Callable[[Path], str],
                known: Mapping[str, str], extra_marks: Callable[[str], list] | None = None
                ) -> list:
    """Every case of `fork` under suite as pytest.param(path, name, fork, index), id
    "group/name[dDgGvV]". known: an id (or "group/name", every case of the test) -> why
    it fails, a strict xfail. extra_marks(group/file stem): more marks for a file's cases."""
    out = []
    for f in discover([suite]):
        group = group_of(f)
        more = extra_marks(f"{group}/{f.stem}") if extra_marks else []
        for name, test in parsed_tests(str(f)).items():
            for fork_name, index, post in test.cases({fork}):
                d, g, v = post.indexes
                case = f"{group}/{name}[d{d}g{g}v{v}]"
                why = known.get(case) or known.get(f"{group}/{name}")
                marks = [pytest.mark.xfail(reason=why, strict=True)] if why else []
                out.append(pytest.param(str(f), name, fork_name, index, marks=marks + more,
                                        id=case))
    return out


def check_case(path: str, name: str, fork: str, index: int) -> None:
    """Run one case; fail with the roots, logs and the filler's diff unless it passes."""
    r = run_case(parsed_tests(path)[name], fork, index)
    assert r.status == "pass", (
        f"{r.id}: {r.error}\n root expected {r.expected_root}\n        actual {r.actual_root}"
        f"\n logs expected {r.expected_logs}\n        actual {r.actual_logs}\n"
        + "\n".join(r.diff))
