"""Int8 calibration subsets: a stratified, seeded sample of FER2013's *Training* split only.

A manifest holds image ids per class (never pixels), the seed, the size and the fingerprint of the
data it was drawn from, so `export --quantize int8` can rebuild exactly the same subset and refuse
data that does not hold those images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fer_edge import data as fdata
from fer_edge.errors import FerEdgeError
from fer_edge.edge.preprocessing import LABELS

SPLIT = "train"  # calibration never sees val or test


def stratified_counts(counts: np.ndarray, size: int) -> np.ndarray:
    """Per-class sample sizes summing to `size`, each within one image of the exact share."""
    exact = counts / counts.sum() * size
    n = np.floor(exact).astype(int)
    for k in np.argsort(-(exact - n), kind="stable")[: size - n.sum()]:
        n[k] += 1
    return np.minimum(n, counts)


def make(train: fdata.Split, size: int, seed: int, source: str = "") -> dict:
    if size <= 0 or size > len(train):
        raise FerEdgeError(f"calibration size must be in 1..{len(train)} (got {size})")
    rng = np.random.default_rng(seed)
    counts = np.bincount(train.y, minlength=len(LABELS))
    ids = {}
    for k, n in enumerate(stratified_counts(counts, size)):
        members = np.sort(train.ids[train.y == k])
        ids[LABELS[k]] = sorted(rng.choice(members, size=int(n), replace=False).tolist())
    return {"split": SPLIT, "size": int(size), "seed": int(seed), "source": str(source),
            "train_fingerprint": fdata.fingerprint({SPLIT: train}), "ids": ids}


def images(manifest: dict, ds: fdata.Dataset) -> np.ndarray:
    """uint8 (N,48,48) images of the manifest, taken from the data's Training split."""
    train = ds.split(SPLIT)
    index = {i: n for n, i in enumerate(train.ids)}
    wanted = [i for ids in manifest["ids"].values() for i in ids]
    missing = [i for i in wanted if i not in index]
    if missing:
        raise FerEdgeError(f"{len(missing)} of the {len(wanted)} calibration images "
                           f"(e.g. {missing[0]}) are not in the training split of {ds.source}; "
                           f"make a manifest for this data with `fer-edge calibrate`")
    return train.x[[index[i] for i in wanted]]


def load(path) -> dict:
    path = Path(path)
    if not path.exists():
        raise FerEdgeError(f"calibration manifest not found: {path}")
    try:
        m = json.loads(path.read_text())
        assert m["split"] == SPLIT and isinstance(m["ids"], dict)
    except Exception:
        raise FerEdgeError(f"{path} is not a fer-edge calibration manifest") from None
    return m
