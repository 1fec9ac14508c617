"""A synthetic video of face pictures moving over a plain background: the clip the tests and
the benchmarks track faces in (tests/synth.py re-exports it; the benchmarks import it from here,
never from tests/)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def moving_faces_video(path: Path, faces: list[np.ndarray], tracks: list[tuple], frames: int = 30,
                       fps: float = 10.0, size: tuple[int, int] = (640, 480),
                       side: int = 120) -> Path:
    """A video of face pictures (BGR) gliding in straight lines over a plain background.

    tracks[i] = (x0, y0, x1, y1[, first, last]): face i's top-left corner moves from (x0, y0) to
    (x1, y1) over the clip, shown from frame `first` to `last` (default: the whole clip)."""
    w, h = size
    fourcc = "mp4v" if path.suffix == ".mp4" else "MJPG"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), path
    tiles = [cv2.resize(f, (side, side), interpolation=cv2.INTER_AREA) for f in faces]
    for k in range(frames):
        canvas = np.full((h, w, 3), 150, np.uint8)
        a = k / max(1, frames - 1)
        for tile, (x0, y0, x1, y1, *span) in zip(tiles, tracks):
            first, last = span if span else (0, frames - 1)
            if not first <= k <= last:
                continue
            x, y = round(x0 + a * (x1 - x0)), round(y0 + a * (y1 - y0))
            canvas[y:y + side, x:x + side] = tile
        writer.write(canvas)
    writer.release()
    return path
