"""The Ethereum GeneralStateTests runner behind `ewasm statetest PATH...`.

fixture: filled JSON as typed values; filler: the YAML sources and their `expect`
diff; runner: cases, discovery, parallel runs; cli: the command."""

from .fixture import PostEntry, StateTest, TransactionMatrix, load_tests
from .runner import CaseResult, discover, run_case, run_file, run_paths

__all__ = ["CaseResult", "PostEntry", "StateTest", "TransactionMatrix", "discover",
           "load_tests", "run_case", "run_file", "run_paths"]
