"""The one place that knows FER2013's labels and how a face becomes a model input.

Training, export, evaluation and the edge runtime all import from here, so the Keras model and
every `.tflite` see identical inputs.
"""

from __future__ import annotations

import numpy as np

# Canonical order = FER2013's own ids 0..6 (never alphabetical folder order).
LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(LABELS)
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
