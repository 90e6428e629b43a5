"""The local HTTP server both APIs are mounted on (standard library only).

`ApiServer(sim)` serves the Webex Calling API subset (`app/webex_api.py`, under `/v1`) and mppsim's
own control API (`app/control_api.py`, under `/mppsim/v1`). Every request needs
`Authorization: Bearer <token>`. Every error, on every path, has Webex's shape:

    {"message": "...", "errors": [{"description": "...", "errorCode": 40400}], "trackingId": "MPPSIM_<uuid>"}

The default errorCode is the HTTP status * 100 (40100, 40400, 40500, 41500, ...): never one of
Webex's own 5-digit codes (25xxx, 4xxx), so a route that knows the real code passes it in `errors`.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import logging
import re
import secrets
import threading
import traceback
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from mppsim.rules.citations import cite

log = logging.getLogger("mppsim.http")

REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 415: "Unsupported Media Type",
           422: "Unprocessable Content",
           500: "Internal Server Error", 503: "Service Unavailable"}


def tracking_id() -> str:
    return f"MPPSIM_{uuid.uuid4()}"


class HttpError(Exception):
    """Raised by a handler (or the server) to answer with Webex's error shape."""

    def __init__(self, status: int, message: str, errors: list[dict] | None = None,
                 headers: dict[str, str] | None = None):
        message = cite(message)
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors if errors is not None else [{"description": message, "errorCode": status * 100}]
        self.headers = dict(headers or {})

    def body(self, tracking: str) -> dict:
        return {"message": self.message, "errors": self.errors, "trackingId": tracking}


@dataclass
class Request:
    method: str
    path: str                           # without the query string, as sent (percent-encoded)
    query: dict[str, list[str]]         # parse_qs(keep_blank_values=True)
    headers: dict[str, str]             # keys lower-cased
    body: bytes
    base_url: str                       # "http://HOST:PORT" as the client reached us (Host header)

    def json(self) -> Any:
        """The body as JSON; None when empty. 415 if it is not sent as JSON, 400 if it is not JSON."""
        if not self.body.strip():
            return None
        ctype = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if not (ctype == "application/json" or ctype.endswith("+json")):
            raise HttpError(415, f"Content-Type must be application/json, not {ctype or 'missing'}")
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise HttpError(400, f"body is not valid JSON: {exc}") from None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: Any = None                    # dict/list -> JSON; str/bytes sent as is; None -> empty
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[bytes] | None = None   # SSE / downloads: Content-Length if given, else chunked


Handler = Callable[..., "Response | dict | list | None"]

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def _split(path: str) -> list[str]:
    path = path.rstrip("/") or "/"
    return [s for s in path.split("/") if s != ""]


@dataclass
class _Route:
    pattern: str
    segments: list[str]                 # literal text, or None for a {param}
    names: list[str | None]
    handlers: dict[str, Handler] = field(default_factory=dict)

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params = {}
        for part, seg, name in zip(parts, self.segments, self.names):
            if name is not None:
                params[name] = unquote(part)
            elif part != seg:
                return None
        return params

    @property
    def specificity(self) -> tuple:
        # literal segments win over {params}, leftmost first: /vendors/x beats /{id}/x
        return tuple(1 if n is not None else 0 for n in self.names)


class Router:
    def __init__(self):
        self._routes: dict[str, _Route] = {}

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """pattern like "/v1/people/{personId}/features/callRecording"; {name} matches one segment.
        Unknown path -> 404; known path with another method -> 405 with an Allow header."""
        method = method.upper()
        segs = _split(pattern)
        key = "/" + "/".join("{}" if _PARAM.match(s) else s for s in segs)
        route = self._routes.get(key)
        if route is None:
            names = [(_PARAM.match(s).group(1) if _PARAM.match(s) else None) for s in segs]
            route = self._routes[key] = _Route(pattern, [None if n else s for s, n in zip(segs, names)], names)
        if method in route.handlers:
            raise ValueError(f"route {method} {pattern} is already registered")
        route.handlers[method] = handler

    def routes(self) -> list[tuple[str, str]]:
        return sorted((m, r.pattern) for r in self._routes.values() for m in r.handlers)

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        parts = _split(path)
        found = []
        for route in self._routes.values():
            params = route.match(parts)
            if params is not None:
                found.append((route.specificity, route, params))
        if not found:
            raise HttpError(404, f"no such resource: {path}")
        found.sort(key=lambda t: t[0])
        lookup = "GET" if method == "HEAD" else method
        for _, route, params in found:
            if lookup in route.handlers:
                return route.handlers[lookup], params
        allowed = sorted({m for _, r, _ in found for m in r.handlers} | {"OPTIONS"})
        raise HttpError(405, f"method {method} is not allowed on {path}; allowed: {', '.join(allowed)}",
                        headers={"Allow": ", ".join(allowed)})

    def allowed(self, path: str) -> list[str]:
        parts = _split(path)
        methods = {m for r in self._routes.values() if r.match(parts) is not None for m in r.handlers}
        if not methods:
            raise HttpError(404, f"no such resource: {path}")
        return sorted(methods | {"OPTIONS"})


def _as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(204)
    return Response(200, result)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"       # keep-alive: wxc-sdk and requests reuse connections
    # headers and body go out in two writes: with Nagle + the client's delayed ACK every
    # keep-alive response waited ~40 ms (measured by bench/http_api.py)
    disable_nagle_algorithm = True
    server_version = "mppsim"
    api: "ApiServer"                    # set on the per-server subclass

    def log_message(self, fmt, *args):  # quiet by default; visible with logging at DEBUG
        log.debug("%s " + fmt, self.address_string(), *args)

    def _dispatch(self):
        tracking = tracking_id()
        method = self.command.upper()
        try:
            body = self._read_body()
        except ValueError as exc:     # a malformed length or chunk: answer, then drop the connection
            self.close_connection = True
            self._send(Response(400, HttpError(400, f"bad request body: {exc}").body(tracking),
                                {"Connection": "close"}), tracking)
            return
        split = urlsplit(self.path)
        host = self.headers.get("Host") or f"{self.api.host}:{self.api.port}"
        req = Request(method=method, path=split.path or "/",
                      query=parse_qs(split.query, keep_blank_values=True),
                      headers={k.lower(): v for k, v in self.headers.items()},
                      body=body, base_url=f"http://{host}")
        try:
            if not self.api.authorized(req.headers.get("authorization", "")):
                raise HttpError(401, "The request requires a valid access token set in the Authorization "
                                     "header: Bearer <token>", headers={"WWW-Authenticate": 'Bearer realm="mppsim"'})
            if method == "OPTIONS":
                resp = Response(204, headers={"Allow": ", ".join(self.api.router.allowed(req.path))})
            else:
                handler, params = self.api.router.resolve(method, req.path)
                resp = _as_response(handler(req, **params))
        except HttpError as exc:
            resp = Response(exc.status, exc.body(tracking), exc.headers)
        except Exception as exc:  # a bug in a handler: answer 500, log the traceback
            log.error("error in %s %s:\n%s", method, req.path, traceback.format_exc())
            resp = Response(500, HttpError(500, f"internal error: {type(exc).__name__}: {exc}").body(tracking))
        self._send(resp, tracking, head=(method == "HEAD"))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():   # some clients stream bodies
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while self.rfile.readline().strip():   # trailers
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def _send(self, resp: Response, tracking: str, head: bool = False):
        headers = {k.lower(): (k, v) for k, v in resp.headers.items()}
        body = resp.body
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            headers.setdefault("content-type", ("Content-Type", "application/json"))
        elif isinstance(body, str):
            data = body.encode()
            headers.setdefault("content-type", ("Content-Type", "text/plain; charset=utf-8"))
        elif isinstance(body, (bytes, bytearray)):
            data = bytes(body)
            headers.setdefault("content-type", ("Content-Type", "application/octet-stream"))
        else:
            data = b""
        self.send_response(resp.status, REASONS.get(resp.status))
        headers.setdefault("trackingid", ("TrackingID", tracking))
        chunked = False
        if resp.stream is not None:
            if "content-length" not in headers:
                chunked = True
                headers["transfer-encoding"] = ("Transfer-Encoding", "chunked")
        elif resp.status not in (204, 304):
            headers["content-length"] = ("Content-Length", str(len(data)))
        for name, value in headers.values():
            self.send_header(name, value)
        self.end_headers()
        if head:
            if resp.stream is not None and hasattr(resp.stream, "close"):
                resp.stream.close()
            return
        if resp.stream is None:
            if data and resp.status not in (204, 304):
                self.wfile.write(data)
            return
        try:
            for chunk in resp.stream:
                if not chunk:
                    continue
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    self.wfile.write(chunk)
                self.wfile.flush()
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True   # the client went away (e.g. an SSE reader stopped)
        finally:
            if hasattr(resp.stream, "close"):
                resp.stream.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch


class ApiServer:
    """One HTTP server, both APIs. `start()` binds (port 0 = a free port) and serves in a thread."""

    def __init__(self, sim, host: str = "127.0.0.1", port: int = 0, token: str | None = None):
        self.sim = sim
        self.host = host
        self.port = port
        self.token = token or secrets.token_urlsafe(24)
        self.router = Router()
        self.stopping = threading.Event()   # long streams (SSE) end when this is set
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # each API module mounts its routes (sim None: a bare server, for the server's own tests)
        for name in (("webex_api", "control_api") if sim is not None else ()):
            if importlib.util.find_spec(f"{__package__}.{name}") is None:
                continue
            module = importlib.import_module(f"{__package__}.{name}")
            if "server" in inspect.signature(module.register).parameters:
                module.register(self.router, sim, server=self)   # e.g. SSE streams end on stop()
            else:
                module.register(self.router, sim)

    def authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(value.strip().encode(), self.token.encode())

    def start(self) -> "ApiServer":
        handler = type("ApiHandler", (_Handler,), {"api": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.stopping.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"mppsim-api-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> "ApiServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

