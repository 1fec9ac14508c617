"""The input pipeline of every training, on every Keras backend: a `keras.utils.PyDataset` of
numpy batches that Keras's `fit` feeds to TensorFlow, JAX or PyTorch alike.

Each training batch is the run's faces in an order shuffled per epoch, augmented (augment.py),
with its targets (FER2013 labels, FER+ votes or a mix: `training_targets`) mixed with the
teachers' soft targets on the augmented faces (distill.py), and a class weight per face. A
batch's random draws depend on (seed, epoch, batch index) only, so the worker threads that
prepare batches ahead of the step change nothing.
"""

from __future__ import annotations

import math
import os

import keras
import numpy as np

from ..edge.preprocessing import NUM_CLASSES, batch_to_float
from ..errors import FerEdgeError

# Threads preparing batches ahead of the step (OpenCV and the teachers release the GIL): an
# accelerator's compiled step takes ~2 ms a batch, a thread ~6 ms to augment one (gpu/step_time.py).
WORKERS = max(2, min(8, os.cpu_count() or 2))
EVAL_BATCH = 256


def class_weights(y: np.ndarray, mode: str, classes: int = NUM_CLASSES) -> np.ndarray:
    counts = np.bincount(y, minlength=classes).astype(float)
    if mode == "none":
        return np.ones(classes)
    w = counts.sum() / (classes * np.maximum(counts, 1))
    if mode == "sqrt":
        w = np.sqrt(w)
    elif mode != "balanced":
        raise FerEdgeError(f"unknown class_weight '{mode}' (none, balanced, sqrt)")
    return w / (w * counts).sum() * counts.sum()  # mean weight over the data = 1


def onehot(y: np.ndarray, classes: int = NUM_CLASSES) -> np.ndarray:
    """FER2013 labels as (N, classes) one-hot rows (an 8-class model's contempt column 0)."""
    return np.eye(classes, dtype=np.float32)[:NUM_CLASSES][y]


def training_targets(split, opts: dict):
    """(the faces to train on, their target distributions (N, classes)) for --target: FER2013's
    one-hot labels; the FER+ vote distribution over 7 (ferplus) or 8 (ferplus8) emotions, over
    the faces with a usable one (votes.py); or (1 - ferplus_weight) * labels + ferplus_weight *
    votes (faces without usable votes keep their label)."""
    from .recipe import classes

    n = classes(opts)
    if opts.get("target", "fer2013") == "fer2013":
        return split, onehot(split.y, n)
    from .. import votes

    dist, usable = votes.target_distribution(split.votes, n)
    if opts["target"] in ("ferplus", "ferplus8"):
        return split.subset(np.flatnonzero(usable)), dist[usable]
    w = float(opts["ferplus_weight"]) * usable[:, None]
    return split, ((1 - w) * onehot(split.y, n) + w * dist).astype(np.float32)


class TrainStream(keras.utils.PyDataset):
    """(faces, targets, class weights) batches of one run's training split."""

    def __init__(self, split, opts: dict, teachers=None, epoch: int = 0):
        from . import augment

        super().__init__(workers=WORKERS, use_multiprocessing=False, max_queue_size=8)
        split, self.targets = training_targets(split, opts)
        self.faces = split.x
        top = self.targets.argmax(1)   # class weights follow the targets' top emotion
        self.weights = np.asarray(class_weights(top, opts["class_weight"],
                                                self.targets.shape[1]), np.float32)[top]
        self.batch_size, self.seed = int(opts["batch_size"]), int(opts["seed"])
        self.augment = augment.make(opts["augment"], float(opts["erasing"]))
        self.teachers = teachers
        self.distill_weight = float(opts["distill_weight"]) if teachers else 0.0
        self.epoch = epoch
        self.order = self._order()

    def _order(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.faces))

    def __len__(self) -> int:
        return math.ceil(len(self.faces) / self.batch_size)

    def on_epoch_end(self):
        self.epoch += 1
        self.order = self._order()

    def faces_of(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(augmented faces, their indices) of batch i."""
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        x = batch_to_float(self.faces[idx])
        if self.augment is not None:
            x = self.augment(x, np.random.default_rng([self.seed, self.epoch, i]))
        return x, idx

    def __getitem__(self, i: int):
        x, idx = self.faces_of(i)
        y = self.targets[idx]
        if self.teachers is not None:
            w = self.distill_weight
            y = (1 - w) * y + w * self.teachers(x)
        return x, y.astype(np.float32), self.weights[idx]

    def inputs(self):
        """The augmented faces of one pass, batch by batch (SWA's BatchNorm statistics)."""
        for i in range(len(self)):
            yield self.faces_of(i)[0]


def eval_arrays(split, classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """(faces as model inputs, one-hot FER2013 labels) of a split, for validation and the test
    curve."""
    x = batch_to_float(split.x) if len(split) else np.zeros((0, 48, 48, 1), np.float32)
    return x, onehot(split.y, classes)
