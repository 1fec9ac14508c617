"""Helpers of the serve tests: the real server on 127.0.0.1 (in a thread of the test's process,
or as its own `fer-edge serve` process) and clients over urllib or raw sockets."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="pip install '.[serve]' (uvicorn and Starlette)")
pytest.importorskip("starlette", reason="pip install '.[serve]' (uvicorn and Starlette)")

from fer_edge.serve import serve  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.jpg"
FER_EDGE = Path(sys.executable).parent / "fer-edge"


class Running:
    """`serve(**options)` in a thread, on a free port."""

    def __init__(self, **options):
        self.server = None
        ready = threading.Event()

        def on_ready(server):                  # called on the server's event loop
            self.server, self.loop = server, type(asyncio.get_running_loop())
            ready.set()

        self.thread = threading.Thread(target=serve, kwargs={"port": 0, **options,
                                                             "ready": on_ready}, daemon=True)
        self.thread.start()
        assert ready.wait(60), "the server did not start"
        self.port = self.server.port
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self):
        self.server.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the server did not stop"


class Process:
    """`fer-edge serve ARGS` as its own process (signals, memory), on a free port."""

    def __init__(self, *args, port: int | None = None):
        from cli_helpers import free_port

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([str(FER_EDGE), "serve", "--port", str(self.port),
                                      *map(str, args)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.proc.stderr.read()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.proc.kill()
        raise AssertionError("serve did not start")

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def terminate(self, timeout: float = 30) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


def request(url, data=None, headers=None, method=None, timeout=60):
    """(status, headers (case-insensitive), body) of one request; errors are answers too."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def post_image(base, data: bytes, query="", content_type="image/jpeg", headers=None):
    return request(f"{base}/v1/classify{query}", data,
                   {"Content-Type": content_type, **(headers or {})}, "POST")


def raw(port: int, data: bytes, timeout: float = 10, shut: bool = True) -> bytes:
    """Send `data` as it is, then read until the server closes (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_all(s)


def read_all(s: socket.socket) -> bytes:
    answer = b""
    try:
        while chunk := s.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def status_of(answer: bytes) -> int:
    """The status of the first response in `answer` (0: none)."""
    line = answer.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[0].startswith(b"HTTP/") else 0


def json_body(answer: bytes):
    """The body of the first response in `answer`, which must be one line of JSON."""
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    body = body[:length]
    assert b"application/json" in head.lower() and body.endswith(b"\n") \
        and body.count(b"\n") == 1, answer[:500]
    return json.loads(body)


def one_line_json_error(body: bytes) -> str:
    assert body.count(b"\n") == 1, body
    obj = json.loads(body)
    assert list(obj) == ["error"], obj
    return obj["error"]


def wait_for(predicate, seconds: float = 20, every: float = 0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()

