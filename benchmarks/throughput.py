"""Throughput of `classify --no-detect` on pre-cropped 48x48 faces (e.g. FER2013's test split):
images per second, in process (model loaded once; decode + preprocess + classify), for a few
thread counts and for batching by image (what classify does) vs. one big batch. Prints JSON.

    python benchmarks/throughput.py --model models/fer_int8.tflite [--folder ../shared/fer2013/test]
                                    [--limit N] [--threads 1,2]
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_edge.edge import classify as fc  # noqa: E402
from fer_edge import defaults  # noqa: E402
from fer_edge.edge.preprocessing import face_to_input  # noqa: E402
from fer_edge.edge.runtime import EmotionModel  # noqa: E402


def main(model=None, folder=str(REPO.parent / "shared" / "fer2013" / "test"), limit: int = None,
         threads="1,2"):
    """--no-detect throughput on a folder of face crops (limit: first N images, sorted)."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in fc.IMAGE_EXTS)
    files = files[: limit]
    if not files:
        sys.exit(f"no images in {folder}")
    result = {"folder": str(folder), "images": len(files), "model": model,
              "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2), "runs": {}}
    thread_counts = threads if isinstance(threads, (tuple, list)) else str(threads).split(",")
    for n_threads in (int(t) for t in thread_counts):
        # the real command path (library call, as the CLI makes it): decode every file,
        # preprocess, one predict per image, JSON out; the model is loaded once
        t0 = time.perf_counter()
        summary = fc.classify([str(p) for p in files], model=model, no_detect=True,
                              threads=n_threads, format="json", out=io.StringIO())
        total_s = time.perf_counter() - t0
        assert summary.faces == len(files)
        # the parts: decode, and the model alone in batches of 64
        t0 = time.perf_counter()
        decoded = [fc.decode(np.fromfile(p, np.uint8))[0] for p in files]
        decode_s = time.perf_counter() - t0
        x = np.stack([face_to_input(img) for img in decoded])
        net = EmotionModel(model or defaults.default_model(), threads=n_threads)
        net.predict(x[:64], batch_size=64)
        t0 = time.perf_counter()
        net.predict(x, batch_size=64)
        batch_s = time.perf_counter() - t0
        one = x[:1]
        net.predict(one, batch_size=1)
        t0 = time.perf_counter()
        for i in range(min(200, len(x))):
            net.predict(x[i:i + 1], batch_size=1)
        single_ms = (time.perf_counter() - t0) / min(200, len(x)) * 1000
        n = len(files)
        result["runs"][f"threads={n_threads}"] = {
            "classify_no_detect_images_per_s": round(n / total_s, 1),
            "decode_images_per_s": round(n / decode_s, 1),
            "model_batch64_images_per_s": round(n / batch_s, 1),
            "model_batch1_ms": round(single_ms, 3),
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    import fire

    fire.Fire(main)
