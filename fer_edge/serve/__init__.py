"""`fer-edge serve`: a live page and an HTTP API on the device. app.py (the routes, Starlette),
guard.py (token, metrics, CORS, JSON errors), body.py (bodies within their limits), server.py
(uvicorn: connection cap, timeouts, graceful shutdown, TLS), pool.py (the bounded inference
workers), live.py (the live source), metrics.py (Prometheus). The server is the `serve` extra
(`pip install '.[serve]'`: uvicorn and Starlette, pure Python); reports/serve/README.md says
why these."""

from __future__ import annotations

import ipaddress
import socket
import sys

from .. import options
from ..errors import FerEdgeError

SERVER_MODULES = {"uvicorn": "uvicorn", "starlette": "Starlette"}


def _server_installed() -> None:
    import importlib.util

    missing = [name for module, name in SERVER_MODULES.items()
               if importlib.util.find_spec(module) is None]
    if missing:
        raise FerEdgeError(f"serve needs {' and '.join(missing)}: pip install 'fer-edge[serve]'")


def _loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback
                   for info in socket.getaddrinfo(host, None))
    except (socket.gaierror, ValueError):
        return False


def _check(cfg) -> None:
    if not _loopback(cfg.host) and not cfg.token:
        raise FerEdgeError(f"--host {cfg.host} is reachable from other machines: give --token "
                           f"(every route but /healthz then needs it)")
    if (cfg.certfile is None) != (cfg.keyfile is None):
        raise FerEdgeError("--certfile and --keyfile go together (HTTPS needs both)")


def _tls_checked(cfg) -> None:
    """A certificate and key that do not load: one line now, not a traceback at start-up."""
    import ssl

    if cfg.certfile is None:
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            str(cfg.certfile), str(cfg.keyfile))
    except (ssl.SSLError, OSError) as e:
        raise FerEdgeError(f"--certfile {cfg.certfile} / --keyfile {cfg.keyfile}: not a PEM "
                           f"certificate and its key ({getattr(e, 'reason', None) or e})") \
            from None


def _web_page(path, labels) -> dict | None:
    """The files of GET /web/, the browser page for the server's model (None, said in a line,
    for a model the page cannot run: a .onnx)."""
    from ..edge.sources import quiet_native_stderr
    from ..web import page_files

    try:
        with quiet_native_stderr(always=True):     # the page's model checked on LiteRT
            return page_files(path, labels)
    except FerEdgeError as e:
        print(f"fer-edge serve: no /web page: {e}", file=sys.stderr, flush=True)
        return None


@options.takes("serve")
def serve(source=None, host=None, port=None, token=None, workers=None, queue=None,
          max_body=None, max_pixels=None, max_connections=None, request_timeout=None,
          idle_timeout=None, shutdown_timeout=None, certfile=None, keyfile=None,
          cors_origin=None, model=None, detector=None, no_detect=None, threads=None, tta=None,
          align=None, every=None, smooth=None, detect_every=None, ready=None):
    """Serve until SIGINT, SIGTERM or the server's stop(). `ready`, if given, is called with the
    server once it listens (its `port`, its `stop()`: tests and benchmarks)."""
    given = {k: v for k, v in locals().items() if k != "ready"}
    _server_installed()
    cfg = options.check("serve", given)
    _check(cfg)
    _tls_checked(cfg)
    from ..defaults import shipped_model
    from ..edge.classify import CLASSIFIER_OPTIONS, Classifier
    from ..edge.sources import quiet_native_stderr
    from ..shipped import shipped_rows
    from .app import State, make_app
    from .live import LiveSource, without_password
    from .pool import InferencePool
    from .server import event_loop, listen, make_server, run

    try:
        sock = listen(cfg.host, cfg.port)
    except OSError as e:
        raise FerEdgeError(f"cannot listen on {cfg.host}:{cfg.port} "
                           f"({e.strerror or e})") from None

    def classifier():
        return Classifier(**{k: cfg[k] for k in CLASSIFIER_OPTIONS if k in cfg})

    path = shipped_model(cfg.model)
    with quiet_native_stderr(always=True):     # LiteRT's start-up lines, before any thread
        pool = InferencePool(classifier, cfg.workers, cfg.queue)
        live_classifier = classifier() if cfg.source is not None else None
    models = {"default": {"file": path.name, "labels": pool.classifiers[0].names},
              "shipped": shipped_rows()}
    origins = tuple(o.strip() for o in (cfg.cors_origin or "").split(",") if o.strip())
    state = State(pool, models, cfg.token, cfg.max_body, cfg.max_pixels, cfg.request_timeout,
                  origins, secure_cookie=cfg.certfile is not None)
    if cfg.source is not None:
        state.live = LiveSource(str(cfg.source), live_classifier, state.metrics, cfg.every,
                                cfg.smooth, cfg.detect_every).start()
    web = _web_page(path, cfg.get("labels"))
    app = make_app(state, web)     # another static folder: app.mount_static(prefix, folder)
    server = make_server(app, state, sock, max_connections=cfg.max_connections,
                         request_timeout=cfg.request_timeout, idle_timeout=cfg.idle_timeout,
                         shutdown_timeout=cfg.shutdown_timeout, certfile=cfg.certfile,
                         keyfile=cfg.keyfile, ready=ready)
    scheme = "https" if cfg.certfile is not None else "http"
    shown = f"live source {without_password(str(cfg.source))}" if cfg.source is not None \
        else "API only"
    loop_name, loop_factory = event_loop()
    print(f"fer-edge serve: {scheme}://{cfg.host}:{sock.getsockname()[1]}/ ({shown}; "
          f"{loop_name} loop)", file=sys.stderr, flush=True)
    try:
        run(server, loop_factory)
    finally:
        sock.close()
        if state.live is not None:
            state.live.stop()
        pool.close()
    print("fer-edge serve: stopped (the requests in flight answered, the source released)",
          file=sys.stderr, flush=True)
