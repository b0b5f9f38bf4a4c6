"""JSON-RPC 2.0 over HTTP for the local chain: the `eth_` methods web3.py, ethers and
viem use to deploy, transact, call and read, with geth's error codes and messages; the
testing methods of Hardhat's and Anvil's nodes (`evm_*`, `hardhat_*`, `anvil_*`) that test
suites call; and `debug_traceTransaction` / `debug_traceCall` with the host-side tracers of
chain/trace.py.

The dispatcher is a pure function of (chain, request body) -> response body; the HTTP
side (http.py) is a WSGI app served by waitress.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import rlp

from state.errors import InvalidTransaction

from .blocks import next_base_fee
from .chain import PRIORITY_FEE, Chain, ChainError, MinedTransaction
from .trace import TRACERS, Tracer
from .transactions import LEGACY, SignedTransaction

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
CHAIN_ERROR = -32000  # geth's for a request the chain refuses
MAX_BODY = 5 * 1024 * 1024  # geth's limit on an HTTP request body
MAX_BATCH = 1000
MAX_LOG_RANGE = 10_000


@dataclass
class RpcError(Exception):
    code: int
    message: str
    data: Any = None

    def to_json(self) -> dict:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


# --- parameters ---------------------------------------------------------------------------
def _params_error(index: int, message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"invalid argument {index}: {message}")


def parse_quantity(value: Any, index: int = 0) -> int:
    """A hex quantity as geth reads it: 0x-prefixed, no leading zeros, at most 256 bits."""
    if not isinstance(value, str):
        raise _params_error(index, f"json: cannot unmarshal {type(value).__name__} into a "
                                   "hex quantity")
    if not value.startswith(("0x", "0X")):
        raise _params_error(index, "hex string without 0x prefix")
    digits = value[2:]
    if not digits:
        raise _params_error(index, "hex string \"0x\"")
    if len(digits) > 1 and digits[0] == "0":
        raise _params_error(index, "hex number with leading zero digits")
    if len(digits) > 64:
        raise _params_error(index, "hex number > 256 bits")
    try:
        return int(digits, 16)
    except ValueError:
        raise _params_error(index, "invalid hex string") from None


def parse_data(value: Any, index: int = 0, *, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise _params_error(index, f"json: cannot unmarshal {type(value).__name__} into "
                                   "hex bytes")
    if not value.startswith(("0x", "0X")):
        raise _params_error(index, "hex string without 0x prefix")
    if len(value) % 2:
        raise _params_error(index, "hex string of odd length")
    try:
        out = bytes.fromhex(value[2:])
    except ValueError:
        raise _params_error(index, "invalid hex string") from None
    if size is not None and len(out) != size:
        raise _params_error(index, f"hex string has length {len(out) * 2}, want {size * 2}")
    return out


def parse_address(value: Any, index: int = 0) -> bytes:
    return parse_data(value, index, size=20)


def parse_access_list(value: Any, index: int = 0) -> tuple[tuple[bytes, tuple[bytes, ...]], ...]:
    """An EIP-2930 access list, [{address, storageKeys}], as (address, keys)."""
    if not isinstance(value, list):
        raise _params_error(index, "accessList: a list of {address, storageKeys} expected")
    out = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("storageKeys", []), list):
            raise _params_error(index, "accessList: each entry is {address, storageKeys}")
        out.append((parse_address(entry.get("address"), index),
                    tuple(parse_hash(k, index) for k in entry.get("storageKeys", []))))
    return tuple(out)


def parse_hash(value: Any, index: int = 0) -> bytes:
    return parse_data(value, index, size=32)


def parse_storage_key(value: Any, index: int) -> bytes:
    """geth accepts a quantity or up to 32 bytes of hex for a storage position."""
    if isinstance(value, str) and value.startswith(("0x", "0X")) and len(value) <= 66:
        try:
            return int(value[2:] or "0", 16).to_bytes(32, "big")
        except ValueError:
            pass
    raise _params_error(index, "invalid storage key (hex, at most 32 bytes)")


def parse_number(value: Any, index: int = 0) -> int:
    """A non-negative number as the testing methods take it: a JSON integer or a hex
    quantity (Hardhat's and Anvil's clients send either)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise _params_error(index, f"a negative number {value}")
        return value
    return parse_quantity(value, index)


def parse_bool(value: Any, index: int = 0) -> bool:
    if not isinstance(value, bool):
        raise _params_error(index, "json: cannot unmarshal into a bool")
    return value


def _hex(n: int) -> str:
    return hex(n)


def _data(b: bytes) -> str:
    return "0x" + b.hex()


def _address(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


# --- the dispatcher -----------------------------------------------------------------------
class Rpc:
    """Maps a JSON-RPC request body to a response body over one Chain."""

    def __init__(self, chain: Chain, *, client_version: str | None = None):
        self.chain = chain
        self.client_version = client_version or (
            f"ewasm/v0.1.0/{sys.platform}/python{sys.version_info[0]}.{sys.version_info[1]}")
        self.methods: dict[str, Callable[..., Any]] = {
            name[len("m_"):]: getattr(self, name) for name in dir(self)
            if name.startswith("m_")}
        # (required, most) positional parameters of each method, read once.
        self._arity = {name: _arity(fn) for name, fn in self.methods.items()}

    # --- protocol -----------------------------------------------------------------------
    def handle_body(self, body: bytes) -> bytes | None:
        """The response body, or None when every request was a notification."""
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return _dump(_error(None, RpcError(PARSE_ERROR, f"parse error: {exc}")))
        return self.handle_request(request)

    def handle_request(self, request: Any) -> bytes | None:
        """handle_body for a body already parsed."""
        if isinstance(request, list):
            if not request:
                return _dump(_error(None, RpcError(INVALID_REQUEST, "empty batch")))
            if len(request) > MAX_BATCH:
                return _dump(_error(None, RpcError(
                    INVALID_REQUEST, f"batch too large ({len(request)} > {MAX_BATCH})")))
            responses = [r for r in (self.handle_one(item) for item in request)
                         if r is not None]
            return _dump(responses) if responses else None
        response = self.handle_one(request)
        return None if response is None else _dump(response)

    def handle_one(self, request: Any) -> dict | None:
        if not isinstance(request, dict):
            return _error(None, RpcError(INVALID_REQUEST, "invalid request: not an object"))
        rid = request.get("id")
        notification = "id" not in request
        if not isinstance(rid, str | int | float | type(None)) or isinstance(rid, bool):
            return _error(None, RpcError(INVALID_REQUEST, "invalid request: bad id"))
        method = request.get("method")
        if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return _error(rid, RpcError(INVALID_REQUEST,
                                        "invalid request: jsonrpc 2.0 and a method needed"))
        params = request.get("params", [])
        if params is None:
            params = []
        if not isinstance(params, list):
            return _error(rid, RpcError(INVALID_PARAMS, "non-array args"))
        fn = self.methods.get(method)
        try:
            if fn is None:
                raise RpcError(METHOD_NOT_FOUND,
                               f"the method {method} does not exist/is not available")
            result = _call(fn, params, self._arity[method])
        except RpcError as exc:
            return None if notification else _error(rid, exc)
        except ChainError as exc:
            data = None if exc.data is None else _data(exc.data)
            return None if notification else _error(rid, RpcError(exc.code, str(exc), data))
        except InvalidTransaction as exc:  # geth's code and message for a refused tx
            return None if notification else _error(rid, RpcError(CHAIN_ERROR, str(exc)))
        except Exception as exc:  # a bug: report it, keep serving
            return None if notification else _error(
                rid, RpcError(INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}"))
        return None if notification else {"jsonrpc": "2.0", "id": rid, "result": result}

    # --- helpers ------------------------------------------------------------------------
    def _block_number(self, ref: Any, index: int) -> int:
        head = self.chain.head()
        if ref in ("latest", "pending", "safe", "finalized"):
            return head
        if ref == "earliest":
            return 0
        if isinstance(ref, dict):  # EIP-1898
            if "blockHash" in ref:
                found = self.chain.block(parse_hash(ref["blockHash"], index))
                if found is None:
                    raise RpcError(-32000, "header for hash not found")
                return found[0].number
            if "blockNumber" in ref:
                return self._block_number(ref["blockNumber"], index)
            raise _params_error(index, "block reference needs blockHash or blockNumber")
        number = parse_quantity(ref, index)
        if number > head:
            raise RpcError(-32000, "header not found")
        return number

    def _state_at(self, ref: Any, index: int) -> int | None:
        """The block whose state a query reads: None for the latest (the head, with the
        test methods' edits); an older number is read from its state root, or answered
        with "historical state not available" where the store cannot."""
        number = self._block_number(ref, index)
        return None if number == self.chain.head() else number

    def _call_args(self, obj: Any, index: int = 0) -> dict:
        if not isinstance(obj, dict):
            raise _params_error(index, "transaction call object expected")
        out: dict[str, Any] = {}
        if obj.get("from") is not None:
            out["sender"] = parse_address(obj["from"], index)
        if obj.get("to") is not None:
            out["to"] = parse_address(obj["to"], index)
        data = obj.get("input", obj.get("data"))
        if data is not None:
            out["data"] = parse_data(data, index)
        if obj.get("value") is not None:
            out["value"] = parse_quantity(obj["value"], index)
        if obj.get("gas") is not None:
            out["gas"] = parse_quantity(obj["gas"], index)
        if obj.get("accessList") is not None:
            out["access_list"] = parse_access_list(obj["accessList"], index)
        return out

    def _tx_json(self, mined: MinedTransaction) -> dict:
        tx, stored = mined.tx, mined.stored
        out = {
            "hash": _data(tx.hash), "nonce": _hex(tx.nonce),
            "blockHash": None if stored is None else _data(stored.block_hash),
            "blockNumber": None if stored is None else _hex(stored.block_number),
            "transactionIndex": None if stored is None else _hex(stored.index),
            "from": _address(tx.sender),
            "to": _address(tx.to), "value": _hex(tx.value), "gas": _hex(tx.gas_limit),
            "gasPrice": _hex(tx.max_fee if mined.receipt is None
                             else mined.receipt.effective_gas_price),
            "input": _data(tx.data),
            "v": _hex(tx.v), "r": _hex(tx.r), "s": _hex(tx.s), "type": _hex(tx.type),
        }
        if tx.chain_id is not None:
            out["chainId"] = _hex(tx.chain_id)
        if tx.type != LEGACY:
            out["accessList"] = [{"address": _address(a), "storageKeys": [_data(k) for k in ks]}
                                 for a, ks in tx.access_list]
            out["yParity"] = _hex(tx.v)
            out["maxFeePerGas"] = _hex(tx.max_fee)
            out["maxPriorityFeePerGas"] = _hex(tx.max_priority_fee)
        return out

    def _log_json(self, log) -> dict:
        return {"address": _address(log.address), "topics": [_data(t) for t in log.topics],
                "data": _data(log.data), "blockNumber": _hex(log.block_number),
                "blockHash": _data(log.block_hash), "transactionHash": _data(log.tx_hash),
                "transactionIndex": _hex(log.tx_index), "logIndex": _hex(log.log_index),
                "removed": False}

    def _block_json(self, found, full: bool) -> dict | None:
        if found is None:
            return None
        header, data = found
        txs: list[Any] = []
        for stored in data.transactions:
            if full:
                mined = self.chain.transaction(stored.hash)
                assert mined is not None
                txs.append(self._tx_json(mined))
            else:
                txs.append(_data(stored.hash))
        body = [rlp.decode(data.header),
                [rlp.decode(t.raw) if t.raw[0] >= 0xC0 else t.raw for t in data.transactions],
                []]
        return {
            "number": _hex(header.number), "hash": _data(data.hash),
            "parentHash": _data(header.parent_hash), "nonce": _data(header.nonce),
            "sha3Uncles": _data(header.ommers_hash), "logsBloom": _data(header.logs_bloom),
            "transactionsRoot": _data(header.transactions_root),
            "stateRoot": _data(header.state_root), "receiptsRoot": _data(header.receipts_root),
            "miner": _address(header.coinbase), "difficulty": _hex(header.difficulty),
            "totalDifficulty": "0x0", "extraData": _data(header.extra_data),
            "size": _hex(len(rlp.encode(body))), "gasLimit": _hex(header.gas_limit),
            "gasUsed": _hex(header.gas_used), "timestamp": _hex(header.timestamp),
            "transactions": txs, "uncles": [], "baseFeePerGas": _hex(header.base_fee),
            "mixHash": _data(header.mix_hash),
        }

    def _block_ref(self, ref: Any, index: int) -> int | None:
        """A block tag or number for the block getters: None when beyond the head."""
        try:
            return self._block_number(ref, index)
        except RpcError as exc:
            if exc.message == "header not found":
                return None
            raise

    # --- methods ------------------------------------------------------------------------
    def m_web3_clientVersion(self) -> str:
        return self.client_version

    def m_net_version(self) -> str:
        return str(self.chain.chain_id)

    def m_net_listening(self) -> bool:
        return True

    def m_eth_syncing(self) -> bool:
        return False

    def m_eth_chainId(self) -> str:
        return _hex(self.chain.chain_id)

    def m_eth_accounts(self) -> list[str]:
        return [_address(a.address) for a in self.chain.accounts]

    def m_eth_blockNumber(self) -> str:
        return _hex(self.chain.head())

    def m_eth_getBalance(self, address: Any, block: Any = "latest") -> str:
        addr = parse_address(address, 0)
        return _hex(self.chain.balance(addr, self._state_at(block, 1)))

    def m_eth_getTransactionCount(self, address: Any, block: Any = "latest") -> str:
        addr = parse_address(address, 0)
        if block == "pending":
            return _hex(self.chain.pending_nonce(addr))
        return _hex(self.chain.nonce(addr, self._state_at(block, 1)))

    def m_eth_getCode(self, address: Any, block: Any = "latest") -> str:
        addr = parse_address(address, 0)
        return _data(self.chain.code(addr, self._state_at(block, 1)))

    def m_eth_getStorageAt(self, address: Any, key: Any, block: Any = "latest") -> str:
        addr = parse_address(address, 0)
        slot = parse_storage_key(key, 1)
        return _data(self.chain.storage(addr, slot, self._state_at(block, 2)))

    def m_eth_sendRawTransaction(self, raw: Any) -> str:
        return _data(self.chain.send_raw_transaction(parse_data(raw, 0)))

    def m_eth_sendTransaction(self, obj: Any) -> str:
        if not isinstance(obj, dict) or obj.get("from") is None:
            raise _params_error(0, "transaction object with a from address expected")
        args = self._call_args(obj)

        def opt(name: str) -> int | None:
            return None if obj.get(name) is None else parse_quantity(obj[name], 0)

        return _data(self.chain.send_transaction(
            args["sender"], to=args.get("to"), data=args.get("data", b""),
            value=args.get("value", 0), gas=args.get("gas"), nonce=opt("nonce"),
            gas_price=opt("gasPrice"), max_fee=opt("maxFeePerGas"),
            max_priority_fee=opt("maxPriorityFeePerGas"),
            access_list=args.get("access_list", ())))

    def m_eth_call(self, obj: Any, block: Any = "latest") -> str:
        args = self._call_args(obj, 0)
        return _data(self.chain.call(**args, block=self._state_at(block, 1)))

    def m_eth_estimateGas(self, obj: Any, block: Any = "latest") -> str:
        args = self._call_args(obj, 0)
        return _hex(self.chain.estimate_gas(**args, block=self._state_at(block, 1)))

    def m_eth_gasPrice(self) -> str:
        return _hex(self.chain.next_base_fee() + PRIORITY_FEE)

    def m_eth_maxPriorityFeePerGas(self) -> str:
        return _hex(PRIORITY_FEE)

    def m_eth_feeHistory(self, count: Any, newest: Any, percentiles: Any = None) -> dict:
        n = count if isinstance(count, int) and not isinstance(count, bool) \
            else parse_quantity(count, 0)
        if not 1 <= n <= 1024:
            raise _params_error(0, "block count must be between 1 and 1024")
        last = self._block_number(newest, 1)
        if percentiles is not None and (
                not isinstance(percentiles, list)
                or any(not isinstance(p, int | float) or isinstance(p, bool) or not 0 <= p <= 100
                       for p in percentiles)
                or percentiles != sorted(percentiles)):
            raise _params_error(2, "reward percentiles must be increasing numbers in [0, 100]")
        first = max(0, last - n + 1)
        base_fees, ratios, rewards = [], [], []
        header = None
        for number in range(first, last + 1):
            found = self.chain.block(number)
            assert found is not None
            header, data = found
            base_fees.append(_hex(header.base_fee))
            ratios.append(header.gas_used / header.gas_limit)
            if percentiles is not None:
                tip = 0
                if data.transactions:
                    mined = self.chain.transaction(data.transactions[0].hash)
                    assert mined is not None
                    tip = mined.receipt.effective_gas_price - header.base_fee
                rewards.append([_hex(tip) for _ in percentiles])
        assert header is not None
        base_fees.append(_hex(next_base_fee(header.gas_limit, header.gas_used, header.base_fee)))
        out: dict[str, Any] = {"oldestBlock": _hex(first), "baseFeePerGas": base_fees,
                               "gasUsedRatio": ratios}
        if percentiles is not None:
            out["reward"] = rewards
        return out

    def m_eth_getTransactionByHash(self, tx_hash: Any) -> dict | None:
        h = parse_hash(tx_hash, 0)
        mined = self.chain.transaction(h)
        if mined is not None:
            return self._tx_json(mined)
        pending = self.chain.pending_transaction(h)
        return None if pending is None else self._pending_json(pending)

    def _pending_json(self, tx: SignedTransaction) -> dict:
        """A pooled transaction: no block yet, as geth shows one (its price the cap)."""
        out = self._tx_json(MinedTransaction(tx, None, None, ()))  # type: ignore[arg-type]
        out.update(blockHash=None, blockNumber=None, transactionIndex=None,
                   gasPrice=_hex(tx.max_fee))
        return out

    def m_eth_getTransactionReceipt(self, tx_hash: Any) -> dict | None:
        mined = self.chain.transaction(parse_hash(tx_hash, 0))
        if mined is None:
            return None
        r, stored = mined.receipt, mined.stored
        return {
            "transactionHash": _data(stored.hash), "transactionIndex": _hex(stored.index),
            "blockHash": _data(stored.block_hash), "blockNumber": _hex(stored.block_number),
            "from": _address(r.sender), "to": _address(r.to),
            "cumulativeGasUsed": _hex(r.cumulative_gas_used), "gasUsed": _hex(r.gas_used),
            "effectiveGasPrice": _hex(r.effective_gas_price),
            "contractAddress": _address(r.contract_address),
            "logs": [self._log_json(x) for x in mined.logs],
            "logsBloom": _data(r.logs_bloom), "status": _hex(r.status), "type": _hex(r.type),
        }

    def m_eth_getBlockByNumber(self, ref: Any, full: Any = False) -> dict | None:
        if not isinstance(full, bool):
            raise _params_error(1, "json: cannot unmarshal into a bool")
        number = self._block_ref(ref, 0)
        return None if number is None else self._block_json(self.chain.block(number), full)

    def m_eth_getBlockByHash(self, block_hash: Any, full: Any = False) -> dict | None:
        if not isinstance(full, bool):
            raise _params_error(1, "json: cannot unmarshal into a bool")
        return self._block_json(self.chain.block(parse_hash(block_hash, 0)), full)

    def m_eth_getLogs(self, flt: Any) -> list[dict]:
        if not isinstance(flt, dict):
            raise _params_error(0, "filter object expected")
        if flt.get("blockHash") is not None:
            if flt.get("fromBlock") is not None or flt.get("toBlock") is not None:
                raise _params_error(0, "cannot specify both BlockHash and FromBlock/ToBlock")
            found = self.chain.block(parse_hash(flt["blockHash"], 0))
            if found is None:
                raise RpcError(-32000, "unknown block")
            lo = hi = found[0].number
        else:
            lo = self._block_number(flt.get("fromBlock") or "latest", 0)
            hi = self._block_number(flt.get("toBlock") or "latest", 0)
            if lo > hi:
                raise _params_error(0, "invalid block range params")
            if hi - lo >= MAX_LOG_RANGE:
                raise RpcError(-32005, f"block range too large (at most {MAX_LOG_RANGE})")
        address = flt.get("address")
        addresses = None
        if isinstance(address, str):
            addresses = [parse_address(address, 0)]
        elif isinstance(address, list):
            addresses = [parse_address(a, 0) for a in address]
        elif address is not None:
            raise _params_error(0, "address must be a string or a list")
        topics_in = flt.get("topics") or []
        if not isinstance(topics_in, list) or len(topics_in) > 4:
            raise _params_error(0, "topics must be a list of at most 4 positions")
        topics: list[None | bytes | list[bytes]] = []
        for t in topics_in:
            if t is None:
                topics.append(None)
            elif isinstance(t, list):
                topics.append([parse_hash(x, 0) for x in t] or None)
            else:
                topics.append(parse_hash(t, 0))
        return [self._log_json(x) for x in self.chain.logs(lo, hi, addresses, topics)]


    # --- testing methods (Hardhat's and Anvil's) ------------------------------------------
    def m_evm_snapshot(self) -> str:
        return _hex(self.chain.snapshot())

    def m_evm_revert(self, snapshot_id: Any) -> bool:
        return self.chain.revert(parse_number(snapshot_id, 0))

    def m_evm_mine(self, arg: Any = None) -> str:
        """evm_mine([timestamp]) as Hardhat, or evm_mine({timestamp, blocks}) as ganache."""
        timestamp, blocks = None, 1
        if isinstance(arg, dict):
            if arg.get("timestamp") is not None:
                timestamp = parse_number(arg["timestamp"], 0)
            if arg.get("blocks") is not None:
                blocks = parse_number(arg["blocks"], 0)
        elif arg is not None:
            timestamp = parse_number(arg, 0)
        self.chain.mine(blocks, timestamp=timestamp)
        return "0x0"

    def m_hardhat_mine(self, blocks: Any = None, interval: Any = None) -> None:
        count = 1 if blocks is None else parse_number(blocks, 0)
        step = None if interval is None else parse_number(interval, 1)
        if count:
            self.chain.mine(count, interval=step or None)
        return None

    m_anvil_mine = m_hardhat_mine

    def m_evm_increaseTime(self, seconds: Any) -> int:
        return self.chain.increase_time(parse_number(seconds, 0))

    def m_evm_setNextBlockTimestamp(self, timestamp: Any) -> None:
        self.chain.set_next_block_timestamp(parse_number(timestamp, 0))
        return None

    m_anvil_setNextBlockTimestamp = m_evm_setNextBlockTimestamp

    def m_evm_setAutomine(self, on: Any) -> bool:
        self.chain.set_automine(parse_bool(on, 0))
        return True

    def m_anvil_setAutomine(self, on: Any) -> None:
        self.chain.set_automine(parse_bool(on, 0))
        return None

    def m_hardhat_getAutomine(self) -> bool:
        return self.chain.automine

    m_anvil_getAutomine = m_hardhat_getAutomine

    def m_evm_setIntervalMining(self, milliseconds: Any) -> bool:
        """Hardhat's: a block every `milliseconds` (0: off)."""
        ms = parse_number(milliseconds, 0)
        self.chain.set_block_time(ms / 1000 if ms else None)
        return True

    def m_anvil_setIntervalMining(self, seconds: Any) -> None:
        s = parse_number(seconds, 0)
        self.chain.set_block_time(s or None)
        return None

    def m_hardhat_setBalance(self, address: Any, wei: Any) -> bool:
        self.chain.set_balance(parse_address(address, 0), parse_number(wei, 1))
        return True

    def m_hardhat_setNonce(self, address: Any, nonce: Any) -> bool:
        self.chain.set_nonce(parse_address(address, 0), parse_number(nonce, 1))
        return True

    def m_hardhat_setCode(self, address: Any, code: Any) -> bool:
        self.chain.set_code(parse_address(address, 0), parse_data(code, 1))
        return True

    def m_hardhat_setStorageAt(self, address: Any, key: Any, value: Any) -> bool:
        slot = parse_number(key, 1)
        if slot >= 1 << 256:
            raise _params_error(1, "storage slot above 2**256")
        self.chain.set_storage(parse_address(address, 0), slot.to_bytes(32, "big"),
                               parse_data(value, 2, size=32))
        return True

    def m_hardhat_impersonateAccount(self, address: Any) -> bool:
        self.chain.impersonate(parse_address(address, 0), True)
        return True

    def m_hardhat_stopImpersonatingAccount(self, address: Any) -> bool:
        self.chain.impersonate(parse_address(address, 0), False)
        return True

    m_anvil_setBalance = m_hardhat_setBalance
    m_anvil_setNonce = m_hardhat_setNonce
    m_anvil_setCode = m_hardhat_setCode
    m_anvil_setStorageAt = m_hardhat_setStorageAt
    m_anvil_impersonateAccount = m_hardhat_impersonateAccount
    m_anvil_stopImpersonatingAccount = m_hardhat_stopImpersonatingAccount

    # --- tracing --------------------------------------------------------------------------
    def _tracer_name(self, options: Any, index: int) -> str:
        if options is None:
            return "eeiTracer"
        if not isinstance(options, dict):
            raise _params_error(index, "tracer options object expected")
        name = options.get("tracer", "eeiTracer")
        if name not in TRACERS:
            raise _params_error(index, f"unknown tracer {name!r}; this node has "
                                       f"{', '.join(TRACERS)}")
        return name

    @staticmethod
    def _trace_out(tracer: Tracer, name: str, extra: dict) -> dict:
        out = tracer.eei_trace() if name == "eeiTracer" else tracer.profile()
        return {**extra, **out}

    def m_debug_traceTransaction(self, tx_hash: Any, options: Any = None) -> dict:
        name = self._tracer_name(options, 1)
        tracer = Tracer()
        mined = self.chain.replay(parse_hash(tx_hash, 0), tracer)
        r = mined.receipt
        return self._trace_out(tracer, name, {"gas": r.gas_used, "failed": not r.status})

    def m_debug_traceCall(self, obj: Any, block: Any = "latest", options: Any = None) -> dict:
        args = self._call_args(obj, 0)
        name = self._tracer_name(options, 2)
        tracer = Tracer()
        at = self._state_at(block, 1)
        failed, output = False, b""
        try:
            output = self.chain.call(**args, block=at, vm=tracer)
        except ChainError as exc:  # a failing call is traced too
            failed, output = True, exc.data or b""
        return self._trace_out(tracer, name, {"failed": failed, "returnValue": _data(output)})


def _arity(fn: Callable[..., Any]) -> tuple[int, int]:
    parameters = inspect.signature(fn).parameters.values()
    return (sum(1 for p in parameters if p.default is inspect.Parameter.empty),
            len(parameters))


def _call(fn: Callable[..., Any], params: list, arity: tuple[int, int]) -> Any:
    required, most = arity
    if len(params) < required:
        raise RpcError(INVALID_PARAMS, f"missing value for required argument {len(params)}")
    if len(params) > most:
        raise RpcError(INVALID_PARAMS, f"too many arguments, want at most {most}")
    return fn(*params)


def _error(rid: Any, exc: RpcError) -> dict:
    return {"jsonrpc": "2.0", "id": rid, "error": exc.to_json()}


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
