"""How far the video path's frame rate can go on benchmarks/e2e_speed.py's clip: fer's pipeline
beside fer-edge's video path with its default settings, with `--detect-every` 5 and 60, and with
the per-track step between full detections made free (each face's box taken as its predicted
box on a check frame, left where it was on a flow frame: no detector call, no optical flow): what is left then is the emotion model, the crops, the thumbnails and the
full detections (start, arrivals, the periodic net), a bound no cheaper per-track step can pass.

    python benchmarks/video_path_bound.py [--rounds 3] [--out reports/video_path/bound.json]

Each figure is the best of `rounds` interleaved runs of the 60-frame clip, timed by the thread's
CPU time (time.thread_time; 1 interpreter thread), as a ratio of fer's frame time to ours.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import e2e_speed  # noqa: E402
from fer_peer import FerPipeline, fetch_fer  # noqa: E402
from fer_edge import defaults  # noqa: E402
from fer_edge.edge import video  # noqa: E402
from fer_edge.edge.classify import Classifier  # noqa: E402
from fer_edge.edge.fileio import write_json  # noqa: E402
from fer_edge.edge.sources import quiet_native_stderr  # noqa: E402
from fer_edge.machine import host  # noqa: E402


def _predicted_boxes(self, clf, roi, image, boxes):
    """The per-track step at no cost: every face where its track predicts it."""
    n = len(boxes)
    eyes = np.tile(np.array([[0.0, 0.0], [1.0, 0.0]], np.float32), (n, 1, 1))
    return np.asarray(boxes, np.float64), eyes, np.ones(n, np.float32), np.ones(n, bool)


def _unmoved(prev_gray, gray, boxes, eyes=None):
    """Optical flow at no cost: every face where it was."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return boxes, eyes, np.ones(len(boxes), bool)


def best_thread_times(runs: dict, rounds: int) -> dict:
    """Each run's best thread CPU time (s) over `rounds` interleaved rounds, the order reversed
    every other round, after one warm-up call of each."""
    for run in runs.values():
        run()
    best = {name: np.inf for name in runs}
    for r in range(rounds):
        for name, run in (list(runs.items()) if r % 2 == 0 else list(runs.items())[::-1]):
            t = time.thread_time()
            run()
            best[name] = min(best[name], time.thread_time() - t)
    return best


def main(photos=str(REPO.parent / "shared" / "photos"), rounds: int = 3, out: str = None):
    """fer's frame time over fer-edge's, per setting of the video path (JSON)."""
    with tempfile.TemporaryDirectory() as tmp, quiet_native_stderr(always=True):
        fer = FerPipeline(fetch_fer(Path(tmp)))
        _, items = e2e_speed.clip_frames(Path(photos), Path(tmp))
        ours = Classifier(threads=1)

        def path(k: int, free: bool = False):
            def run():
                step, flow = video.FrameTracker._mosaic_search, video.track.flow_boxes
                if free:
                    video.FrameTracker._mosaic_search = _predicted_boxes
                    video.track.flow_boxes = _unmoved
                try:
                    tracker = video.FrameTracker(detect_every=k)
                    for item in items:
                        tracker.record(ours, item)
                finally:
                    video.FrameTracker._mosaic_search, video.track.flow_boxes = step, flow
            return run

        def fer_run():
            for item in items:
                fer(item.image)

        runs = {"fer": fer_run, "default": path(defaults.VIDEO_DETECT_EVERY),
                "detect_every_5": path(5), "detect_every_60": path(60),
                "free_step_default": path(defaults.VIDEO_DETECT_EVERY, True),
                "free_step_detect_every_60": path(60, True)}
        best = best_thread_times(runs, rounds)
    result = {"command": "python benchmarks/video_path_bound.py " + " ".join(sys.argv[1:]),
              "host": host(), "frames": len(items), "rounds": rounds,
              "ms_per_frame": {k: round(v / len(items) * 1000, 2) for k, v in best.items()},
              "fer_time_over_ours": {k: round(best["fer"] / v, 2) for k, v in best.items()
                                     if k != "fer"}}
    print(json.dumps(result, indent=1))
    if out:
        write_json(Path(out), result)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
