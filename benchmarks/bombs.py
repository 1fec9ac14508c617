"""The image bombs of issue 34 through `fer-edge classify`, each in its own process: the exit
code, the refusal line, the wall time (the process's start-up included) and the peak resident
memory (VmHWM). The bombs are tests/test_decode_guard.py's: a valid 30000x30000 grey PNG of
0.9 MB, a PNG header claiming 60000x60000, a 1 MB lossless WebP claiming 16383x16383.

    python benchmarks/bombs.py --out reports/serve/bombs.json
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fire

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import test_decode_guard as guard  # noqa: E402  (the bombs and the peak-memory wrapper)


BOMBS = ("bomb.png", "header60000.png", "bomb.webp")     # the three


def refusal(path: Path) -> dict:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", guard.PEAK_OF_MAIN, "classify", str(path)],
                       capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    lines = [line for line in r.stderr.splitlines() if line.startswith("fer-edge:")]
    return {"file": path.name, "bytes": path.stat().st_size, "exit": r.returncode,
            "line": lines[0].replace(str(path.parent) + "/", "") if lines else None,
            "seconds_whole_process": round(seconds, 3),
            "peak_mb": round(int(r.stderr.rsplit("PEAK ", 1)[1]) / 1024, 1)}


def main(out: str | None = None):
    from fer_edge.machine import host

    with tempfile.TemporaryDirectory() as tmp:
        folder = guard.write_bombs(Path(tmp))
        rows = [refusal(folder / name) for name in BOMBS]
    result = {"command": " ".join(["python", "benchmarks/bombs.py", *sys.argv[1:]]),
              "cpu": host()["cpu"], "bombs": rows,
              "goal_ok": all(r["exit"] == 1 and r["seconds_whole_process"] < 1
                             and r["peak_mb"] < 200 for r in rows)}
    print(json.dumps(result, indent=1))
    if out:
        from fer_edge.edge.fileio import write_json

        write_json(out, result)


if __name__ == "__main__":
    fire.Fire(main)
