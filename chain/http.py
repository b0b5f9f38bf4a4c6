"""The node's HTTP side: a WSGI app that hands JSON-RPC bodies to `Rpc`, served by waitress.

Everything about HTTP (methods, lengths, headers) is decided here; the dispatcher in
rpc.py sees only bodies.
"""

from __future__ import annotations

from .chain import Chain
from .rpc import INVALID_REQUEST, MAX_BODY, Rpc, RpcError, _dump, _error


def make_app(rpc: Rpc, *, max_body: int = MAX_BODY):
    """The WSGI app: POST JSON-RPC; a body over max_body gets a JSON-RPC error (413)."""
    headers_json = [("Content-Type", "application/json"),
                    ("Access-Control-Allow-Origin", "*")]

    def app(environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "OPTIONS":
            start_response("200 OK", headers_json + [
                ("Access-Control-Allow-Methods", "POST, OPTIONS"),
                ("Access-Control-Allow-Headers", "Content-Type")])
            return [b""]
        if method != "POST":
            start_response("405 Method Not Allowed", headers_json + [("Allow", "POST")])
            return [_dump(_error(None, RpcError(INVALID_REQUEST, "POST JSON-RPC requests")))]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            start_response("400 Bad Request", headers_json)
            return [_dump(_error(None, RpcError(INVALID_REQUEST, "bad Content-Length")))]
        if length > max_body:
            start_response("413 Request Entity Too Large", headers_json)
            return [_dump(_error(None, RpcError(
                INVALID_REQUEST, f"request body too large: {length} > {max_body} bytes")))]
        body = environ["wsgi.input"].read(length)
        response = rpc.handle_body(body)
        start_response("200 OK", headers_json)
        return [response or b""]

    return app


def create_server(chain: Chain, host: str = "127.0.0.1", port: int = 8545, *,
                  threads: int = 8):
    """A waitress server (not yet serving); `.effective_port` is the bound port."""
    import waitress

    return waitress.create_server(make_app(Rpc(chain)), host=host, port=port,
                                  threads=threads, max_request_body_size=4 * MAX_BODY,
                                  ident="ewasm", clear_untrusted_proxy_headers=True)
