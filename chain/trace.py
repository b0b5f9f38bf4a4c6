"""Tracing and profiling a transaction from the host's side (debug_traceTransaction,
debug_traceCall), with no engine change: `Tracer` wraps the VM that StateHost runs every
frame with, and hands that VM a host that records each call before forwarding it.

What the host sees is every call the EEI makes to it (EVMC's host interface: storage,
balances, code, logs, nested calls and creates, the transaction context), with its
arguments and answer, the frame's depth, and the frame's gas left before and after (read
from the engine's frame, `ewasm.eei.frames()`, where the engine is this one). EEI functions
that never reach the host (call data, memory copies, `useGas`, `finish`) are not seen;
listing those, and a profile by Wasm function, needs a hook in the engine (see the
README's "Tracing" note).

Two outputs: "eeiTracer" (the frames and the ordered list of host calls) and "profiler"
(per frame, per contract and per host function: calls, gas, wall time, own time).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from evmc_bridge import AccessStatus, Message, Result, StatusCode, StorageStatus, TxContext
from evmc_bridge.abc import VM, Host

TRACERS = ("eeiTracer", "profiler")
MAX_TRACE_CALLS = 100_000  # a trace is a response body: bounded, with a flag when cut


def _frame_gas() -> int | None:
    """The running frame's gas left, from this engine's frame stack (None for a VM that
    keeps none)."""
    try:
        from ewasm import eei
        stack = eei.frames()
        return stack[-1].gas_left if stack else None
    except Exception:  # another VM, or a frame not started yet: no figure, not a failure
        return None


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _message_json(m: Message) -> dict:
    return {"kind": m.kind.name, "depth": m.depth, "gas": m.gas, "from": _hex(m.sender),
            "to": _hex(m.recipient), "codeAddress": _hex(m.code_address),
            "value": m.value, "input": _hex(m.input), "static": bool(m.flags & 1)}


def _result_json(r: Result) -> dict:
    out: dict[str, Any] = {"status": r.status.name, "gasLeft": r.gas_left,
                           "output": _hex(r.output)}
    if r.create_address is not None and r.status == StatusCode.SUCCESS:
        out["createAddress"] = _hex(r.create_address)
    return out


class Tracer:
    """A VM wrapper (StateHost's `vm=`) that records the frames it runs and the host calls
    they make. `tracer.evm` is the same for the EVM frames (StateHost's `evm=`), so a
    trace of a mixed transaction holds both VMs' frames, in order."""

    def __init__(self, vm: VM | None = None, evm: VM | None | str = "default") -> None:
        if vm is None:
            import ewasm
            vm = ewasm.execute
        if evm == "default":
            from state.evm import execute_evm
            evm = execute_evm
        self.vm = vm
        self.frames: list[dict] = []
        self.calls: list[dict] = []
        self.truncated = False
        self._stack: list[dict] = []  # the frames running, innermost last
        self._host_ns: dict[str, list[int]] = {}  # name -> [calls, own ns]
        inner_evm = evm
        self.evm: VM | None = None if inner_evm is None else (
            lambda host, revision, message, code, **options:
            self._run(inner_evm, "evm", host, revision, message, code, options))

    # --- the VM ------------------------------------------------------------------------------
    def __call__(self, host: Host, revision: Any, message: Message, code: bytes,
                 **options: Any) -> Result:
        return self._run(self.vm, "wasm", host, revision, message, code, options)

    def _run(self, vm: VM, which: str, host: Host, revision: Any, message: Message,
             code: bytes, options: dict) -> Result:
        frame = {"index": len(self.frames), "depth": message.depth, "kind": message.kind.name,
                 "vm": which, "from": _hex(message.sender), "to": _hex(message.recipient),
                 "codeAddress": _hex(message.code_address), "gas": message.gas,
                 "codeSize": len(code), "childNs": 0}
        self.frames.append(frame)
        self._stack.append(frame)
        start = time.perf_counter_ns()
        try:
            result = vm(TracingHost(host, self, message.depth), revision, message, code,
                        **options)
        finally:
            self._stack.pop()
            elapsed = time.perf_counter_ns() - start
            frame["ns"] = elapsed
            if self._stack:
                self._stack[-1]["childNs"] += elapsed
        frame["gasUsed"] = message.gas - result.gas_left
        frame["status"] = result.status.name
        frame["output"] = _hex(result.output)
        return result

    # --- recording ---------------------------------------------------------------------------
    def _record(self, name: str, depth: int, args: dict, run: Any) -> Any:
        gas_before = _frame_gas()
        frames_before = len(self.frames)
        start = time.perf_counter_ns()
        answer = run()
        elapsed = time.perf_counter_ns() - start
        # A nested call's time is its frames'; the host function's own is the rest.
        child = sum(f["ns"] for f in self.frames[frames_before:]
                    if f["depth"] == depth + 1)
        own = max(0, elapsed - child)
        entry = self._host_ns.setdefault(name, [0, 0])
        entry[0] += 1
        entry[1] += own
        if len(self.calls) < MAX_TRACE_CALLS:
            self.calls.append({"name": name, "depth": depth, "args": args,
                               "result": _answer_json(answer), "gasBefore": gas_before,
                               "gasAfter": _frame_gas(), "ns": own})
        else:
            self.truncated = True
        return answer

    # --- outputs -----------------------------------------------------------------------------
    def eei_trace(self) -> dict:
        return {"frames": [_frame_out(f) for f in self.frames], "calls": self.calls,
                "truncated": self.truncated}

    def profile(self) -> dict:
        by_contract: dict[str, dict] = {}
        for f in self.frames:
            c = by_contract.setdefault(f["codeAddress"], {"frames": 0, "gasUsed": 0,
                                                          "ownGasUsed": 0, "ns": 0,
                                                          "ownNs": 0})
            c["frames"] += 1
            c["ns"] += f.get("ns", 0)
            c["ownNs"] += f.get("ns", 0) - f["childNs"]
            c["gasUsed"] += f.get("gasUsed", 0)
        # A frame's own gas is its gas less what its direct children used.
        for i, f in enumerate(self.frames):
            end = next((j for j, g in enumerate(self.frames[i + 1:], i + 1)
                        if g["depth"] <= f["depth"]), len(self.frames))
            children = [g for g in self.frames[i + 1:end] if g["depth"] == f["depth"] + 1]
            own = f.get("gasUsed", 0) - sum(g.get("gasUsed", 0) for g in children)
            by_contract[f["codeAddress"]]["ownGasUsed"] += own
        return {
            "frames": [_frame_out(f) for f in self.frames],
            "contracts": by_contract,
            "hostFunctions": {name: {"calls": n, "ownNs": ns}
                              for name, (n, ns) in sorted(self._host_ns.items())},
        }


def _frame_out(f: dict) -> dict:
    out = {k: v for k, v in f.items() if k not in ("childNs", "index")}
    out["ownNs"] = f.get("ns", 0) - f["childNs"]
    return out


def _answer_json(answer: Any) -> Any:
    if isinstance(answer, Result):
        return _result_json(answer)
    if isinstance(answer, bytes | bytearray):
        return _hex(answer)
    if isinstance(answer, StorageStatus | AccessStatus):
        return answer.name
    if isinstance(answer, TxContext):
        return "txContext"
    return answer


class TracingHost:
    """The Host a traced frame sees: each call recorded, then forwarded to `inner`.

    The extensions an EVM frame uses when its host has them (StateHost's get_code,
    get_nonce, get_original_storage, write_storage, transient_storage) are forwarded, and
    recorded, only where `inner` has them: the EVM prices storage by them, so a traced
    frame must see the same host as an untraced one."""

    def __init__(self, inner: Host, tracer: Tracer, depth: int) -> None:
        self._inner = inner
        self._tracer = tracer
        self._depth = depth
        transient = getattr(inner, "transient_storage", None)
        if transient is not None:
            self.transient_storage = transient
        for name in ("get_code", "get_nonce", "get_original_storage", "write_storage"):
            fn = getattr(inner, name, None)
            if fn is not None:
                setattr(self, name, self._recorded(name, fn))

    def _recorded(self, name: str, fn: Any) -> Any:
        def run(*args: Any) -> Any:
            shown = {f"arg{i}": _hex(a) if isinstance(a, bytes | bytearray) else a
                     for i, a in enumerate(args)}
            return self._go(name, shown, lambda: fn(*args))
        return run

    def _go(self, name: str, args: dict, run: Any) -> Any:
        return self._tracer._record(name, self._depth, args, run)

    def account_exists(self, address: bytes) -> bool:
        return self._go("account_exists", {"address": _hex(address)},
                        lambda: self._inner.account_exists(address))

    def get_storage(self, address: bytes, key: bytes) -> bytes:
        return self._go("get_storage", {"address": _hex(address), "key": _hex(key)},
                        lambda: self._inner.get_storage(address, key))

    def set_storage(self, address: bytes, key: bytes, value: bytes) -> StorageStatus:
        return self._go("set_storage", {"address": _hex(address), "key": _hex(key),
                                        "value": _hex(value)},
                        lambda: self._inner.set_storage(address, key, value))

    def get_balance(self, address: bytes) -> int:
        return self._go("get_balance", {"address": _hex(address)},
                        lambda: self._inner.get_balance(address))

    def get_code_size(self, address: bytes) -> int:
        return self._go("get_code_size", {"address": _hex(address)},
                        lambda: self._inner.get_code_size(address))

    def get_code_hash(self, address: bytes) -> bytes:
        return self._go("get_code_hash", {"address": _hex(address)},
                        lambda: self._inner.get_code_hash(address))

    def copy_code(self, address: bytes, offset: int, size: int) -> bytes:
        return self._go("copy_code", {"address": _hex(address), "offset": offset,
                                      "size": size},
                        lambda: self._inner.copy_code(address, offset, size))

    def selfdestruct(self, address: bytes, beneficiary: bytes) -> bool:
        return self._go("selfdestruct", {"address": _hex(address),
                                         "beneficiary": _hex(beneficiary)},
                        lambda: self._inner.selfdestruct(address, beneficiary))

    def call(self, message: Message) -> Result:
        return self._go("call", _message_json(message), lambda: self._inner.call(message))

    def get_tx_context(self) -> TxContext:
        return self._go("get_tx_context", {}, self._inner.get_tx_context)

    def get_block_hash(self, number: int) -> bytes:
        return self._go("get_block_hash", {"number": number},
                        lambda: self._inner.get_block_hash(number))

    def emit_log(self, address: bytes, data: bytes, topics: Sequence[bytes]) -> None:
        return self._go("emit_log", {"address": _hex(address), "data": _hex(data),
                                     "topics": [_hex(t) for t in topics]},
                        lambda: self._inner.emit_log(address, data, topics))

    def access_account(self, address: bytes) -> AccessStatus:
        return self._go("access_account", {"address": _hex(address)},
                        lambda: self._inner.access_account(address))

    def access_storage(self, address: bytes, key: bytes) -> AccessStatus:
        return self._go("access_storage", {"address": _hex(address), "key": _hex(key)},
                        lambda: self._inner.access_storage(address, key))


__all__ = ["MAX_TRACE_CALLS", "TRACERS", "Tracer", "TracingHost"]
