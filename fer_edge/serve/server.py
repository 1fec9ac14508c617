"""`fer-edge serve`: an HTTP API and a live page on the device, on Python's own http.server
(nothing to install on a Raspberry Pi; reports/serve/README.md has the measurements).

Routes: GET / (the page), GET /stream.mjpg (the annotated live picture), GET /events (Server-Sent
Events: each live frame as `classify --format json` writes it), POST /v1/classify (an image, raw
or multipart, -> {"faces": [...]}), GET /v1/models, GET /healthz, GET /metrics.
Every error is a 4xx/5xx with one line of JSON, {"error": ...}; the server answers the next
request whatever the last one was.
"""

from __future__ import annotations

import functools
import hmac
import json
import queue
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from ..errors import FerEdgeError
from ..edge.imagesize import image_size
from .metrics import Metrics
from .pool import Busy, InferencePool

# Query options of POST /v1/classify: each changes the worker's Classifier for that call only.
CLASSIFY_QUERY = {"tta": "tta", "align": "align", "no_detect": "no_detect"}
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
RETRY_AFTER = 1          # seconds a refused client is asked to wait


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass
class App:
    """What every request handler shares."""

    pool: InferencePool
    models: dict
    token: str | None = None
    max_body: int = 20 * 2**20
    max_pixels: int = 200_000_000
    live: object = None
    metrics: Metrics = field(default_factory=Metrics)
    started: float = field(default_factory=time.time)
    timeout: float = 60.0


def _bool(name: str, value: str) -> bool:
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise HTTPError(400, f"?{name}= takes true or false, not {value!r}")


def classify_bytes(clf, data: bytes, query: dict) -> list[dict]:
    """The faces of an image file's bytes, with the request's query options set on this
    worker's own Classifier for the call."""
    saved = {attr: getattr(clf, attr) for attr in CLASSIFY_QUERY.values()}
    try:
        for name, value in query.items():
            setattr(clf, CLASSIFY_QUERY[name], value)
        if clf.detector is None and not clf.no_detect:
            raise HTTPError(400, "this server runs without a detector: pass ?no_detect=true")
        return clf.faces(data)
    finally:
        for attr, value in saved.items():
            setattr(clf, attr, value)


class Handler(BaseHTTPRequestHandler):
    server_version = "fer-edge"
    protocol_version = "HTTP/1.1"
    app: App                       # set on the class made for each server

    # ---------------------------------------------------------------------------- plumbing

    def log_message(self, format, *args):      # noqa: A002  (quiet: /metrics counts them)
        pass

    def _route(self) -> str:
        return urlsplit(self.path).path

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.app.metrics.request(self._route(), status)

    def _json(self, status: int, obj, headers: dict | None = None):
        self._send(status, json.dumps(obj).encode() + b"\n", "application/json", headers)

    def _error(self, e: HTTPError):
        self._json(e.status, {"error": e.message}, e.headers)

    def _authorized(self) -> None:
        token = self.app.token
        if token is None or self._route() == "/healthz":
            return
        given = self.headers.get("Authorization", "")
        query = parse_qs(urlsplit(self.path).query).get("access_token", [""])[0]
        # the page's EventSource and <img> cannot send a header: the token may come in the URL
        candidate = given[len("Bearer "):] if given.startswith("Bearer ") else query
        if not hmac.compare_digest(candidate.encode(), token.encode()):
            raise HTTPError(401, "missing or wrong token (Authorization: Bearer TOKEN)",
                            {"WWW-Authenticate": "Bearer"})

    def _dispatch(self, routes: dict):
        try:
            self._authorized()
            handler = routes.get(self._route())
            if handler is None:
                raise HTTPError(404, f"no such route: {self.command} {self._route()}")
            handler()
        except HTTPError as e:
            if e.status == 413:
                self.close_connection = True      # the rest of the body is not read
            self._error(e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self):
        self._dispatch({"/": self._page, "/healthz": self._health, "/metrics": self._metrics,
                        "/v1/models": self._models, "/events": self._events,
                        "/stream.mjpg": self._mjpeg})

    def do_POST(self):
        self._dispatch({"/v1/classify": self._classify})

    # ---------------------------------------------------------------------------- the routes

    def _page(self):
        self._send(200, _page(), "text/html; charset=utf-8")

    def _health(self):
        live = self.app.live.health() if self.app.live is not None else None
        self._json(200, {"status": "ok", "model": self.app.models["default"]["file"],
                         "uptime_seconds": round(time.time() - self.app.started, 1),
                         "source": live})

    def _metrics(self):
        self._send(200, self.app.metrics.text().encode(), "text/plain; version=0.0.4")

    def _models(self):
        self._json(200, self.app.models)

    def _classify(self):
        query = self._query()
        data = self._body()
        size = image_size(data)
        if size is None:
            raise HTTPError(415, "not an image fer-edge reads from its header (JPEG, PNG, WebP, "
                            "TIFF, BMP, GIF, PNM)")
        if size[0] * size[1] > self.app.max_pixels:
            raise HTTPError(413, f"image of {size[0]} x {size[1]} pixels, over --max-pixels "
                            f"{self.app.max_pixels:,}")
        t0 = time.perf_counter()
        try:
            future = self.app.pool.submit(classify_bytes, data, query)
        except Busy:
            raise HTTPError(503, "busy: every worker is taken and the queue is full",
                            {"Retry-After": RETRY_AFTER}) from None
        try:
            faces = future.result(timeout=self.app.timeout)
        except FerEdgeError as e:
            raise HTTPError(422, str(e)) from None
        self.app.metrics.classified(time.perf_counter() - t0)
        self._json(200, {"faces": faces})

    def _query(self) -> dict:
        out = {}
        for name, values in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items():
            if name == "access_token":
                continue
            if name not in CLASSIFY_QUERY:
                raise HTTPError(400, f"unknown option ?{name}= (known: "
                                f"{', '.join(CLASSIFY_QUERY)})")
            out[name] = _bool(name, values[-1])
        return out

    def _body(self) -> bytes:
        """The image: the raw body (an image/* or application/octet-stream type), or the first
        file of a multipart/form-data body; 413 before reading a body over --max-body."""
        length = self.headers.get("Content-Length")
        if length is None:
            raise HTTPError(411, "send a Content-Length")
        try:
            length = int(length)
        except ValueError:
            raise HTTPError(400, f"bad Content-Length {length!r}") from None
        if length > self.app.max_body:
            raise HTTPError(413, f"body of {length:,} bytes, over --max-body "
                            f"{self.app.max_body:,}")
        kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        body = self.rfile.read(length)
        if not body:
            raise HTTPError(400, "empty body: send an image")
        if kind == "multipart/form-data":
            return _first_file(self.headers.get("Content-Type", ""), body)
        if kind.startswith("image/") or kind in ("application/octet-stream", ""):
            return body
        raise HTTPError(415, f"Content-Type {kind}: send an image (image/*, "
                        f"application/octet-stream or multipart/form-data)")

    def _events(self):
        live = self._live()
        q = live.subscribe()
        self._start_stream("text/event-stream")
        try:
            while True:
                try:
                    record = q.get(timeout=15)
                    self.wfile.write(b"data: " + json.dumps(record).encode() + b"\n\n")
                except queue.Empty:      # a comment keeps proxies from closing a quiet stream
                    self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
        finally:
            live.unsubscribe(q)

    def _mjpeg(self):
        live = self._live()
        boundary = "fer-edge-frame"
        self._start_stream(f"multipart/x-mixed-replace; boundary={boundary}")
        jpeg = None
        while True:
            jpeg = live.next_jpeg(jpeg)
            if jpeg is None:
                continue
            self.wfile.write(f"--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: "
                             f"{len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
            self.wfile.flush()

    def _start_stream(self, content_type: str) -> None:
        """The headers of an endless response (no Content-Length: it ends when the client
        goes), counted as served; the connection closes after it."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.app.metrics.request(self._route(), 200)
        self.close_connection = True

    def _live(self):
        if self.app.live is None:
            raise HTTPError(404, "no live source: start the server with --source")
        return self.app.live


@functools.lru_cache(maxsize=1)
def _page() -> bytes:
    """The page, read from the package once."""
    return resources.files("fer_edge.serve").joinpath("assets/index.html").read_bytes()


def _first_file(content_type: str, body: bytes) -> bytes:
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if not message.is_multipart():
        raise HTTPError(400, "a multipart/form-data body without parts")
    for part in message.iter_parts():
        if part.get_filename() is not None or part.get_param("name", header="content-disposition"):
            data = part.get_payload(decode=True)
            if data:
                return data
    raise HTTPError(400, "no file in the multipart/form-data body")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # connections waiting to be accepted: http.server's 5 refuses a burst of clients before
    # the queue (and its 503) can answer them
    request_queue_size = 128


def make_server(app: App, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("AppHandler", (Handler,), {"app": app})
    return Server((host, port), handler)
