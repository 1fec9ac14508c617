"""Small synthetic FER2013-shaped data for tests (no real FER2013 needed).

Each class is learnable (a noisy grating of its own orientation and period), so a tiny CNN reaches
high accuracy in a few epochs, and every image is distinct, so labels can be checked from pixels.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import cv2
import numpy as np

from fer_edge.edge.preprocessing import LABELS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from synthetic_video import moving_faces_video  # noqa: E402,F401  (the tests' clips)

USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
# Folder spellings other than ours, to prove labels never come from folder order.
ODD_SPELLINGS = {"angry": "Angry", "disgust": "disgusted", "fear": "FEARFUL", "happy": "happy",
                 "sad": "sadness", "surprise": "Surprised", "neutral": "neutral"}


# Class k -> a grating of its own orientation and period (conv + global pooling can see it).
PATTERNS = [(0, 4), (45, 4), (90, 4), (135, 4), (0, 10), (90, 10), (45, 10)]


def face(k: int, rng: np.random.Generator) -> np.ndarray:
    angle, period = PATTERNS[k]
    t = np.deg2rad(angle + rng.uniform(-5, 5))
    yy, xx = np.mgrid[0:48, 0:48]
    wave = np.sin(2 * np.pi * (xx * np.cos(t) + yy * np.sin(t)) / period + rng.uniform(0, 2 * np.pi))
    img = 128 + 70 * wave + rng.normal(0, 20, (48, 48))
    return np.clip(img, 0, 255).astype(np.uint8)


def arrays(n_per_class: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(LABELS)), n_per_class)
    x = np.stack([face(int(k), rng) for k in y])
    return x, y


def make_tree(root: Path, per_split=None, spellings=None, ext=".png", splits=("train", "val", "test")):
    """DIR/<split>/<class>/<Usage>_<n><ext>; returns {split: (x, y)}."""
    per_split = per_split or {"train": 30, "val": 8, "test": 8}
    spellings = spellings or {lab: lab for lab in LABELS}
    out = {}
    for i, split in enumerate(splits):
        x, y = arrays(per_split[split], seed=i + 1)
        for n, (img, k) in enumerate(zip(x, y)):
            d = root / split / spellings[LABELS[k]]
            d.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(d / f"{USAGE.get(split, split)}_{n}{ext}"), img)
        out[split] = (x, y)
    return out


def write_csv(path: Path, splits: dict) -> None:
    """The original fer2013.csv layout from {split: (x, y)} (y in FER2013 ids)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for split, (x, y) in splits.items():
            for img, k in zip(x, y):
                w.writerow([int(k), " ".join(map(str, img.reshape(-1))), USAGE[split]])


VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                "contempt", "unknown", "NF")
# FER+ vote column of each of our labels (LABELS order).
_VOTE_COLUMN_OF = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
                   "sad": "sadness", "surprise": "surprise", "neutral": "neutral"}


def votes_for(y: np.ndarray, seed: int = 0) -> np.ndarray:
    """Synthetic FER+ votes (N, 10): 10 annotators, most for the face's own class."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(y), len(VOTE_COLUMNS)), np.int64)
    for i, k in enumerate(y):
        own = VOTE_COLUMNS.index(_VOTE_COLUMN_OF[LABELS[k]])
        out[i, own] = rng.integers(6, 11)
        out[i, rng.integers(0, len(VOTE_COLUMNS))] += 10 - out[i].sum()
    return out


def write_tree_votes(path: Path, splits: dict, spellings=None) -> dict:
    """A votes CSV keyed by path relative to a make_tree folder; returns {split: votes}."""
    spellings = spellings or {lab: lab for lab in LABELS}
    out = {}
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", *VOTE_COLUMNS])
        for i, (split, (x, y)) in enumerate(splits.items()):
            v = out[split] = votes_for(y, seed=i)
            for n, k in enumerate(y):
                w.writerow([f"{split}/{spellings[LABELS[k]]}/{USAGE.get(split, split)}_{n}.png",
                            *v[n]])
    return out


def write_fer2013new(path: Path, splits: dict) -> dict:
    """Microsoft's fer2013new.csv layout, row for row with write_csv; returns {split: votes}."""
    out = {}
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Usage", "Image name", *VOTE_COLUMNS])
        for i, (split, (x, y)) in enumerate(splits.items()):
            v = out[split] = votes_for(y, seed=i)
            for n in range(len(y)):
                w.writerow([USAGE[split], f"fer{n:07d}.png", *v[n]])
    return out


def trained_tiny(root: Path) -> Path:
    """Synthetic data in root/data and the `tiny` model trained on it for 3 epochs (seed 0),
    saved as root/best.keras: a model whose exports can be compared with each other."""
    import os

    import keras

    from fer_edge.training import archs

    os.environ["FER_EDGE_CACHE"] = str(root / "cache")
    make_tree(root / "data", per_split={"train": 30, "val": 6, "test": 6})
    x, y = arrays(30, seed=9)
    keras.utils.set_random_seed(0)
    model = archs.build("tiny")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[..., None].astype("float32"), y, epochs=3, batch_size=16, verbose=0)
    model.save(root / "best.keras")
    return root / "best.keras"
