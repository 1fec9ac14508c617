"""`fer-edge serve` against what a stranger on the network sends, on 127.0.0.1 over raw sockets
(the real server, no mocks): lying and missing lengths, chunked bodies over the limit, a
slowloris, a connection flood, garbage request lines, metrics growth, the source's password in
/healthz, the token rules and the page's sign-in, CORS, TLS, 500 and 504 as JSON, and SIGTERM
with a request in flight."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest
from serve_helpers import (ASTRONAUT, Process, Running, json_body, one_line_json_error,
                           post_image, raw, read_all, request, status_of, wait_for)

IMAGE = ASTRONAUT.read_bytes()
LIMIT = 1_000_000
REQUEST_TIMEOUT = 1.5
IDLE_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def srv():
    running = Running(workers=1, queue=2, max_body=LIMIT, max_connections=16,
                      request_timeout=REQUEST_TIMEOUT, idle_timeout=IDLE_TIMEOUT)
    yield running
    running.close()


def post_head(length_header: str, content_type: str = "image/jpeg") -> bytes:
    return (f"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"{length_header}\r\n").encode()


def assert_served(srv) -> None:
    status, _, body = post_image(srv.url, IMAGE)
    assert status == 200 and json.loads(body)["faces"], body


# ------------------------------------------------------------------------------ lengths

@pytest.mark.parametrize("length", ["-1", "+5", "0x10", "1e6", "12 34", "99999999999999999999999"])
def test_a_lying_content_length_is_400_in_one_line_and_nothing_more_is_read(srv, length):
    t0 = time.monotonic()
    answer = raw(srv.port, post_head(f"Content-Length: {length}\r\n") + b"\xff" * 3_000_000,
                 shut=False)
    assert time.monotonic() - t0 < 5, "the server read the stream to its end"
    assert status_of(answer) in (400, 413), answer[:200]
    one_line_json_error(answer.partition(b"\r\n\r\n")[2])
    assert_served(srv)


def test_an_oversized_length_is_413_before_the_body_is_read(srv):
    t0 = time.monotonic()
    answer = raw(srv.port, post_head(f"Content-Length: {LIMIT + 1}\r\n") + b"\xff\xd8" * 100,
                 shut=False)
    assert time.monotonic() - t0 < REQUEST_TIMEOUT, "the server waited for the body"
    assert status_of(answer) == 413 and "--max-body" in json_body(answer)["error"]
    assert_served(srv)


def test_a_missing_length_is_411(srv):
    answer = raw(srv.port, post_head("") + IMAGE[:1000], shut=False)
    assert status_of(answer) == 411 and "Content-Length" in json_body(answer)["error"]


def test_a_chunked_body_over_the_limit_is_413_as_it_passes_it(srv):
    chunk = b"%x\r\n" % 65536 + b"\xff" * 65536 + b"\r\n"
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(post_head("Transfer-Encoding: chunked\r\n"))
        sent, cut = 0, False
        try:
            while sent < 30 * LIMIT:          # the server closes long before the stream ends
                s.sendall(chunk)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            cut = True                        # (what was sent before sits in socket buffers)
        answer = read_all(s)
    assert cut, f"the server read all {sent:,} bytes"
    assert status_of(answer) == 413 and "--max-body" in json_body(answer)["error"]


def test_a_chunked_image_within_the_limit_is_classified(srv):
    body = b"".join(b"%x\r\n" % len(IMAGE[i:i + 4096]) + IMAGE[i:i + 4096] + b"\r\n"
                    for i in range(0, len(IMAGE), 4096)) + b"0\r\n\r\n"
    answer = raw(srv.port, post_head("Transfer-Encoding: chunked\r\nConnection: close\r\n")
                 + body, shut=False)
    assert status_of(answer) == 200 and json_body(answer)["faces"]


# ------------------------------------------------------------------ slow and many clients

def test_slowloris_headers_are_cut_at_the_request_timeout(srv):
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        t0 = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        closed_after = None
        try:
            for _ in range(40):               # a header byte every 0.2 s, never the blank line
                time.sleep(0.2)
                s.sendall(b"X")
                assert_served(srv) if _ == 2 else None   # others are served meanwhile
        except (BrokenPipeError, ConnectionResetError):
            closed_after = time.monotonic() - t0
        answer = read_all(s)
        closed_after = closed_after or time.monotonic() - t0
    assert closed_after < REQUEST_TIMEOUT + 3, closed_after
    assert status_of(answer) == 408 and json_body(answer)["error"]


def test_a_slow_body_is_cut_at_the_request_timeout(srv):
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(post_head(f"Content-Length: {len(IMAGE)}\r\n") + IMAGE[:100])
        t0 = time.monotonic()
        try:
            for i in range(100, 140):
                time.sleep(0.2)
                s.sendall(IMAGE[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_all(s)
    assert time.monotonic() - t0 < REQUEST_TIMEOUT + 3
    assert status_of(answer) == 408 and "--request-timeout" in json_body(answer)["error"]


def test_an_idle_connection_is_closed_and_a_kept_alive_one_serves_twice(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    for _ in range(2):                        # keep-alive: one connection, two answers
        conn.request("POST", "/v1/classify", IMAGE, {"Content-Type": "image/jpeg"})
        answer = conn.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["faces"]
    sock = conn.sock
    time.sleep(IDLE_TIMEOUT + 1)
    sock.settimeout(5)
    assert sock.recv(10) == b"", "the idle connection is still open"
    conn.close()


def test_connections_over_the_cap_are_answered_503_and_closed(srv):
    # 20 connections at once (well within --request-timeout): the cap of 16 refuses the rest
    held = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(20)]
    try:
        answers = []
        for s in held:
            s.settimeout(0.2)
            try:
                answers.append(s.recv(4096))
            except socket.timeout:
                answers.append(b"")           # held open, waiting for a request
        refused = [a for a in answers if status_of(a) == 503]
        assert len(refused) >= 4 and not answers[0], answers
        assert "too many connections" in json_body(refused[0])["error"]
        assert b"retry-after: 1" in refused[0].lower()
    finally:
        for s in held:
            s.close()
    assert wait_for(lambda: post_image(srv.url, IMAGE)[0] == 200, 5)


# --------------------------------------------------------------------- what strangers see

@pytest.mark.parametrize("line", [b"GARBAGE\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\r\n\r\n",
                                  b"GET /\x00 HTTP/1.1\r\n\r\n", b"GET\r\n\r\n",
                                  b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                                  b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 70000 + b"\r\n\r\n"])
def test_a_garbage_request_is_one_line_of_json_and_the_next_one_is_served(srv, line):
    answer = raw(srv.port, line)
    assert status_of(answer) in (400, 431), answer[:200]
    assert json_body(answer)["error"]
    assert_served(srv)


def test_unknown_paths_do_not_grow_the_metrics(srv):
    def metrics() -> str:
        return request(f"{srv.url}/metrics")[2].decode()

    for i in range(10):
        request(f"{srv.url}/x{i}\"y")
    metrics()
    before = metrics()
    for i in range(500):
        request(f'{srv.url}/x{i}%22y%0a{{le="1"}}')
    after = metrics()
    assert len(after.splitlines()) == len(before.splitlines())
    assert 'route="other",status="4xx"' in after and "x1" not in after
    routes = {line.split('route="')[1].split('"')[0] for line in after.splitlines()
              if line.startswith("fer_edge_requests_total{")}
    assert routes <= {"/", "/login", "/healthz", "/metrics", "/v1/models", "/v1/classify",
                      "/events", "/stream.mjpg", "/web", "/web/{name:path}", "other",
                      "connection"}, routes


def test_the_source_password_is_nowhere_in_healthz_or_the_log(tmp_path):
    # a stream address that refuses at once: the live source reports its error
    from cli_helpers import free_port

    url = f"rtsp://alice:s3cr3tpw@127.0.0.1:{free_port()}/cam"
    server = Process("--source", url, "--workers", "1", "--token", "tok")
    try:
        auth = {"Authorization": "Bearer tok"}

        def reported():
            body = request(f"{server.url}/healthz", headers=auth)[2]
            source = json.loads(body)["source"]
            return body if source["state"] == "reconnecting" and source["error"] else None

        body = wait_for(reported, 60, 0.5)
        assert body, request(f"{server.url}/healthz", headers=auth)[2]
        assert json.loads(body)["source"]["source"] == "stream"
        stranger = request(f"{server.url}/healthz")[2]
        assert json.loads(stranger) == {"status": "ok"}
        _, err = server.terminate()
    finally:
        server.close()
    assert "rtsp" not in body.decode() and url.split("@")[1] not in body.decode(), body
    for text in (body.decode(), err):
        assert "s3cr3tpw" not in text and "alice" not in text, text


def test_the_token_rules_and_the_page_sign_in():
    running = Running(token="s3cret", workers=1)
    try:
        url = running.url
        for path in ("/metrics", "/v1/models", "/events", "/stream.mjpg"):
            status, headers, body = request(f"{url}{path}")
            assert status == 401 and headers["WWW-Authenticate"] == "Bearer", path
            assert "token" in one_line_json_error(body)
        # the page sends a stranger to its sign-in form, which posts the token in its body
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = read_all(s)
        assert status_of(answer) == 303 and b"location: /login" in answer.lower()
        status, _, form = request(f"{url}/login")
        assert status == 200 and b'method="post"' in form and b"access_token" not in form
        assert request(f"{url}/login", b"token=wrong", method="POST")[0] == 401

        conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        conn.request("POST", "/login", "token=s3cret",
                     {"Content-Type": "application/x-www-form-urlencoded"})
        answer = conn.getresponse()
        answer.read()
        cookie = answer.getheader("Set-Cookie")
        assert answer.status == 303 and answer.getheader("Location") == "/"
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert "s3cret" not in cookie                       # an HMAC of it, not the token
        session = {"Cookie": cookie.split(";")[0]}
        status, _, page = request(f"{url}/", headers=session)
        assert status == 200 and b"EventSource" in page
        assert request(f"{url}/metrics", headers=session)[0] == 200
        health = json.loads(request(f"{url}/healthz", headers=session)[2])
        assert set(health) == {"status", "model", "uptime_seconds", "source"}
        forged = {"Cookie": "fer_edge_session=" + "0" * 64}
        assert request(f"{url}/metrics", headers=forged)[0] == 401
        assert request(f"{url}/metrics", headers={"Cookie": "a=\"\\\x7f"})[0] == 401
    finally:
        running.close()


def test_cors_is_off_unless_asked_for(srv):
    origin = {"Origin": "http://elsewhere.example"}
    status, headers, _ = request(f"{srv.url}/v1/models", headers=origin)
    assert status == 200 and headers.get("Access-Control-Allow-Origin") is None
    running = Running(workers=1, cors_origin="http://app.example")
    try:
        asked = {"Origin": "http://app.example"}
        _, headers, _ = request(f"{running.url}/v1/models", headers=asked)
        assert headers["Access-Control-Allow-Origin"] == "http://app.example"
        _, headers, _ = request(f"{running.url}/v1/models", headers=origin)
        assert headers.get("Access-Control-Allow-Origin") is None
        status, headers, _ = request(f"{running.url}/v1/classify", method="OPTIONS",
                                     headers={**asked, "Access-Control-Request-Method": "POST"})
        assert status == 204 and "POST" in headers["Access-Control-Allow-Methods"]
    finally:
        running.close()


# ------------------------------------------------------------------ 500 and 504 are JSON

def test_a_crash_is_500_and_a_stuck_model_504_in_one_line_of_json(srv, monkeypatch, capfd):
    from fer_edge.serve import app

    def crash(clf, data, query):
        raise RuntimeError("a bug")

    monkeypatch.setattr(app, "classify_bytes", crash)
    status, _, body = post_image(srv.url, IMAGE)
    assert status == 500 and "RuntimeError" in one_line_json_error(body)
    assert "500 on POST /v1/classify: RuntimeError: a bug" in capfd.readouterr().err

    def stuck(clf, data, query):
        time.sleep(1.5)
        return []

    monkeypatch.setattr(app, "classify_bytes", stuck)
    monkeypatch.setattr(app, "INFERENCE_TIMEOUT", 0.3)
    status, _, body = post_image(srv.url, IMAGE)
    assert status == 504 and "0.3 s" in one_line_json_error(body)
    time.sleep(1.5)                                   # the stuck call ends on its worker
    monkeypatch.undo()
    assert_served(srv)


# ----------------------------------------------------------------------------- TLS, SIGTERM

def test_tls_with_a_self_signed_certificate(tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    running = Running(workers=1, certfile=str(cert), keyfile=str(key), token="t")
    try:
        context = ssl.create_default_context(cafile=str(cert))
        conn = http.client.HTTPSConnection("127.0.0.1", running.port, timeout=10,
                                           context=context)
        conn.request("POST", "/v1/classify", IMAGE, {"Content-Type": "image/jpeg",
                                                     "Authorization": "Bearer t"})
        answer = conn.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["faces"]
        conn.request("POST", "/login", "token=t")
        answer = conn.getresponse()
        answer.read()
        assert "Secure" in answer.getheader("Set-Cookie")
        conn.close()
        # plain HTTP on the TLS port is not answered with data
        assert status_of(raw(running.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")) == 0
    finally:
        running.close()


def test_a_bad_certificate_is_one_line(tmp_path, capsys):
    from fer_edge.cli import main

    (tmp_path / "c.pem").write_text("not a certificate")
    assert main(["serve", "--port", "0", "--certfile", str(tmp_path / "c.pem"),
                 "--keyfile", str(tmp_path / "c.pem")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--certfile" in err
    assert main(["serve", "--port", "0", "--certfile", str(tmp_path / "c.pem")]) == 2
    assert "go together" in capsys.readouterr().err


def _server_with_a_live_clip(tmp_path) -> "Process":
    """A server whose live source is a 40-frame clip of the astronaut's face."""
    from synth import moving_faces_video

    import cv2

    tile = cv2.imread(str(ASTRONAUT))[60:320, 200:460]
    clip = moving_faces_video(tmp_path / "clip.mp4", [tile], [(60, 100, 300, 100)],
                              frames=40, fps=10, side=180)
    return Process("--workers", "1", "--source", clip)


def test_sigterm_answers_the_request_in_flight_then_exits(tmp_path):
    server = _server_with_a_live_clip(tmp_path)
    try:
        assert wait_for(lambda: json.loads(request(f"{server.url}/healthz")[2])["source"][
            "frames"] > 0, 60)
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
            s.sendall(post_head(f"Content-Length: {len(IMAGE)}\r\n") + IMAGE[:5000])
            time.sleep(0.3)
            server.proc.send_signal(15)               # SIGTERM with the body half sent
            time.sleep(1.0)
            assert server.proc.poll() is None, "it left the request in flight"
            with pytest.raises(OSError):              # no new connection is taken
                socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
            s.sendall(IMAGE[5000:])
            answer = read_all(s)
        assert status_of(answer) == 200 and json_body(answer)["faces"]
        rc, err = server.terminate(timeout=30)
        assert rc == 0, err
        assert err.strip().splitlines()[-1].startswith("fer-edge serve: stopped"), err
    finally:
        server.close()


def test_sigterm_ends_the_endless_streams(tmp_path):
    server = _server_with_a_live_clip(tmp_path)
    try:
        streams = []
        for path in ("/events", "/stream.mjpg"):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert s.recv(100).startswith(b"HTTP/1.1 200")
            streams.append(s)
        t0 = time.monotonic()
        rc, err = server.terminate(timeout=30)
        assert rc == 0 and time.monotonic() - t0 < 10, err
        for s in streams:
            read_all(s)                               # ended, not hung
            s.close()
    finally:
        server.close()


def test_many_requests_at_once_are_answered_200_or_503(srv):
    results = []

    def one():
        results.append(post_image(srv.url, IMAGE)[0])

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 12 and set(results) <= {200, 503} and 200 in results, results


def test_bodies_in_flight_have_a_memory_budget(monkeypatch):
    from fer_edge.serve import body

    monkeypatch.setattr(body, "BUDGET_FLOOR", 0)        # the budget: 4 x --max-body
    running = Running(workers=1, max_body=100_000)
    held = []
    try:
        for _ in range(4):                               # 4 bodies of --max-body, unfinished
            s = socket.create_connection(("127.0.0.1", running.port), timeout=10)
            s.sendall(post_head("Content-Length: 100000\r\n") + b"\xff\xd8")
            held.append(s)
        time.sleep(0.3)
        answer = raw(running.port, post_head("Content-Length: 50000\r\n") + b"\xff" * 50000,
                     shut=False)
        assert status_of(answer) == 503 and "bodies in flight" in json_body(answer)["error"]
        for s in held:
            s.close()
        held.clear()
        assert wait_for(lambda: post_image(running.url, IMAGE)[0] == 200, 5)
    finally:
        for s in held:
            s.close()
        running.close()


def test_a_static_folder_mounts_in_one_line_behind_the_token(tmp_path):
    (tmp_path / "index.html").write_text("<p>static</p>")
    running = Running(workers=1, token="t")
    try:
        running.server.config.app.mount_static("/docs", tmp_path)      # the one line
        auth = {"Authorization": "Bearer t"}
        status, _, body = request(f"{running.url}/docs/", headers=auth)
        assert status == 200 and body == b"<p>static</p>"
        assert request(f"{running.url}/docs/")[0] == 401
        status, _, body = request(f"{running.url}/docs/nothing.js", headers=auth)
        assert status == 404 and one_line_json_error(body)
        metrics = request(f"{running.url}/metrics", headers=auth)[2].decode()
        assert 'route="/docs",status="2xx"' in metrics and 'route="/docs",status="4xx"' in metrics
    finally:
        running.close()


def test_serve_runs_on_uvloop_where_installed_and_on_asyncios_loop_without_it(monkeypatch):
    pytest.importorskip("uvloop", reason="uvloop has no wheel for this platform")
    for hidden, module in ((False, "uvloop"), (True, "asyncio")):
        if hidden:
            monkeypatch.setitem(sys.modules, "uvloop", None)     # as on a board without it
        running = Running(workers=1, queue=2)
        try:
            assert running.loop.__module__.split(".")[0] == module, running.loop
            assert_served(running)
        finally:
            running.close()
