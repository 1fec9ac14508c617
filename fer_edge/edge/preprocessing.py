"""The one place that knows FER2013's labels and how a face becomes a model input.

Training, export, evaluation and the edge runtime all import from here, so the Keras model and
every `.tflite` see identical inputs.
"""

from __future__ import annotations

import numpy as np

# Canonical order = FER2013's own ids 0..6 (never alphabetical folder order).
LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(LABELS)
# FER+'s eight emotions: FER2013's seven in the same order, then contempt (which FER2013's labels
# lack), so the first seven outputs of an 8-class model mean what a 7-class model's do.
LABELS8: tuple[str, ...] = (*LABELS, "contempt")


def labels_for(classes: int) -> tuple[str, ...]:
    """The label set of a model with `classes` outputs trained by fer-edge (7 or 8)."""
    if classes == len(LABELS):
        return LABELS
    if classes == len(LABELS8):
        return LABELS8
    raise ValueError(f"fer-edge models have 7 or 8 outputs, not {classes}")
IMG_SIZE = 48
INPUT_SHAPE = (IMG_SIZE, IMG_SIZE, 1)
COLOR_MODE = "grayscale"
# Models take raw grey levels 0..255 as float32 and rescale internally (a Rescaling layer), so
# a full-integer model's int8 input is exactly `pixel - 128` (scale 1, zero point -128): the
# quantized input loses nothing.
NORMALIZATION = {"input_range": [0.0, 255.0], "in_model_scale": 1.0 / 255.0}

# Spellings met in the wild (Kaggle folders, other datasets) -> canonical label.
ALIASES: dict[str, str] = {
    "angry": "angry", "anger": "angry",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear",
    "happy": "happy", "happiness": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise",
    "neutral": "neutral",
}


def fer2013_answers(scores: np.ndarray) -> np.ndarray:
    """A model's answers in FER2013's 7 labels, from scores in LABELS (or LABELS8) order: an
    8-class model's argmax over the seven that FER2013 has (its labels never say contempt, so
    scoring it there asks which of the seven)."""
    return np.asarray(scores)[:, :NUM_CLASSES].argmax(1)


def canonical_label(name: str) -> str | None:
    """Map a folder/class name to its canonical label, or None when it is not an emotion."""
    return ALIASES.get(name.strip().lower())


def to_uint8(image: np.ndarray) -> np.ndarray:
    """16-bit or float images -> uint8, channels kept (floats in 0..1 are scaled to 0..255)."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating) and img.size and float(img.max()) <= 1.0:
        img = img * 255.0
    return np.clip(img, 0, 255).astype(np.uint8)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any decoded image (gray, BGR, BGRA; 8- or 16-bit) -> 2-D uint8 grayscale."""
    import cv2

    img = to_uint8(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY)
    elif img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return img


def face_to_input(face: np.ndarray) -> np.ndarray:
    """A face crop (any size, any colour) -> uint8 (48, 48) exactly as FER2013's crops are."""
    import cv2

    gray = to_gray(face)
    if gray.shape != (IMG_SIZE, IMG_SIZE):
        interp = cv2.INTER_AREA if min(gray.shape) >= IMG_SIZE else cv2.INTER_LINEAR
        gray = cv2.resize(gray, (IMG_SIZE, IMG_SIZE), interpolation=interp)
    return gray


def margin_crop(gray: np.ndarray, box, margin: float) -> np.ndarray:
    """The face box grown by `margin` of its size on every side, clipped to the image."""
    x, y, w, h = (int(v) for v in box)
    H, W = gray.shape[:2]
    mx, my = int(round(w * margin)), int(round(h * margin))
    x0, y0 = max(0, x - mx), max(0, y - my)
    x1, y1 = min(W, x + w + mx), min(H, y + h + my)
    if x1 <= x0 or y1 <= y0:
        x0, y0, x1, y1 = max(0, min(x, W - 1)), max(0, min(y, H - 1)), W, H
    return gray[y0:y1, x0:x1]


def eye_angle(eyes) -> float:
    """The tilt of the line from the face's right eye to its left eye, in radians (0: level)."""
    (rx, ry), (lx, ly) = np.asarray(eyes, np.float64)
    return float(np.arctan2(ly - ry, lx - rx))


def aligned_crop(gray: np.ndarray, box, margin: float, eyes) -> np.ndarray:
    """Like `margin_crop`, but turned about the box centre so the eyes are level: FER2013's faces
    are upright. Pixels beyond the image repeat its border."""
    import cv2

    x, y, w, h = (float(v) for v in box)
    cw, ch = max(1, round(w * (1 + 2 * margin))), max(1, round(h * (1 + 2 * margin)))
    a = eye_angle(eyes)
    c, s = np.cos(a), np.sin(a)
    # output pixel (u, v) -> image point: box centre + rotation of (u, v) about the crop centre
    cx, cy = x + w / 2, y + h / 2
    ox, oy = (cw - 1) / 2, (ch - 1) / 2
    m = np.array([[c, -s, cx - c * ox + s * oy],
                  [s, c, cy - s * ox - c * oy]], np.float64)
    return cv2.warpAffine(gray, m, (cw, ch), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def batch_to_float(faces_u8: np.ndarray) -> np.ndarray:
    """uint8 (N, 48, 48) -> float32 (N, 48, 48, 1) in 0..255: the model input tensor."""
    x = np.asarray(faces_u8, dtype=np.float32)
    return x.reshape(x.shape[0], IMG_SIZE, IMG_SIZE, 1)


def flip_tta(predict, faces_u8: np.ndarray, **kw) -> np.ndarray:
    """Test-time augmentation: mean of the scores of each face and its mirror image. One call on
    both halves, so a single face is one batch-2 invoke rather than two batch-1 invokes."""
    faces_u8 = np.asarray(faces_u8)
    n = len(faces_u8)
    scores = predict(np.concatenate([faces_u8, faces_u8[:, :, ::-1]]), **kw)
    return (scores[:n] + scores[n:]) / 2
