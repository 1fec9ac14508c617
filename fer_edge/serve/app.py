"""The routes of `fer-edge serve`, a Starlette app (server.py runs it under uvicorn).

GET / (the page), GET /stream.mjpg (the annotated live picture), GET /events (Server-Sent
Events: each live frame as `classify --format json` writes it), POST /v1/classify (an image,
raw or multipart, -> {"faces": [...]}), GET /v1/models, GET /healthz, GET /metrics, and
GET/POST /login (the page's sign-in when a token is set). guard.py wraps them: the token,
metrics, CORS and the one-line JSON errors.

A static folder mounts in one line on the app make_app returns (its files then need the token
like every route, and metrics count them as the prefix): app.mount_static("/docs", folder)
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from ..edge.imagesize import image_size
from ..errors import FerEdgeError
from .body import BodyBudget, read_image
from .guard import SESSION_COOKIE, session_value
from .metrics import Metrics
from .pool import Busy

# Query options of POST /v1/classify: each changes the worker's Classifier for that call only.
CLASSIFY_QUERY = {"tta": "tta", "align": "align", "no_detect": "no_detect"}
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
RETRY_AFTER = 1              # seconds a refused client is asked to wait
INFERENCE_TIMEOUT = 60.0     # seconds a request waits for its worker's answer before 504
KEEP_ALIVE_EVERY = 15        # seconds of a quiet /events stream between two comments


@dataclass
class State:
    """What every route shares."""

    pool: object
    models: dict
    token: str | None = None
    max_body: int = 20 * 2**20
    max_pixels: int = 200_000_000
    request_timeout: float = 20.0
    cors_origins: tuple = ()
    secure_cookie: bool = False          # served over TLS: the session cookie is Secure
    live: object = None
    metrics: Metrics = field(default_factory=Metrics)
    started: float = field(default_factory=time.time)
    stopping: threading.Event = field(default_factory=threading.Event)
    bodies: BodyBudget = None

    def __post_init__(self):
        self.bodies = BodyBudget(self.max_body)


def http_error(status: int, message: str, headers: dict | None = None) -> HTTPException:
    return HTTPException(status, message, headers)


def _bool(name: str, value: str) -> bool:
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise http_error(400, f"?{name}= takes true or false, not {value[:40]!r}")


def classify_bytes(clf, data: bytes, query: dict) -> list[dict]:
    """The faces of an image file's bytes, with the request's query options set on this
    worker's own Classifier for the call."""
    saved = {attr: getattr(clf, attr) for attr in CLASSIFY_QUERY.values()}
    try:
        for name, value in query.items():
            setattr(clf, CLASSIFY_QUERY[name], value)
        if clf.detector is None and not clf.no_detect:
            raise http_error(400, "this server runs without a detector: pass ?no_detect=true")
        return clf.faces(data)
    finally:
        for attr, value in saved.items():
            setattr(clf, attr, value)


def classify_query(query_string: bytes) -> dict:
    out = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name not in CLASSIFY_QUERY:
            raise http_error(400, f"unknown option ?{name[:40]}= (known: "
                             f"{', '.join(CLASSIFY_QUERY)})")
        out[name] = _bool(name, value)
    return out


# ------------------------------------------------------------------------------ the routes

def _state(request) -> State:
    return request.app.state.fer_edge


def _json(obj, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(obj).encode() + b"\n", status, headers,
                    media_type="application/json")


async def page(request):
    return Response(_asset("index.html"), media_type="text/html; charset=utf-8")


async def login_page(request):
    return Response(_asset("login.html"), media_type="text/html; charset=utf-8")


async def login(request):
    """POST /login with the token (a form field or the raw body): 303 to the page with the
    session cookie (HttpOnly: the page's scripts never see it; SameSite=Strict: no other site's
    request carries it)."""
    state = _state(request)
    if state.token is None:
        return RedirectResponse("/", 303)
    given = await read_form_token(request, state)
    if not hmac.compare_digest(given.encode(), state.token.encode()):
        raise http_error(401, "wrong token")
    response = RedirectResponse("/", 303)
    response.set_cookie(SESSION_COOKIE, session_value(state.token), httponly=True,
                        samesite="strict", secure=state.secure_cookie, path="/")
    return response


async def read_form_token(request, state: State) -> str:
    from .body import read_body

    body = (await read_body(request, 4096, state.request_timeout)).decode("utf-8", "replace")
    fields = dict(parse_qsl(body, keep_blank_values=True))
    return fields.get("token", body.strip() if "=" not in body else "")


async def health(request):
    """{"status": "ok"} for anyone; with the token (or none set) also the model, the uptime and
    the source's state: never its URL."""
    state = _state(request)
    if not request.scope.get("fer_edge.authorized"):
        return _json({"status": "ok"})
    return _json({"status": "ok", "model": state.models["default"]["file"],
                  "uptime_seconds": round(time.time() - state.started, 1),
                  "source": state.live.health() if state.live is not None else None})


async def metrics(request):
    return Response(_state(request).metrics.text(), media_type="text/plain; version=0.0.4")


async def models(request):
    return _json(_state(request).models)


async def classify(request):
    state = _state(request)
    query = classify_query(request.scope["query_string"])
    with state.bodies.reserve(request, state.max_body):
        data = await read_image(request, state.max_body, state.request_timeout)
        faces = await classified(state, data, query)
    return _json({"faces": faces})


async def classified(state: State, data: bytes, query: dict) -> list[dict]:
    size = image_size(data)
    if size is None:
        raise http_error(415, "not an image fer-edge reads from its header (JPEG, PNG, WebP, "
                         "TIFF, BMP, GIF, PNM)")
    if size[0] * size[1] > state.max_pixels:
        raise http_error(413, f"image of {size[0]} x {size[1]} pixels, over --max-pixels "
                         f"{state.max_pixels:,}")
    t0 = time.perf_counter()
    try:
        future = state.pool.submit(classify_bytes, data, query)
    except Busy:
        raise http_error(503, "busy: every worker is taken and the queue is full",
                         {"Retry-After": str(RETRY_AFTER)}) from None
    try:
        faces = await asyncio.wait_for(asyncio.wrap_future(future), INFERENCE_TIMEOUT)
    except asyncio.TimeoutError:
        raise http_error(504, f"no answer from the model within {INFERENCE_TIMEOUT:g} s") \
            from None
    except FerEdgeError as e:
        raise http_error(422, str(e)) from None
    state.metrics.classified(time.perf_counter() - t0)
    return faces


def _live(request):
    live = _state(request).live
    if live is None:
        raise http_error(404, "no live source: start the server with --source")
    return live


async def events(request):
    live, state = _live(request), _state(request)
    feed = live.subscribe(asyncio.get_running_loop())

    async def frames():
        quiet = 0
        try:
            while not state.stopping.is_set():
                try:
                    record, _ = await asyncio.wait_for(feed.get(), 1.0)
                except asyncio.TimeoutError:
                    quiet += 1
                    if quiet >= KEEP_ALIVE_EVERY:   # keeps proxies from closing a quiet stream
                        quiet = 0
                        yield b": keep-alive\n\n"
                    continue
                quiet = 0
                yield b"data: " + json.dumps(record).encode() + b"\n\n"
        finally:
            live.unsubscribe(feed)

    return StreamingResponse(frames(), media_type="text/event-stream")


async def mjpeg(request):
    live, state = _live(request), _state(request)
    boundary = "fer-edge-frame"
    feed = live.subscribe(asyncio.get_running_loop())

    def part(jpeg: bytes) -> bytes:
        return (f"--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}"
                f"\r\n\r\n").encode() + jpeg + b"\r\n"

    async def pictures():
        try:
            if live.jpeg is not None:
                yield part(live.jpeg)
            while not state.stopping.is_set():
                try:
                    _, jpeg = await asyncio.wait_for(feed.get(), 1.0)
                except asyncio.TimeoutError:
                    continue
                yield part(jpeg)
        finally:
            live.unsubscribe(feed)

    return StreamingResponse(pictures(), media_type=f"multipart/x-mixed-replace; "
                             f"boundary={boundary}")


ROUTES = [
    Route("/", page, methods=["GET"]),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/healthz", health, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/v1/models", models, methods=["GET"]),
    Route("/v1/classify", classify, methods=["POST"]),
    Route("/events", events, methods=["GET"]),
    Route("/stream.mjpg", mjpeg, methods=["GET"]),
]


def make_app(state: State, web: dict | None = None):
    """The Starlette app of these routes inside guard.py's middleware; with `web` (the files of
    fer_edge/web's page for the server's model) also GET /web/ (webpage.py)."""
    from .guard import Guard, error_handlers
    from .webpage import routes as web_routes

    app = Starlette(routes=list(ROUTES) + (web_routes(web) if web else []),
                    exception_handlers=error_handlers())
    app.state.fer_edge = state
    return Guard(app, state)


@functools.lru_cache(maxsize=4)
def _asset(name: str) -> bytes:
    """A page, read from the package once."""
    return resources.files("fer_edge.serve").joinpath(f"assets/{name}").read_bytes()
