"""A tiny EVM assembler for the tests: opcode names, integers (pushed with the least
width), bytes (pushed as they are), labels and marks. Enough to write the EVM side of the cross-VM
tests by hand, readably."""

from __future__ import annotations

OPCODES = {
    "STOP": 0x00, "ADD": 0x01, "MUL": 0x02, "SUB": 0x03, "DIV": 0x04, "LT": 0x10,
    "GT": 0x11, "EQ": 0x14, "ISZERO": 0x15, "AND": 0x16, "NOT": 0x19, "BYTE": 0x1A,
    "SHA3": 0x20, "ADDRESS": 0x30, "BALANCE": 0x31, "ORIGIN": 0x32, "CALLER": 0x33,
    "CALLVALUE": 0x34, "CALLDATALOAD": 0x35, "CALLDATASIZE": 0x36, "CALLDATACOPY": 0x37,
    "CODESIZE": 0x38, "CODECOPY": 0x39, "GASPRICE": 0x3A, "EXTCODESIZE": 0x3B,
    "EXTCODECOPY": 0x3C, "RETURNDATASIZE": 0x3D, "RETURNDATACOPY": 0x3E, "POP": 0x50,
    "MLOAD": 0x51, "MSTORE": 0x52, "MSTORE8": 0x53, "SLOAD": 0x54, "SSTORE": 0x55,
    "JUMP": 0x56, "JUMPI": 0x57, "PC": 0x58, "MSIZE": 0x59, "GAS": 0x5A, "JUMPDEST": 0x5B,
    "DUP1": 0x80, "DUP2": 0x81, "DUP3": 0x82, "SWAP1": 0x90, "SWAP2": 0x91, "LOG0": 0xA0,
    "LOG1": 0xA1, "CREATE": 0xF0, "CALL": 0xF1, "CALLCODE": 0xF2, "RETURN": 0xF3,
    "DELEGATECALL": 0xF4, "CREATE2": 0xF5, "STATICCALL": 0xFA, "REVERT": 0xFD,
    "INVALID": 0xFE, "SELFDESTRUCT": 0xFF,
}


class Label(str):
    """A jump target: `Label("x")` marks the place, `Ref("x")` pushes its offset."""


class Ref(str):
    pass


class Mark(str):
    """A named offset that emits nothing (where appended data starts)."""


def _push(value: bytes) -> bytes:
    assert 1 <= len(value) <= 32
    return bytes([0x5F + len(value)]) + value


def asm(*items: str | int | bytes) -> bytes:
    """Assemble. An int is pushed in the fewest bytes (at least one), bytes as they are
    (PUSHn of their length), a Ref as a 2-byte push of its label's offset."""
    def encode(labels: dict[str, int]) -> bytes:
        out = bytearray()
        for item in items:
            if isinstance(item, Label | Mark):
                labels[item] = len(out)
                if isinstance(item, Label):
                    out.append(OPCODES["JUMPDEST"])
            elif isinstance(item, Ref):
                out += _push(labels.get(item, 0).to_bytes(2, "big"))
            elif isinstance(item, str):
                out.append(OPCODES[item])
            elif isinstance(item, int):
                out += _push(item.to_bytes(max(1, (item.bit_length() + 7) // 8), "big"))
            else:
                out += _push(bytes(item))
        return bytes(out)

    labels: dict[str, int] = {}
    encode(labels)  # first pass: the offsets (refs are fixed-width, so they do not move)
    return encode(labels)


def initcode(runtime: bytes) -> bytes:
    """EVM init code that returns `runtime` (copied from the init code's own tail)."""
    head_len = 0
    while True:
        head = asm(len(runtime), "DUP1", head_len, 0, "CODECOPY", 0, "RETURN")
        if len(head) == head_len:
            return head + runtime
        head_len = len(head)
