"""On-the-fly augmentation in the input pipeline, in numpy and OpenCV: never inside the model, so
the exported inference graph has no random ops and converts cleanly to int8, and written once for
every Keras backend (TensorFlow here, JAX or PyTorch on an accelerator machine).

One combined affine warp per image (rotation, shift, zoom, horizontal flip) like Keras-2's
ImageDataGenerator, instead of chaining several Random* layers that each resample the image;
then an optional brightness/contrast jitter and random erasing. Every draw comes from the
generator it is given, so a batch's augmentation depends on (seed, epoch, batch) only, whichever
thread prepares it.
"""

from __future__ import annotations

import math

import numpy as np

# name -> (rotation degrees, shift fraction, zoom fraction, flip, brightness/contrast jitter,
# and optionally a brightness gain range)
PRESETS = {
    "none": None,
    "seed": dict(rotation=10.0, shift=0.1, zoom=0.1, flip=True, jitter=0.0),
    "edge": dict(rotation=15.0, shift=0.1, zoom=0.15, flip=True, jitter=0.2),
    # The long FER+ recipe's: ImageDataGenerator's rotation 30, shifts and zoom 0.2, flip and
    # brightness_range (0.2, 1.2) (every pixel times one gain per image). Its shear_range 0.2 is
    # in degrees there, too small to matter, so no shear is drawn.
    "strong": dict(rotation=30.0, shift=0.2, zoom=0.2, flip=True, jitter=0.0,
                   brightness=(0.2, 1.2)),
}


def make(kind: str, erasing: float = 0.0):
    """fn(images float32 (B,H,W,1) in 0..255, rng: np.random.Generator) -> augmented images, or
    None when there is nothing to do ('none' without erasing)."""
    if kind not in PRESETS:
        raise ValueError(f"unknown augmentation '{kind}' (known: {', '.join(PRESETS)})")
    preset = PRESETS[kind]
    if preset is None and not erasing:
        return None

    def fn(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.asarray(images, np.float32)
        if preset is not None:
            out = warp(out, preset, rng)
        if erasing:
            out = erase(out, erasing, rng)
        return out

    return fn


def affine_matrices(n: int, h: int, w: int, p: dict, rng: np.random.Generator) -> np.ndarray:
    """(n, 2, 3) matrices mapping each output pixel to the input pixel it samples: a rotation
    about the centre, a zoom, a shift and a mirror drawn per image."""
    cx, cy = (w - 1) / 2, (h - 1) / 2
    theta = rng.uniform(-1, 1, n) * p["rotation"] * math.pi / 180
    s = 1.0 / (1.0 + rng.uniform(-p["zoom"], p["zoom"], n))   # output -> input scale
    tx = rng.uniform(-p["shift"], p["shift"], n) * w
    ty = rng.uniform(-p["shift"], p["shift"], n) * h
    f = np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0) if p["flip"] else np.ones(n)
    a0, a1 = s * np.cos(theta) * f, -s * np.sin(theta)
    b0, b1 = s * np.sin(theta) * f, s * np.cos(theta)
    a2 = cx - a0 * cx - a1 * cy + tx
    b2 = cy - b0 * cx - b1 * cy + ty
    return np.stack([np.stack([a0, a1, a2], 1), np.stack([b0, b1, b2], 1)], 1)


def warp(images: np.ndarray, p: dict, rng: np.random.Generator) -> np.ndarray:
    import cv2

    n, h, w = images.shape[:3]
    out = np.empty_like(images)
    for i, m in enumerate(affine_matrices(n, h, w, p, rng)):
        # WARP_INVERSE_MAP: m maps output to input; edges repeat the nearest pixel
        out[i, ..., 0] = cv2.warpAffine(images[i, ..., 0], m, (w, h),
                                        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                        borderMode=cv2.BORDER_REPLICATE)
    if p["jitter"]:
        gain = 1.0 + rng.uniform(-p["jitter"], p["jitter"], (n, 1, 1, 1))
        bias = rng.uniform(-p["jitter"], p["jitter"], (n, 1, 1, 1)) * 64.0
        mean = out.mean(axis=(1, 2, 3), keepdims=True)
        out = np.clip((out - mean) * gain + mean + bias, 0.0, 255.0)
    if p.get("brightness"):   # drawn only by the presets that have it: the others' draws stay
        gain = rng.uniform(*p["brightness"], (n, 1, 1, 1))
        out = np.clip(out * gain, 0.0, 255.0)
    return out.astype(np.float32)


def erase(images: np.ndarray, probability: float, rng: np.random.Generator) -> np.ndarray:
    """Random erasing (Zhong et al. 2017): a box of 2-25% of the area, aspect 0.3-3.3, filled
    with noise, in each image with `probability`."""
    n, h, w = images.shape[:3]
    area = rng.uniform(0.02, 0.25, n) * h * w
    aspect = np.exp(rng.uniform(math.log(0.3), math.log(3.3), n))
    eh = np.minimum(np.sqrt(area * aspect), h)
    ew = np.minimum(np.sqrt(area / aspect), w)
    y0 = rng.uniform(size=n) * (h - eh)
    x0 = rng.uniform(size=n) * (w - ew)
    yy = np.arange(h, dtype=np.float32)[None, :, None]
    xx = np.arange(w, dtype=np.float32)[None, None, :]
    col = lambda v: v[:, None, None]  # noqa: E731
    box = (yy >= col(y0)) & (yy < col(y0 + eh)) & (xx >= col(x0)) & (xx < col(x0 + ew))
    on = col(rng.uniform(size=n) < probability)
    mask = (box & on)[..., None]
    noise = rng.uniform(0.0, 255.0, images.shape).astype(np.float32)
    return np.where(mask, noise, images).astype(np.float32)
