"""The Ethereum GeneralStateTests runner: `ewasm statetest PATH...`."""

from .fixture import StateTest, load_tests
from .runner import CaseResult, run_paths

__all__ = ["CaseResult", "StateTest", "load_tests", "run_paths"]
