"""`fer-edge serve` offers the browser page (`export --target web`) of its own model at /web/:
over real HTTP on 127.0.0.1 its files are the exported page's, behind the token like every
route; in headless Chromium the served page answers an image as the server's own
POST /v1/classify does."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from serve_helpers import ASTRONAUT, Running, post_image, request

from fer_edge.web import page_files

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import headless_page  # noqa: E402

TINY = REPO / "tests" / "data" / "tiny_int8.tflite"


@pytest.fixture(scope="module")
def server():
    running = Running(model=str(TINY), workers=1)
    yield running
    running.close()


def test_web_serves_the_exported_page_of_the_servers_model(server):
    expected = page_files(TINY)
    status, headers, body = request(f"{server.url}/web")        # to /web/, then the page
    assert status == 200 and body == expected["index.html"]
    assert headers["Content-Type"].startswith("text/html")
    status, _, body = request(f"{server.url}/web/fer-web.json")
    config = json.loads(body)
    _, _, models = request(f"{server.url}/v1/models")
    assert config["labels"] == json.loads(models)["default"]["labels"]
    assert config["source_model"] == TINY.name
    status, headers, body = request(f"{server.url}/web/litert/litert_wasm_internal.wasm")
    assert status == 200 and headers["Content-Type"] == "application/wasm"
    pin = json.loads(expected["litert/PIN.json"])
    assert hashlib.sha256(body).hexdigest() == pin["files"]["litert_wasm_internal.wasm"]
    assert request(f"{server.url}/web/model.tflite")[2] == expected["model.tflite"]
    status, _, body = request(f"{server.url}/web/nothing.js")
    assert status == 404 and b"no file 'nothing.js'" in body and body.count(b"\n") == 1


def test_web_needs_the_token():
    running = Running(model=str(TINY), workers=1, token="s3cret")
    try:
        assert request(f"{running.url}/web/")[0] == 401
        assert request(f"{running.url}/web/fer-web.json")[0] == 401
        status, _, body = request(f"{running.url}/web/",
                                  headers={"Authorization": "Bearer s3cret"})
        assert status == 200 and b"fer-web.js" in body
    finally:
        running.close()


@pytest.mark.slow
@pytest.mark.skipif(headless_page.missing() is not None, reason=str(headless_page.missing()))
def test_the_served_page_answers_as_the_servers_api(server):
    import base64
    from urllib.parse import quote

    _, _, body = post_image(server.url, ASTRONAUT.read_bytes())
    api = json.loads(body)["faces"]
    assert len(api) == 1
    # the image as a data: URL, which the page reads as it reads its own origin's files
    image = "data:image/jpeg;base64," + base64.b64encode(ASTRONAUT.read_bytes()).decode()
    with headless_page.chromium() as browser:
        browser.get(f"{server.url}/web/index.html?image={quote(image, safe='')}")
        page = headless_page.wait_result(browser, 60)
    assert len(page["faces"]) == 1, page
    assert page["faces"][0]["emotion"] == api[0]["emotion"]
    assert max(abs(a - b) for a, b in zip(page["faces"][0]["box"], api[0]["box"])) <= 3
