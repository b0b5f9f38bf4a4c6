"""The chain's fixtures, for the chain commands' tests."""

from ..chain.conftest import token_wasm  # noqa: F401 (a pytest fixture, used by name)
