"""`fer-edge serve` under load, on 127.0.0.1: 50 concurrent clients posting a photo to
/v1/classify for 20 s (served requests a second, p50/p99 latency, the share of 503s, any other
5xx), the server's memory before and after 2,000 more requests, and the live page's frames a
second on a 640x480 source with 3 faces (with --detect-every). Prints JSON; --out writes it.

    python benchmarks/serve_load.py [--clients 50] [--seconds 20] [--out reports/serve/load.json]

The server runs as its own process (the installed `fer-edge serve`), the clients are threads of
this one: on a 2-core machine they share the CPU with it, which the figures include.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "fer-edge"
sys.path.insert(0, str(REPO / "benchmarks"))

from fer_edge.machine import host  # noqa: E402
from synthetic_video import moving_faces_video  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*args) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port), *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def post(url: str, data: bytes) -> tuple[int, float]:
    t0 = time.perf_counter()
    req = urllib.request.Request(f"{url}/v1/classify", data, {"Content-Type": "image/jpeg"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        e.read()
        status = e.code
    except OSError:
        status = 0
    return status, time.perf_counter() - t0


def load(url: str, data: bytes, clients: int, seconds: float) -> dict:
    results, stop = [], time.monotonic() + seconds
    lock = threading.Lock()

    def client():
        while time.monotonic() < stop:
            status, latency = post(url, data)
            with lock:
                results.append((status, latency))
            if status == 503:
                time.sleep(0.05)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    served = sorted(lat for s, lat in results if s == 200)
    pct = lambda q: round(1000 * served[min(len(served) - 1, int(q * len(served)))], 1)  # noqa
    return {"clients": clients, "seconds": round(wall, 1), "requests": len(results),
            "served": len(served), "served_per_second": round(len(served) / wall, 1),
            "p50_ms": pct(0.5) if served else None, "p99_ms": pct(0.99) if served else None,
            "share_503": round(sum(s == 503 for s, _ in results) / max(1, len(results)), 3),
            "other_errors": {str(s): sum(1 for r, _ in results if r == s)
                             for s in sorted({s for s, _ in results if s not in (200, 503)})},
            "note": "status 0: the connection failed (refused or reset)"}


def live_fps(seconds: float = 15) -> dict:
    img = cv2.imread(str(REPO / "examples" / "astronaut.jpg"))
    tile = img[60:320, 200:460]
    with tempfile.TemporaryDirectory() as tmp:
        clip = moving_faces_video(Path(tmp) / "three.mp4", [tile, cv2.flip(tile, 1), tile],
                                  [(20, 60, 120, 60), (240, 200, 300, 200), (460, 80, 380, 160)],
                                  frames=250, fps=25, size=(640, 480), side=140)
        out = {}
        for detect_every in (1, 5):
            proc, url = start("--source", clip, "--detect-every", detect_every, "--workers", 1)
            try:
                time.sleep(3)
                h0 = json.loads(urllib.request.urlopen(f"{url}/healthz").read())["source"]
                time.sleep(seconds)
                h1 = json.loads(urllib.request.urlopen(f"{url}/healthz").read())["source"]
                out[f"detect_every_{detect_every}"] = round(
                    (h1["frames"] - h0["frames"]) / seconds, 1)
            finally:
                proc.terminate()
                proc.wait(10)
        return {"source": "640x480, 25 fps file (played at its pace), 3 faces", "fps": out}


def main(clients: int = 50, seconds: float = 20, requests: int = 2000, out: str | None = None):
    data = (REPO / "examples" / "astronaut.jpg").read_bytes()
    proc, url = start("--workers", 2, "--queue", 8)
    try:
        for _ in range(20):                       # warm-up
            post(url, data)
        before = rss_mb(proc.pid)
        under_load = load(url, data, clients, seconds)
        after_load = rss_mb(proc.pid)
        for _ in range(requests):
            post(url, data)
        after = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    result = {"cpu": host()["cpu"], "cores": __import__("os").cpu_count(),
              "server": "fer-edge serve --workers 2 --queue 8 (astronaut.jpg, 512x512, 1 face)",
              "load": under_load,
              "memory_mb": {"before": round(before, 1), "after_load": round(after_load, 1),
                            f"after_{requests}_more": round(after, 1)},
              "live": live_fps(),
              "command": "python benchmarks/serve_load.py " + " ".join(sys.argv[1:])}
    text = json.dumps(result, indent=1)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")


if __name__ == "__main__":
    import fire

    fire.Fire(main, serialize=lambda result: None)
