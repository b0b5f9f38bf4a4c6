"""The Ewasm contract interface: which Wasm modules are contracts, and the EEI's types.

Hera's strictest validator (Binaryen's `verifyContract`) is the reference: no start
function; exactly two exports, `main: [] -> []` and `memory`; only function imports
from `ethereum` (and `debug` in debug mode) whose name and type match the EEI table.
Added on top, as the design and sentinel-rs ask: no floats at all (Hera let float
opcodes through; this engine cannot run them and Ewasm forbids them).
"""

from __future__ import annotations

from .errors import ValidationError
from .features import Features
from .module import EXTERN_FUNC, EXTERN_MEMORY, Module
from .types import FLOAT_TYPES, I32, I64, FuncType

WASM_MAGIC = b"\0asm"
WASM_VERSION_1 = b"\x01\0\0\0"

# Ewasm targets Wasm 1.0 with the post-MVP integer-only proposals that change no EEI rule.
CONTRACT_FEATURES = Features(sign_extension=True, multi_value=True, mutable_global=True,
                             saturating_float_to_int=False, bulk_memory=False)


def _t(params: str, results: str = "") -> FuncType:
    codes = {"i": I32, "I": I64}
    return FuncType(tuple(codes[c] for c in params), tuple(codes[c] for c in results))


# The 33 functions of the `ethereum` namespace (eei.md §2.2); i = i32, I = i64.
EEI_SIGNATURES: dict[str, FuncType] = {
    "useGas": _t("I"),
    "getGasLeft": _t("", "I"),
    "getAddress": _t("i"),
    "getExternalBalance": _t("ii"),
    "getBlockHash": _t("Ii", "i"),
    "call": _t("Iiiii", "i"),
    "callCode": _t("Iiiii", "i"),
    "callDelegate": _t("Iiii", "i"),
    "callStatic": _t("Iiii", "i"),
    "create": _t("iiii", "i"),
    # Beyond Hera's 33: SSVM's create2 (value, data, length, salt, result), the salt a
    # little-endian u256 in memory (issue 21); from Constantinople (before: undefined).
    "create2": _t("iiiii", "i"),
    "callDataCopy": _t("iii"),
    "getCallDataSize": _t("", "i"),
    "codeCopy": _t("iii"),
    "getCodeSize": _t("", "i"),
    "externalCodeCopy": _t("iiii"),
    "getExternalCodeSize": _t("i", "i"),
    "getCaller": _t("i"),
    "getCallValue": _t("i"),
    "getBlockCoinbase": _t("i"),
    "getBlockDifficulty": _t("i"),
    "getBlockGasLimit": _t("", "I"),
    "getBlockNumber": _t("", "I"),
    "getBlockTimestamp": _t("", "I"),
    "getTxGasPrice": _t("i"),
    "getTxOrigin": _t("i"),
    "log": _t("iiiiiii"),
    "storageStore": _t("ii"),
    "storageLoad": _t("ii"),
    "finish": _t("ii"),
    "revert": _t("ii"),
    "getReturnDataSize": _t("", "i"),
    "returnDataCopy": _t("iii"),
    "selfDestruct": _t("i"),
}

# Hera's debug namespace (eei.md §2.5), accepted only in debug mode.
DEBUG_SIGNATURES: dict[str, FuncType] = {
    "print32": _t("i"),
    "print64": _t("I"),
    "printMem": _t("ii"),
    "printMemHex": _t("ii"),
    "printStorage": _t("i"),
    "printStorageHex": _t("i"),
    "evmTrace": _t("iiii"),
}

MAIN_TYPE = FuncType((), ())


class ContractValidationError(ValidationError):
    """Valid Wasm, but not an Ewasm contract (EVMC_CONTRACT_VALIDATION_FAILURE)."""


def has_wasm_preamble(code: bytes) -> bool:
    """Hera's test for Wasm code: at least 8 bytes starting with `\\0asm`."""
    return len(code) >= 8 and code[:4] == WASM_MAGIC


def check_contract(module: Module, *, debug: bool = False) -> None:
    """Raise ContractValidationError unless the module is an Ewasm contract."""
    if module.start is not None:
        raise ContractValidationError("contract has a start function")
    names = [e.name for e in module.exports]
    for required in ("main", "memory"):
        if required not in names:
            raise ContractValidationError(f"contract does not export {required!r}")
    if len(module.exports) != 2:
        extra = sorted(set(names) - {"main", "memory"}) or names
        raise ContractValidationError(f"contract must export exactly main and memory, "
                                      f"not also {', '.join(map(repr, extra))}")
    types = module.all_func_types()
    for e in module.exports:
        if e.name == "main":
            if e.kind != EXTERN_FUNC:
                raise ContractValidationError("export 'main' is not a function", offset=e.offset)
            if types[e.index] != MAIN_TYPE:
                raise ContractValidationError(f"'main' has type {types[e.index]}, not [] -> []",
                                              offset=e.offset)
        elif e.kind != EXTERN_MEMORY:
            raise ContractValidationError("export 'memory' is not a memory", offset=e.offset)
    for imp in module.imports:
        where = f"{imp.module}.{imp.name}"
        if imp.module == "ethereum":
            table = EEI_SIGNATURES
        elif imp.module == "debug" and debug:
            table = DEBUG_SIGNATURES
        else:
            raise ContractValidationError(f"import {where} is from an invalid namespace",
                                          offset=imp.offset)
        if imp.kind != EXTERN_FUNC:
            raise ContractValidationError(f"import {where} is not a function", offset=imp.offset)
        want = table.get(imp.name)
        if want is None:
            raise ContractValidationError(f"import {where} is not an EEI function",
                                          offset=imp.offset)
        have = module.types[imp.desc]
        if have != want:
            raise ContractValidationError(f"import {where} has type {have}, the EEI says {want}",
                                          offset=imp.offset)
    _check_no_floats(module)


def _check_no_floats(module: Module) -> None:
    from .opcodes import OPS

    for ft in module.types:
        if any(t in FLOAT_TYPES for t in ft.params + ft.results):
            raise ContractValidationError(f"function type {ft} uses floats")
    for g in module.globals:
        if g.type.valtype in FLOAT_TYPES:
            raise ContractValidationError("global of float type", offset=g.offset)
    nimp = module.num_imported_funcs
    for i, fn in enumerate(module.codes):
        if any(t in FLOAT_TYPES for t in fn.locals):
            raise ContractValidationError("float local", func_index=nimp + i, offset=fn.offset)
        for op, _, off in fn.body:
            if op in OPS and OPS[op].uses_float:
                raise ContractValidationError(f"float instruction {OPS[op].name}",
                                              func_index=nimp + i, offset=off)
