"""The metering policy, Hera's: metering is a property of stored code, applied at CREATE.

With metering on, a CREATE's init code is metered before it runs and the code it returns
is metered before the host stores it; a CALL runs the stored code as it is, so code is
metered exactly once. Init code still sees itself as it was sent (`codeCopy` and
`getCodeSize`): the Solidity Ewasm backend's creation modules copy their embedded runtime
out of their own code, and Hera hands them the original.

One `MeteringPolicy` object serves every place that creates contracts: `StateHost` (as its
`CodeLoader`), the chain's loader (which adds ahead-of-time compilation) and the EVMC
adapter of libewasm.so (through `execute_metered`).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evmc_bridge import CallKind, Host, Message, Result, Revision, StatusCode
from ewasm.contract import CONTRACT_FEATURES, has_wasm_preamble
from ewasm.errors import WasmError

from .cost_table import DEFAULT, CostTable
from .inject import inject

_CREATES = (CallKind.CREATE, CallKind.CREATE2)
# Metering is pure, so repeated deploys of one contract (a test suite, a factory) meter
# once; bounded so that a stream of distinct init codes cannot grow it.
_MEMO_ENTRIES = 256


@dataclass(eq=False)
class MeteringPolicy:
    """Meters Wasm contract code with `costs` at CREATE (a `CodeLoader`).

    Both methods return code that is not Wasm (no `\\0asm` preamble) unchanged, for the
    VM to refuse or hand to an EVM, and raise `ewasm.WasmError` (DecodeError,
    ValidationError, MeteringError) for Wasm that cannot be metered: the CREATE fails
    with CONTRACT_VALIDATION_FAILURE."""

    costs: CostTable = DEFAULT
    _memo: OrderedDict[bytes, bytes] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def meter(self, code: bytes) -> bytes:
        if not has_wasm_preamble(code):
            return code
        key = hashlib.sha256(code).digest()
        with self._lock:
            hit = self._memo.get(key)
            if hit is not None:
                self._memo.move_to_end(key)
                return hit
        metered = inject(code, self.costs, features=CONTRACT_FEATURES)
        with self._lock:
            self._memo[key] = metered
            while len(self._memo) > _MEMO_ENTRIES:
                self._memo.popitem(last=False)
        return metered

    def init_code(self, code: bytes) -> bytes:
        """The init code to run for a CREATE."""
        return self.meter(code)

    def deployed_code(self, code: bytes) -> bytes:
        """The code to store for the code a CREATE returned."""
        return self.meter(code)


VM = Callable[..., Result]


def execute_metered(policy: MeteringPolicy | None, vm: VM, host: Host, revision: Revision,
                    message: Message, code: bytes, **options: Any) -> Result:
    """One frame as an EVMC VM with metering on runs it (Hera's policy, above).

    `vm` is the engine's `execute` (any VM taking `sent_code=` for the code its EEI
    shows). With `policy` None the frame runs as it is."""
    if policy is None or message.kind not in _CREATES:
        return vm(host, revision, message, code, **options)
    try:
        run = policy.init_code(code)
    except WasmError as exc:
        return Result.make(StatusCode.CONTRACT_VALIDATION_FAILURE,
                           message=f"init code: {type(exc).__name__}: {exc}")
    if run is code:
        result = vm(host, revision, message, code, **options)
    else:
        result = vm(host, revision, message, run, sent_code=code, **options)
    if result.status != StatusCode.SUCCESS or not has_wasm_preamble(result.output):
        return result
    try:
        deployed = policy.deployed_code(result.output)
    except WasmError as exc:
        return Result.make(StatusCode.CONTRACT_VALIDATION_FAILURE,
                           message=f"deployed code: {type(exc).__name__}: {exc}")
    return Result.make(result.status, result.gas_left, deployed, gas_refund=result.gas_refund,
                       create_address=result.create_address)
