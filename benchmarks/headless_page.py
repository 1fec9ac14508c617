"""The exported web page (`fer-edge export --target web`) in headless Chromium, for the tests
(tests/test_web.py) and the benchmarks (web_photos.py, web_fps.py): a static server on
127.0.0.1 for a folder, Debian's Chromium driven by Selenium through its chromedriver, and a
fake camera's clip in the y4m format Chromium reads.

    with static_server(root) as base, chromium() as browser:
        browser.get(base + "web/index.html?image=../photo.png")
        result = wait_result(browser)          # classify's JSON, from the page's #result
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# Headless, no GPU, nothing fetched by the browser itself (updates, sync, field trials).
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1000,800")


def missing() -> str | None:
    """Why the browser cannot run here (None: it can)."""
    if not (CHROMIUM and DRIVER):
        return "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "pip install selenium (the test extra has it)"
    return None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript"}

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def static_server(root: Path):
    """`root` served on 127.0.0.1 (a free port) by Python's static server; yields its URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def chromium(camera_clip: Path | None = None):
    """A headless Chromium (a new, empty profile); with `camera_clip`, a y4m file it plays as
    the camera, permission granted."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    profile = tempfile.mkdtemp(prefix="fer-edge-chromium-")
    for arg in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    if camera_clip is not None:
        for arg in ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                    f"--use-file-for-fake-video-capture={camera_clip}"):
            options.add_argument(arg)
    options.binary_location = CHROMIUM
    browser = webdriver.Chrome(options=options, service=Service(DRIVER))
    browser.fer_edge_profile = profile        # what cpu_seconds finds its processes by
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_state(browser, wanted: set[str], timeout: float) -> str | None:
    """The page's state (body data-state: "live", "done", "error") once it is one of `wanted`,
    or None after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        state = browser.execute_script("return document.body.dataset.state || null")
        if state in wanted or state == "error":
            return state
        time.sleep(0.05)
    return None


def wait_result(browser, timeout: float = 60) -> dict:
    """The JSON the page wrote into #result (?image= mode): {"file", "faces"} or {"error"}."""
    state = wait_state(browser, {"done"}, timeout)
    if state is None:
        raise TimeoutError(f"the page gave no result within {timeout:.0f} s")
    return json.loads(browser.find_element("id", "result").text)


def page_state(browser) -> dict:
    """What the page exposes as window.ferWeb (frames done, their times, the last faces)."""
    return browser.execute_script(
        "const s = window.ferWeb; return {frames: s.frames, keyframes: s.keyframes, "
        "frameMs: s.frameMs, faces: s.faces, error: s.error, labels: s.labels || null};")


def y4m_from_video(video: Path, out: Path, fps: int | None = None) -> Path:
    """A video's frames as an uncompressed y4m clip (4:2:0), what Chromium's fake camera
    reads (--use-file-for-fake-video-capture); `fps` in its header (default: the video's)."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    rate = fps or round(capture.get(cv2.CAP_PROP_FPS)) or 30
    with open(out, "wb") as f:
        header = False
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            if not header:
                f.write(f"YUV4MPEG2 W{w} H{h} F{rate}:1 Ip A1:1 C420jpeg\n".encode())
                header = True
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    capture.release()
    if not header:
        raise ValueError(f"{video}: no frame read")
    return out


def cpu_seconds(browser) -> float | None:
    """The CPU time (user + system) used so far by every process of this Chromium (browser,
    renderer, GPU and utility processes, told apart from other browsers by their profile
    folder), from /proc; None where there is no /proc."""
    import os

    proc = Path("/proc")
    if not proc.is_dir():
        return None
    marker = f"--user-data-dir={browser.fer_edge_profile}".encode()
    ticks = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "cmdline").read_bytes():
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:            # a process that ended meanwhile
            continue
        ticks += int(fields[11]) + int(fields[12])      # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")
