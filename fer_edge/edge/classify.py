"""`fer-edge classify` and the `Classifier` API: the edge runtime. Detect faces, crop them (level
the eyes), classify their emotion with a `.tflite` on LiteRT; in videos and streams, follow each
face with a track id.

Imports only numpy, OpenCV and ai-edge-litert (never TensorFlow or Keras), so it runs on a
device that has nothing else. The model and the face detector are loaded once per process; the
faces of one image are classified in one batch.

    from fer_edge import Classifier
    clf = Classifier()                        # the shipped model, the default detector
    clf.faces("photo.jpg")                    # [{"box", "emotion", "confidence", "scores"}]
    for frame in clf.video("clip.mp4"):       # or 0 (camera 0), or "rtsp://..."
        print(frame["time"], [(f["track"], f["emotion"]) for f in frame["faces"]])
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .. import defaults
from . import detect, sources, track
from ..errors import FerEdgeError
from .preprocessing import (aligned_crop, canonical_label, face_to_input, flip_tta, margin_crop,
                     to_gray)
from .outputs import AnnotatedOutput, ResultWriter, print_summary
from .sources import CAMERA_PREFIX, STDIN, quiet_native_stderr

MIN_IMAGE_SIDE = 8       # smaller images cannot hold a face: reported as zero faces, with a note


class InputsFailed(FerEdgeError):
    """Some inputs could not be read (each was reported already); the others were processed."""

    exit_code = 1


def shipped_model(name: str | os.PathLike | None) -> Path:
    """--model: a path, a shipped model's name ("default", "fast"), or None (the default)."""
    key = str(name) if name else "default"
    if key not in defaults.SHIPPED_MODELS:
        path = Path(name)
        if not path.exists() and not path.suffix and len(path.parts) == 1:
            raise FerEdgeError(f"model not found: {key} is neither a file nor a shipped model "
                               f"({', '.join(defaults.SHIPPED_MODELS)})")
        return path
    path = defaults.shipped_model(key)
    if not path.exists():
        raise FerEdgeError(
            f"no {key} model is shipped ({path} does not exist); pass one with "
            f"--model PATH.tflite (export a trained model with `fer-edge export`)")
    return path


class Classifier:
    """A model and a face detector, loaded once.

    `faces(image)` -> the faces of one image (a path or a decoded BGR/gray array);
    `video(source)` -> a generator of frames ({"frame", "time", "faces"}) over a video file, a
    camera index or a stream URL, each face with a "track" id.
    """

    def __init__(self, model: str | os.PathLike | None = None, detector: str = detect.DEFAULT,
                 no_detect: bool = False, threads: int | None = 1,
                 margin: float = defaults.FACE_MARGIN, labels=None, tta: bool = False,
                 align: bool = defaults.ALIGN_FACES):
        from .runtime import EmotionModel

        path = shipped_model(model)
        with quiet_native_stderr():
            self.model = EmotionModel(path, threads=threads, labels=_labels(labels))
            self.detector = None if no_detect else detect.get(detector, threads=threads)
        self.detector_name = None if no_detect else detect.resolve(detector)
        self.margin = margin
        self.tta = tta
        self.align = align
        self.names = [canonical_label(lab) or lab for lab in self.model.labels]

    def detect(self, image: np.ndarray) -> detect.Detections:
        """The faces' boxes (x, y, w, h), scores and eyes in the image's pixels."""
        h, w = image.shape[:2]
        if self.detector is None:
            return detect.Detections.build([[0, 0, w, h]], [1.0])
        return self.detector.detect(image)

    def boxes(self, image: np.ndarray) -> np.ndarray:
        return self.detect(image).boxes

    def crops(self, gray: np.ndarray, found: detect.Detections) -> np.ndarray:
        """uint8 (N, 48, 48) model inputs of the detected faces."""
        margin = 0.0 if self.detector is None else self.margin
        if self.align and found.eyes is not None:
            faces = [aligned_crop(gray, b, margin, e) for b, e in zip(found.boxes, found.eyes)]
        else:
            faces = [margin_crop(gray, b, margin) for b in found.boxes]
        return np.stack([face_to_input(f) for f in faces])

    def scores(self, crops: np.ndarray) -> np.ndarray:
        if self.tta:
            return flip_tta(self.model.predict, crops, batch_size=2 * len(crops))
        return self.model.predict(crops, batch_size=len(crops))

    def faces(self, image, scale: float = 1.0, size=None,
              boxes: np.ndarray | None = None) -> list[dict]:
        """The faces of one image: box (in original pixels: working box x `scale`, clipped to
        `size`), emotion, confidence and every label's score."""
        if isinstance(image, (str, os.PathLike)):
            image = sources.read_image(image)
        h, w = image.shape[:2]
        found = self.detect(image) if boxes is None else detect.Detections.build(
            boxes, np.ones(len(boxes)))
        if len(found) == 0:
            return []
        scores = self.scores(self.crops(to_gray(image), found))
        return [self.face(box, s, scale, size or (w, h)) for box, s in zip(found.boxes, scores)]

    def face(self, box, scores: np.ndarray, scale: float, size) -> dict:
        k = int(np.argmax(scores))
        return {
            "box": _to_original(box, scale, size),
            "emotion": self.names[k],
            "confidence": round(float(scores[k]), 4),
            "scores": {n: round(float(v), 4) for n, v in zip(self.names, scores)},
        }

    def video(self, source, every: int = 1, smooth: float = defaults.VIDEO_SMOOTH,
              detect_every: int = defaults.VIDEO_DETECT_EVERY) -> Iterator[dict]:
        """Frames of a video file, camera (an int) or stream URL: {"file", "frame", "time",
        "faces"}, each face with its "track"; `smooth` and `detect_every` as in
        `FrameTracker`."""
        target = f"{CAMERA_PREFIX}{source}" if isinstance(source, int) else str(source)
        tracker = FrameTracker(smooth, detect_every)
        for item in sources.video_items(target, target, every):
            if item.error:
                raise FerEdgeError(f"{target}: {item.error}")
            yield tracker.record(self, item)


class FrameTracker:
    """Classifies the frames of one video with track ids.

    The detector runs on every `detect_every`th frame (and on every frame while no face is
    followed); in between, each face's box is carried to the next frame by optical flow
    (`track.flow_boxes`), so a new face is found at most `detect_every - 1` frames late.
    `smooth` in [0, 1) is the weight of the past in an exponential moving average of each
    track's scores (0: none)."""

    def __init__(self, smooth: float = defaults.VIDEO_SMOOTH,
                 detect_every: int = defaults.VIDEO_DETECT_EVERY):
        self.tracker = track.Tracker(max_gap=track.TRACK_MAX_GAP * detect_every)
        self.smooth = smooth
        self.detect_every = detect_every
        self.since_detect = 0
        self.prev_gray = None
        self.followed: tuple[detect.Detections, list] | None = None   # last frame's faces

    def _faces_and_tracks(self, clf: Classifier, image: np.ndarray, gray: np.ndarray):
        keyframe = (self.since_detect % self.detect_every == 0 or not self.followed
                    or self.prev_gray is None or self.prev_gray.shape != gray.shape)
        if keyframe:
            self.since_detect = 0
            found = clf.detect(image)
            tracks = self.tracker.update(found.boxes.tolist())
        else:
            last, last_tracks = self.followed
            boxes, eyes, ok = track.flow_boxes(self.prev_gray, gray, last.boxes, last.eyes)
            found = detect.Detections(boxes[ok], last.scores[ok],
                                      None if eyes is None else eyes[ok])
            tracks = [t for t, keep in zip(last_tracks, ok) if keep]
            self.tracker.keep(tracks, found.boxes.tolist())
        self.since_detect += 1
        self.followed = (found, tracks) if len(found) else None
        self.prev_gray = gray
        return found, tracks

    def record(self, clf: Classifier, item: sources.Item) -> dict:
        image = item.image
        faces = []
        if min(image.shape[:2]) >= MIN_IMAGE_SIDE:
            gray = to_gray(image)
            found, tracks = self._faces_and_tracks(clf, image, gray)
            if len(found):
                scores = clf.scores(clf.crops(gray, found))
                for box, s, t in zip(found.boxes, scores, tracks):
                    face = clf.face(box, track.smooth(t, s, self.smooth), item.scale, item.size)
                    faces.append({"track": t.id, **face})
        return {"file": item.name, "frame": item.frame, "time": item.time, "faces": faces}


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


# ---------------------------------------------------------------------------------- the command

@dataclass
class Summary:
    inputs: int = 0
    faces: int = 0
    failed: list[str] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)    # video frames, kept for --summary


def check_options(paths: list[str], options: dict) -> None:
    """Every option checked before any model is loaded or input read."""
    from .. import config

    if not paths:
        raise FerEdgeError("nothing to classify: give image files, folders, videos, stream "
                           "URLs, --camera N or '-'")
    config.check("classify", options)
    if paths.count(STDIN) > 1:
        raise FerEdgeError("'-' (stdin) can be given only once")
    out_dir = options.get("save_annotated")
    if out_dir and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise FerEdgeError(f"--save-annotated {out_dir} exists and is not a folder")


def classify(paths, model=None, detector: str = detect.DEFAULT, no_detect: bool = False,
             glob: str | None = None, every: int = defaults.VIDEO_EVERY,
             threads: int | None = defaults.CLASSIFY_THREADS,
             format: str = "table", save_annotated=None, force: bool = False,
             labels=None, tta: bool = False, align: bool = defaults.ALIGN_FACES,
             smooth: float = defaults.VIDEO_SMOOTH, summary: bool = False,
             camera: int | None = None,
             detect_every: int = defaults.VIDEO_DETECT_EVERY,
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
    options = {k: v for k, v in locals().items()
               if k not in ("paths", "out", "err", "stdin")}
    if isinstance(camera, int) and not isinstance(camera, bool) and camera >= 0:
        paths.append(f"{CAMERA_PREFIX}{camera}")
    check_options(paths, options)
    clf = Classifier(model, detector=detector, no_detect=no_detect, threads=threads,
                     labels=labels, tta=tta, align=align)
    run = _Run(clf, ResultWriter(format, out, clf.names), err,
               AnnotatedOutput(Path(save_annotated), force) if save_annotated else None,
               smooth, detect_every, summary)
    try:
        for item in sources.iter_items(paths, glob=glob, every=every, stdin=stdin,
                                       keep_skipped=run.annotated is not None):
            run.handle(item)
            item.image = None
    finally:
        if run.annotated is not None:
            run.annotated.close()
    if summary:
        print_summary(track.summarize(run.done.records), clf.names,
                      out if format == "table" else err)
    done = run.done
    if done.failed:
        n = len(done.failed)
        raise InputsFailed(f"{n} of {done.inputs} input{'s' if done.inputs != 1 else ''} "
                           f"could not be processed ({done.inputs - n} done, "
                           f"{done.faces} face{'s' if done.faces != 1 else ''})")
    return done


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
    return clf.faces(item.image, item.scale, item.size)
