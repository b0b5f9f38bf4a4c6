"""state.evm's opcode loop runs PUSH, DUP, SWAP, POP, JUMPDEST, JUMP, JUMPI, MSTORE, MLOAD
and the plain arithmetic inline, not through py-evm's functions. Differential: random
programs built from those opcodes (and their neighbours) end the same way on the hosted EVM
as on plain py-evm running on its own state: error or not, gas left, output, storage."""

from __future__ import annotations

import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evmc_bridge import CallKind, Message, Revision, StatusCode, TxContext
from state.backend import Account
from state.host import StateHost
from state.memory import MemoryBackend

C = b"\xc0" * 20
SENDER = b"\x5e" * 20
GAS = 200_000

# (opcode, items popped, items pushed): what the generator keeps the stack balanced by.
BINARY = [0x01, 0x02, 0x03, 0x10, 0x11, 0x14, 0x16, 0x17, 0x18, 0x1B, 0x1C,  # inlined
          0x04, 0x06, 0x0A, 0x1A, 0x1D, 0x12, 0x13]  # and some that are not
UNARY = [0x15, 0x19]
# Noise: bytes whose effect does not depend on the block or the accounts (which the two
# set-ups do not share): arithmetic, undefined opcodes, GAS, PC, MSIZE, RETURN, REVERT.
NOISE = list(range(0x00, 0x30)) + [0x58, 0x59, 0x5A, 0x5C, 0x5D, 0x5E, 0xB0, 0xC0, 0xD0,
                                   0xE0, 0xEF, 0xF3, 0xFD, 0xFE]


@st.composite
def programs(draw) -> bytes:
    """Mostly well-formed code (the stack kept deep enough, memory offsets small, jumps
    forward to a JUMPDEST), with a little noise (an underflow, a bad jump, a wide
    offset) so that the error paths are compared too."""
    out = bytearray()
    depth = 0
    fixups: list[int] = []  # positions of PUSH2 jump targets still to resolve

    def push(value: int, width: int = 1) -> None:
        nonlocal depth
        out.extend(bytes([0x5F + width]) + value.to_bytes(width, "big"))
        depth += 1

    for _ in range(draw(st.integers(1, 50))):
        kind = draw(st.integers(0, 19))
        if depth < 2 or kind < 4:
            width = draw(st.sampled_from([1, 1, 2, 32]))
            push(draw(st.integers(0, 2**(8 * width) - 1)) if draw(st.booleans())
                 else draw(st.integers(0, 40)), width)
        elif kind < 7:
            out.append(draw(st.sampled_from(BINARY)))
            depth -= 1
        elif kind < 8:
            out.append(draw(st.sampled_from(UNARY)))
        elif kind < 10:
            n = draw(st.integers(1, min(depth, 16)))
            out.append(0x7F + n)  # DUPn
            depth += 1
        elif kind < 12 and depth >= 2:
            n = draw(st.integers(1, min(depth - 1, 16)))
            out.append(0x8F + n)  # SWAPn
        elif kind < 13:
            out.append(0x50)  # POP
            depth -= 1
        elif kind < 15:  # MSTORE at a small offset, or MLOAD from one
            push(draw(st.integers(0, 200)))
            if draw(st.booleans()):
                out.append(0x52)
                depth -= 2
            else:
                out.append(0x51)
        elif kind < 16:  # SSTORE of a small key
            push(draw(st.integers(0, 99)))
            out.append(0x55)
            depth -= 2
        elif kind < 18:  # JUMPI (or JUMP) forward to a JUMPDEST placed later
            fixups.append(len(out) + 1)
            push(0, 2)
            if draw(st.booleans()):
                out.append(0x57)
                depth -= 2
            else:
                out.append(0x56)
                depth -= 1
        elif kind < 19:
            out.append(0x5B)  # a JUMPDEST where none is jumped to
        else:
            out.append(draw(st.sampled_from(NOISE)))
            depth = max(depth, 0)
        depth = max(depth, 0)
        while fixups and draw(st.integers(0, 3)) == 0:
            at = fixups.pop()
            out[at:at + 2] = len(out).to_bytes(2, "big")
            out.append(0x5B)
    for at in fixups:  # the rest land at the end, or (sometimes) nowhere valid
        target = len(out) if draw(st.integers(0, 5)) else len(out) + 1
        out[at:at + 2] = target.to_bytes(2, "big")
    out.append(0x5B)
    # Return the top word (or nothing).
    out += bytes([0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xF3]) if depth else b"\x00"
    return bytes(out)


def ours(code: bytes, data: bytes, revision: Revision):
    backend = MemoryBackend.from_accounts({C: Account(code=code), SENDER: Account()})
    host = StateHost(backend, TxContext(tx_origin=SENDER, block_number=1), revision)
    host.warm_transaction(SENDER, C)
    r = host.message_call(Message(kind=CallKind.CALL, gas=GAS, recipient=C, code_address=C,
                                  sender=SENDER, input=data))
    storage = backend.get_account(C).storage if r.status == StatusCode.SUCCESS else {}
    return (r.status == StatusCode.SUCCESS, r.status == StatusCode.REVERT, r.gas_left,
            r.output if r.status in (StatusCode.SUCCESS, StatusCode.REVERT) else b"",
            {int.from_bytes(k, "big"): int.from_bytes(v, "big") for k, v in storage.items()})


def plain(code: bytes, data: bytes, revision: Revision):
    limit = sys.getrecursionlimit()
    from eth.constants import BLANK_ROOT_HASH
    from eth.db.atomic import AtomicDB
    from eth.exceptions import Revert
    from eth.vm.execution_context import ExecutionContext
    from eth.vm.message import Message as EvmMessage
    if revision == Revision.LONDON:
        from eth.vm.forks.london.state import LondonState as State
    else:
        from eth.vm.forks.byzantium.state import ByzantiumState as State
    sys.setrecursionlimit(limit)
    ctx = ExecutionContext(coinbase=bytes(20), timestamp=0, block_number=1, difficulty=0,
                           mix_hash=bytes(32), gas_limit=10**7, prev_hashes=[], chain_id=1)
    state = State(AtomicDB(), ctx, BLANK_ROOT_HASH)
    state.set_code(C, code)
    state.persist()
    if revision == Revision.LONDON:
        state.mark_address_warm(SENDER)
        state.mark_address_warm(C)
    tctx = state.get_transaction_context_class()(gas_price=0, origin=SENDER)
    c = state.computation_class.apply_message(
        state, EvmMessage(gas=GAS, to=C, sender=SENDER, value=0, data=data, code=code), tctx)
    ok = not c.is_error
    reverted = isinstance(c.error, Revert) if c.is_error else False
    storage = {}
    if ok:
        for slot in range(0, 100):
            v = state.get_storage(C, slot)
            if v:
                storage[slot] = v
    return ok, reverted, c.get_gas_remaining(), c.output if ok or reverted else b"", storage


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.binary(max_size=40), st.sampled_from([Revision.BYZANTIUM,
                                                             Revision.LONDON]))
def test_inlined_opcodes_agree_with_py_evm(code, data, revision):
    mine, theirs = ours(code, data, revision), plain(code, data, revision)
    # Storage keys the programs write are small pushes (< 100) or wide: compare the
    # small ones only (plain py-evm's state cannot list its slots).
    mine = (*mine[:4], {k: v for k, v in mine[4].items() if k < 100})
    assert mine == theirs, code.hex()
