"""A request's body within --max-body and --request-timeout, judged before it is read: a
missing length (411), a length over the limit (413, the connection then closed unread), a
chunked body counted as it comes (413 as soon as it passes the limit), a body that does not
arrive in time (408). h11 has already refused a negative or malformed Content-Length (400)."""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

RAW_TYPES = ("application/octet-stream", "")


async def read_body(request, max_body: int, timeout: float) -> bytes:
    length = request.headers.get("content-length")
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    if length is None and not chunked:
        raise HTTPException(411, "send a Content-Length (or a chunked body)")
    if length is not None and int(length) > max_body:
        raise HTTPException(413, f"body of {int(length):,} bytes, over --max-body {max_body:,}")

    async def gather() -> bytes:
        parts, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_body:
                raise HTTPException(413, f"body over --max-body {max_body:,} bytes")
            parts.append(chunk)
        return b"".join(parts)

    try:
        return await asyncio.wait_for(gather(), timeout)
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
