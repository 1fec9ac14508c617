"""Cold start of the edge runtime: wall time of one `fer-edge classify PHOTO --format json` process
against a bare `python -c "import numpy, cv2"` (the floor any OpenCV tool pays). Prints JSON.

    python benchmarks/cold_start.py [--model models/fer_int8.tflite] [--runs 10]
                                    [--image ../shared/photos/justin.jpg] [--detector auto]
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _time(cmd: list[str], runs: int) -> dict:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - t0)
        if p.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.decode()[-500:]}")
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "max_s": round(max(times), 4), "runs": runs, "last_stdout": p.stdout.decode()[:300]}


def main(model=None, image=str(REPO.parent / "shared" / "photos" / "justin.jpg"), runs: int = 10,
         detector=None):
    """Median wall time of `fer-edge classify IMAGE --format json` vs `import numpy, cv2`."""
    exe = shutil.which("fer-edge", path=str(Path(sys.executable).parent)) or "fer-edge"
    cmd = [exe, "classify", image, "--format", "json"]
    if model:
        cmd += ["--model", model]
    if detector:
        cmd += ["--detector", detector]
    baseline = [sys.executable, "-c", "import numpy, cv2"]
    _time(cmd, 1)  # warm the page cache
    _time(baseline, 1)
    classify = _time(cmd, runs)
    base = _time(baseline, runs)
    print(json.dumps({
        "command": " ".join(cmd),
        "classify": classify,
        "import_numpy_cv2": {k: v for k, v in base.items() if k != "last_stdout"},
        "overhead_s": round(classify["median_s"] - base["median_s"], 4),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
    }, indent=1))


if __name__ == "__main__":
    import fire

    fire.Fire(main)
