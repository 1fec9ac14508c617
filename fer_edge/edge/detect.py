"""Face detectors for the edge runtime: MediaPipe BlazeFace run on LiteRT (its two model files ship
in `fer_edge/edge/assets/`, Apache-2.0, see NOTICE) and OpenCV's Haar cascades. No TensorFlow.

Every detector takes a decoded image (gray, BGR or BGRA, uint8). `detect(image)` returns
`Detections`: face boxes (N, 4) of `x, y, w, h` in that image's pixels sorted left to right, their
scores, and for BlazeFace the two eye centres (what `classify` levels a tilted face with).
Calling a detector returns the boxes alone. `get` builds a new detector on each call: build one
and reuse it for every image (a Classifier holds one).

No single BlazeFace is best at every scale: full-range (192 px input) finds the small, distant
faces of group photos but misses most close-ups and tight face crops, which short-range (128 px,
faces within ~2 m) finds. The default, "auto", is `blazeface_dual`: both models on every image,
their faces merged (benchmarks/detectors.py measures each detector on both kinds of picture).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import defaults
from ..errors import FerEdgeError

# Standard, untuned Haar settings (OpenCV's documented values).
HAAR_SCALE_FACTOR = 1.1
HAAR_MIN_NEIGHBORS = 5
MIN_FACE_FRACTION = 1 / 20   # smallest face searched for: this share of the image's shorter side
MIN_FACE_PX = 24             # ... but never below the cascades' own 24x24 window

# MediaPipe's own post-processing values (face_detection_*.pbtxt).
BLAZE_MIN_SCORE = 0.5
BLAZE_NMS_IOU = 0.3
BLAZE_RAW_SCORE_LIMIT = 80.0
# blazeface_dual: a face seen by both models is one face when the boxes overlap this much, by IoU
# or by the share of the smaller box inside the larger (the two models frame a face differently).
DUAL_SAME_FACE_IOU = 0.3
DUAL_SAME_FACE_INSIDE = 0.6

DETECTORS = {
    "auto": "blazeface_dual (the best at every scale)",
    "blazeface_dual": ("MediaPipe BlazeFace full-range and short-range on every image, faces "
                       "merged: group photos to tight face crops"),
    "blazeface_full": "MediaPipe BlazeFace full-range (small, distant faces; misses close-ups)",
    "blazeface": "MediaPipe BlazeFace short-range (faces within ~2 m, close-ups, face crops)",
    "haar_alt2": "OpenCV Haar cascade haarcascade_frontalface_alt2.xml (ships with OpenCV)",
    "haar": "OpenCV Haar cascade haarcascade_frontalface_default.xml (ships with OpenCV)",
}
DEFAULT = defaults.DETECTOR
ASSETS = Path(__file__).resolve().parent / "assets"


@dataclass
class Detections:
    """The faces found in one image, in its pixels, sorted left to right."""

    boxes: np.ndarray                 # (N, 4) int64: x, y, w, h
    scores: np.ndarray                # (N,) float32
    eyes: np.ndarray | None = None    # (N, 2, 2) float32: the face's right then left eye, x, y

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def build(cls, boxes, scores, eyes=None) -> "Detections":
        boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        eyes = None if eyes is None else np.asarray(eyes, np.float32).reshape(-1, 2, 2)
        if len(boxes):
            order = np.lexsort((boxes[:, 1], boxes[:, 0]))
            boxes, scores = boxes[order], scores[order]
            eyes = None if eyes is None else eyes[order]
        return cls(boxes, scores, eyes)


def min_face_size(height: int, width: int) -> int:
    return max(MIN_FACE_PX, int(round(min(height, width) * MIN_FACE_FRACTION)))


class Detector:
    """What every detector offers: `detect(image)` -> Detections; calling it -> the boxes."""

    def detect(self, image: np.ndarray) -> Detections:
        raise NotImplementedError

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.detect(image).boxes


class HaarDetector(Detector):
    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml"):
        import cv2

        path = Path(cv2.data.haarcascades) / cascade
        self.name = cascade
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise FerEdgeError(f"cannot load the OpenCV Haar cascade {path}")

    def detect(self, image: np.ndarray) -> Detections:
        from .preprocessing import to_gray

        gray = to_gray(image)
        h, w = gray.shape
        size = min_face_size(h, w)
        if h < size or w < size:
            return Detections.build([], [])
        faces = self.cascade.detectMultiScale(gray, scaleFactor=HAAR_SCALE_FACTOR,
                                              minNeighbors=HAAR_MIN_NEIGHBORS,
                                              minSize=(size, size))
        return Detections.build(faces, np.ones(len(faces)))


# ------------------------------------------------------------------------------- BlazeFace

_BLAZE = {
    # name: (file in assets/, input side, strides, two anchors per cell)
    "blazeface": ("face_detection_short_range.tflite", 128, (8, 16, 16, 16), True),
    "blazeface_full": ("face_detection_full_range.tflite", 192, (4,), False),
}
_KEYPOINTS = 6     # right eye, left eye, nose tip, mouth, right ear, left ear (x, y each)


def _ssd_anchors(side: int, strides, interpolated: bool) -> np.ndarray:
    """MediaPipe's SsdAnchorsCalculator with fixed anchor size: (N, 2) centres in 0..1."""
    anchors = []
    i = 0
    while i < len(strides):
        j, repeats = i, 0
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
            repeats += 2 if interpolated else 1
        cells = side // strides[i]
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centres = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], -1).reshape(-1, 2)
        anchors.append(np.repeat(centres, repeats, axis=0))
        i = j
    return np.concatenate(anchors).astype(np.float32)


def _overlap(box: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU and intersection over the smaller area of one (x0, y0, x1, y1) box with many."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    iou = inter / np.maximum(area + areas - inter, 1e-9)
    return iou, inter / np.maximum(np.minimum(area, areas), 1e-9)


def _weighted_nms(rows: np.ndarray, scores: np.ndarray, iou: float):
    """MediaPipe's weighted NMS: overlapping detections (box x0, y0, x1, y1 then keypoints in
    `rows`) are averaged, weighted by score. Returns (rows, best score of each group)."""
    order = np.argsort(-scores)
    rows, scores = rows[order], scores[order]
    out, best = [], []
    remaining = np.ones(len(rows), bool)
    for k in range(len(rows)):
        if not remaining[k]:
            continue
        group = remaining & (_overlap(rows[k, :4], rows[:, :4])[0] > iou)
        group[k] = True
        w = scores[group][:, None]
        out.append((rows[group] * w).sum(0) / w.sum())
        best.append(scores[k])
        remaining &= ~group
    return np.array(out).reshape(-1, rows.shape[1]), np.array(best, np.float32)


def fit(img: np.ndarray, width: int, height: int):
    """`img` resized to width x height: (the image, (x scale, y scale) from `img`'s pixels to
    its). Shrinking: halved by OpenCV's 2x2 INTER_AREA (each pixel the rounded mean of four,
    its fastest resize: 0.09 ms for 640x480) while it stays at least twice the target's size
    (an odd last row or column is dropped), then bilinear the rest of the way (a ratio under 2:
    no pixel skipped). Its general INTER_AREA at a ratio such as 640 -> 192 takes 1.4 ms.
    Enlarging: bilinear. For the video path's thumbnails and crop mosaics; the browser page
    does the same (web/assets/imageops.js, fit)."""
    import cv2

    fx = fy = 1.0
    while img.shape[1] >= 2 * width and img.shape[0] >= 2 * height:
        h, w = img.shape[0] // 2, img.shape[1] // 2
        img = cv2.resize(img[:2 * h, :2 * w], (w, h), interpolation=cv2.INTER_AREA)
        fx, fy = fx / 2, fy / 2
    if img.shape[:2] != (height, width):
        fx, fy = fx * width / img.shape[1], fy * height / img.shape[0]
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
    return img, np.array([fx, fy])


def _to_rgb(image: np.ndarray) -> np.ndarray:
    import cv2

    img = np.asarray(image)
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class BlazeFaceDetector(Detector):
    def __init__(self, name: str = "blazeface", threads: int | None = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.name = name
        fname, self.side, strides, interpolated = _BLAZE[name]
        path = ASSETS / fname
        if not path.is_file():
            raise FerEdgeError(f"the BlazeFace model {path} is missing: reinstall fer-edge")
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        outs = self.interpreter.get_output_details()
        # regressors (1, N, 16) and scores (1, N, 1), told apart by their last dimension
        self.boxes_out = next(o["index"] for o in outs if o["shape"][-1] == 16)
        self.scores_out = next(o["index"] for o in outs if o["shape"][-1] == 1)
        self.anchors = _ssd_anchors(self.side, strides, interpolated)

    def _letterbox(self, image: np.ndarray):
        """The image scaled to fit the model's square input, centred on black, in -1..1:
        (input, (x scale, y scale), top, left). Resized before the colour conversion and
        scaling: those then touch only the model's few pixels."""
        import cv2

        img = np.asarray(image)
        h, w = img.shape[:2]
        s = self.side
        scale = s / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        # OpenCV's INTER_AREA, not `fit`: the browser page's letterbox reproduces it bit for bit
        # (its boxes within 0 px of classify's on the photos); with fit here and in the page,
        # the two came out a grey level apart here and there, boxes a pixel apart on 3 of 9
        # photos (benchmarks/web_photos.py)
        small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1
                           else cv2.INTER_LINEAR)
        scales = np.array([scale, scale])
        top, left = (s - nh) // 2, (s - nw) // 2
        square = cv2.copyMakeBorder(_to_rgb(small), top, s - nh - top, left, s - nw - left,
                                    cv2.BORDER_CONSTANT, value=0)      # black
        canvas = np.empty((1, s, s, 3), np.float32)
        # one pass into the float input (numpy's in-place scaling of a float copy took 4x as long)
        np.multiply(square, np.float32(1 / 127.5), out=canvas[0], casting="unsafe")
        canvas -= np.float32(1.0)
        return canvas, scales, top, left

    def detect(self, image: np.ndarray) -> Detections:
        x, scale, top, left = self._letterbox(image)
        self.interpreter.set_tensor(self.input, x)
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self.boxes_out)[0]
        logits = self.interpreter.get_tensor(self.scores_out)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -BLAZE_RAW_SCORE_LIMIT,
                                              BLAZE_RAW_SCORE_LIMIT)))
        keep = (scores > BLAZE_MIN_SCORE) & (raw[:, 2] > 0) & (raw[:, 3] > 0)
        if not keep.any():
            return Detections.build([], [], [])
        s = self.side
        raw, scores, anchors = raw[keep] / s, scores[keep], self.anchors[keep]
        cx, cy = raw[:, 0] + anchors[:, 0], raw[:, 1] + anchors[:, 1]
        bw, bh = raw[:, 2], raw[:, 3]
        points = raw[:, 4:4 + 2 * _KEYPOINTS].reshape(-1, _KEYPOINTS, 2) + anchors[:, None]
        rows = np.concatenate([np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1),
                               points[:, :2].reshape(-1, 4)], 1)
        rows, scores = _weighted_nms(rows, scores, BLAZE_NMS_IOU)
        # letterbox removal: input-square fraction -> image pixels
        xy = (rows.reshape(-1, 4, 2) * s - (left, top)) / scale
        h, w = np.asarray(image).shape[:2]
        x0, y0 = np.maximum(0.0, xy[:, 0, 0]), np.maximum(0.0, xy[:, 0, 1])
        x1, y1 = np.minimum(float(w), xy[:, 1, 0]), np.minimum(float(h), xy[:, 1, 1])
        ok = (x1 - x0 >= 1) & (y1 - y0 >= 1)
        boxes = np.round(np.stack([x0, y0, x1 - x0, y1 - y0], -1))[ok]
        return Detections.build(boxes, scores[ok], xy[ok, 2:])


class DualBlazeFaceDetector(Detector):
    """Full-range and short-range BlazeFace on the same image. Every full-range face is kept;
    a short-range face is added where full-range found none (close-ups, tight crops). Taking
    full-range's box whenever it has one keeps a face's framing steady from frame to frame
    (the two models frame a face differently, short-range's box often larger)."""

    name = "blazeface_dual"

    def __init__(self, threads: int | None = 1):
        self.full = BlazeFaceDetector("blazeface_full", threads)
        self.short = BlazeFaceDetector("blazeface", threads)

    def detect(self, image: np.ndarray) -> Detections:
        full, short = self.full.detect(image), self.short.detect(image)
        corners = _corners(full.boxes)
        extra = []
        for k, box in enumerate(_corners(short.boxes)):
            if len(corners):
                iou, inside = _overlap(box, corners)
                if ((iou > DUAL_SAME_FACE_IOU) | (inside > DUAL_SAME_FACE_INSIDE)).any():
                    continue
            extra.append(k)
        return Detections.build(np.concatenate([full.boxes, short.boxes[extra]]),
                                np.concatenate([full.scores, short.scores[extra]]),
                                np.concatenate([full.eyes, short.eyes[extra]]))


def _corners(boxes: np.ndarray) -> np.ndarray:
    """x, y, w, h boxes -> x0, y0, x1, y1."""
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1)


def resolve(name: str) -> str:
    """The concrete detector `name` stands for ("auto" -> the default)."""
    return "blazeface_dual" if name == "auto" else name


def get(name: str = DEFAULT, threads: int | None = 1):
    """A new detector by name (build it once, reuse it for every image)."""
    name = resolve(name)
    if name == "haar":
        return HaarDetector("haarcascade_frontalface_default.xml")
    if name == "haar_alt2":
        return HaarDetector("haarcascade_frontalface_alt2.xml")
    if name == "blazeface_dual":
        return DualBlazeFaceDetector(threads=threads)
    if name in _BLAZE:
        return BlazeFaceDetector(name, threads=threads)
    raise FerEdgeError(f"unknown detector '{name}' (known: {', '.join(DETECTORS)})")
