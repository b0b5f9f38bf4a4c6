"""The node's HTTP side: a WSGI app that hands JSON-RPC bodies to `Rpc`, served by waitress.

Everything about HTTP (methods, lengths, headers, origins, connections) is decided here;
the dispatcher in rpc.py sees only bodies that passed. This is a trust boundary (README,
"Security"): requests, the web pages of a browser on the same machine and slow or
hostile clients are all untrusted.

- **Origins.** Any web page can make a browser send requests to localhost. A request
  with an `Origin` is served only for pages on localhost, 127.0.0.1 or [::1], or one
  of `allow_origins` (`*`: any, as Hardhat and Anvil do by default); any other origin
  gets 403 before the request runs, and no CORS headers. Clients outside a browser
  (web3.py, ethers and viem under Node.js, curl) send no `Origin` and are unaffected.
- **Content-Type.** A POST must be `application/json` (415 otherwise, as geth): that is
  not a "simple" type, so a browser must ask first (a preflight), and a foreign page's
  `text/plain` POST, which needs none, never reaches the dispatcher.
- **Host.** The `Host` header must be the address the node is bound to, a loopback name
  or address, or one of `allow_hosts` (geth's `--http.vhosts`): a DNS-rebound name is
  refused (403). On a wildcard address (0.0.0.0, ::) any IP literal is the node's own.
- **Bodies.** At most `max_body` bytes (413); nesting at most `MAX_JSON_DEPTH`, measured
  by a linear scan before any parser runs (a 100,000-deep `[` once overflowed a
  thread's C stack); no NaN, Infinity or number out of a double's range, so that every
  answer is JSON (an `id` of 1e400 was echoed as `Infinity`). Threads that serve
  requests (the loop's, under `serve`, and the workers) get `REQUEST_STACK` bytes of
  stack, enough for the recursion limit that libraries raise (py_ecc to 100,000,
  ewasm.execute to 200,000).
- **Threads.** Quick requests are served on the loop's thread as they arrive; those that
  may run open-ended work (simulations, traces, log queries, mining many blocks) on the
  worker pool, so that a long eth_call never stalls the node (`_dispatcher_class`).
- **Connections.** A request's headers must arrive within `header_timeout` seconds of
  its first byte and the whole request within `request_timeout`; a connection idle for
  `idle_timeout` is closed. One client address holds at most `client_connection_limit`
  of the `connection_limit` connections: a new connection past it closes that client's
  longest-idle one, so half-sent requests cannot lock out anyone else.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import threading
import time
from itertools import accumulate
from typing import Any
from urllib.parse import urlsplit

from .chain import Chain
from .rpc import INVALID_REQUEST, MAX_BODY, PARSE_ERROR, Rpc, RpcError, _dump, _error

MAX_JSON_DEPTH = 128
HEADER_TIMEOUT = 10.0
REQUEST_TIMEOUT = 30.0
IDLE_TIMEOUT = 60
CONNECTION_LIMIT = 100
CLIENT_CONNECTION_LIMIT = 32
REQUEST_STACK = 256 << 20
# geth's accepted media types for a JSON-RPC POST.
JSON_TYPES = frozenset({"application/json", "application/json-rpc", "application/jsonrequest"})
_LOOPBACK_ORIGIN_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "*"})


# --- bodies -----------------------------------------------------------------------------
# A JSON string, or an unterminated one to the end of the body. Possessive: each byte is
# looked at once, so no body makes the scan more than linear.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_CHUNK = 1 << 16


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when the JSON text nests arrays and objects more than `limit` deep (strings
    skipped); linear in the body, without recursion."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # even counting those inside strings (the common case)
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = 0
    for start in range(0, len(brackets), _CHUNK):  # chunks: a deep prefix ends it early
        chunk = brackets[start:start + _CHUNK]
        opens = chunk.count(b"[") + chunk.count(b"{")
        if depth + opens > limit and \
                max(accumulate(map(_DEPTH_STEP.__getitem__, chunk), initial=depth)) > limit:
            return True
        depth += 2 * opens - len(chunk)
    return False


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]}{'...' if len(text) > 40 else ''} is out of "
                         "range")
    return value


_STRICT = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite)


def parse_body(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> tuple[Any, RpcError | None]:
    """(the request, None), or (None, why the body must not reach the dispatcher: a
    JSON-RPC parse error). The body is parsed strictly, once."""
    encoding = json.detect_encoding(body)
    if encoding not in ("utf-8", "utf-8-sig"):
        # RFC 8259 §8.1; in UTF-8 no byte of a multi-byte character is ASCII, which the
        # byte-level nesting scan relies on.
        return None, RpcError(PARSE_ERROR,
                              f"parse error: the body must be UTF-8, not {encoding}")
    if too_deep(body, max_depth):
        return None, RpcError(PARSE_ERROR, f"parse error: nesting deeper than {max_depth}")
    try:
        return _STRICT.decode(body.decode(encoding)), None
    except RecursionError:  # not reachable under the depth limit; never a crash
        return None, RpcError(PARSE_ERROR, "parse error: nesting too deep")
    except (ValueError, UnicodeDecodeError) as exc:
        return None, RpcError(PARSE_ERROR, f"parse error: {exc}")


# --- origins and hosts ------------------------------------------------------------------
def _normalise_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def loopback_origin(origin: str) -> bool:
    """A page served from localhost, 127.0.0.1 or [::1] (any port, http or https)."""
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and parts.hostname in _LOOPBACK_ORIGIN_HOSTS
            and not parts.path and not parts.query and not parts.username)


def _host_name(header: str) -> str | None:
    """The name or address in a Host header, lowercased, without port; None if bad."""
    h = header.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        if end < 0 or (h[end + 1:] and not re.fullmatch(r":\d{1,5}", h[end + 1:])):
            return None
        return h[1:end]
    name, sep, port = h.rpartition(":")
    if not sep:
        name = h
    elif not port.isdigit():
        return None
    return name.rstrip(".") or None


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def host_allowed(header: str, bound: str | None, allow_hosts: tuple[str, ...] = ()) -> bool:
    name = _host_name(header)
    if name is None:
        return False
    allowed = {h.strip().lower().strip("[]") for h in allow_hosts}
    if "*" in allowed or name in allowed:
        return True
    if name == "localhost" or name.endswith(".localhost"):  # RFC 6761: always loopback
        return True
    ip = _ip(name)
    if ip is not None and ip.is_loopback:
        return True
    if bound is not None:
        b = bound.strip().lower().strip("[]")
        if b in _WILDCARD_HOSTS:
            # Every address of the machine is the node's; a DNS-rebound name is not.
            return ip is not None
        return name == b.rstrip(".")
    return False


# --- the app ----------------------------------------------------------------------------
def make_app(rpc: Rpc, *, max_body: int = MAX_BODY, allow_origins: tuple[str, ...] = (),
             allow_hosts: tuple[str, ...] = (), bound_host: str | None = None,
             max_depth: int = MAX_JSON_DEPTH):
    """The WSGI app: POST JSON-RPC. A body over max_body gets a JSON-RPC error (413); the
    module docstring lists the other checks. bound_host: the address the server listens
    on (its Host header is accepted; None: loopback names only)."""
    origins = {_normalise_origin(o) for o in allow_origins}
    any_origin = "*" in origins
    json_headers = [("Content-Type", "application/json")]

    def refuse(start_response, status: str, message: str, extra=()) -> list[bytes]:
        start_response(status, json_headers + list(extra))
        return [_dump(_error(None, RpcError(INVALID_REQUEST, message)))]

    def cors_headers(origin: str | None) -> list[tuple[str, str]] | None:
        """The CORS headers for this Origin; None when the origin is refused."""
        if origin is None:
            return []  # not a browser page: nothing to allow
        if any_origin:
            return [("Access-Control-Allow-Origin", "*")]
        if _normalise_origin(origin) in origins or loopback_origin(origin):
            return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        return None

    def app(environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        host = environ.get("HTTP_HOST")
        # No Host at all is HTTP/1.0 from a program; a browser always sends one.
        if host is not None and not host_allowed(host, bound_host, allow_hosts):
            return refuse(start_response, "403 Forbidden",
                          f"Host {host[:100]!r} is not served by this node")
        origin = environ.get("HTTP_ORIGIN")
        cors = cors_headers(origin)
        if cors is None:
            return refuse(start_response, "403 Forbidden",
                          f"origin {origin[:100]!r} is not allowed (the node's "
                          "--allow-origin option)")
        if method == "OPTIONS":
            start_response("204 No Content", cors + ([
                ("Access-Control-Allow-Methods", "POST, OPTIONS"),
                ("Access-Control-Allow-Headers", "Content-Type"),
                ("Access-Control-Max-Age", "600")] if origin is not None else []))
            return [b""]
        headers = json_headers + cors
        if method != "POST":
            return refuse(start_response, "405 Method Not Allowed", "POST JSON-RPC requests",
                          cors + [("Allow", "POST")])
        media = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        if media not in JSON_TYPES:
            return refuse(start_response, "415 Unsupported Media Type",
                          "Content-Type must be application/json", cors)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return refuse(start_response, "400 Bad Request", "bad Content-Length", cors)
        if length > max_body:
            return refuse(start_response, "413 Request Entity Too Large",
                          f"request body too large: {length} > {max_body} bytes", cors)
        body = environ["wsgi.input"].read(length)
        request, problem = parse_body(body, max_depth)
        if problem is not None:
            start_response("200 OK", headers)
            return [_dump(_error(None, problem))]
        response = rpc.handle_request(request)
        start_response("200 OK", headers)
        return [response or b""]

    return app


# --- the server ---------------------------------------------------------------------------
def _server_classes():
    """waitress's channel and server, taught timeouts and a per-client limit (imported
    lazily: the node's CLI loads waitress only when it serves)."""
    from waitress.channel import ClientDisconnected, HTTPChannel
    from waitress.server import TcpWSGIServer

    class Channel(HTTPChannel):
        started: float | None = None  # monotonic time of the current request's first byte
        inline = False  # a request of this channel is being served on the loop's thread

        def received(self, data):
            dispatcher = self.server.task_dispatcher
            dispatcher.loop_thread = threading.get_ident()  # received runs on the loop
            before = self.request
            accepted = super().received(data)
            if self.request is None:
                self.started = None
            elif self.request is not before or self.started is None:
                self.started = time.monotonic()
            dispatcher.run_inline()  # after super(): it holds the channel's request lock
            return accepted

        def write_soon(self, data):
            if not self.inline:
                return super().write_soon(data)
            # Held until the request is served, then written as one: a response is one
            # send, not its header's and its body's (a send on loopback costs ~25 us).
            if not self.connected:
                raise ClientDisconnected
            self.held.append(data)
            return len(data)

        def release(self) -> None:
            held, self.held = self.held, []
            if held:
                try:
                    super().write_soon(b"".join(held))
                except ClientDisconnected:
                    pass  # gone meanwhile: nothing to answer

        def _flush_outbufs_below_high_watermark(self):
            # Waiting for the loop to flush, on the loop's own thread, would never end:
            # the loop flushes once this request is served.
            if not self.inline:
                super()._flush_outbufs_below_high_watermark()

    class Server(TcpWSGIServer):
        channel_class = Channel
        header_timeout = HEADER_TIMEOUT
        request_timeout = REQUEST_TIMEOUT
        client_connection_limit = CLIENT_CONNECTION_LIMIT

        def pull_trigger(self):
            # Only another thread needs to wake the loop.
            if threading.get_ident() != self.task_dispatcher.loop_thread:
                super().pull_trigger()

        def maintenance(self, now):
            super().maintenance(now)  # idle connections (channel_timeout)
            mono = time.monotonic()
            for ch in list(self.active_channels.values()):
                partial, started = ch.request, getattr(ch, "started", None)
                if partial is None or started is None or ch.requests:
                    continue
                limit = self.request_timeout if partial.headers_finished else \
                    self.header_timeout
                if mono - started > limit:
                    ch.will_close = True

        def handle_accept(self):
            try:
                accepted = self.accept()
                if accepted is None:
                    return
                conn, addr = accepted
                self.set_socket_options(conn)
            except OSError:
                return
            addr = self.fix_addr(addr)
            if not self._admit(addr):
                conn.close()
                return
            self.channel_class(self, conn, addr, self.adj, map=self._map)

        def _admit(self, addr) -> bool:
            """Room for one more connection from this client: below its limit, or by
            closing its longest-idle connection (one not serving a request)."""
            client = addr[0] if isinstance(addr, tuple) else addr
            mine = [ch for ch in self.active_channels.values()
                    if not ch.will_close and isinstance(ch.addr, tuple)
                    and ch.addr[0] == client]
            if len(mine) < self.client_connection_limit:
                return True
            idle = [ch for ch in mine if not ch.requests]
            if not idle:
                return False
            min(idle, key=lambda ch: ch.last_activity).will_close = True
            return True

    return Channel, Server


# A body that may ask for one of these, or that spells a name with an escape, runs on the
# pool; every other body runs on the loop's thread. Without a backslash a JSON string is
# its bytes, so no method named here can be missed.
SLOW_MARKERS = (b"\\", b"eth_call", b"eth_estimateGas", b"eth_createAccessList", b"debug_",
                b"eth_getLogs", b"_mine", b"eth_sendTransaction")


def may_be_slow(body: bytes) -> bool:
    """Whether a request body may ask for a method that runs open-ended work (a
    simulation, a trace, a log query, mining many blocks); a cheap scan, never a miss."""
    return any(marker in body for marker in SLOW_MARKERS)


def _dispatcher_class():
    """Quick requests are served by the loop's own thread, as they arrive; the others by
    the pool of worker threads.

    A request handed from the loop to a worker and back costs two thread switches, each
    a wait for the GIL: on the shared load generator that was ~60% of the node's CPU per
    transaction (1.5 ms against 3.9 ms, 2.4x the transactions per second). Mining is
    serial anyway, and on the loop it needs no lock wait. Open-ended requests
    (`may_be_slow`) still go to the pool, so a long eth_call never stalls the node."""
    from waitress.task import ThreadedTaskDispatcher

    class Dispatcher(ThreadedTaskDispatcher):
        loop_thread: int | None = None

        def __init__(self):
            super().__init__()
            self.inline: list = []

        def add_task(self, channel):
            request = getattr(channel, "requests", None)
            if request and threading.get_ident() == self.loop_thread \
                    and not request[0].error:
                stream = request[0].get_body_stream()
                at = stream.tell()
                body = stream.read(MAX_BODY + 1)
                stream.seek(at)
                if not may_be_slow(body):
                    self.inline.append(channel)
                    return
            super().add_task(channel)

        def run_inline(self) -> None:
            while self.inline:
                channel = self.inline.pop()
                channel.inline, channel.held = True, []
                try:
                    channel.service()
                finally:
                    channel.inline = False
                    channel.release()

    return Dispatcher


def create_server(chain: Chain, host: str = "127.0.0.1", port: int = 8545, *,
                  threads: int = 8, allow_origins: tuple[str, ...] = (),
                  allow_hosts: tuple[str, ...] = (), header_timeout: float = HEADER_TIMEOUT,
                  request_timeout: float = REQUEST_TIMEOUT, idle_timeout: int = IDLE_TIMEOUT,
                  connection_limit: int = CONNECTION_LIMIT,
                  client_connection_limit: int = CLIENT_CONNECTION_LIMIT,
                  max_depth: int = MAX_JSON_DEPTH):
    """A waitress server (not yet serving); `.effective_port` is the bound port.

    allow_origins: browser origins served besides localhost's (`*`: any); allow_hosts:
    Host names served besides the bound address and loopback (`*`: any). The timeouts are
    in seconds; the limits count connections."""
    from waitress.adjustments import Adjustments
    from waitress.server import MultiSocketServer

    _, server_class = _server_classes()
    app = make_app(Rpc(chain), allow_origins=tuple(allow_origins),
                   allow_hosts=tuple(allow_hosts), bound_host=host, max_depth=max_depth)
    adj = Adjustments(host=host, port=port, threads=threads,
                      max_request_body_size=4 * MAX_BODY, ident="ewasm",
                      clear_untrusted_proxy_headers=True, channel_timeout=idle_timeout,
                      connection_limit=connection_limit, cleanup_interval=1)
    # Request threads with a stack that fits the recursion limit libraries set.
    previous = threading.stack_size()
    threading.stack_size(REQUEST_STACK)
    try:
        dispatcher = _dispatcher_class()()
        dispatcher.set_thread_count(threads)
    finally:
        threading.stack_size(previous)
    socket_map: dict = {}
    servers = []
    try:
        for sockinfo in adj.listen:
            server = server_class(app, socket_map, dispatcher=dispatcher, adj=adj,
                                  sockinfo=sockinfo)
            server.header_timeout = header_timeout
            server.request_timeout = request_timeout
            server.client_connection_limit = max(1, client_connection_limit)
            servers.append(server)
    except BaseException:
        for s in servers:
            s.close()
        dispatcher.shutdown(timeout=1)
        raise
    if len(servers) == 1:
        return servers[0]
    return MultiSocketServer(socket_map, adj, [(s.effective_host, s.effective_port)
                                               for s in servers], dispatcher,
                             servers[-1].log_info)


def serve(server, stop: threading.Event | None = None) -> None:
    """Run the server's loop until `stop` is set or the calling (main) thread gets
    KeyboardInterrupt (SIGINT, or SIGTERM made one), then let the request in hand finish.

    The loop serves quick requests itself, so it runs on a thread with REQUEST_STACK
    bytes of stack, like the workers: the main thread's is the process's 8 MiB."""
    from waitress import wasyncore

    stop = stop or threading.Event()
    socket_map = server.map if hasattr(server, "map") else server._map
    adj = server.adj

    def loop() -> None:
        try:
            while socket_map and not stop.is_set():
                wasyncore.loop(timeout=adj.asyncore_loop_timeout, map=socket_map,
                               use_poll=adj.asyncore_use_poll, count=1)
        finally:
            server.task_dispatcher.shutdown()

    previous = threading.stack_size()
    threading.stack_size(REQUEST_STACK)
    try:
        thread = threading.Thread(target=loop, name="ewasm-http")
        thread.start()
    finally:
        threading.stack_size(previous)
    try:
        while thread.is_alive():
            thread.join(0.5)
    finally:
        stop.set()
        thread.join()
