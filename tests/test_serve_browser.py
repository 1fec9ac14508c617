"""The live page in a real headless browser (Debian's Chromium, driven by Selenium through
chromedriver): against `fer-edge serve --source` on a synthetic clip, the page shows a face's
box (the annotated picture), a track's emotion and the timeline within 10 s; with --token the
browser signs in at /login first and the page's picture and event stream ride on the session
cookie (no token in any URL).

FER_EDGE_SCREENSHOT=reports/serve/page.png also saves the page (the README's picture)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import pytest

webdriver = pytest.importorskip("selenium.webdriver",
                                reason="pip install selenium (the test extra has it)")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [pytest.mark.slow,          # a real browser
              pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="Debian's chromium and "
                                 "chromium-driver are not installed (.ci/run installs them)")]

from cli_helpers import free_port  # noqa: E402
from synth import moving_faces_video  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@pytest.fixture(params=[None, "s3cret-token"], ids=["open", "token"])
def live_server(tmp_path, request):
    img = cv2.imread(str(REPO / "examples" / "astronaut.jpg"))
    tile = img[60:320, 200:460]
    clip = moving_faces_video(tmp_path / "live.mp4", [tile, cv2.flip(tile, 1)],
                              [(40, 120, 200, 120), (400, 150, 330, 150)], frames=100, fps=10,
                              size=(640, 480), side=170)
    port = free_port()
    exe = Path(sys.executable).parent / "fer-edge"
    token = ["--token", request.param] if request.param else []
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port), "--source", str(clip),
                             *token], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        yield url, request.param
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_page_shows_a_face_its_emotion_and_the_timeline(live_server, tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,820"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    browser = webdriver.Chrome(options=options, service=Service(DRIVER))
    url, token = live_server
    try:
        browser.get(url)
        if token:                      # sent to the sign-in form, which sets the cookie
            assert browser.current_url.endswith("/login")
            browser.find_element("id", "token").send_keys(token)
            browser.find_element("css selector", "button[type=submit]").click()
            for _ in range(100):
                if not browser.current_url.endswith("/login"):
                    break
                time.sleep(0.1)
            assert token not in browser.current_url
        t0 = time.monotonic()
        seen = None
        while time.monotonic() - t0 < 10:
            tracks = browser.find_element("id", "tracks").text
            picture = browser.execute_script(
                "const i = document.getElementById('live'); return i.naturalWidth;")
            painted = browser.execute_script(
                "const c = document.getElementById('timeline');"
                "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n;")
            if any(e in tracks for e in EMOTIONS) and picture == 640 and painted > 300:
                seen = time.monotonic() - t0
                break
            time.sleep(0.2)
        assert seen is not None, (tracks, picture, painted)
        # the annotated picture: a face box in the emotion's colour on the grey background
        png = tmp_path / "page.png"
        time.sleep(float(os.environ.get("FER_EDGE_SCREENSHOT_WAIT", "0")))
        browser.save_screenshot(str(png))
        if os.environ.get("FER_EDGE_SCREENSHOT") and not token:
            shutil.copy(png, os.environ["FER_EDGE_SCREENSHOT"])
    finally:
        browser.quit()
