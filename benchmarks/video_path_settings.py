"""How the video path's two settings trade frame rate for agreement with detection on every
frame: `--detect-every` N (the periodic full detection) and the BlazeFace check every M frames
between them (edge/video.py's FACE_CHECK_EVERY; optical flow on the other frames; M = 1 is the
crop search on every frame, no flow). What the defaults were chosen on.

    python benchmarks/video_path_settings.py [--settings 5x1,30x1,30x3,30x4,30x5] [--rounds 5]
        [--out reports/video_path/settings.json]

For each setting NxM: faces matched and the same emotion as detection on every frame, on
e2e_speed.py's 8 clips drawn at random (`random_clips`, the selection set: their mean) and on its
benchmark clip (reported, not chosen on); the benchmark clip's ms per frame and fer's frame time
over it (the best of `rounds` interleaved runs, timed by the thread's CPU time, 1 thread).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import e2e_speed  # noqa: E402
from video_path_bound import best_thread_times  # noqa: E402
from fer_peer import FerPipeline, fetch_fer  # noqa: E402
from fer_edge.edge.classify import Classifier  # noqa: E402
from fer_edge.edge.fileio import write_json  # noqa: E402
from fer_edge.edge.sources import quiet_native_stderr  # noqa: E402
from fer_edge.edge.video import FrameTracker  # noqa: E402
from fer_edge.machine import host  # noqa: E402


def _settings(text) -> list[tuple[int, int]]:
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        return [tuple(int(v) for v in str(s).split("x")) for s in items]
    except ValueError:
        sys.exit("--settings: a comma-separated list of NxM, e.g. 30x4")


def main(photos=str(REPO.parent / "shared" / "photos"), settings="5x1,30x1,30x3,30x4,30x5",
         rounds: int = 5, out: str = None):
    """Agreement with detection on every frame and frame rate, per NxM setting (JSON)."""
    chosen = _settings(settings)
    with tempfile.TemporaryDirectory() as tmp, quiet_native_stderr(always=True):
        fer = FerPipeline(fetch_fer(Path(tmp)))
        ours = Classifier(threads=1)
        _, clip = e2e_speed.clip_frames(Path(photos), Path(tmp))
        others = e2e_speed.random_clips(Path(photos), Path(tmp))

        def path(items, n, m):
            tracker = FrameTracker(detect_every=n, check_every=m)
            return [tracker.record(ours, item) for item in items], tracker.keyframes

        reference = [path(c, 1, 1)[0] for c in others]
        reference_clip = path(clip, 1, 1)[0]
        rows = {}
        for n, m in chosen:
            agree = [e2e_speed.agreement(r, path(c, n, m)[0]) for r, c in zip(reference, others)]
            got, keyframes = path(clip, n, m)
            rows[f"{n}x{m}"] = {
                "detect_every": n, "check_every": m,
                "random_clips": {k: round(float(np.mean([a[k] for a in agree])), 4)
                                 for k in ("faces_matched", "same_emotion")},
                "random_clips_same_emotion_min": min(a["same_emotion"] for a in agree),
                "benchmark_clip": e2e_speed.agreement(reference_clip, got),
                "benchmark_clip_keyframes": keyframes}
        runs = {"fer": lambda: [fer(item.image) for item in clip],
                **{name: (lambda n=r["detect_every"], m=r["check_every"]: path(clip, n, m))
                   for name, r in rows.items()}}
        best = best_thread_times(runs, rounds)
    for name, row in rows.items():
        row["ms_per_frame"] = round(best[name] / len(clip) * 1000, 2)
        row["fer_time_over_ours"] = round(best["fer"] / best[name], 2)
    result = {"command": "python benchmarks/video_path_settings.py " + " ".join(sys.argv[1:]),
              "host": host(), "rounds": rounds, "random_clips": len(others),
              "fer_ms_per_frame": round(best["fer"] / len(clip) * 1000, 2), "settings": rows}
    print(json.dumps(result, indent=1))
    if out:
        write_json(Path(out), result)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
