"""The JSON-RPC dispatcher and WSGI app without a socket: protocol errors, parameter
parsing as geth does it, batches and notifications, the body limit, block and log
queries."""

from __future__ import annotations

import io
import json

import pytest

from chain.chain import Chain
from chain.http import make_app
from chain.rpc import MAX_BODY, Rpc, parse_quantity
from chain.wrap import wrap_deploy

from .conftest import TRANSFER_TOPIC, transfer_data


@pytest.fixture(scope="module")
def rpc(tmp_path_factory):
    chain = Chain(tmp_path_factory.mktemp("rpc") / "c.db")
    yield Rpc(chain)
    chain.close()


def ask(rpc: Rpc, method: str, *params):
    out = json.loads(rpc.handle_body(json.dumps(
        {"jsonrpc": "2.0", "id": 7, "method": method, "params": list(params)}).encode()))
    assert out["id"] == 7 and out["jsonrpc"] == "2.0"
    return out


def error(rpc: Rpc, method: str, *params) -> dict:
    out = ask(rpc, method, *params)
    assert "error" in out, out
    return out["error"]


def test_protocol_errors(rpc):
    parse = json.loads(rpc.handle_body(b"{"))
    assert parse["error"]["code"] == -32700 and parse["id"] is None
    assert json.loads(rpc.handle_body(b"[]"))["error"]["code"] == -32600
    assert json.loads(rpc.handle_body(b"5"))["error"]["code"] == -32600
    assert json.loads(rpc.handle_body(b'{"jsonrpc":"1.0","id":1,"method":"x"}'))[
        "error"]["code"] == -32600
    assert json.loads(rpc.handle_body(
        b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":{}}'))[
        "error"]["code"] == -32602
    assert error(rpc, "eth_nothing")["code"] == -32601
    assert error(rpc, "eth_chainId", 1)["code"] == -32602  # too many arguments


def test_notifications_get_no_response(rpc):
    assert rpc.handle_body(b'{"jsonrpc":"2.0","method":"eth_chainId"}') is None
    batch = json.loads(rpc.handle_body(json.dumps([
        {"jsonrpc": "2.0", "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": "a", "method": "eth_chainId"}]).encode()))
    assert batch == [{"jsonrpc": "2.0", "id": "a", "result": "0x539"}]


@pytest.mark.parametrize("text, ok", [
    ("0x0", 0), ("0x1f", 31), ("0X10", 16),
    ("0x", None), ("0x01", None), ("12", None), ("0xg", None), ("0x" + "f" * 65, None),
])
def test_quantities_parse_as_geth_does(text, ok):
    if ok is None:
        with pytest.raises(Exception, match="invalid argument 3"):
            parse_quantity(text, 3)
    else:
        assert parse_quantity(text, 3) == ok


@pytest.mark.parametrize("params", [
    ["0x1234", "latest"],  # short address
    ["f39fd6e51aad88f6f4ce6ab8827279cfffb92266", "latest"],  # no 0x
    ["0xf39fd6e51aad88f6f4ce6ab8827279cfffb9226", "latest"],  # odd length
    [None, "latest"],
    ["0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", "newest"],
    ["0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", 5],
])
def test_bad_parameters_are_invalid_params(rpc, params):
    assert error(rpc, "eth_getBalance", *params)["code"] == -32602


def test_state_of_an_old_block_is_read_from_its_root(rpc):
    alice = rpc.chain.accounts[0].address
    before = rpc.chain.head()
    rpc.chain.send_transaction(alice, to=b"\x5e" * 20, value=1)
    address = "0x" + alice.hex()
    latest = int(ask(rpc, "eth_getBalance", address, "latest")["result"], 16)
    old = int(ask(rpc, "eth_getBalance", address, hex(before))["result"], 16)
    assert old > latest  # the transfer and its fee came after block `before`
    assert ask(rpc, "eth_getBalance", "0x" + "5e" * 20, hex(before))["result"] == "0x0"
    assert ask(rpc, "eth_getBalance", "0x" + "5e" * 20, "latest")["result"] == "0x1"
    assert int(ask(rpc, "eth_getTransactionCount", address, hex(before))["result"], 16) \
        == int(ask(rpc, "eth_getTransactionCount", address, "latest")["result"], 16) - 1
    assert error(rpc, "eth_getBalance", address, "0xffff")["message"] == "header not found"
    assert ask(rpc, "eth_getBlockByNumber", "0xffff", False)["result"] is None


def test_blocks_receipts_and_logs(rpc, token_wasm):
    chain = rpc.chain
    alice, bob = chain.accounts[0].address, chain.accounts[1].address
    deploy = chain.send_transaction(alice, data=wrap_deploy(token_wasm))
    token = chain.transaction(deploy).receipt.contract_address
    tx = chain.send_transaction(alice, to=token, data=transfer_data(bob, 9))
    receipt = ask(rpc, "eth_getTransactionReceipt", "0x" + tx.hex())["result"]
    assert receipt["status"] == "0x1" and len(receipt["logs"]) == 1
    block = ask(rpc, "eth_getBlockByHash", receipt["blockHash"], True)["result"]
    assert block["number"] == receipt["blockNumber"]
    assert block["transactions"][0]["hash"] == "0x" + tx.hex()
    assert block["gasUsed"] == receipt["gasUsed"]
    assert int(block["logsBloom"], 16) != 0
    logs = ask(rpc, "eth_getLogs", {"fromBlock": "earliest", "toBlock": "latest",
                                    "topics": [["0x" + TRANSFER_TOPIC.hex(), "0x" + "00" * 32]]
                                    })["result"]
    assert [x["transactionHash"] for x in logs] == ["0x" + tx.hex()]
    assert ask(rpc, "eth_getLogs", {"blockHash": receipt["blockHash"],
                                    "address": "0x" + bob.hex()})["result"] == []
    assert error(rpc, "eth_getLogs", {"fromBlock": "0x2", "toBlock": "0x1"})["code"] == -32602
    assert ask(rpc, "eth_getTransactionReceipt", "0x" + "00" * 32)["result"] is None
    code = ask(rpc, "eth_getCode", "0x" + token.hex(), "latest")["result"]
    assert code.startswith("0x0061736d")
    slot = ask(rpc, "eth_getStorageAt", "0x" + token.hex(), "0x" + "00" * 12 + bob.hex(),
               "latest")["result"]
    assert int(slot, 16) == 9


def test_send_transaction_from_an_unknown_account_is_refused(rpc):
    err = error(rpc, "eth_sendTransaction", {"from": "0x" + "12" * 20, "to": "0x" + "00" * 20,
                                             "gas": "0x5208"})
    assert err["code"] == -32000 and "unknown account" in err["message"]


def wsgi(app, body: bytes, method: str = "POST", length: int | None = None):
    status: list[str] = []
    environ = {"REQUEST_METHOD": method, "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body) if length is None else length),
               "CONTENT_TYPE": "application/json", "HTTP_HOST": "127.0.0.1:8545",
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8545"}
    out = b"".join(app(environ, lambda s, h: status.append(s)))
    return status[0], out


def test_the_http_app_limits_bodies_and_methods(rpc):
    app = make_app(rpc)
    status, out = wsgi(app, b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}')
    assert status.startswith("200") and json.loads(out)["result"] == "0x539"
    status, out = wsgi(app, b"x", length=MAX_BODY + 1)
    assert status.startswith("413") and json.loads(out)["error"]["code"] == -32600
    status, out = wsgi(app, b"", method="GET")
    assert status.startswith("405") and "error" in json.loads(out)
