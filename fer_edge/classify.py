"""`fer-edge classify`: the edge runtime. Detect faces, crop them, classify their emotion with a
`.tflite` on LiteRT.

Imports only numpy, OpenCV and ai-edge-litert (never TensorFlow or Keras), so it runs on a
device that has nothing else. The model and the face detector are loaded once per process; the
faces of one image are classified in one batch.

Inputs: image files (anything OpenCV decodes: JPEG, PNG, BMP, WebP, TIFF; gray, colour, alpha,
16-bit), folders (recursive, sorted, `glob` filter), videos (every Nth frame) and "-" (one image
read from stdin). A bad input prints one line on stderr naming it and the rest go on; the run
then ends with `InputsFailed` (exit code 1).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from . import defaults, detect, fileio
from .fileio import IMAGE_EXTS
from .errors import FerEdgeError
from .labels import canonical_label, face_to_input, flip_tta, to_gray, to_uint8

VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm"}
STDIN = "-"
FORMATS = ("table", "json", "csv")
MIN_IMAGE_SIDE = 8       # smaller images cannot hold a face: reported as zero faces, with a note


class InputsFailed(FerEdgeError):
    """Some inputs could not be read (each was reported already); the others were processed."""

    exit_code = 1


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence what C libraries (libpng, libjpeg, FFmpeg, LiteRT's INFO lines) print on fd 2, so
    a bad input yields exactly our one line. FER_EDGE_DEBUG=1 keeps them."""
    if os.environ.get("FER_EDGE_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# ------------------------------------------------------------------------------------- inputs

@dataclass
class Item:
    """One thing to classify: an image (or video frame) with the name reported for it."""

    name: str
    image: np.ndarray | None = None      # working image (downscaled to MAX_IMAGE_SIDE)
    scale: float = 1.0                   # original pixels per working pixel
    size: tuple[int, int] = (0, 0)       # original (width, height)
    error: str | None = None
    source: str = ""                     # the input argument it came from (for output names)
    rel: str = ""                        # path relative to that argument (folders)
    frame: int | None = None


def _shrink(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale so the longer side is at most `max_side`; returns (image, original/working)."""
    import cv2

    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image, 1.0
    scale = max(h, w) / max_side
    size = (max(1, round(w / scale)), max(1, round(h / scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return small, max(h / small.shape[0], w / small.shape[1])


def decode(buf: np.ndarray, max_side: int = defaults.MAX_IMAGE_SIDE):
    """Encoded bytes -> (working image, scale, (width, height)); ValueError saying why not."""
    import cv2

    if buf.size == 0:
        raise ValueError("empty file")
    with quiet_native_stderr():
        try:
            image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        except cv2.error:
            image = None
    if image is None or image.size == 0:
        raise ValueError("not a readable image (unknown format, truncated or corrupt)")
    del buf
    h, w = image.shape[:2]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    image, scale = _shrink(image, max_side)   # at once: no further full-size copies
    return to_uint8(image), scale, (w, h)


def _image_item(name: str, read: Callable[[], np.ndarray], **kw) -> Item:
    try:
        buf = read()
        image, scale, size = decode(buf)
    except (OSError, ValueError, MemoryError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        return Item(name, error=reason, **kw)
    return Item(name, image=image, scale=scale, size=size, **kw)


def _video_items(path: Path, name: str, every: int, **kw) -> Iterator[Item]:
    import cv2

    with quiet_native_stderr():
        cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            yield Item(name, error="not a readable video", **kw)
            return
        index, produced = 0, 0
        while True:
            with quiet_native_stderr():
                ok = cap.grab()
            if not ok:
                break
            if index % every == 0:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    h, w = frame.shape[:2]
                    frame, scale = _shrink(frame, defaults.MAX_IMAGE_SIDE)
                    produced += 1
                    yield Item(f"{name}#frame={index}", image=frame, scale=scale, size=(w, h),
                               frame=index, **kw)
            index += 1
        if produced == 0:
            yield Item(name, error="not a readable video (no frame could be decoded)", **kw)
    finally:
        cap.release()


def _is_media(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTS or p.suffix.lower() in VIDEO_EXTS


def iter_items(paths: Iterable[str], glob: str | None = None, every: int = 1,
               stdin=None) -> Iterator[Item]:
    """Expand the inputs (files, folders, videos, "-") into decoded items, lazily, in order."""
    for arg in paths:
        arg = str(arg)
        if arg == STDIN:
            stream = stdin if stdin is not None else sys.stdin.buffer
            yield _image_item(arg, lambda: np.frombuffer(stream.read(), np.uint8), source=arg)
            continue
        path = Path(arg)
        if path.is_dir():
            pattern = glob or "*"
            files = sorted((p for p in path.rglob(pattern) if p.is_file() and _is_media(p)),
                           key=lambda p: p.relative_to(path).as_posix())
            if not files:
                what = f"no images or videos matching '{glob}'" if glob else "no images or videos"
                yield Item(arg, error=f"{what} in this folder", source=arg)
            for p in files:
                yield from _file_items(p, every, source=arg, rel=p.relative_to(path).as_posix())
        elif path.exists():
            yield from _file_items(path, every, source=arg, rel=path.name, name=arg)
        else:
            yield Item(arg, error="no such file or directory", source=arg)


def _file_items(path: Path, every: int, name: str | None = None, **kw) -> Iterator[Item]:
    name = name or str(path)
    if path.suffix.lower() in VIDEO_EXTS:
        yield from _video_items(path, name, every, **kw)
    else:
        yield _image_item(name, lambda: np.fromfile(path, np.uint8), **kw)


# --------------------------------------------------------------------------------- classifier

def _margin_crop(gray: np.ndarray, box, margin: float) -> np.ndarray:
    """The face box grown by `margin` of its size on every side, clipped to the image."""
    x, y, w, h = (int(v) for v in box)
    H, W = gray.shape[:2]
    mx, my = int(round(w * margin)), int(round(h * margin))
    x0, y0 = max(0, x - mx), max(0, y - my)
    x1, y1 = min(W, x + w + mx), min(H, y + h + my)
    if x1 <= x0 or y1 <= y0:
        x0, y0, x1, y1 = max(0, min(x, W - 1)), max(0, min(y, H - 1)), W, H
    return gray[y0:y1, x0:x1]


class Classifier:
    """Model + detector, loaded once; `faces(image)` -> list of face dicts for one image."""

    def __init__(self, model: str | os.PathLike | None = None, detector: str = detect.DEFAULT,
                 no_detect: bool = False, threads: int | None = 1,
                 margin: float = defaults.FACE_MARGIN, labels=None, tta: bool = False):
        from .runtime import EmotionModel

        path = Path(model) if model else defaults.default_model()
        if not model and not path.exists():
            raise FerEdgeError(
                f"no default model is shipped yet ({path} does not exist); pass one with "
                f"--model PATH.tflite (export a trained model with `fer-edge export`)")
        with quiet_native_stderr():
            self.model = EmotionModel(path, threads=threads, labels=_labels(labels))
            self.detector = None if no_detect else detect.get(detector, threads=threads)
        self.detector_name = None if no_detect else detect.resolve(detector)
        self.margin = margin
        self.tta = tta
        self.names = [canonical_label(lab) or lab for lab in self.model.labels]

    def boxes(self, image: np.ndarray) -> np.ndarray:
        """Face boxes (x, y, w, h) in the working image's pixels."""
        h, w = image.shape[:2]
        if self.detector is None:
            return np.array([[0, 0, w, h]], np.int64)
        return self.detector(image)

    def _boxes_and_gray(self, image: np.ndarray):
        gray = to_gray(image)
        if isinstance(self.detector, detect.HaarDetector):
            return self.detector(gray), gray     # Haar works on gray: convert once
        return self.boxes(image), gray

    def faces(self, image: np.ndarray, scale: float = 1.0, size=None,
              boxes: np.ndarray | None = None) -> list[dict]:
        h, w = image.shape[:2]
        size = size or (w, h)
        if boxes is None:
            boxes, gray = self._boxes_and_gray(image)
        else:
            gray = to_gray(image)
        if len(boxes) == 0:
            return []
        margin = 0.0 if self.detector is None else self.margin
        crops = np.stack([face_to_input(_margin_crop(gray, b, margin)) for b in boxes])
        if self.tta:
            scores = flip_tta(self.model.predict, crops, batch_size=2 * len(crops))
        else:
            scores = self.model.predict(crops, batch_size=len(crops))
        out = []
        for box, s in zip(boxes, scores):
            k = int(np.argmax(s))
            out.append({
                "box": _to_original(box, scale, size),
                "emotion": self.names[k],
                "confidence": round(float(s[k]), 4),
                "scores": {n: round(float(v), 4) for n, v in zip(self.names, s)},
            })
        return out


def _labels(labels):
    """--labels as "a,b,c" or a sequence -> list of names (None: the model's own)."""
    if labels is None or labels == "":
        return None
    if isinstance(labels, str):
        labels = labels.split(",")
    return [str(x).strip() for x in labels]


def _to_original(box, scale: float, size) -> list[int]:
    """A working-image box -> original-image pixels, clipped to the original image."""
    W, H = size
    x, y, w, h = (float(v) * scale for v in box)
    x0, y0 = max(0, round(x)), max(0, round(y))
    x1, y1 = min(W, round(x + w)), min(H, round(y + h))
    return [int(x0), int(y0), int(max(0, x1 - x0)), int(max(0, y1 - y0))]


# ------------------------------------------------------------------------------------ outputs

class _Writer:
    def __init__(self, fmt: str, out, names: list[str]):
        self.fmt, self.out, self.names = fmt, out, names
        self.started = False
        if fmt == "csv":
            self.csv = csv.writer(out, lineterminator="\n")

    def _header(self):
        if self.started:
            return
        self.started = True
        if self.fmt == "table":
            self.out.write(f"{'file':<32}  {'face box (x,y,w,h)':<20}  {'emotion':<9} confidence\n")
        elif self.fmt == "csv":
            self.csv.writerow(["file", "face", "x", "y", "w", "h", "emotion", "confidence",
                               *self.names])

    def write(self, name: str, faces: list[dict]) -> None:
        self._header()
        if self.fmt == "json":
            self.out.write(json.dumps({"file": name, "faces": faces}) + "\n")
        elif self.fmt == "csv":
            if not faces:
                self.csv.writerow([name] + [""] * (7 + len(self.names)))
            for i, f in enumerate(faces):
                self.csv.writerow([name, i, *f["box"], f["emotion"], f"{f['confidence']:.4f}",
                                   *(f"{f['scores'][n]:.4f}" for n in self.names)])
        else:
            if not faces:
                self.out.write(f"{name:<32}  {'-':<20}  (no face)\n")
            for f in faces:
                box = ",".join(str(v) for v in f["box"])
                self.out.write(f"{name:<32}  {box:<20}  {f['emotion']:<9} "
                               f"{f['confidence']:.2f}\n")
        self.out.flush()


def _annotated_name(item: Item) -> str:
    if item.source == STDIN:
        return "stdin.png"
    rel = Path(item.rel or Path(item.name).name)
    if item.frame is not None:
        return str(rel.with_name(f"{rel.stem}_frame{item.frame:06d}.jpg"))
    if rel.suffix.lower() not in IMAGE_EXTS - {".pbm"}:
        rel = rel.with_name(rel.name + ".png")
    return str(rel)


def annotate(image: np.ndarray, faces: list[dict], scale: float) -> np.ndarray:
    """An 8-bit BGR copy of the working image with each face's box and label drawn."""
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
        cv2.rectangle(img, (x, y), (x + w, y + h), (0, 255, 0), thick)
        text = f"{f['emotion']} {f['confidence']:.2f}"
        fs = max(0.4, thick * 0.5)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, thick)
        ty = y - 4 if y - th - 4 >= 0 else min(img.shape[0] - 1, y + h + th + 4)
        cv2.rectangle(img, (x, ty - th - base), (x + tw, ty + base), (0, 255, 0), -1)
        cv2.putText(img, text, (x, ty), cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), thick,
                    cv2.LINE_AA)
    return img


def _save_annotated(out_dir: Path, item: Item, faces: list[dict], force: bool) -> None:
    import cv2

    path = out_dir / _annotated_name(item)
    fileio.check_writable(path, force)
    ok, enc = cv2.imencode(path.suffix, annotate(item.image, faces, item.scale))
    if not ok:
        raise FerEdgeError(f"cannot encode {path}")
    fileio.write_bytes(path, enc.tobytes())


# ---------------------------------------------------------------------------------- the command

@dataclass
class Summary:
    inputs: int = 0
    faces: int = 0
    failed: list[str] = field(default_factory=list)


def classify(paths, model=None, detector: str = detect.DEFAULT, no_detect: bool = False,
             glob: str | None = None, every: int = defaults.VIDEO_EVERY,
             threads: int | None = defaults.CLASSIFY_THREADS,
             format: str = "table", save_annotated=None, force: bool = False,
             labels=None, tta: bool = False, out=None, err=None, stdin=None) -> Summary:
    """Classify the faces in `paths`, writing results to `out` (stdout) as they come.

    Raises FerEdgeError for unusable options/models (before any input is read) and InputsFailed
    (exit code 1) at the end when some inputs could not be read; those were each reported on
    `err` (stderr) as one line, and every other input was processed.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    paths = [str(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    if not paths:
        raise FerEdgeError("nothing to classify: give image files, folders, videos or '-'")
    if format not in FORMATS:
        raise FerEdgeError(f"unknown format '{format}' ({', '.join(FORMATS)})")
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise FerEdgeError(f"--every must be a whole number >= 1, not {every!r}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise FerEdgeError(f"--threads must be a whole number >= 1, not {threads!r}")
    if not no_detect and detector not in detect.DETECTORS:
        raise FerEdgeError(f"unknown detector '{detector}' (known: {', '.join(detect.DETECTORS)})")
    if paths.count(STDIN) > 1:
        raise FerEdgeError("'-' (stdin) can be given only once")
    out_dir = Path(save_annotated) if save_annotated else None
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise FerEdgeError(f"--save-annotated {out_dir} exists and is not a folder")

    clf = Classifier(model, detector=detector, no_detect=no_detect, threads=threads,
                     labels=labels, tta=tta)
    writer = _Writer(format, out, clf.names)
    summary = Summary()

    def fail(name: str, reason: str) -> None:
        summary.failed.append(name)
        err.write(f"fer-edge: error: {name}: {reason}\n")
        err.flush()

    for item in iter_items(paths, glob=glob, every=every, stdin=stdin):
        summary.inputs += 1
        if item.error:
            fail(item.name, item.error)
            continue
        h, w = item.image.shape[:2]
        if min(h, w) < MIN_IMAGE_SIDE:
            err.write(f"fer-edge: note: {item.name}: image is {item.size[0]}x{item.size[1]} px, "
                      f"too small to hold a face\n")
            faces = []
        else:
            faces = clf.faces(item.image, item.scale, item.size)
        summary.faces += len(faces)
        writer.write(item.name, faces)
        if out_dir is not None:
            try:
                _save_annotated(out_dir, item, faces, force)
            except (FerEdgeError, OSError) as e:
                fail(item.name, f"annotated copy not written: {e}")
        item.image = None

    if summary.failed:
        n = len(summary.failed)
        raise InputsFailed(f"{n} of {summary.inputs} input{'s' if summary.inputs != 1 else ''} "
                           f"could not be processed ({summary.inputs - n} done, "
                           f"{summary.faces} face{'s' if summary.faces != 1 else ''})")
    return summary
