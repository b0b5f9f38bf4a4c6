"""The chain's commands: `ewasm node` (the JSON-RPC node) and, without a server, `deploy`,
`call`, `send`, `balance` on the same database file, and `wrap-deploy`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from chain.chain import (
    CALL_TIMEOUT,
    EIP170,
    ETHER,
    Chain,
    ChainConfig,
    ChainError,
    MinedTransaction,
)
from chain.loader import check_contract_code
from chain.wrap import CREATION, RUNTIME, deployment_kind, wrap_deploy
from ewasm.contract import has_wasm_preamble
from ewasm.errors import WasmError
from state.errors import InvalidTransaction

COMMANDS = ("node", "deploy", "call", "send", "balance", "wrap-deploy")
SWITCH_INTERVAL = 0.0005  # seconds: the node's GIL switch interval (see cmd_node)
DEFAULT_DB = "ewasm-chain.db"


def _hex_bytes(text: str) -> bytes:
    body = text[2:] if text.startswith(("0x", "0X")) else text
    try:
        return bytes.fromhex(body)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hex: {text!r}") from None


def _address(text: str) -> bytes:
    raw = _hex_bytes(text)
    if len(raw) != 20:
        raise argparse.ArgumentTypeError(f"an address is 20 bytes of hex, got {text!r}")
    return raw


def _amount(text: str) -> int:
    """Wei, or ether with an `ether` suffix (`1.5ether`)."""
    t = text.strip().lower()
    try:
        if t.endswith("ether"):
            from decimal import Decimal

            value = Decimal(t[:-5]) * ETHER
            if value != value.to_integral_value():
                raise ValueError
            return int(value)
        return int(t, 0)
    except (ValueError, ArithmeticError):
        raise argparse.ArgumentTypeError(f"not an amount: {text!r} (wei, or Nether)") from None


def _code_size(text: str) -> int | None:
    """--max-code-size: bytes, `eip170` (24,576) or `none`."""
    t = text.strip().lower()
    if t == "none":
        return None
    if t in ("eip170", "eip-170"):
        return EIP170
    try:
        n = int(t, 0)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"a code size is a number of bytes, eip170 or "
                                         f"none, not {text!r}")
    return n


def _open(args, config: ChainConfig | None = None, **options) -> Chain:
    return Chain(args.db, config, metering=not args.no_metering, **options)


def _sender(chain: Chain, spec: str | None) -> bytes:
    if spec is None:
        return chain.accounts[0].address
    if spec.isdigit():
        index = int(spec)
        if index >= len(chain.accounts):
            raise ChainError(f"dev account index {index} out of range "
                             f"(0..{len(chain.accounts) - 1})")
        return chain.accounts[index].address
    return _address(spec)


def _receipt_dict(mined: MinedTransaction) -> dict:
    r = mined.receipt
    return {
        "transactionHash": "0x" + mined.tx.hash.hex(),
        "blockNumber": mined.stored.block_number,
        "status": r.status,
        "gasUsed": r.gas_used,
        "effectiveGasPrice": r.effective_gas_price,
        "contractAddress": None if r.contract_address is None
        else "0x" + r.contract_address.hex(),
        "logs": [{"address": "0x" + log.address.hex(),
                  "topics": ["0x" + t.hex() for t in log.topics],
                  "data": "0x" + log.data.hex()} for log in r.logs],
        "error": r.error or None,
    }


def _print_receipt(mined: MinedTransaction, as_json: bool) -> int:
    d = _receipt_dict(mined)
    if as_json:
        print(json.dumps(d, indent=2))
    else:
        print(f"transaction {d['transactionHash']}")
        print(f"  block       {d['blockNumber']}")
        print(f"  status      {'success' if d['status'] else 'failed: ' + (d['error'] or '')}")
        print(f"  gas used    {d['gasUsed']}")
        if d["contractAddress"]:
            print(f"  contract    {d['contractAddress']}")
        for log in d["logs"]:
            print(f"  log         {log['address']} topics={len(log['topics'])} "
                  f"data={log['data']}")
    return 0 if d["status"] else 1


def _new_config(args) -> ChainConfig | None:
    """The configuration of a new database, if any option asks for one."""
    fields = {}
    if args.chain_id is not None:
        fields["chain_id"] = args.chain_id
    if args.max_code_size is not None:
        try:
            fields["max_code_size"] = _code_size(args.max_code_size)
        except argparse.ArgumentTypeError as exc:
            raise ChainError(f"--max-code-size: {exc}") from None
    return ChainConfig(**fields) if fields else None


def cmd_node(args) -> int:
    import inspect
    import logging

    from chain.http import create_server, serve

    # waitress warns "Task queue depth is N" whenever a request waits for a thread, which
    # on a node whose transactions queue for one block at a time is every request: the
    # log lines cost more than the wait (and say nothing an operator can act on).
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    # Quick requests are served on the loop's thread; while a worker runs a simulation,
    # the loop gets the GIL back only every switch interval (5 ms by default), which
    # would add up to 5 ms to every quick request meanwhile.
    sys.setswitchinterval(SWITCH_INTERVAL)

    chain = _open(args, _new_config(args), gas_cap=args.gas_cap,
                  call_timeout=args.call_timeout or None, automine=not args.no_automine,
                  block_time=args.block_time)
    extra = {}
    if args.allow_origin:
        if "allow_origins" not in inspect.signature(create_server).parameters:
            chain.close()
            raise ChainError("--allow-origin needs a chain.http that takes allow_origins")
        extra["allow_origins"] = tuple(args.allow_origin)
    try:
        server = create_server(chain, args.host, args.port, threads=args.threads, **extra)
    except OSError as exc:
        chain.close()
        raise ChainError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
    limit = chain.config.max_code_size
    mining = "automine" if chain.automine else "automine off"
    if chain.block_time:
        mining += f", a block every {chain.block_time:g} s"
    print(f"ewasm node: chain id {chain.chain_id}, database {args.db} "
          f"(block {chain.head()}), metering {'on' if chain.loader.metering else 'off'}, "
          f"code size {'unlimited' if limit is None else f'at most {limit} bytes'}, "
          f"{mining}")
    print("Dev accounts (test mnemonic; never use these keys for real funds):")
    for i, account in enumerate(chain.accounts):
        print(f"  ({i}) 0x{account.address.hex()}  key 0x{account.key.hex()}  "
              f"balance {chain.balance(account.address) / ETHER:g} ETH")
    port = server.effective_port
    print(f"Listening on http://{args.host}:{port}", flush=True)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        serve(server)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        chain.close()
    return 0


def _transact(args, **fields) -> int:
    """Sign with the chosen dev account, mine, print the receipt."""
    with _open(args) as chain:
        sender = _sender(chain, args.sender)
        tx_hash = chain.send_transaction(sender, value=args.value, gas=args.gas, **fields)
        mined = chain.transaction(tx_hash)
        assert mined is not None
        return _print_receipt(mined, args.json)


def cmd_deploy(args) -> int:
    """The file is a runtime module (wrapped) or a creation module (sent as is): by the
    rule of chain.wrap, unless --init or --runtime says which."""
    code = Path(args.file).read_bytes()
    if not has_wasm_preamble(code):
        raise ChainError(f"{args.file} is not a Wasm module (no \\0asm preamble)")
    try:
        check_contract_code(code)
    except WasmError as exc:
        raise ChainError(f"{args.file} is not an Ewasm contract module: "
                         f"{type(exc).__name__}: {exc}") from None
    if args.init:
        kind = CREATION
    elif args.runtime:
        kind = RUNTIME
    else:
        kind = deployment_kind(code)
    if not args.json:
        print(f"deploying {args.file} as a "
              + ("creation module (its main runs the constructor and finishes the runtime)"
                 if kind == CREATION else "runtime module (wrapped in creation code)"))
    return _transact(args, data=code if kind == CREATION else wrap_deploy(code, check=False),
                     wrap=False)


def cmd_send(args) -> int:
    return _transact(args, to=args.address, data=args.data)


def cmd_call(args) -> int:
    with _open(args) as chain:
        sender = _sender(chain, args.sender)
        out = chain.call(sender=sender, to=args.address, data=args.data, value=args.value,
                         gas=args.gas)
    if args.json:
        print(json.dumps({"output": "0x" + out.hex()}))
    else:
        print("0x" + out.hex())
    return 0


def cmd_balance(args) -> int:
    with _open(args) as chain:
        wei = chain.balance(args.address)
        nonce = chain.nonce(args.address)
    if args.json:
        print(json.dumps({"address": "0x" + args.address.hex(), "balance": str(wei),
                          "nonce": nonce}))
    else:
        print(f"{wei} wei ({wei / ETHER:g} ETH), nonce {nonce}")
    return 0


def cmd_wrap_deploy(args) -> int:
    out = wrap_deploy(Path(args.file).read_bytes())
    target = Path(args.output) if args.output else Path(args.file).with_suffix(".deploy.wasm")
    target.write_bytes(out)
    print(f"wrote {target} ({len(out)} bytes of creation code)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ewasm", description="the local Ewasm chain")
    sub = p.add_subparsers(dest="command", required=True)
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", default=os.environ.get("EWASM_DB", DEFAULT_DB),
                    help=f"the chain database (default $EWASM_DB or ./{DEFAULT_DB})")
    db.add_argument("--no-metering", action="store_true",
                    help="deploy contracts unmetered (their loops are then unbounded)")
    tx = argparse.ArgumentParser(add_help=False)
    tx.add_argument("--from", dest="sender", metavar="ACCOUNT",
                    help="a dev account: index (default 0) or address")
    tx.add_argument("--value", type=_amount, default=0, help="wei, or e.g. 1.5ether")
    tx.add_argument("--gas", type=int, default=None, help="gas limit (default: estimated)")
    tx.add_argument("--json", action="store_true", help="print JSON")

    s = sub.add_parser("node", parents=[db], help="serve the chain over JSON-RPC (HTTP)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8545, help="0 picks a free port")
    s.add_argument("--chain-id", type=int, default=None,
                   help="chain id of a new database (default 1337)")
    s.add_argument("--max-code-size", metavar="BYTES|eip170|none", default=None,
                   help="the most bytes of code a contract may have, for a new database "
                        "(default none, as on the Ewasm testnet; eip170: 24576)")
    s.add_argument("--gas-cap", type=int, default=None,
                   help="the most gas an eth_call or eth_estimateGas runs with "
                        "(default: the block gas limit)")
    s.add_argument("--call-timeout", type=float, default=CALL_TIMEOUT,
                   help=f"seconds an eth_call or eth_estimateGas may run (default "
                        f"{CALL_TIMEOUT:g}; 0: no limit)")
    s.add_argument("--no-automine", action="store_true",
                   help="pool transactions until a block is mined (evm_mine, --block-time)")
    s.add_argument("--block-time", type=float, default=None, metavar="SECONDS",
                   help="also mine a block every SECONDS (interval mining)")
    s.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="a browser origin served besides localhost's (repeatable; * for any)")
    s.add_argument("--threads", type=int, default=4,
                   help="worker threads for open-ended requests (simulations, traces, log "
                        "queries); quick ones run on the HTTP loop")
    s.set_defaults(func=cmd_node)

    s = sub.add_parser("deploy", parents=[db, tx], help="deploy a contract module")
    s.add_argument("file", help="the contract: a runtime module, or a creation module "
                                "whose main runs a constructor and finishes the runtime")
    kind = s.add_mutually_exclusive_group()
    kind.add_argument("--init", action="store_true",
                      help="FILE is creation code (sent as it is)")
    kind.add_argument("--runtime", action="store_true",
                      help="FILE is a runtime module (wrapped), even if it embeds a module")
    s.set_defaults(func=cmd_deploy)

    s = sub.add_parser("call", parents=[db, tx], help="call a contract without a transaction")
    s.add_argument("address", type=_address)
    s.add_argument("data", type=_hex_bytes, nargs="?", default=b"")
    s.set_defaults(func=cmd_call)

    s = sub.add_parser("send", parents=[db, tx], help="send a transaction and mine it")
    s.add_argument("address", type=_address)
    s.add_argument("data", type=_hex_bytes, nargs="?", default=b"")
    s.set_defaults(func=cmd_send)

    s = sub.add_parser("balance", parents=[db], help="an account's balance and nonce")
    s.add_argument("address", type=_address)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_balance)

    s = sub.add_parser("wrap-deploy", help="turn a contract module into creation code")
    s.add_argument("file")
    s.add_argument("-o", "--output", help="default: FILE with .deploy.wasm")
    s.set_defaults(func=cmd_wrap_deploy)
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ChainError, InvalidTransaction) as exc:
        exc = exc if isinstance(exc, ChainError) else ChainError(str(exc))
        if getattr(args, "json", False):
            print(json.dumps({"error": {"code": exc.code, "message": str(exc),
                                        "data": None if exc.data is None
                                        else "0x" + exc.data.hex()}}))
        else:
            extra = f" (data 0x{exc.data.hex()})" if exc.data else ""
            print(f"error: {exc}{extra}", file=sys.stderr)
        return 1
    except WasmError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
