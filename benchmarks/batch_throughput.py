"""`fer-edge batch` against `fer-edge classify` on the same images, in interleaved rounds on this
machine: images per second of each whole command (process start, model load and Ray's start
included), and the rate once started, (N - 1) / (t(N images) - t(1 image)), which leaves out
each command's fixed start-up. Goals (issue 25): batch with one worker >= 0.8x classify; two
workers >= 1.7x one.

    python benchmarks/batch_throughput.py [--images 1000] [--rounds 2] [--cluster]
        [--out reports/batch/throughput.json]

--cluster: batch joins a Ray cluster started beforehand on this machine (`ray start --head`),
as it joins one on machines of its own, instead of starting Ray in its process.

The images are made from examples/astronaut.jpg (NASA, public domain): resized, mirrored and
shifted copies, one face each, in a temporary folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from fer_edge.machine import host  # noqa: E402
BIN = Path(sys.executable).parent / "fer-edge"


def make_images(folder: Path, n: int) -> None:
    img = cv2.imread(str(REPO / "examples" / "astronaut.jpg"))
    rng = np.random.default_rng(0)
    for i in range(n):
        scale = rng.uniform(0.4, 0.8)
        copy = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if i % 2:
            copy = cv2.flip(copy, 1)
        dx, dy = rng.integers(-20, 21, 2)
        copy = np.roll(copy, (int(dy), int(dx)), axis=(0, 1))
        cv2.imwrite(str(folder / f"img_{i:05d}.jpg"), copy, [cv2.IMWRITE_JPEG_QUALITY, 90])


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr[-2000:]}")
    return seconds, r.stdout


def ray_cluster(port: int):
    """`ray start --head` on 127.0.0.1 (one node, this machine's CPUs); stopped at the end."""
    import os

    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    ray = str(Path(sys.executable).parent / "ray")
    subprocess.run([ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                    "--include-dashboard", "false", "--disable-usage-stats"], env=env, check=True,
                   capture_output=True)
    os.environ.update(env)
    return lambda: subprocess.run([ray, "stop", "--force"], env=env, capture_output=True)


def main(images: int = 1000, rounds: int = 2, cluster: bool = False, out: str | None = None):
    work = Path(tempfile.mkdtemp(prefix="fer-edge-batch-bench-"))
    address = []
    stop = None
    if cluster:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        stop = ray_cluster(port)
        address = ["--address", f"127.0.0.1:{port}"]
    try:
        folder, one = work / "images", work / "one"
        folder.mkdir()
        one.mkdir()
        make_images(folder, images)
        make_images(one, 1)
        runs = {"classify": [], "batch_1_worker": [], "batch_2_workers": []}
        start_up = {k: [] for k in runs}
        faces = {}
        for r in range(rounds):
            for source, times in ((folder, runs), (one, start_up)):
                seconds, stdout = timed([str(BIN), "classify", str(source), "--format", "json"])
                times["classify"].append(seconds)
                if source == folder:
                    faces["classify"] = sum(len(json.loads(line)["faces"]) for line in
                                            stdout.splitlines())
                for name, workers in (("batch_1_worker", 1), ("batch_2_workers", 2)):
                    target = work / f"out_{name}_{source.name}_{r}"
                    seconds, stdout = timed([str(BIN), "batch", str(source), "--out",
                                             str(target), "--workers", str(workers),
                                             "--worker-cpus", "1", "--quiet", *address])
                    times[name].append(seconds)
                    if source == folder:
                        faces[name] = json.loads(stdout)["faces"]
        rate = {k: images / min(v) for k, v in runs.items()}    # each command's best round
        started = {k: (images - 1) / (min(runs[k]) - min(start_up[k])) for k in runs}
        result = {
            "cpu": host()["cpu"], "cores": __import__("os").cpu_count(), "images": images,
            "ray": "a running cluster (ray start --head)" if cluster else "started by batch",
            "rounds": rounds, "seconds": {k: [round(s, 2) for s in v] for k, v in runs.items()},
            "seconds_for_1_image": {k: [round(s, 2) for s in v] for k, v in start_up.items()},
            "images_per_second": {k: round(v, 1) for k, v in rate.items()},
            "images_per_second_once_started": {k: round(v, 1) for k, v in started.items()},
            "faces": faces,
            "batch_1_worker_vs_classify": round(rate["batch_1_worker"] / rate["classify"], 3),
            "batch_2_vs_1_worker": round(rate["batch_2_workers"] / rate["batch_1_worker"], 3),
            "once_started": {
                "batch_1_worker_vs_classify": round(started["batch_1_worker"]
                                                    / started["classify"], 3),
                "batch_2_vs_1_worker": round(started["batch_2_workers"]
                                             / started["batch_1_worker"], 3)},
            "command": "python benchmarks/batch_throughput.py " + " ".join(sys.argv[1:]),
        }
        text = json.dumps(result, indent=1)
        print(text)
        if out:
            Path(out).write_text(text + "\n")
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if stop:
            stop()


if __name__ == "__main__":
    import fire

    fire.Fire(main, serialize=lambda result: None)
