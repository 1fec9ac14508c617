"""What stands between a stranger and the routes of `fer-edge serve` (pure ASGI, around the
Starlette app):

- the token: with --token every route but /healthz (which then says only "ok") and the sign-in
  page /login needs `Authorization: Bearer TOKEN` or the page's session cookie. The cookie, set
  by POST /login, holds an HMAC of the token, not the token; it is HttpOnly and SameSite=Strict,
  so the token is never in a URL, a log or the page's scripts (an <img> or EventSource cannot
  send a header: that is why the page needs a cookie);
- metrics: each answer counted by its route's template (an unknown path is "other") and its
  status class, so no request can add a label;
- CORS: no header at all unless --cors-origin names the origin;
- errors: every one, a 500 included, is one line of JSON, {"error": ...}.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sys
from http.cookies import CookieError, SimpleCookie

from starlette.exceptions import HTTPException
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles

SESSION_COOKIE = "fer_edge_session"
PUBLIC = {"/healthz", "/login"}
CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type"
LONGEST_ECHO = 120        # characters of a request's path an error message repeats

log = logging.getLogger("fer_edge.serve")


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"fer-edge page session", hashlib.sha256).hexdigest()


def one_line_error(status: int, message: str, headers: dict | None = None):
    from starlette.responses import Response

    return Response(json.dumps({"error": message}).encode() + b"\n", status, headers,
                    media_type="application/json")


def error_handlers() -> dict:
    async def http_error(request, exc: HTTPException):
        message = exc.detail
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such route: {request.method} {request.url.path[:LONGEST_ECHO]}"
        elif exc.status_code == 405:
            message = f"{request.method} is not a method of {request.url.path}"
        headers = dict(exc.headers or {})
        if _body_left(request):
            headers["Connection"] = "close"   # what is left of the body is not read
        return one_line_error(exc.status_code, message, headers)

    async def crash(request, exc: Exception):
        print(f"fer-edge serve: 500 on {request.method} {request.url.path[:LONGEST_ECHO]}: "
              f"{type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr, flush=True)
        return one_line_error(500, f"internal error ({type(exc).__name__})")

    return {HTTPException: http_error, Exception: crash}


def _body_left(request) -> bool:
    """A body the client sent (or is sending) that was not read."""
    return not request.scope.get("fer_edge.body_read") and (
        request.headers.get("content-length", "0") != "0"
        or "transfer-encoding" in request.headers)


def _header(scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


class Guard:
    def __init__(self, app, state):
        self.app, self.state = app, state

    def mount_static(self, prefix: str, folder) -> None:
        """Serve a folder's files under `prefix` (behind the token, counted as one route)."""
        self.app.mount(prefix, StaticFiles(directory=str(folder), html=True))

    # --------------------------------------------------------------------------- the checks

    def authorized(self, scope) -> bool:
        token = self.state.token
        if token is None:
            return True
        given = _header(scope, b"authorization")
        if given.startswith("Bearer ") and hmac.compare_digest(
                given[len("Bearer "):].encode(), token.encode()):
            return True
        try:
            cookie = SimpleCookie(_header(scope, b"cookie")).get(SESSION_COOKIE)
        except CookieError:
            return False
        return cookie is not None and hmac.compare_digest(cookie.value.encode(),
                                                          session_value(token).encode())

    def route_label(self, scope) -> str:
        """The template of the app's route the request's path matches (a mount's prefix),
        "other" for any other path: the metrics' labels are a fixed set."""
        for route in self.app.routes:
            if isinstance(route, (Route, Mount)) and route.matches(scope)[0] is not Match.NONE:
                return route.path
        return "other"

    def cors_origin(self, scope) -> str | None:
        origin = _header(scope, b"origin")
        allowed = self.state.cors_origins
        if origin and (origin in allowed or "*" in allowed):
            return origin
        return None

    # ---------------------------------------------------------------------------- the call

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route = self.route_label(scope)
        origin = self.cors_origin(scope)
        status_seen = []

        async def counted_send(message):
            if message["type"] == "http.response.start":
                status_seen.append(message["status"])
                headers = [*message.get("headers", []), (b"cache-control", b"no-store")]
                if origin is not None:
                    headers += [(b"access-control-allow-origin", origin.encode("latin-1")),
                                (b"vary", b"Origin")]
                message = {**message, "headers": headers}
                # counted when the answer starts: an endless stream counts once, at its start
                self.state.metrics.request(route, message["status"])
            await send(message)

        if origin is not None and scope["method"] == "OPTIONS":
            return await self._preflight(origin, counted_send)
        scope["fer_edge.authorized"] = self.authorized(scope)
        if not scope["fer_edge.authorized"] and scope["path"] not in PUBLIC:
            if scope["path"] == "/" and scope["method"] in ("GET", "HEAD"):
                return await self._respond(303, b"", {b"location": b"/login"}, counted_send)
            return await self._error(401, "missing or wrong token (Authorization: Bearer "
                                     "TOKEN, or sign in at /login)", counted_send,
                                     {b"www-authenticate": b"Bearer",
                                      b"connection": b"close"})   # its body is not read
        try:
            await self.app(scope, receive, counted_send)
        except Exception:
            if not status_seen:      # Starlette answered its 500 already, or could not
                await self._error(500, "internal error", counted_send)

    async def _preflight(self, origin: str, send):
        await self._respond(204, b"", {b"access-control-allow-methods": CORS_METHODS.encode(),
                                       b"access-control-allow-headers": CORS_HEADERS.encode(),
                                       b"access-control-max-age": b"600"}, send)

    async def _error(self, status: int, message: str, send, headers: dict | None = None):
        body = json.dumps({"error": message}).encode() + b"\n"
        await self._respond(status, body, {b"content-type": b"application/json",
                                           **(headers or {})}, send)

    @staticmethod
    async def _respond(status: int, body: bytes, headers: dict, send):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", str(len(body)).encode()),
                                *headers.items()]})
        await send({"type": "http.response.body", "body": body})
