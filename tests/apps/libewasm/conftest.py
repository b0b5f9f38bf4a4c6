"""What the EVMC tests share: the C compiler, and libewasm.so built once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cc() -> str:
    found = shutil.which(os.environ.get("CC", "cc"))
    if found is None:
        pytest.skip("no C compiler (cc): the EVMC C ABI cannot be built or tested")
    return found


@pytest.fixture(scope="session")
def library(cc, tmp_path_factory) -> Path:
    from apps.libewasm.build import build_library

    return build_library(tmp_path_factory.mktemp("evmc") / "lib")
