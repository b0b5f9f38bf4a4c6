"""The `ewasm` command line: validate, compile, run, and a demo of the whole pipeline."""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import resources
from pathlib import Path

from ewasm import api
from ewasm.compiled import ARTEFACT_MAGIC
from ewasm.errors import CompileError, LinkError, Trap, WasmError
from ewasm.module import EXTERN_FUNC


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SystemExit(f"error: cannot read {path}: {exc.strerror}") from None


def _load_compiled(path: str, data: bytes, allow_precompiled: bool) -> api.CompiledModule:
    if data[:8] == ARTEFACT_MAGIC:
        # An artefact is native code that runs as it is: nothing in it can show that
        # this engine made it (wasmtime's `run` asks for the same flag).
        if not allow_precompiled:
            raise SystemExit(f"error: {path} is a precompiled artefact (native code from "
                             "`ewasm compile`), which runs unchecked; pass "
                             "--allow-precompiled if you trust where it came from, or run "
                             "the .wasm module")
        return api.CompiledModule.deserialize(data)
    return api.compile(data)


def _parse_int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise SystemExit(f"error: argument {text!r} is not an integer") from None


def cmd_validate(args: argparse.Namespace) -> int:
    module = api.validate(_read(args.file))
    n_funcs = len(module.codes)
    print(f"{args.file}: valid ({n_funcs} functions, {len(module.imports)} imports, "
          f"{len(module.exports)} exports)")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    wasm = _read(args.file)
    try:
        compiled = api.compile(wasm, cache=not args.no_cache, tier=args.tier)
    except CompileError as exc:
        if args.tier != "optimized":
            raise
        # The optimising pipeline refused or crashed on this shape (in its worker):
        # the baseline tier compiles every valid module.
        print(f"warning: optimising compile failed ({exc}); writing the baseline tier",
              file=sys.stderr)
        compiled = api.compile(wasm, cache=not args.no_cache, tier="baseline")
    artefact = compiled.serialize()
    Path(args.output).write_bytes(artefact)
    print(f"{args.output}: {len(artefact)} bytes ({len(compiled.object_code)} bytes of code) "
          f"({compiled.tier.value} tier) in {time.perf_counter() - start:.3f} s", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    compiled = _load_compiled(args.file, _read(args.file), args.allow_precompiled)
    own_imports = [i for i in compiled.module.imports
                   if not (args.meter or args.gas_limit is not None)
                   or (i.module, i.name) != api.GAS_IMPORT]
    if args.meter and args.gas_limit is None:
        args.gas_limit = (1 << 63) - 1
    if own_imports and not args.allow_imports:
        first = own_imports[0]
        raise LinkError(f"module imports {first.module}.{first.name}; `ewasm run` provides no "
                        "imports")
    if args.meter:
        from gasmeter import inject

        compiled = api.compile(inject(compiled.wasm))
    instance = api.instantiate(compiled, gas_limit=args.gas_limit)
    name, *raw_args = args.invoke
    func = instance.exports.get(name)
    if func is None or not callable(func):
        names = [e.name for e in compiled.module.exports if e.kind == EXTERN_FUNC]
        raise LinkError(f"no exported function {name!r} (exports: {', '.join(names)})")
    call_args = [_parse_int(a) for a in raw_args]
    start = time.perf_counter()
    try:
        results = func(*call_args)
    finally:
        if instance.gas_used is not None and not args.json:
            print(f"gas used: {instance.gas_used}", file=sys.stderr)
    elapsed = time.perf_counter() - start
    if args.json:
        record = {"function": name, "args": call_args, "results": results,
                  "seconds": round(elapsed, 6)}
        if instance.gas_used is not None:
            record["gas_used"] = instance.gas_used
        print(json.dumps(record))
    else:
        print(" ".join(str(r) for r in results))
    return 0


def cmd_meter(args: argparse.Namespace) -> int:
    from gasmeter import DEFAULT, CostTable, CostTableError, inject

    try:
        costs = CostTable.from_json(args.costs) if args.costs else DEFAULT
    except (OSError, CostTableError) as exc:
        raise SystemExit(f"error: cost table: {exc}") from None
    out = inject(_read(args.file), costs)
    Path(args.output).write_bytes(out)
    print(f"{args.output}: {len(out)} bytes", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    wasm = resources.files("ewasm.examples").joinpath("demo.wasm").read_bytes()
    t0 = time.perf_counter()
    compiled = api.compile(wasm)
    t1 = time.perf_counter()
    instance = api.instantiate(compiled)
    t2 = time.perf_counter()
    print(f"compiled the embedded demo module ({len(wasm)} bytes of Wasm) to "
          f"{len(compiled.object_code)} bytes of native code in {t1 - t0:.3f} s; "
          f"instantiated in {(t2 - t1) * 1000:.1f} ms")
    t = time.perf_counter()
    (fib,) = instance.invoke("fib", 27)
    print(f"fib(27) = {fib}  ({(time.perf_counter() - t) * 1000:.2f} ms)")
    t = time.perf_counter()
    (h,) = instance.invoke("checksum", 65536, 12345)
    print(f"checksum(64 KiB) = {h & 0xFFFFFFFF:#010x}  ({(time.perf_counter() - t) * 1000:.2f} ms)")
    try:
        instance.invoke("crash", 10 * 65536)
    except Trap as trap:
        print(f"crash(655360) trapped as expected: {trap.kind.name}: {trap}")
    return 0


# The local chain's commands: their own parser, loaded only when asked for.
_CHAIN_HELP = {
    "node": "serve a local chain over JSON-RPC (ewasm node -h)",
    "deploy": "deploy a contract to the local chain",
    "call": "call a contract on the local chain without a transaction",
    "send": "send a transaction on the local chain",
    "balance": "an account's balance on the local chain",
    "wrap-deploy": "turn a contract module into creation code",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ewasm", description="Ewasm execution engine")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("validate", help="decode and validate a Wasm module")
    s.add_argument("file")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("compile", help="compile a module to a deterministic native artefact")
    s.add_argument("file")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    s.add_argument("--tier", choices=("optimized", "baseline"), default="optimized",
                   help="which compile tier's code to write (default: optimized)")
    s.set_defaults(func=cmd_compile)

    s = sub.add_parser("run", help="run an exported function")
    s.add_argument("file", help="a .wasm module or an artefact from `ewasm compile`")
    s.add_argument("--invoke", required=True, nargs="+", metavar=("NAME", "ARGS"),
                   help="the function to call and its integer arguments (decimal or 0x hex)")
    s.add_argument("--json", action="store_true", help="print a JSON record")
    s.add_argument("--allow-precompiled", action="store_true",
                   help="run FILE even if it is a compiled artefact: its native code runs "
                        "as is, so only for artefacts you trust")
    s.add_argument("--allow-imports", action="store_true", help=argparse.SUPPRESS)
    s.add_argument("--meter", action="store_true", help="inject gas metering before running")
    s.add_argument("--gas-limit", type=int, default=None,
                   help="run with the engine's gas counter and print the gas used")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("meter", help="inject Ewasm gas metering")
    s.add_argument("file")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--costs", help="a JSON cost table (name -> cost)")
    s.set_defaults(func=cmd_meter)

    sub.add_parser("statetest", help="run Ethereum state tests (ewasm statetest -h)",
                   add_help=False)
    for name, text in _CHAIN_HELP.items():
        sub.add_parser(name, help=text, add_help=False)
    s = sub.add_parser("demo", help="compile and run the embedded example module")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["statetest"]:
        # Its own parser and imports (state, rich): loaded only when asked for.
        from apps.statetest_cli import main as statetest_main

        return statetest_main(argv[1:])
    if argv[:1] and argv[0] in _CHAIN_HELP:
        from apps.chain_cli import main as chain_main

        return chain_main(argv)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except WasmError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except TypeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
