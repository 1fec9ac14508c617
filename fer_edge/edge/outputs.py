"""What `classify` writes: result lines (table, JSON lines, CSV), annotated copies of images and
videos, and the per-track summary of videos. numpy and OpenCV only (edge runtime)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from . import fileio
from ..errors import FerEdgeError
from .fileio import IMAGE_EXTS
from .sources import STDIN, Item

ANNOTATED_VIDEO_CODEC = "mp4v"    # in every OpenCV build's FFmpeg, headless included
ANNOTATED_VIDEO_SUFFIX = "_annotated.mp4"


class ResultWriter:
    """One line per input image or video frame (JSON), or per face (table, CSV), flushed at once
    so results stream. Video frames carry "frame" and "time", their faces a "track"."""

    def __init__(self, fmt: str, out, names: list[str], videos: bool = True):
        # videos: the table gets time and track columns (photos have neither)
        self.fmt, self.out, self.names, self.videos = fmt, out, names, videos
        self.started = False
        if fmt == "csv":
            self.csv = csv.writer(out, lineterminator="\n")

    def _header(self):
        if self.started:
            return
        self.started = True
        if self.fmt == "table":   # the file name last: a long path cannot push columns out
            when = f"{'time':>8}  {'track':>5}  " if self.videos else ""
            self.out.write(f"{when}{'emotion':<9}  {'confidence':>10}  "
                           f"{'face box (x,y,w,h)':<20}  file\n")
        elif self.fmt == "csv":
            self.csv.writerow(["file", "frame", "time", "face", "track", "x", "y", "w", "h",
                               "emotion", "confidence", *self.names])

    def write(self, record: dict) -> None:
        self._header()
        faces = record["faces"]
        if self.fmt == "json":
            self.out.write(json.dumps(record) + "\n")
        elif self.fmt == "csv":
            where = [record["file"], _blank(record.get("frame")), _blank(record.get("time"))]
            if not faces:
                self.csv.writerow(where + [""] * (8 + len(self.names)))
            for i, f in enumerate(faces):
                self.csv.writerow([*where, i, _blank(f.get("track")), *f["box"], f["emotion"],
                                   f"{f['confidence']:.4f}",
                                   *(f"{f['scores'][n]:.4f}" for n in self.names)])
        else:
            name = record["file"]
            t = "" if record.get("time") is None else f"{record['time']:.2f}s"
            when = (lambda track: f"{t:>8}  {track:>5}  ") if self.videos else (lambda track: "")
            if not faces:
                self.out.write(f"{when('')}{'(no face)':<9}  {'-':>10}  {'-':<20}  {name}\n")
            for f in faces:
                box = ",".join(str(v) for v in f["box"])
                self.out.write(f"{when(_blank(f.get('track')))}{f['emotion']:<9}  "
                               f"{f['confidence']:>10.2f}  {box:<20}  {name}\n")
        self.out.flush()


def _blank(value) -> str:
    return "" if value is None else str(value)


# ------------------------------------------------------------------------------- annotation

_TRACK_COLOURS = [(0, 255, 0), (255, 160, 0), (0, 160, 255), (255, 0, 255), (0, 255, 255),
                  (255, 255, 0), (128, 0, 255), (0, 128, 128)]


def annotate(image: np.ndarray, faces: list[dict], scale: float) -> np.ndarray:
    """An 8-bit BGR copy of the working image with each face's box and label drawn (a colour
    and "#id" per track in videos)."""
    import cv2

    img = image
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    else:
        img = img.copy()
    thick = max(1, round(max(img.shape[:2]) / 400))
    for f in faces:
        x, y, w, h = (round(v / scale) for v in f["box"])
        tid = f.get("track")
        colour = _TRACK_COLOURS[(tid or 1) - 1 & 7] if tid else _TRACK_COLOURS[0]
        cv2.rectangle(img, (x, y), (x + w, y + h), colour, thick)
        text = f"{'' if tid is None else f'#{tid} '}{f['emotion']} {f['confidence']:.2f}"
        fs = max(0.4, thick * 0.5)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, thick)
        ty = y - 4 if y - th - 4 >= 0 else min(img.shape[0] - 1, y + h + th + 4)
        cv2.rectangle(img, (x, ty - th - base), (x + tw, ty + base), colour, -1)
        cv2.putText(img, text, (x, ty), cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), thick,
                    cv2.LINE_AA)
    return img


def annotated_name(item: Item) -> str:
    if item.source == STDIN:
        return "stdin.png"
    rel = Path(item.rel or Path(item.name).name)
    if item.frame is not None:
        return str(rel.with_name(rel.stem + ANNOTATED_VIDEO_SUFFIX))
    if rel.suffix.lower() not in IMAGE_EXTS - {".pbm"}:
        rel = rel.with_name(rel.name + ".png")
    return str(rel)


class AnnotatedOutput:
    """--save-annotated: a copy of each image, and of each video (every frame, at its frame
    rate; frames skipped by --every show the last classified faces), with the faces drawn.
    A video is written to a temporary name and moved into place when complete."""

    def __init__(self, folder: Path, force: bool):
        self.folder, self.force = folder, force
        self.video: tuple[str, Path, Path] | None = None    # (input name, temp, final path)
        self.writer = None
        self.last_faces: list[dict] = []

    def add(self, item: Item, faces: list[dict] | None = None) -> None:
        if faces is not None:
            self.last_faces = faces
        if item.frame is None:
            self._image(item, faces)
        else:
            self._video_frame(item, annotate(item.image, self.last_faces, item.scale))

    def check(self, item: Item) -> None:
        """FerEdgeError when the item's annotated copy may not be written (it exists and there
        is no --force): asked before the item is classified, so it fails before its result."""
        if item.frame is None or self.video is None or self.video[0] != item.name:
            fileio.check_writable(self.folder / annotated_name(item), self.force)

    def _image(self, item: Item, faces: list[dict]) -> None:
        import cv2

        path = self.folder / annotated_name(item)
        fileio.check_writable(path, self.force)
        ok, enc = cv2.imencode(path.suffix, annotate(item.image, faces, item.scale))
        if not ok:
            raise FerEdgeError(f"cannot encode {path}")
        fileio.write_bytes(path, enc.tobytes())

    def _video_frame(self, item: Item, frame: np.ndarray) -> None:
        import cv2

        if self.video is None or self.video[0] != item.name:
            self.close()
            path = self.folder / annotated_name(item)
            fileio.check_writable(path, self.force)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
            h, w = frame.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*ANNOTATED_VIDEO_CODEC)
            self.writer = cv2.VideoWriter(str(tmp), fourcc, item.fps or 25.0, (w, h))
            if not self.writer.isOpened():
                raise FerEdgeError(f"cannot write the video {path}")
            self.video = (item.name, tmp, path)
        self.writer.write(frame)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            _, tmp, path = self.video
            tmp.replace(path)
        self.writer, self.video, self.last_faces = None, None, []


# --------------------------------------------------------------------------------- summaries

def summary_rows(groups, names: list[str]) -> list[dict]:
    return [{"file": g.file, "track": "all" if g.track is None else g.track, "frames": g.frames,
             "from": g.first, "to": g.last, "dominant": g.dominant,
             **{lab: round(s, 4) for lab, s in g.shares(names).items()}}
            for g in groups]


def print_summary(groups, names: list[str], out) -> None:
    """The per-video and per-track table: frames seen, time span, dominant emotion ("none" when
    two share the top) and the share of the faces each emotion won."""
    out.write(f"{'video':<32} {'track':>5} {'frames':>6} {'seconds':>13} {'dominant':<9}"
              + "".join(f"{n[:8]:>9}" for n in names) + "\n")
    for r in summary_rows(groups, names):
        span = "" if r["from"] is None else f"{r['from']:.1f}-{r['to']:.1f}"
        out.write(f"{r['file']:<32} {r['track']!s:>5} {r['frames']:>6} {span:>13} "
                  f"{r['dominant'] or 'none':<9}" + "".join(f"{r[n]:>9.0%}" for n in names)
                  + "\n")
    out.flush()
