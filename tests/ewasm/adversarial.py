"""Adversarial Ewasm contracts: valid, integer-only modules shaped to be slow to compile.

Each family takes a size n and returns the Wasm bytes of an Ewasm contract (exports
`main: [] -> []` and `memory`, no imports) that terminates quickly when run. Doubling n
roughly doubles the module size, so the families measure how compile time grows with
shape: deep nesting, big br_tables, many live locals, long straight-line code, many
functions, big data segments. Shared by bench/bench_compile.py and the tests."""

from __future__ import annotations

from collections.abc import Callable

# Opcodes used below (the binary format, not this engine's tables: the generator must not
# depend on the code under test).
BLOCK, LOOP, IF, ELSE, END, BR, BR_IF, BR_TABLE, RETURN = 2, 3, 4, 5, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F
CALL, DROP, LOCAL_GET, LOCAL_SET, LOCAL_TEE = 0x10, 0x1A, 0x20, 0x21, 0x22
I32_LOAD, I64_LOAD, I32_STORE, I64_STORE = 0x28, 0x29, 0x36, 0x37
I32_CONST, I64_CONST = 0x41, 0x42
I32_EQZ, I32_ADD, I32_SUB, I32_MUL, I32_XOR = 0x45, 0x6A, 0x6B, 0x6C, 0x73
I64_ADD, I64_MUL, I64_XOR, I64_ROTL = 0x7C, 0x7E, 0x85, 0x89
I32, I64, EMPTY = 0x7F, 0x7E, 0x40


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def _vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def _section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + uleb(len(payload)) + payload


def _name(s: str) -> bytes:
    return uleb(len(s)) + s.encode()


def contract(bodies: list[bytes], *, types: list[bytes] | None = None,
             func_types: list[int] | None = None, data: list[tuple[int, bytes]] = (),
             pages: int = 1) -> bytes:
    """A module whose function 0 is `main`; bodies are code entries (locals + body)."""
    types = types or [b"\x60\x00\x00"]
    func_types = func_types or [0] * len(bodies)
    out = b"\0asm\x01\0\0\0"
    out += _section(1, _vec(types))
    out += _section(3, _vec([uleb(t) for t in func_types]))
    out += _section(5, _vec([b"\x00" + uleb(pages)]))
    out += _section(7, _vec([_name("main") + b"\x00\x00", _name("memory") + b"\x02\x00"]))
    out += _section(10, _vec([uleb(len(b)) + b for b in bodies]))
    if data:
        segs = [b"\x00" + bytes([I32_CONST]) + sleb(off) + bytes([END]) + uleb(len(d)) + d
                for off, d in data]
        out += _section(11, _vec(segs))
    return out


def _body(locals_: list[tuple[int, int]], code: bytes) -> bytes:
    return _vec([uleb(n) + bytes([t]) for n, t in locals_]) + code + bytes([END])


# Nesting deeper than this is refused by the engine's limits (ewasm/limits.py); the deep
# shapes repeat groups of this depth instead.
GROUP_DEPTH = 500


def _groups(n: int, group) -> bytes:
    code = b""
    while n > 0:
        code += group(min(n, GROUP_DEPTH))
        n -= GROUP_DEPTH
    return code


def nested_blocks(n: int) -> bytes:
    """n blocks in nests of GROUP_DEPTH, each left by a br_if on a local: the shape that
    made SimplifyCFG abort ('Iterative simplification didn't converge')."""
    def group(g: int) -> bytes:
        code = bytes([BLOCK, EMPTY]) * g
        for k in range(g):
            code += bytes([LOCAL_GET, 0, BR_IF]) + uleb(min(k % 3, g - k - 1)) + bytes([END])
        return code
    return contract([_body([(1, I32)], _groups(n, group))])


def br_table(n: int) -> bytes:
    """A br_table of n targets over nested blocks, each block end storing its depth."""
    d = min(n, GROUP_DEPTH)
    code = bytes([BLOCK, EMPTY]) * d
    code += bytes([LOCAL_GET, 0, BR_TABLE]) + uleb(n) + b"".join(uleb(k % d) for k in range(n))
    code += uleb(d - 1)
    for k in range(d):
        code += bytes([END, I32_CONST, 0, I32_CONST]) + sleb(k) + bytes([I32_STORE, 2, 0])
    return contract([_body([(1, I32)], code)])


def many_locals(n: int) -> bytes:
    """n i64 locals all live around a loop (register-allocation pressure)."""
    loop = b""
    for k in range(n):
        loop += bytes([LOCAL_GET]) + uleb(k) + bytes([I64_CONST]) + sleb(k + 1)
        loop += bytes([I64_ADD, LOCAL_GET]) + uleb((k * 7 + 3) % n) + bytes([I64_XOR])
        loop += bytes([LOCAL_SET]) + uleb(k)
    cnt = uleb(n)  # an i32 counter after the i64 locals
    loop += bytes([LOCAL_GET]) + cnt + bytes([I32_CONST, 1, I32_ADD, LOCAL_TEE]) + cnt
    loop += bytes([I32_CONST, 3, 0x48, BR_IF, 0])  # i32.lt_s; br_if 0 (three rounds)
    code = bytes([LOOP, EMPTY]) + loop + bytes([END])
    acc = bytes([I64_CONST, 0])
    for k in range(n):
        acc += bytes([LOCAL_GET]) + uleb(k) + bytes([I64_ADD])
    code += bytes([I32_CONST, 0]) + acc + bytes([I64_STORE, 3, 0])
    return contract([_body([(n, I64), (1, I32)], code)])


def straight_line(n: int) -> bytes:
    """n arithmetic steps with a memory access every eighth: one long basic block chain."""
    code = b""
    for k in range(n):
        code += bytes([LOCAL_GET, 0, I64_CONST]) + sleb(k * 2654435761 % 1000003 + 1)
        code += bytes([I64_MUL, I64_CONST, 13, I64_ROTL, LOCAL_SET, 0])
        if k % 8 == 7:
            code += bytes([I32_CONST]) + sleb((k * 8) % 65000)
            code += bytes([LOCAL_GET, 0, I64_STORE, 3, 0])
    return contract([_body([(1, I64)], code)])


def many_functions(n: int) -> bytes:
    """n small functions, each calling the next: main -> f1 -> ... -> f(n-1)."""
    bodies = []
    for k in range(n):
        code = bytes([I32_CONST]) + sleb(4 * (k % 1000)) + bytes([I32_CONST]) + sleb(k)
        code += bytes([I32_STORE, 2, 0])
        if k + 1 < n:
            code += bytes([CALL]) + uleb(k + 1)
        bodies.append(_body([], code))
    return contract(bodies)


def big_data(n: int) -> bytes:
    """n data segments of 16 bytes, spread over 16 pages."""
    data = [(k * 64 % (16 * 65536 - 16), bytes((k + j) & 0xFF for j in range(16)))
            for k in range(n)]
    return contract([_body([], b"")], data=data, pages=16)


def deep_loops(n: int) -> bytes:
    """n loops in nests of GROUP_DEPTH, each run once, each with an if/else inside."""
    def group(g: int) -> bytes:
        code = b""
        for _ in range(g):
            code += bytes([LOOP, EMPTY, LOCAL_GET, 0, IF, EMPTY, LOCAL_GET, 0, I32_CONST, 1,
                           I32_ADD, LOCAL_SET, 0, ELSE, LOCAL_GET, 0, I32_CONST, 3, I32_XOR,
                           LOCAL_SET, 0, END])
        return code + bytes([END]) * g
    return contract([_body([(1, I32)], _groups(n, group))])


def block_results(n: int) -> bytes:
    """i64-valued blocks in nests of GROUP_DEPTH, each with a br_if out carrying a value."""
    def group(g: int) -> bytes:
        code = bytes([BLOCK, I64]) * g + bytes([I64_CONST, 1])
        for k in range(g):
            code += bytes([LOCAL_GET, 0, BR_IF]) + uleb(min(k % 2, g - k - 1))
            code += bytes([I64_CONST, 3, I64_ADD, END])
        return code + bytes([DROP])
    return contract([_body([(1, I32)], _groups(n, group))])


def _recursion(n: int, step: bytes) -> bytes:
    """main repeats `step` n times, then calls itself until the call-depth budget runs
    out: a long body whose values live across many basic blocks (big native frames on
    the baseline tier), recursing as deep as the engine lets it."""
    return contract([_body([(2, I32)], step * n + bytes([CALL, 0]))])


def recursion_loads(n: int) -> bytes:
    # The first local.get lives across the load's bounds check.
    return _recursion(n, bytes([LOCAL_GET, 0, LOCAL_GET, 0, I32_LOAD, 2, 0, I32_ADD,
                                LOCAL_SET, 1]))


def recursion_divs(n: int) -> bytes:
    # Both operands and a value below them live across the division's checks.
    return _recursion(n, bytes([LOCAL_GET, 1, LOCAL_GET, 0, LOCAL_GET, 1, I32_CONST, 1, 0x72,
                                0x6E, I32_ADD, LOCAL_SET, 1]))  # i32.or, i32.div_u


FAMILIES: dict[str, Callable[[int], bytes]] = {
    "nested_blocks": nested_blocks,
    "br_table": br_table,
    "many_locals": many_locals,
    "straight_line": straight_line,
    "many_functions": many_functions,
    "big_data": big_data,
    "deep_loops": deep_loops,
    "block_results": block_results,
    "recursion_loads": recursion_loads,
    "recursion_divs": recursion_divs,
}


def sized(family: str, target_bytes: int) -> bytes:
    """The family's module closest to (not above, where possible) target_bytes."""
    make = FAMILIES[family]
    lo, hi = 1, 2
    while len(make(hi)) < target_bytes:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if len(make(mid)) <= target_bytes:
            lo = mid
        else:
            hi = mid
    return make(lo)
