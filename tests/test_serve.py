"""`fer-edge serve` against real HTTP on 127.0.0.1 (the server in a thread of this process, the
client urllib): the API answers as `classify --format json`, every bad request is a 4xx with one
line of JSON and the server answers the next one, the token rules, the 503 path under a tiny
queue and a slowed model, and a live source that fails and comes back."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.request

import cv2
import numpy as np
import pytest
from serve_helpers import ASTRONAUT, Running, post_image, request

from fer_edge.cli import main


@pytest.fixture(scope="module")
def api():
    running = Running(workers=2, queue=4, max_body=5 * 2**20, max_pixels=60_000_000)
    yield running
    running.close()


def classify_json(path: Path, *extra: str) -> list:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["classify", str(path), "--format", "json", *extra]) == 0
    return json.loads(out.getvalue().splitlines()[0])["faces"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve_images")
    img = cv2.imread(str(ASTRONAUT))
    cv2.imwrite(str(folder / "astro.png"), cv2.resize(img, None, fx=0.7, fy=0.7))
    cv2.imwrite(str(folder / "two.jpg"), np.hstack([img, cv2.flip(img, 1)]))
    cv2.imwrite(str(folder / "blank.jpg"), np.full((300, 300, 3), 90, np.uint8))
    shutil.copy(ASTRONAUT, folder / "astronaut.jpg")
    return folder


def test_the_api_answers_as_classify(api, images):
    for path in sorted(images.iterdir()):
        status, _, body = post_image(api.url, path.read_bytes(),
                                     content_type="image/png" if path.suffix == ".png"
                                     else "image/jpeg")
        assert status == 200, body
        assert json.loads(body)["faces"] == classify_json(path), path.name


def test_multipart_upload_and_query_options(api, images):
    data = (images / "astronaut.jpg").read_bytes()
    boundary = "fer-edge-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
            f"filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() + data + \
        f"\r\n--{boundary}--\r\n".encode()
    status, _, answer = post_image(api.url, body, content_type=f"multipart/form-data; "
                                   f"boundary={boundary}")
    assert status == 200 and json.loads(answer)["faces"] == classify_json(images / "astronaut.jpg")
    for path in (images / "two.jpg", images / "astro.png"):
        status, _, flipped = post_image(api.url, path.read_bytes(), "?tta=true&align=false")
        assert status == 200
        assert json.loads(flipped)["faces"] == classify_json(path, "--tta", "--no-align")


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(
        ">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00" * 64


@pytest.mark.parametrize("name,body,query,content_type,status", [
    ("empty body", b"", "", "image/jpeg", 400),
    ("not an image", b"hello, this is text" * 10, "", "image/jpeg", 415),
    ("truncated jpeg", ASTRONAUT.read_bytes()[:3000], "", "image/jpeg", 422),
    ("decompression bomb", _png_header(100_000, 100_000), "", "image/png", 413),
    ("wrong content type", ASTRONAUT.read_bytes(), "", "text/plain", 415),
    ("unknown query option", ASTRONAUT.read_bytes(), "?sharpen=1", "image/jpeg", 400),
    ("bad query value", ASTRONAUT.read_bytes(), "?tta=maybe", "image/jpeg", 400),
])
def test_a_bad_request_is_one_line_of_json_and_the_next_one_is_served(api, name, body, query,
                                                                       content_type, status):
    got, _, answer = post_image(api.url, body, query, content_type)
    assert got == status, (name, answer)
    assert answer.count(b"\n") == 1 and list(json.loads(answer)) == ["error"], answer
    ok, _, _ = post_image(api.url, ASTRONAUT.read_bytes())
    assert ok == 200


def test_a_body_over_the_limit_is_refused_before_it_is_read(api):
    import socket

    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                  b"Content-Length: 999999999\r\n\r\n" + b"\xff\xd8" * 100)
        answer = b""
        while chunk := s.recv(65536):      # the server closes: the rest is not read
            answer += chunk
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413") and "--max-body" in answer
    assert post_image(api.url, ASTRONAUT.read_bytes())[0] == 200


@pytest.mark.slow
def test_a_50_megapixel_photo_is_classified(api, tmp_path):
    big = np.full((6250, 8000, 3), 200, np.uint8)
    face = cv2.resize(cv2.imread(str(ASTRONAUT)), (2400, 2400))
    big[1000:3400, 2000:4400] = face
    ok, buf = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert len(buf) < 5 * 2**20
    status, _, answer = post_image(api.url, buf.tobytes())
    faces = json.loads(answer)["faces"]
    assert status == 200 and len(faces) == 1
    x, y, w, h = faces[0]["box"]
    assert 2000 <= x + w / 2 <= 4400 and 1000 <= y + h / 2 <= 3400   # in the 50 MP frame


def test_models_health_and_metrics(api):
    assert post_image(api.url, ASTRONAUT.read_bytes())[0] == 200
    status, _, body = request(f"{api.url}/v1/models")
    assert status == 200 and json.loads(body)["default"]["file"].endswith(".tflite")
    status, _, body = request(f"{api.url}/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, headers, body = request(f"{api.url}/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'fer_edge_requests_total{route="/v1/classify",status="2xx"}' in text
    assert 'fer_edge_classify_seconds_bucket{le="+Inf"}' in text
    assert request(f"{api.url}/nowhere")[0] == 404


def test_the_token_guards_every_route_but_healthz():
    running = Running(token="s3cret", workers=1)
    try:
        assert post_image(running.url, ASTRONAUT.read_bytes())[0] == 401
        assert request(f"{running.url}/metrics")[0] == 401
        wrong = {"Authorization": "Bearer s3cres"}
        assert post_image(running.url, ASTRONAUT.read_bytes(), headers=wrong)[0] == 401
        right = {"Authorization": "Bearer s3cret"}
        assert post_image(running.url, ASTRONAUT.read_bytes(), headers=right)[0] == 200
        assert request(f"{running.url}/metrics", headers=right)[0] == 200
        # the token in the URL is not a way in: it would land in logs and histories
        assert request(f"{running.url}/metrics?access_token=s3cret")[0] == 401
        status, _, body = request(f"{running.url}/healthz")
        assert status == 200 and json.loads(body) == {"status": "ok"}
    finally:
        running.close()


def test_a_reachable_host_without_a_token_is_refused(capsys):
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [err.strip()] and "--token" in err


def test_a_full_queue_answers_503_with_retry_after(monkeypatch):
    from fer_edge.serve import app

    slow = app.classify_bytes

    def slowed(clf, data, query):
        time.sleep(1.5)
        return slow(clf, data, query)

    monkeypatch.setattr(app, "classify_bytes", slowed)
    running = Running(workers=1, queue=1)
    try:
        results = []

        def one():
            results.append(post_image(running.url, ASTRONAUT.read_bytes()))

        threads = [threading.Thread(target=one) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        statuses = sorted(r[0] for r in results)
        assert statuses.count(200) == 2 and statuses.count(503) == 3, statuses
        assert all(r[1].get("Retry-After") == "1" for r in results if r[0] == 503)
    finally:
        running.close()


def test_a_live_source_that_fails_comes_back(tmp_path, monkeypatch):
    from synth import moving_faces_video

    from fer_edge.serve import live

    monkeypatch.setattr(live, "BACKOFF_FIRST", 0.2)
    monkeypatch.setattr(live, "BACKOFF_MAX", 0.5)
    clip = tmp_path / "clip.mp4"
    running = Running(source=str(clip), workers=1)     # not there yet
    try:
        deadline = time.monotonic() + 20
        health = {}
        while time.monotonic() < deadline:
            health = json.loads(request(f"{running.url}/healthz")[2])["source"]
            if health["state"] == "reconnecting":
                break
            time.sleep(0.1)
        assert health["state"] == "reconnecting" and health["error"], health
        img = cv2.imread(str(ASTRONAUT))
        tile = img[60:320, 200:460]
        moving_faces_video(tmp_path / "made.mp4", [tile], [(60, 100, 300, 100)], frames=20,
                           fps=10, side=180)
        (tmp_path / "made.mp4").rename(clip)
        while time.monotonic() < deadline + 20:
            health = json.loads(request(f"{running.url}/healthz")[2])["source"]
            if health["state"] == "running" and health["frames"] > 0:
                break
            time.sleep(0.1)
        assert health["state"] == "running" and health["reconnects"] >= 1, health
        # each frame's result on /events, as classify --format json writes it
        with urllib.request.urlopen(f"{running.url}/events", timeout=20) as events:
            frame = {"faces": []}
            for _ in range(200):               # frames until one shows the face
                line = events.readline().strip()
                if line.startswith(b"data: "):
                    frame = json.loads(line[len(b"data: "):])
                    if frame["faces"]:
                        break
        assert set(frame) == {"file", "frame", "time", "faces"}
        assert frame["faces"] and {"track", "box", "emotion"} <= set(frame["faces"][0])
        # the API beside the running source: its own interpreters, the same answers
        for _ in range(20):
            status, _, body = post_image(running.url, ASTRONAUT.read_bytes())
            assert status == 200 and json.loads(body)["faces"] == classify_json(ASTRONAUT)
        # and the annotated picture
        with urllib.request.urlopen(f"{running.url}/stream.mjpg", timeout=20) as stream:
            assert stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            head = stream.read(200)
            assert b"Content-Type: image/jpeg" in head
    finally:
        running.close()


def test_the_page_ships_without_a_cdn(api):
    status, headers, body = request(f"{api.url}/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"EventSource" in body and b"http" not in body.replace(b"http-equiv", b"")
    assert b"access_token" not in body


def test_a_port_in_use_is_one_line(api, capsys):
    port = api.port
    assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fer-edge: error: cannot listen on 127.0.0.1:{port}")
    assert len(err.splitlines()) == 1


def test_without_the_serve_extra_serve_says_so_in_one_line(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)     # as if it were not installed
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "fer-edge: error: serve needs uvicorn: pip install 'fer-edge[serve]'\n"


def test_a_crash_in_the_live_loop_is_reported_and_the_source_reopened(tmp_path, monkeypatch):
    from synth import moving_faces_video

    from fer_edge.serve import live

    def broken(self, clf, item):
        raise RuntimeError("a bug in the tracker")

    monkeypatch.setattr(live, "BACKOFF_FIRST", 0.2)
    monkeypatch.setattr(live, "BACKOFF_MAX", 0.3)
    monkeypatch.setattr(live.FrameTracker, "record", broken)
    tile = cv2.imread(str(ASTRONAUT))[60:320, 200:460]
    clip = moving_faces_video(tmp_path / "clip.mp4", [tile], [(60, 100, 300, 100)], frames=10,
                              fps=10, side=180)
    running = Running(source=str(clip), workers=1)
    try:
        def health():
            return json.loads(request(f"{running.url}/healthz")[2])["source"]

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and health()["reconnects"] < 2:
            time.sleep(0.1)
        seen = health()
        assert seen["reconnects"] >= 2 and seen["state"] == "reconnecting", seen
        assert seen["error"] == "RuntimeError: a bug in the tracker"
        assert str(clip) not in json.dumps(seen) and seen["source"] == "file"
    finally:
        running.close()
