"""A request's body within --max-body and --request-timeout, judged before it is read: a
missing length (411), a length over the limit (413, the connection then closed unread), a
chunked body counted as it comes (413 as soon as it passes the limit), a body that does not
arrive in time (408). h11 has already refused a negative or malformed Content-Length (400).
BodyBudget bounds the bytes of all the bodies held at once (being read, queued or classified):
a body that would pass it is refused 503 before it is read, so 512 connections each sending
--max-body cannot take 512 times its memory."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

RAW_TYPES = ("application/octet-stream", "")
BUDGET_FLOOR = 64 * 2**20      # the body budget is the larger of this and 4 x --max-body


class BodyBudget:
    """Bytes reserved by the bodies in flight (used on the event loop's thread only)."""

    def __init__(self, max_body: int):
        self.limit = max(BUDGET_FLOOR, 4 * max_body)
        self.held = 0

    @contextlib.contextmanager
    def reserve(self, request, max_body: int):
        """A reservation of the body's length (of --max-body when chunked) while it is held;
        503 with Retry-After when the budget cannot take it."""
        length = declared_length(request)
        size = length if length is not None and length <= max_body else max_body
        if self.held + size > self.limit:
            raise HTTPException(503, "busy: too many request bodies in flight",
                                {"Retry-After": "1"})
        self.held += size
        try:
            yield
        finally:
            self.held -= size


def declared_length(request) -> int | None:
    """The Content-Length (h11 has checked that it is digits), None when there is none."""
    length = request.headers.get("content-length")
    if length is None:
        return None
    try:
        return int(length)
    except ValueError:
        raise HTTPException(400, "a Content-Length that is not a number") from None


async def read_body(request, max_body: int, timeout: float) -> bytes:
    length = declared_length(request)
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    if length is None and not chunked:
        raise HTTPException(411, "send a Content-Length (or a chunked body)")
    if length is not None and length > max_body:
        raise HTTPException(413, f"body of {length:,} bytes, over --max-body {max_body:,}")

    async def gather() -> bytes:
        parts, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_body:
                raise HTTPException(413, f"body over --max-body {max_body:,} bytes")
            parts.append(chunk)
        return b"".join(parts)

    try:
        body = await asyncio.wait_for(gather(), timeout)
        request.scope["fer_edge.body_read"] = True     # an error now keeps the connection
        return body
    except asyncio.TimeoutError:
        raise HTTPException(408, f"the body did not come within --request-timeout "
                            f"{timeout:g} s") from None
    except ClientDisconnect:
        raise HTTPException(400, "the client went before its body was sent") from None


async def read_image(request, max_body: int, timeout: float) -> bytes:
    """The image: the raw body (an image/* or application/octet-stream type), or the first
    file of a multipart/form-data body."""
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    if not (kind.startswith("image/") or kind in RAW_TYPES or kind == "multipart/form-data"):
        raise HTTPException(415, f"Content-Type {kind[:60]}: send an image (image/*, "
                            f"application/octet-stream or multipart/form-data)")
    body = await read_body(request, max_body, timeout)
    if not body:
        raise HTTPException(400, "empty body: send an image")
    if kind == "multipart/form-data":
        return first_file(content_type, body)
    return body


def first_file(content_type: str, body: bytes) -> bytes:
    """The first non-empty file (or named field) of a multipart/form-data body (the standard
    library's email parser: nothing more to install)."""
    from email.errors import MessageError
    from email.parser import BytesParser
    from email.policy import HTTP

    try:
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body)
        if not message.is_multipart():
            raise HTTPException(400, "a multipart/form-data body without parts (is its "
                                "boundary= right?)")
        for part in message.iter_parts():
            if part.get_filename() is not None or part.get_param(
                    "name", header="content-disposition"):
                data = part.get_payload(decode=True)
                if data:
                    return data
    except (MessageError, ValueError, TypeError, LookupError, UnicodeError):
        raise HTTPException(400, "a multipart/form-data body that does not parse") from None
    raise HTTPException(400, "no file in the multipart/form-data body")
