"""`fer-edge serve`: a live page and an HTTP API on the device (server.py), a bounded pool of
inference workers (pool.py), the live source (live.py), Prometheus metrics (metrics.py) and the
image-header check that stops decompression bombs (edge/imagesize.py). Python's own http.server:
nothing to install beyond the runtime."""

from __future__ import annotations

import ipaddress
import socket
import sys

from .. import options
from ..errors import FerEdgeError


def _loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback
                   for info in socket.getaddrinfo(host, None))
    except (socket.gaierror, ValueError):
        return False


@options.takes("serve")
def serve(source=None, host=None, port=None, token=None, workers=None, queue=None,
          max_body=None, max_pixels=None, model=None, detector=None, no_detect=None,
          threads=None, tta=None, align=None, every=None, smooth=None, detect_every=None,
          ready=None):
    """Serve until interrupted. `ready`, if given, is called with the server once it listens
    (tests: the port it took)."""
    given = {k: v for k, v in locals().items() if k != "ready"}
    cfg = options.check("serve", given)
    if not _loopback(cfg.host) and not cfg.token:
        raise FerEdgeError(f"--host {cfg.host} is reachable from other machines: give --token "
                           f"(every route but /healthz then needs Authorization: Bearer TOKEN)")
    from ..defaults import shipped_model
    from ..edge.classify import CLASSIFIER_OPTIONS, Classifier
    from ..edge.sources import quiet_native_stderr
    from ..shipped import shipped_rows
    from .live import LiveSource
    from .pool import InferencePool
    from .server import App, make_server

    def classifier():
        return Classifier(**{k: cfg[k] for k in CLASSIFIER_OPTIONS if k in cfg})

    path = shipped_model(cfg.model)
    with quiet_native_stderr(always=True):     # LiteRT's start-up lines, before any thread
        pool = InferencePool(classifier, cfg.workers, cfg.queue)
        live_classifier = classifier() if cfg.source is not None else None
    models = {"default": {"file": path.name, "labels": pool.classifiers[0].names},
              "shipped": shipped_rows()}
    app = App(pool, models, cfg.token, cfg.max_body, cfg.max_pixels)
    if cfg.source is not None:
        app.live = LiveSource(str(cfg.source), live_classifier, app.metrics, cfg.every,
                              cfg.smooth, cfg.detect_every).start()
    try:
        server = make_server(app, cfg.host, cfg.port)
    except OSError as e:
        if app.live is not None:
            app.live.stop()
        pool.close()
        raise FerEdgeError(f"cannot listen on {cfg.host}:{cfg.port} ({e.strerror})") from None
    print(f"fer-edge serve: http://{cfg.host}:{server.server_address[1]}/ "
          f"({'live source ' + str(cfg.source) if cfg.source is not None else 'API only'})",
          file=sys.stderr, flush=True)
    if ready is not None:
        ready(server)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if app.live is not None:
            app.live.stop()
        pool.close()
