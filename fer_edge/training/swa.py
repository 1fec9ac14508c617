"""Stochastic weight averaging (Izmailov et al. 2018) for `fer-edge train --swa-start N`.

After epoch N the learning rate stays at `swa_lr` and the weights at the end of every later epoch
are averaged. The average of points along a flat, noisy valley generalises better than any one
of them, and it is still one model of the same size, so it exports and quantizes like any other.
BatchNormalization statistics do not average linearly, so they are recomputed for the averaged
weights with one pass over the (augmented) training stream, as the statistics were gathered
during training. The running average is saved every epoch beside state.json, so --resume keeps it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..edge.fileio import atomic_path

_FILE = re.compile(r"swa_(\d+)\.npz$")


def _path(run: Path, epoch: int) -> Path:
    return run / f"swa_{epoch:04d}.npz"


def load(run: Path, epoch: int) -> tuple[list[np.ndarray] | None, int]:
    """The running average after `epoch` finished epochs (None, 0 when there is none yet)."""
    p = _path(run, epoch)
    if not p.exists():
        return None, 0
    with np.load(p) as z:
        n = int(z["count"])
        return [z[f"w{i}"] for i in range(len(z.files) - 1)], n


def _save(run: Path, epoch: int, mean: list[np.ndarray], count: int) -> None:
    with atomic_path(_path(run, epoch)) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, count=count, **{f"w{i}": w for i, w in enumerate(mean)})
    # Keep this epoch's file and the one before it: a kill between this save and state.json's
    # resumes from the previous epoch, whose average must still be there.
    for old in run.glob("swa_*.npz"):
        m = _FILE.search(old.name)
        if m and int(m.group(1)) < epoch - 1:
            old.unlink()


def callback(run: Path, start: int, initial_epoch: int):
    """A Keras callback that folds the weights of every epoch after `start` into the average."""
    import keras

    class SWA(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.mean, self.count = load(run, initial_epoch)

        def on_epoch_end(self, epoch, logs=None):
            done = epoch + 1
            if done <= start:
                return
            w = [np.asarray(v, np.float64) for v in self.model.get_weights()]
            if self.mean is None:
                self.mean, self.count = w, 0
            self.count += 1
            self.mean = [m + (x - m) / self.count for m, x in zip(self.mean, w)]
            _save(run, done, self.mean, self.count)

    return SWA()


def recompute_bn(model, batches) -> int:
    """Set every BatchNormalization layer's moving mean/variance to the plain average of its batch
    statistics over `batches` (inputs only); returns the number of batches seen."""
    import keras

    bns = [l for l in model._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
    if not bns:
        return 0
    saved = [l.momentum for l in bns]
    for l in bns:
        l.moving_mean.assign(np.zeros(l.moving_mean.shape, "float32"))
        l.moving_variance.assign(np.ones(l.moving_variance.shape, "float32"))
    k = 0
    try:
        for x in batches:
            # moving = moving * k/(k+1) + batch/(k+1): a running mean over the batches seen.
            for l in bns:
                l.momentum = k / (k + 1)
            model(x, training=True)
            k += 1
    finally:
        for l, m in zip(bns, saved):
            l.momentum = m
    return k


def finalize(model, run: Path, epoch: int, inputs) -> int:
    """Write run/swa.keras: `model` with the averaged weights and BN statistics recomputed over
    `inputs` (batches of augmented training faces). `model` is changed in place. Returns the
    number of epochs averaged (0: none yet, no file)."""
    mean, count = load(run, epoch)
    if mean is None:
        return 0
    model.set_weights([m.astype(w.dtype) for m, w in zip(mean, model.get_weights())])
    recompute_bn(model, inputs)
    with atomic_path(run / "swa.keras") as tmp:
        model.save(tmp)
    print(f"swa: averaged {count} epochs -> {run / 'swa.keras'}", flush=True)
    return count
