"""`fer-edge classify` and the `Classifier` API: the edge runtime. Detect faces, crop them (level
the eyes), classify their emotion with a `.tflite` on LiteRT; in videos and streams, follow each
face with a track id.

Imports only numpy, OpenCV and ai-edge-litert (never TensorFlow or Keras), so it runs on a
device that has nothing else. A Classifier loads the model and the face detector once; the
faces of one image are classified in one batch.

    from fer_edge import Classifier
    with Classifier() as clf:                 # the shipped model, the default detector
        clf.faces("photo.jpg")                # [{"box", "emotion", "confidence", "scores"}]
        for frame in clf.video("clip.mp4"):   # or 0 (camera 0), or "rtsp://..."
            print(frame["time"], [(f["track"], f["emotion"]) for f in frame["faces"]])
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .. import defaults, options
from ..defaults import shipped_model
from . import detect, sources, track
from ..errors import FerEdgeError
from .preprocessing import (aligned_crop, canonical_label, face_to_input, flip_tta, margin_crop,
                            to_gray, to_uint8)
from .outputs import AnnotatedOutput, ResultWriter, print_summary
from .sources import CAMERA_PREFIX, STDIN
from .video import FrameTracker, prefetch

MIN_IMAGE_SIDE = 8       # smaller images cannot hold a face: reported as zero faces, with a note


# The options of classify's table a Classifier takes (batch and serve pass theirs on too).
CLASSIFIER_OPTIONS = ("model", "detector", "no_detect", "threads", "labels", "tta", "align",
                      "max_pixels")


class InputsFailed(FerEdgeError):
    """Some inputs could not be read (each was reported already); the others were processed."""

    exit_code = 1


class Classifier:
    """A model and a face detector, loaded once; what an app embeds.

        with Classifier() as clf:                     # or Classifier("fast"), a .tflite/.onnx path
            clf.faces("photo.jpg")                    # [{"box", "emotion", "confidence", "scores"}]
            clf.faces(frame)                          # a BGR array as OpenCV gives it
            clf.faces(rgb, channels="rgb")            # an RGB array; a PIL image is read as RGB
            clf.faces_batch([a, b, c])                # several images, their faces in one batch
            with clf.video("clip.mp4") as frames:     # or 0 (camera 0), or "rtsp://..."
                for frame in frames: ...              # {"file", "frame", "time", "faces"}

    Images: a path, an image file's bytes, a numpy array (gray, BGR or BGRA by default, as
    OpenCV decodes them; 8- or 16-bit or float in 0..1) or a PIL image. Boxes are (x, y, w, h)
    in the caller's image pixels, whatever its size (an image over defaults.MAX_IMAGE_SIDE is
    searched downscaled).

    Threads: one Classifier may be shared; its detector and model calls run one at a time under
    its lock (a LiteRT interpreter is not thread-safe). For parallel throughput give each thread
    its own Classifier. Nothing here redirects the process's stderr.
    """

    def __init__(self, model: str | os.PathLike | None = None, detector: str = detect.DEFAULT,
                 no_detect: bool = False, threads: int | None = 1,
                 margin: float = defaults.FACE_MARGIN, labels=None, tta: bool = False,
                 align: bool = defaults.ALIGN_FACES, max_pixels: int = defaults.MAX_PIXELS):
        from .runtime import open_model

        # the classify command's option table checks the Python API's values too (one line
        # naming the option, before anything is loaded)
        options.check("classify", {"detector": detector, "no_detect": no_detect,
                                   "threads": threads, "labels": labels, "tta": tta,
                                   "align": align, "max_pixels": max_pixels}, partial=True)
        path = shipped_model(model)
        with sources.quiet_native_stderr():      # LiteRT's INFO lines, in the classify command
            self.model = open_model(path, threads=threads, labels=_labels(labels))
            self.detector = None if no_detect else detect.get(detector, threads=threads)
        self.detector_name = None if no_detect else detect.resolve(detector)
        self.no_detect = no_detect
        self.margin = margin
        self.tta = tta
        self.align = align
        self.max_pixels = max_pixels
        self.names = [canonical_label(lab) or lab for lab in self.model.labels]
        self._lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------------- the public API

    def faces(self, image, channels: str = "bgr") -> list[dict]:
        """The faces of one image: box (x, y, w, h in the image's pixels), emotion, confidence
        and every label's score, largest-first as the detector found them."""
        working, scale, size = self._working(image, channels)
        return self._image_faces(working, scale, size)

    def faces_batch(self, images, channels: str = "bgr") -> list[list[dict]]:
        """`faces` of each image, the faces of all of them classified in one model batch."""
        prepared = [self._working(image, channels) for image in images]
        found, crops = [], []
        for working, _, _ in prepared:
            f = self._detect(working) if min(working.shape[:2]) >= MIN_IMAGE_SIDE else \
                detect.Detections.build(np.zeros((0, 4)), np.zeros(0))
            found.append(f)
            if len(f):
                crops.append(self._crops(to_gray(working), f))
        scores = self._scores(np.concatenate(crops)) if crops else np.zeros((0, 0))
        out, k = [], 0
        for (_, scale, size), f in zip(prepared, found):
            out.append([self._face(b, s, scale, size) for b, s in zip(f.boxes, scores[k:])])
            k += len(f)
        return out

    def video(self, source, every: int = 1, smooth: float = defaults.VIDEO_SMOOTH,
              detect_every: int = defaults.VIDEO_DETECT_EVERY, start: int = 0,
              stop: int | None = None) -> "VideoFrames":
        """The frames of a video file, camera (an int) or stream URL, classified with track ids:
        an iterator of {"file", "frame", "time", "faces"}; close it (or use `with`) to release
        the capture before the end. `smooth` and `detect_every` as in `FrameTracker`; `start`
        and `stop` keep a file's frames [start, stop) (numbered as in the whole video)."""
        options.check("classify", {"every": every, "smooth": smooth,
                                   "detect_every": detect_every}, partial=True)
        if not (isinstance(start, int) and start >= 0) or (
                stop is not None and not (isinstance(stop, int) and stop > start)):
            raise FerEdgeError(f"video(): start must be a whole number >= 0 and stop one above "
                               f"it (or None), not {start!r}, {stop!r}")
        camera = isinstance(source, (int, np.integer)) and not isinstance(source, bool)
        target = f"{CAMERA_PREFIX}{int(source)}" if camera else str(source)
        return VideoFrames(self, target, every, FrameTracker(smooth, detect_every), start, stop)

    def close(self) -> None:
        """Release the interpreters; the Classifier cannot be used after."""
        with self._lock:
            self.model = self.detector = None
            self._closed = True

    def __enter__(self) -> "Classifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------ internals

    def _working(self, image, channels: str) -> tuple[np.ndarray, float, tuple[int, int]]:
        """(the image as searched: BGR/gray uint8, at most MAX_IMAGE_SIDE; original pixels per
        working pixel; the original (width, height))."""
        if isinstance(image, (str, os.PathLike)):
            try:
                return sources.decode(np.fromfile(image, np.uint8), max_pixels=self.max_pixels)
            except (OSError, ValueError) as e:
                raise FerEdgeError(f"{image}: {getattr(e, 'strerror', None) or e}") from None
        if isinstance(image, (bytes, bytearray, memoryview)):   # an image file's contents
            try:
                return sources.decode(np.frombuffer(image, np.uint8),
                                      max_pixels=self.max_pixels)
            except ValueError as e:
                raise FerEdgeError(str(e)) from None
        if channels not in ("bgr", "rgb"):
            raise FerEdgeError(f"channels must be 'bgr' or 'rgb', not {channels!r}")
        if not isinstance(image, np.ndarray) and hasattr(image, "convert"):   # a PIL image
            image, channels = np.asarray(image.convert("RGB")), "rgb"
        image = to_uint8(np.asarray(image))
        if image.ndim not in (2, 3) or image.size == 0:
            raise FerEdgeError(f"an image is a 2-D (gray) or 3-D (colour) array, not shape "
                               f"{image.shape}")
        if channels == "rgb" and image.ndim == 3 and image.shape[2] in (3, 4):
            import cv2

            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.shape[2] == 3
                                 else cv2.COLOR_RGBA2BGRA)
        h, w = image.shape[:2]
        working, scale = sources.shrink(image, defaults.MAX_IMAGE_SIDE)
        return working, scale, (w, h)

    def _check_open(self) -> None:
        if self._closed:
            raise FerEdgeError("this Classifier is closed")

    def _detect(self, image: np.ndarray) -> detect.Detections:
        """The faces' boxes (x, y, w, h), scores and eyes in the working image's pixels."""
        with self._lock:
            self._check_open()
            if self.no_detect:
                h, w = image.shape[:2]
                return detect.Detections.build([[0, 0, w, h]], [1.0])
            return self.detector.detect(image)

    def _crops(self, gray: np.ndarray, found: detect.Detections) -> np.ndarray:
        """uint8 (N, 48, 48) model inputs of the detected faces."""
        margin = 0.0 if self.no_detect else self.margin
        if self.align and found.eyes is not None:
            faces = [aligned_crop(gray, b, margin, e) for b, e in zip(found.boxes, found.eyes)]
        else:
            faces = [margin_crop(gray, b, margin) for b in found.boxes]
        return np.stack([face_to_input(f) for f in faces])

    def _scores(self, crops: np.ndarray) -> np.ndarray:
        with self._lock:
            self._check_open()
            if self.tta:
                return flip_tta(self.model.predict, crops, batch_size=2 * len(crops))
            return self.model.predict(crops, batch_size=len(crops))

    def _image_faces(self, image: np.ndarray, scale: float, size,
                     boxes: np.ndarray | None = None) -> list[dict]:
        """The faces of a working image (`scale` and `size` map boxes to the original)."""
        found = self._detect(image) if boxes is None else detect.Detections.build(
            boxes, np.ones(len(boxes)))
        if len(found) == 0:
            return []
        scores = self._scores(self._crops(to_gray(image), found))
        return [self._face(box, s, scale, size) for box, s in zip(found.boxes, scores)]

    def _face(self, box, scores: np.ndarray, scale: float, size) -> dict:
        k = int(np.argmax(scores))
        return {
            "box": _to_original(box, scale, size),
            "emotion": self.names[k],
            "confidence": round(float(scores[k]), 4),
            "scores": {n: round(float(v), 4) for n, v in zip(self.names, scores)},
        }


class VideoFrames:
    """`Classifier.video`'s frames: an iterator that releases its capture when it ends, is
    closed, or leaves a `with` block."""

    def __init__(self, clf: Classifier, target: str, every: int, tracker: "FrameTracker",
                 start: int = 0, stop: int | None = None):
        # decoded on a thread of their own, a few frames ahead of the model (video.prefetch)
        self._items = prefetch(sources.video_items(target, target, every, start=start,
                                                   stop=stop))
        self.clf, self.target, self.tracker = clf, target, tracker

    def __iter__(self) -> "VideoFrames":
        return self

    def __next__(self) -> dict:
        item = next(self._items)
        if item.error:
            self.close()
            raise FerEdgeError(f"{self.target}: {item.error}")
        return self.tracker.record(self.clf, item)

    def close(self) -> None:
        self._items.close()          # runs video_items' finally: the capture is released

    def __enter__(self) -> "VideoFrames":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _labels(labels):
    """--labels as "a,b,c" or a sequence -> list of names (None: the model's own)."""
    if labels is None or labels == "":
        return None
    return [str(x).strip() for x in options.split_commas(labels)]


def _to_original(box, scale: float, size) -> list[int]:
    """A working-image box -> original-image pixels, clipped to the original image."""
    W, H = size
    x, y, w, h = (float(v) * scale for v in box)
    x0, y0 = max(0, round(x)), max(0, round(y))
    x1, y1 = min(W, round(x + w)), min(H, round(y + h))
    return [int(x0), int(y0), int(max(0, x1 - x0)), int(max(0, y1 - y0))]


# ---------------------------------------------------------------------------------- the command

@dataclass
class Summary:
    inputs: int = 0
    faces: int = 0
    failed: list[str] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)    # video frames, kept for --summary


def check_options(paths: list[str], given: dict) -> options.Config:
    """Every option checked before any model is loaded or input read: the command's
    configuration, each value typed by the option table."""
    if not paths:
        raise FerEdgeError("nothing to classify: give image files, folders, videos, stream "
                           "URLs, --camera N or '-'")
    cfg = options.check("classify", given)
    if paths.count(STDIN) > 1:
        raise FerEdgeError("'-' (stdin) can be given only once")
    out_dir = given.get("save_annotated")
    if out_dir and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise FerEdgeError(f"--save-annotated {out_dir} exists and is not a folder")
    return cfg


def classify(paths, model=None, detector: str = detect.DEFAULT, no_detect: bool = False,
             glob: str | None = None, every: int = defaults.VIDEO_EVERY,
             threads: int | None = defaults.CLASSIFY_THREADS,
             format: str = "table", save_annotated=None, force: bool = False,
             labels=None, tta: bool = False, align: bool = defaults.ALIGN_FACES,
             smooth: float = defaults.VIDEO_SMOOTH, summary: bool = False,
             camera: int | None = None,
             detect_every: int = defaults.VIDEO_DETECT_EVERY,
             max_pixels: int = defaults.MAX_PIXELS,
             out=None, err=None, stdin=None) -> Summary:
    """Classify the faces in `paths` (and camera `camera`), writing results to `out` (stdout)
    as they come.

    Raises FerEdgeError for unusable options/models (before any input is read) and InputsFailed
    (exit code 1) at the end when some inputs could not be read; those were each reported on
    `err` (stderr) as one line, and every other input was processed.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    paths = [str(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    given = {k: v for k, v in locals().items() if k not in ("paths", "out", "err", "stdin")}
    if isinstance(camera, int) and not isinstance(camera, bool) and camera >= 0:
        paths.append(f"{CAMERA_PREFIX}{camera}")
    cfg = check_options(paths, given)
    # The command's contract is one line per bad input: what C libraries print on fd 2 (libjpeg,
    # FFmpeg, LiteRT's INFO lines) is silenced for its duration, and only here.
    with sources.native_stderr_silenced(err) as err:
        return _classify(paths, cfg, out, err, stdin)


def _classify(paths: list[str], cfg: options.Config, out, err, stdin) -> Summary:
    """The classify command on its checked configuration."""
    clf = Classifier(cfg.model, **{k: cfg[k] for k in CLASSIFIER_OPTIONS if k != "model"})
    run = _Run(clf, ResultWriter(cfg.format, out, clf.names, _has_video(paths, cfg.glob)), err,
               AnnotatedOutput(Path(cfg.save_annotated), cfg.force) if cfg.save_annotated
               else None, cfg.smooth, cfg.detect_every, cfg.summary)
    # inputs read and decoded on a thread of their own, a few ahead (video.prefetch)
    items = prefetch(sources.iter_items(paths, glob=cfg.glob, every=cfg.every, stdin=stdin,
                                        keep_skipped=run.annotated is not None,
                                        max_pixels=cfg.max_pixels))
    try:
        for item in items:
            run.handle(item)
            item.image = None
    finally:
        items.close()
        if run.annotated is not None:
            run.annotated.close()
    if cfg.summary:
        print_summary(track.summarize(run.done.records), clf.names,
                      out if cfg.format == "table" else err)
    done = run.done
    if done.failed:
        n = len(done.failed)
        raise InputsFailed(f"{n} of {done.inputs} input{'s' if done.inputs != 1 else ''} "
                           f"could not be processed ({done.inputs - n} done, "
                           f"{done.faces} face{'s' if done.faces != 1 else ''})")
    return done


def _has_video(paths: list[str], glob: str | None) -> bool:
    """Whether any input is (or, for a folder, holds) a video, stream or camera: the table's
    time and track columns."""
    for arg in paths:
        path = Path(arg)
        if sources.is_stream(arg) or path.suffix.lower() in sources.VIDEO_EXTS:
            return True
        if path.is_dir() and any(p.suffix.lower() in sources.VIDEO_EXTS
                                 for p in path.rglob(glob or "*")):
            return True
    return False


class _Run:
    """One classify command's pass over its inputs: results written as they come, failures
    reported in a line each, videos tracked frame to frame, annotated copies saved."""

    def __init__(self, clf: Classifier, writer: ResultWriter, err,
                 annotated: AnnotatedOutput | None, smooth: float, detect_every: int,
                 keep_records: bool):
        self.clf, self.writer, self.err, self.annotated = clf, writer, err, annotated
        self.smooth, self.detect_every, self.keep_records = smooth, detect_every, keep_records
        self.done = Summary()
        self.video: str | None = None          # the video being read, and its tracker
        self.frames: FrameTracker | None = None
        self.unsaved: set[str] = set()         # inputs whose annotated copy failed

    def fail(self, name: str, reason: str) -> None:
        self.done.failed.append(name)
        self.err.write(f"fer-edge: error: {name}: {reason}\n")
        self.err.flush()

    def save(self, item: sources.Item, faces: list[dict] | None = None) -> None:
        if self.annotated is None or item.name in self.unsaved:
            return                             # a failed video is reported once, not per frame
        try:
            self.annotated.add(item, faces)
        except (FerEdgeError, OSError) as e:
            self.unsaved.add(item.name)
            self.fail(item.name, f"annotated copy not written: {e}")

    def handle(self, item: sources.Item) -> None:
        if item.error:
            self.done.inputs += 1
            self.fail(item.name, item.error)
            return
        if item.skip:
            self.save(item)                    # drawn with the last faces, not classified
            return
        if self.annotated is not None and item.name not in self.unsaved:
            try:
                self.annotated.check(item)
            except FerEdgeError as e:          # before its result: one line, no result
                if item.frame is None or item.name != self.video:
                    self.done.inputs += 1
                self.unsaved.add(item.name)
                self.fail(item.name, f"annotated copy not written: {e}")
                return
        if item.name in self.unsaved and item.frame is not None:
            return                             # the rest of a video whose copy failed
        if item.frame is None:
            self.done.inputs += 1
            record = {"file": item.name, "faces": _image_faces(self.clf, item, self.err)}
        else:
            if item.name != self.video:
                self.video, self.frames = item.name, FrameTracker(self.smooth,
                                                                  self.detect_every)
                self.done.inputs += 1
            record = self.frames.record(self.clf, item)
            if self.keep_records:
                self.done.records.append(record)
        self.done.faces += len(record["faces"])
        self.writer.write(record)
        self.save(item, record["faces"])


def _image_faces(clf: Classifier, item: sources.Item, err) -> list[dict]:
    h, w = item.image.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        err.write(f"fer-edge: note: {item.name}: image is {item.size[0]}x{item.size[1]} px, "
                  f"too small to hold a face\n")
        return []
    return clf._image_faces(item.image, item.scale, item.size)
