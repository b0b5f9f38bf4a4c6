"""The node's HTTP layer as a trust boundary (issue 20, points 3 and 5; issue 16, point 6).

- Origins and hosts: the attack of issue 20 (a `text/plain` POST from
  `Origin: https://evil.example`, which needs no preflight, mined a 1,000 ETH transfer
  from an unlocked dev account) is refused and mines nothing; a DNS-rebound Host is
  refused; clients without an Origin (web3.py, and Node.js's fetch as viem and ethers
  use it) are served.
- Hostile bodies: a 100,000-deep `[` (which crashed `ewasm node` with SIGSEGV), deep
  objects, non-finite ids, huge numbers, long strings and huge batches each get a
  JSON-RPC error in valid JSON, and the node keeps serving; tested through a real server
  process as well as through the WSGI app.
- Slow clients: 110 half-sent connections from one client leave the node serving others
  (and that client's new connections); half-sent headers are dropped after the header
  timeout, even when they trickle in.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from chain import http
from chain.chain import Chain
from chain.rpc import MAX_BATCH, Rpc

from .node import Node

ETHER = 10**18
CALL = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'


def strict_json(data: bytes):
    """JSON as the standard defines it: NaN and Infinity are not numbers of it."""
    def refuse(name):
        raise AssertionError(f"{name} in a response: not JSON")
    return json.loads(data, parse_constant=refuse)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    c = Chain(tmp_path_factory.mktemp("http") / "c.db")
    yield c
    c.close()


@pytest.fixture(scope="module")
def app(chain):
    return http.make_app(Rpc(chain), bound_host="127.0.0.1")


def call(app, body: bytes = CALL, *, method: str = "POST", content_type="application/json",
         **headers: str) -> tuple[str, dict[str, str], bytes]:
    environ = {"REQUEST_METHOD": method, "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body))}
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    for name, value in headers.items():
        environ["HTTP_" + name.upper()] = value
    got: list = []
    out = b"".join(app(environ, lambda status, hdrs: got.append((status, dict(hdrs)))))
    return got[0][0], got[0][1], out


# --- origins ------------------------------------------------------------------------------
def test_requests_without_an_origin_are_served_without_cors_headers(app):
    status, headers, out = call(app, host="127.0.0.1:8545")
    assert status.startswith("200") and strict_json(out)["result"] == "0x539"
    assert "Access-Control-Allow-Origin" not in headers


@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://127.0.0.1:8080",
                                    "http://[::1]:5173", "https://localhost"])
def test_pages_on_localhost_are_served(app, origin):
    status, headers, out = call(app, origin=origin, host="localhost:8545")
    assert status.startswith("200") and strict_json(out)["result"] == "0x539"
    assert headers["Access-Control-Allow-Origin"] == origin
    assert headers["Vary"] == "Origin"


@pytest.mark.parametrize("origin", ["https://evil.example", "null",
                                    "http://localhost.evil.example", "http://127.0.0.1.nip.io",
                                    "file://", "http://localhost:notaport"])
def test_foreign_origins_are_refused_before_the_request_runs(app, origin):
    status, headers, out = call(app, origin=origin, host="127.0.0.1:8545")
    assert status.startswith("403")
    assert "not allowed" in strict_json(out)["error"]["message"]
    assert not any(h.startswith("Access-Control") for h in headers)


def test_the_cross_site_text_plain_transfer_of_issue_20_mines_nothing(chain, app):
    sender = chain.accounts[0].address
    to = bytes.fromhex("de" * 20)
    head = chain.head()
    transfer = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_sendTransaction",
                           "params": [{"from": "0x" + sender.hex(), "to": "0x" + to.hex(),
                                       "value": hex(1000 * ETHER)}]}).encode()
    for content_type in ("text/plain", "text/plain;charset=UTF-8", "application/json"):
        status, headers, _ = call(app, transfer, content_type=content_type,
                                  origin="https://evil.example", host="127.0.0.1:8545")
        assert status.startswith("403") and "Access-Control-Allow-Origin" not in headers
    # Without an Origin, a text/plain POST is still refused (a browser that sends none).
    status, _, out = call(app, transfer, content_type="text/plain", host="127.0.0.1:8545")
    assert status.startswith("415") and "application/json" in strict_json(out)["error"][
        "message"]
    status, _, _ = call(app, transfer, content_type=None, host="127.0.0.1:8545")
    assert status.startswith("415")
    assert chain.head() == head and chain.balance(to) == 0
    # The same request as a program sends it is served: the check is the only thing
    # that stood in the way.
    status, _, out = call(app, transfer, host="127.0.0.1:8545")
    assert status.startswith("200") and strict_json(out)["result"]
    assert chain.balance(to) == 1000 * ETHER


def test_preflights(app):
    status, headers, _ = call(app, b"", method="OPTIONS", origin="http://localhost:3000",
                              access_control_request_method="POST")
    assert status.startswith("204")
    assert headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in headers["Access-Control-Allow-Headers"]
    status, headers, _ = call(app, b"", method="OPTIONS", origin="https://evil.example")
    assert status.startswith("403") and "Access-Control-Allow-Origin" not in headers


def test_allow_origins(chain):
    app = http.make_app(Rpc(chain), allow_origins=("https://App.Example/",))
    status, headers, _ = call(app, origin="https://app.example")
    assert status.startswith("200")
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert call(app, origin="https://other.example")[0].startswith("403")
    assert call(app, origin="http://localhost:3000")[0].startswith("200")  # still served
    anyone = http.make_app(Rpc(chain), allow_origins=("*",))
    status, headers, _ = call(anyone, origin="https://evil.example")
    assert status.startswith("200") and headers["Access-Control-Allow-Origin"] == "*"
    # `*` opens origins, not media types.
    status, _, _ = call(anyone, content_type="text/plain", origin="https://evil.example")
    assert status.startswith("415")


# --- hosts --------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1:8545", "127.0.0.1", "localhost:8545",
                                  "LOCALHOST.", "[::1]:8545", "[::1]", "app.localhost:1",
                                  "127.0.0.2:8545"])
def test_loopback_and_bound_hosts_are_served(app, host):
    assert call(app, host=host)[0].startswith("200")


@pytest.mark.parametrize("host", ["evil.example:8545", "evil.example", "192.168.1.5:8545",
                                  "[::1", "localhost:port", "127.0.0.1.evil.example", ""])
def test_other_hosts_are_refused(app, host):
    status, _, out = call(app, host=host)
    assert status.startswith("403") and "Host" in strict_json(out)["error"]["message"]


def test_hosts_on_a_wildcard_address_and_allow_hosts(chain):
    wild = http.make_app(Rpc(chain), bound_host="0.0.0.0")
    assert call(wild, host="192.168.1.5:8545")[0].startswith("200")
    assert call(wild, host="[fe80::1]:8545")[0].startswith("200")
    assert call(wild, host="rebound.evil.example:8545")[0].startswith("403")
    named = http.make_app(Rpc(chain), bound_host="0.0.0.0", allow_hosts=("node.lan",))
    assert call(named, host="node.lan:8545")[0].startswith("200")
    assert call(named, host="other.lan:8545")[0].startswith("403")
    assert call(http.make_app(Rpc(chain), allow_hosts=("*",)),
                host="anything.example")[0].startswith("200")


# --- bodies -------------------------------------------------------------------------------
def rpc_error(app, body: bytes) -> dict:
    status, _, out = call(app, body)
    assert status.startswith("200")
    answer = strict_json(out)
    assert "error" in answer, answer
    return answer["error"]


def test_nesting_is_measured_before_parsing():
    limit = http.MAX_JSON_DEPTH
    assert not http.too_deep(b"[" * limit + b"]" * limit)
    assert http.too_deep(b"[" * (limit + 1) + b"]" * (limit + 1))
    assert http.too_deep(b'{"a":' * (limit + 1) + b"1" + b"}" * (limit + 1))
    assert http.too_deep(b"[" * 100_000)  # unbalanced: still counted, no recursion
    # Brackets inside strings, escaped quotes included, are not nesting.
    assert not http.too_deep(b'["' + b"[" * 10_000 + b'\\"' + b"{" * 10_000 + b'"]')
    # Many shallow values are not deep.
    assert not http.too_deep(b"[" + b"[],{}," * 50_000 + b"[]]")


def test_deeply_nested_bodies_get_a_parse_error(app):
    for body in (b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000,
                 b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                 b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":' + b"[" * 10_000
                 + b"]" * 10_000 + b"}"):
        err = rpc_error(app, body)
        assert err["code"] == -32700 and "nesting" in err["message"]


def test_non_finite_and_huge_numbers(app):
    for literal in (b"1e400", b"-1e400", b"NaN", b"Infinity", b"-Infinity",
                    b"1" + b"0" * 400 + b".0"):
        body = b'{"jsonrpc":"2.0","id":' + literal + b',"method":"eth_chainId"}'
        err = rpc_error(app, body)
        assert err["code"] == -32700, literal
    # Large but finite numbers are JSON and come back as they were sent.
    big = 10**200
    status, _, out = call(app, b'{"jsonrpc":"2.0","id":%d,"method":"eth_chainId"}' % big)
    assert strict_json(out)["id"] == big
    status, _, out = call(app, b'{"jsonrpc":"2.0","id":1e300,"method":"eth_chainId"}')
    assert strict_json(out)["id"] == 1e300


def test_long_strings_and_pathological_escapes(app):
    long_method = b'{"jsonrpc":"2.0","id":1,"method":"' + b"x" * 4_000_000 + b'"}'
    assert rpc_error(app, long_method)["code"] == -32601
    # An unterminated string of escaped quotes: a backtracking scan would be quadratic.
    assert rpc_error(app, b'["' + b'\\"' * 1_000_000)["code"] == -32700
    assert rpc_error(app, b'"\\' * 1_000_000)["code"] == -32700


def test_bodies_must_be_utf_8(app):
    text = '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}'
    for encoding in ("utf-16", "utf-32-le"):
        err = rpc_error(app, text.encode(encoding))
        assert err["code"] == -32700 and "UTF-8" in err["message"]
    assert rpc_error(app, b'["\xff\xfe"]')["code"] == -32700  # not UTF-8 at all
    status, _, out = call(app, "\ufeff".encode() + text.encode())  # a BOM is tolerated
    assert strict_json(out)["result"] == "0x539"


def test_huge_batches(app):
    one = {"jsonrpc": "2.0", "method": "eth_chainId"}
    batch = [dict(one, id=i) for i in range(MAX_BATCH)]
    status, _, out = call(app, json.dumps(batch).encode())
    answers = strict_json(out)
    assert [a["id"] for a in answers] == list(range(MAX_BATCH))
    err = rpc_error(app, json.dumps(batch + [dict(one, id=-1)]).encode())
    assert err["code"] == -32600 and "batch" in err["message"]


STACK_PROBE = """
import sys, threading
from chain import http
from chain.chain import Chain

server = http.create_server(Chain(sys.argv[1]), "127.0.0.1", 0, threads=1)
sys.setrecursionlimit(200_000)
done, out = threading.Event(), []

def deep(n):
    return list(map(deep, [n - 1])) if n else 0

class Probe:
    def service(self):
        try:
            deep(190_000)
            out.append("ok")
        except RecursionError:
            out.append("recursion")
        done.set()

    def cancel(self):
        pass

server.task_dispatcher.add_task(Probe())
done.wait(120)
print(out)
"""


LOOP_STACK_PROBE = """
import json, sys, threading, urllib.request
from chain import http
from chain.chain import Chain
from chain.rpc import Rpc

def deep(n):
    return list(map(deep, [n - 1])) if n else 0

def version(self):
    deep(190_000)
    return threading.current_thread().name

Rpc.m_web3_clientVersion = version
server = http.create_server(Chain(sys.argv[1]), "127.0.0.1", 0, threads=1)
sys.setrecursionlimit(200_000)
stop = threading.Event()
threading.Thread(target=http.serve, args=(server, stop), daemon=True).start()
body = b'{"jsonrpc":"2.0","id":1,"method":"web3_clientVersion","params":[]}'
req = urllib.request.Request(f"http://127.0.0.1:{server.effective_port}/", body,
                             {"Content-Type": "application/json"})
print(json.loads(urllib.request.urlopen(req, timeout=120).read())["result"])
stop.set()
"""


@pytest.mark.parametrize("probe", [STACK_PROBE, LOOP_STACK_PROBE], ids=["worker", "loop"])
def test_request_threads_have_the_stack_for_the_recursion_limit(tmp_path, probe):
    """Whatever recursion the libraries allow (py_ecc sets 100,000; ewasm.execute
    200,000), a thread that serves requests (a worker, or the loop under `serve`) has
    the stack for it: 190,000 levels through C, which overflow a default 8 MiB thread
    stack or the main thread's (a SIGSEGV of the probe process)."""
    import sys

    root = Path(http.__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "c.db")],
                         capture_output=True, text=True, timeout=300, cwd=root)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    # The quick request ran on the loop's own thread, which `serve` starts.
    assert out.stdout.strip() == ("['ok']" if probe is STACK_PROBE else "ewasm-http")


# --- through a real server process --------------------------------------------------------
@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = Node(tmp_path_factory.mktemp("node") / "chain.db")
    yield n
    assert n.stop() == 0


def post(url: str, body: bytes, headers: dict[str, str] | None = None,
         source: str | None = None) -> tuple[int, bytes]:
    """One HTTP/1.1 POST on a fresh socket (optionally from a given source address)."""
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request("POST", "/", body, {"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def block_number(url: str, source: str | None = None) -> int:
    status, out = post(url, b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}',
                       source=source)
    assert status == 200
    return int(strict_json(out)["result"], 16)


def test_the_node_survives_hostile_bodies(node):
    head = block_number(node.url)
    for body in (b"[" * 100_000, b'{"a":' * 100_000, b"[" * 2_000_000,
                 b'{"jsonrpc":"2.0","id":1e400,"method":"eth_chainId"}',
                 b'{"jsonrpc":"2.0","id":NaN,"method":"eth_chainId"}'):
        status, out = post(node.url, body)
        assert status == 200
        assert strict_json(out)["error"]["code"] == -32700
        assert node.proc.poll() is None
    assert block_number(node.url) == head


def test_the_node_refuses_foreign_origins_and_hosts_over_http(node):
    status, out = post(node.url, CALL, {"Origin": "https://evil.example"})
    assert status == 403
    status, out = post(node.url, CALL, {"Content-Type": "text/plain"})
    assert status == 415
    status, out = post(node.url, CALL, {"Host": "rebound.evil.example"})
    assert status == 403
    status, out = post(node.url, CALL, {"Origin": "http://localhost:3000"})
    assert status == 200 and strict_json(out)["result"] == "0x539"


def test_web3_is_served(node):
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60}))
    assert w3.eth.chain_id == 1337


NODE_FETCH = """
const url = process.argv[2];
const ask = (type) => fetch(url, {method: "POST", headers: {"Content-Type": type},
  body: JSON.stringify({jsonrpc: "2.0", id: 1, method: "eth_chainId", params: []})});
(async () => {
  const ok = await ask("application/json");
  const plain = await ask("text/plain");
  console.log(JSON.stringify({ok: ok.status, result: (await ok.json()).result,
                              plain: plain.status}));
})();
"""


def test_node_js_fetch_as_viem_and_ethers_use_it_is_served(node, tmp_path):
    """viem's HTTP transport is the platform's fetch; Node.js sends no Origin with it."""
    exe = shutil.which("node")
    if exe is None:
        pytest.skip("no Node.js (node) on PATH")
    script = tmp_path / "fetch.js"
    script.write_text(NODE_FETCH)
    out = subprocess.run([exe, str(script), node.url], capture_output=True, text=True,
                         timeout=120)
    if out.returncode and "fetch is not defined" in out.stderr:
        pytest.skip("this Node.js has no fetch (Node >= 18 has)")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"ok": 200, "result": "0x539", "plain": 415}


def half_sent(url: str, n: int, source: str | None = None) -> list[socket.socket]:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    socks = []
    for _ in range(n):
        s = socket.create_connection((u.hostname, u.port), timeout=30,
                                     source_address=(source, 0) if source else None)
        s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")  # and nothing more
        socks.append(s)
    return socks


def closed_by_server(socks: list[socket.socket], want: int, bound: float = 60.0) -> int:
    """How many of `socks` the server has closed, waiting (up to `bound` seconds, a
    liveness bound) until at least `want` are."""
    import select

    closed: set[int] = set()
    deadline = time.monotonic() + bound
    while len(closed) < want and time.monotonic() < deadline:
        readable, _, _ = select.select([s for i, s in enumerate(socks) if i not in closed],
                                       [], [], 0.5)
        for s in readable:
            try:
                data = s.recv(1024)
            except OSError:
                data = b""
            if not data:
                closed.add(socks.index(s))
    return len(closed)


def _loopback_alias_works() -> bool:
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("attacker", ["127.0.0.1", "127.0.0.2"])
def test_110_half_sent_connections_leave_the_node_serving(node, attacker):
    if attacker != "127.0.0.1" and not _loopback_alias_works():
        pytest.skip("cannot bind 127.0.0.2 here")
    socks = half_sent(node.url, 110, source=attacker)
    try:
        head = block_number(node.url, source="127.0.0.1")  # another client, or the same
        assert block_number(node.url, source=attacker) == head
        # The client holds at most its share: the rest of its connections were closed.
        assert closed_by_server(socks, 110 - http.CLIENT_CONNECTION_LIMIT) >= \
            110 - http.CLIENT_CONNECTION_LIMIT
    finally:
        for s in socks:
            s.close()
    assert block_number(node.url) == head


# --- timeouts (a server in this process, with short ones) ---------------------------------
@pytest.fixture
def quick_server(chain):
    server = http.create_server(chain, "127.0.0.1", 0, threads=2, header_timeout=1,
                                request_timeout=2, idle_timeout=3)
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    for channel in list(server._map.values()):
        channel.close()
    server.task_dispatcher.shutdown(timeout=5)
    t.join(10)


def test_half_sent_headers_are_dropped_after_the_header_timeout(quick_server):
    socks = half_sent(quick_server, 3)
    try:
        assert closed_by_server(socks, 3) == 3
    finally:
        for s in socks:
            s.close()
    assert block_number(quick_server) >= 0


def test_trickled_headers_are_dropped_although_never_idle(quick_server):
    """A byte every 0.2 s keeps a connection from ever being idle; the header timeout
    still ends it."""
    (s,) = half_sent(quick_server, 1)
    deadline = time.monotonic() + 60
    closed = False
    try:
        while time.monotonic() < deadline:
            try:
                s.sendall(b"x")
            except OSError:
                closed = True
                break
            if closed_by_server([s], 1, bound=0.2):
                closed = True
                break
        assert closed
    finally:
        s.close()


def test_a_slow_body_is_dropped_after_the_request_timeout(quick_server):
    from urllib.parse import urlsplit

    u = urlsplit(quick_server)
    s = socket.create_connection((u.hostname, u.port), timeout=30)
    try:
        s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{")
        assert closed_by_server([s], 1) == 1
    finally:
        s.close()


def test_idle_keep_alive_connections_are_closed(quick_server):
    from urllib.parse import urlsplit

    u = urlsplit(quick_server)
    s = socket.create_connection((u.hostname, u.port), timeout=30)
    try:
        s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(CALL) + CALL)
        answer = b""
        while b"0x539" not in answer:
            chunk = s.recv(4096)
            assert chunk, answer
            answer += chunk
        assert closed_by_server([s], 1) == 1  # then idle: closed after idle_timeout
    finally:
        s.close()


# --- which thread serves a request ---------------------------------------------------------
OPEN_ENDED = {"eth_call", "eth_estimateGas", "eth_getLogs", "eth_sendTransaction",
              "debug_traceTransaction", "debug_traceCall", "evm_mine", "hardhat_mine",
              "anvil_mine"}


def test_every_open_ended_method_is_sent_to_the_workers(chain):
    """A body that may ask for a simulation, a trace, a log query or mining many blocks
    goes to the worker pool, whatever the JSON spelling; the rest are served on the
    loop. The scan has no misses: a method spelled with escapes goes to the pool."""
    methods = Rpc(chain).methods
    assert OPEN_ENDED <= set(methods)
    for name in methods:
        for body in (json.dumps({"jsonrpc": "2.0", "id": 1, "method": name, "params": []}),
                     json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
                                 {"jsonrpc": "2.0", "id": 2, "method": name}])):
            assert http.may_be_slow(body.encode()) == (name in OPEN_ENDED), name
        escaped = "".join(f"\\u{ord(c):04x}" for c in name)
        assert http.may_be_slow(f'{{"method":"{escaped}"}}'.encode())


@pytest.fixture
def served(tmp_path):
    """A node served in this process by `serve`, its chain's simulations held at a gate."""
    c = Chain(tmp_path / "c.db")
    gate, entered = threading.Event(), threading.Event()
    real_call = c.call

    def held_call(*args, **kwargs):
        entered.set()
        assert gate.wait(60)
        return real_call(*args, **kwargs)

    c.call = held_call
    server = http.create_server(c, "127.0.0.1", 0, threads=2)
    stop = threading.Event()
    loop = threading.Thread(target=http.serve, args=(server, stop), daemon=True)
    loop.start()
    yield c, f"http://127.0.0.1:{server.effective_port}", gate, entered
    gate.set()
    stop.set()
    loop.join(30)
    assert not loop.is_alive()
    c.close()


def rpc_call(url: str, method: str, *params) -> dict:
    status, out = post(url, json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                                        "params": list(params)}).encode())
    assert status == 200, out
    return strict_json(out)


def test_quick_requests_and_mining_are_served_while_a_simulation_runs(served):
    """An eth_call in progress on a worker holds neither the loop nor mining."""
    chain, url, gate, entered = served
    sender = "0x" + chain.accounts[0].address.hex()
    answers: list = []
    simulation = threading.Thread(target=lambda: answers.append(
        rpc_call(url, "eth_call", {"from": sender, "to": "0x" + "11" * 20})))
    simulation.start()
    assert entered.wait(60)
    head = int(rpc_call(url, "eth_blockNumber")["result"], 16)
    tx = chain.sign({"from": chain.accounts[0].address, "to": b"\x22" * 20, "value": 5,
                     "gas": 21_000, "gasPrice": 10**10, "nonce": 0,
                     "chainId": chain.chain_id})
    rpc_call(url, "eth_sendRawTransaction", "0x" + tx.hex())
    assert int(rpc_call(url, "eth_blockNumber")["result"], 16) == head + 1
    assert int(rpc_call(url, "eth_getBalance", "0x" + "22" * 20, "latest")["result"],
               16) == 5
    assert simulation.is_alive() and not answers  # still held at the gate
    gate.set()
    simulation.join(60)
    assert answers and answers[0]["result"] == "0x"
