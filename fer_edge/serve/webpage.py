"""GET /web/: the browser page of `fer-edge export --target web` for the server's own model
(fer_edge/web builds it once at start-up and it is held in memory: about 20 MB, mostly
LiteRT.js's WebAssembly). The visitor's browser then detects and classifies the faces of its
own camera, or of ?image=URL, and nothing but the page's files crosses the network. Behind the
token like every route (the page's requests carry the /login cookie). A camera needs a secure
page: 127.0.0.1 / localhost, or HTTPS (--certfile) from another machine."""

from __future__ import annotations

from pathlib import PurePosixPath

from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".json": "application/json", ".wasm": "application/wasm",
         ".txt": "text/plain; charset=utf-8", "": "text/plain; charset=utf-8"}


def routes(files: dict[str, bytes]) -> list[Route]:
    """/web (to /web/: the page's URLs are relative to its folder) and /web/NAME."""

    async def folder(request):
        return RedirectResponse("/web/", 308)

    async def file(request):
        name = request.path_params["name"] or "index.html"
        data = files.get(name)
        if data is None:
            raise HTTPException(404, f"the web page has no file {name[:80]!r}")
        media = TYPES.get(PurePosixPath(name).suffix, "application/octet-stream")
        return Response(data, media_type=media, headers={"Cache-Control": "no-cache"})

    return [Route("/web", folder, methods=["GET"]),
            Route("/web/{name:path}", file, methods=["GET"])]
