"""The HTTP server under `fer-edge serve`: uvicorn with its pure-Python h11 protocol
(reports/serve/README.md says why), plus what uvicorn leaves to its user:

- a connection cap: a connection over --max-connections is answered 503 and closed at once,
  so idle or half-open sockets cannot pile up without bound;
- a request timeout: a request whose headers have not all come within --request-timeout of the
  connection opening (or of the last answer on a kept-alive one) gets 408 and is closed
  (slowloris); uvicorn's own idle timer is reset by every byte a trickling client sends;
- every error uvicorn writes itself (a request h11 cannot parse) is one line of JSON;
- SIGINT and SIGTERM: stop accepting, end the endless streams, answer the requests in flight
  (up to --shutdown-timeout), then return so that the caller releases the source and the pool.

The event loop is uvloop where the `serve` extra installed it (x86-64 and 64-bit ARM on Linux
and macOS: served/in-process throughput 0.83x against 0.78x on asyncio's loop, in one interleaved
run, reports/serve/README.md), else asyncio's own: the pure-Python fallback of every other board.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import threading

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .app import State

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def json_error(status: int, reason: str, message: str, extra: str = "") -> bytes:
    """A whole HTTP/1.1 error response, written by the protocol itself (no ASGI cycle)."""
    body = json.dumps({"error": message}).encode() + b"\n"
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n").encode() + body


class Protocol(H11Protocol):
    """uvicorn's h11 protocol with the connection cap, the request timeout and JSON errors."""

    max_connections = 512          # set on the subclass made for each server
    request_timeout = 20.0
    metrics = None

    def _refuse(self, transport, status: int, reason: str, message: str, extra: str = ""):
        transport.write(json_error(status, reason, message, extra))
        transport.close()
        if self.metrics is not None:
            self.metrics.request("connection", status)

    def connection_made(self, transport) -> None:
        if len(self.server_state.connections) >= self.max_connections:
            self._refuse(transport, 503, "Service Unavailable", "too many connections: try "
                         "again later", "Retry-After: 1\r\n")
            self.transport = None
            return
        super().connection_made(transport)
        self._request_timer = None
        self._arm_request_timer()

    def _arm_request_timer(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
        self._request_timer = self.loop.call_later(self.request_timeout, self._request_timed_out)

    def _request_timed_out(self) -> None:
        """Close a connection still waiting for a request's headers (its body has its own
        deadline in the app)."""
        if self.transport is None or self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE and (self.cycle is None
                                                  or self.cycle.response_complete):
            self._refuse(self.transport, 408, "Request Timeout", "the request did not come "
                         "within --request-timeout")

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport is not None and not self.transport.is_closing():
            self._arm_request_timer()

    def connection_lost(self, exc) -> None:
        if self.transport is None:       # refused by the cap: never counted
            return
        if self._request_timer is not None:
            self._request_timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport is not None:
            super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        self._refuse(self.transport, 400, "Bad Request", "not an HTTP/1.1 request this server "
                     "reads (bad request line, header or length)")

    def shutdown(self) -> None:
        if self.transport is not None:
            super().shutdown()


class Server(uvicorn.Server):
    """uvicorn's Server with our signal handling: a signal starts the graceful shutdown and is
    not raised again afterwards (uvicorn's default would kill the process before the caller
    releases the live source and the workers)."""

    def __init__(self, config, state: State, ready=None):
        super().__init__(config)
        self.state, self.ready = state, ready

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.ready is not None:
            self.ready(self)

    async def shutdown(self, sockets=None) -> None:
        self.state.stopping.set()        # the endless streams end within a second
        await super().shutdown(sockets)

    # for callers in another thread (tests, benchmarks)
    @property
    def port(self) -> int:
        return self.bound.getsockname()[1]

    def stop(self) -> None:
        self.should_exit = True


def listen(host: str, port: int) -> socket.socket:
    """The listening socket (OSError when the address is taken or not ours)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=2048)


def make_server(asgi_app, state: State, sock: socket.socket, *, max_connections: int,
                request_timeout: float, idle_timeout: float, shutdown_timeout: float,
                certfile=None, keyfile=None, ready=None) -> Server:
    protocol = type("FerEdgeProtocol", (Protocol,), {"max_connections": max_connections,
                                                     "request_timeout": request_timeout,
                                                     "metrics": state.metrics})
    config = uvicorn.Config(
        asgi_app, http=protocol, ws="none", lifespan="off", log_config=None, access_log=False,
        proxy_headers=False, server_header=False, timeout_keep_alive=idle_timeout,
        timeout_graceful_shutdown=shutdown_timeout,
        ssl_certfile=None if certfile is None else str(certfile),
        ssl_keyfile=None if keyfile is None else str(keyfile))
    server = Server(config, state, ready)
    server.bound = sock
    return server


def event_loop() -> tuple[str, object]:
    """(name, factory) of the event loop serve runs on: uvloop when installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return "asyncio", asyncio.new_event_loop
    return "uvloop", uvloop.new_event_loop


def run(server: Server, loop_factory=asyncio.new_event_loop) -> None:
    """Serve until a signal or server.stop(); returns once the requests in flight are answered."""
    quiet_uvicorn()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(server.serve(sockets=[server.bound]))


def quiet_uvicorn() -> None:
    """uvicorn's own lines (start-up, shutdown) hidden; its errors still reach stderr."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.ERROR)
