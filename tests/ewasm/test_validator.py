"""The validator: typing rules, with the function index and offset of each error."""

from __future__ import annotations

import pytest

import ewasm


def invalid(wat, text: str, match: str):
    with pytest.raises(ewasm.ValidationError, match=match) as e:
        ewasm.validate(wat(text, "--no-check"))
    return e.value


def test_type_mismatch_names_function_and_offset(wat):
    wasm = wat('(module (func) (func (result i32) (i64.const 1)))', "--no-check")
    with pytest.raises(ewasm.ValidationError, match="type mismatch") as e:
        ewasm.validate(wasm)
    assert e.value.func_index == 1
    module = ewasm.decode_module(wasm)
    end_offset = module.codes[1].body[-1][2]
    assert e.value.offset == end_offset


def test_stack_underflow(wat):
    invalid(wat, "(module (func (drop)))", "underflow")


def test_unreachable_code_is_polymorphic(wat):
    ewasm.validate(wat("(module (func (result i32) unreachable i32.add))"))
    ewasm.validate(wat("(module (func (result i64) (br 0 (i64.const 1)) (drop (i32.add))))",
                       "--no-check"))
    # After the branch, i32.add still produces an i32, which is not the i64 required.
    invalid(wat, "(module (func (result i64) (br 0 (i64.const 1)) (i32.add)))", "mismatch")
    invalid(wat, "(module (func (result i32) unreachable (i64.const 0) (i32.add)))",
            "type mismatch")


def test_br_table_arity(wat):
    invalid(wat, """(module (func (result i32)
        (block $a (result i32) (block $b (br_table $a $b (i32.const 1) (i32.const 0))))))""",
            "arity|type mismatch")


def test_multi_value_block_params(wat):
    ewasm.validate(wat("""(module (func (result i32)
        (i32.const 1) (i32.const 2) (block (param i32 i32) (result i32) (i32.add))))"""))
    invalid(wat, """(module (func (result i32)
        (i32.const 1) (block (param i32 i32) (result i32) (i32.add))))""",
            "underflow|type mismatch")


def test_alignment_immutable_global_duplicate_export(wat):
    invalid(wat, "(module (memory 1) (func (drop (i32.load align=8 (i32.const 0)))))",
            "alignment")
    invalid(wat, "(module (global i32 (i32.const 0)) (func (global.set 0 (i32.const 1))))",
            "immutable")
    invalid(wat, '(module (func (export "a")) (func (export "a")))', "duplicate export")


def test_start_function_type_and_const_exprs(wat):
    invalid(wat, "(module (func (param i32)) (start 0))", "start function")
    invalid(wat, "(module (global i32 (i64.const 0)))", "type mismatch")
    invalid(wat, "(module (global $g (mut i32) (i32.const 0)) (global i32 (global.get $g)))",
            "unknown global")


def test_memory_and_table_rules(wat):
    invalid(wat, "(module (func (drop (memory.size))))", "unknown memory")
    invalid(wat, "(module (memory 2 1))", "minimum")
    invalid(wat, "(module (memory 65537))", "at most")
    invalid(wat, "(module (type (func)) (func (call_indirect (type 0) (i32.const 0))))",
            "unknown table")
