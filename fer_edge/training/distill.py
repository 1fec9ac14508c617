"""Knowledge distillation for `fer-edge train --teacher A.keras[,B.keras]`.

The frozen teachers score every training batch after augmentation (in the input pipeline,
pipeline.py), so they see exactly the faces the student sees, on every Keras backend. Their probabilities, softened by `temperature` (p^(1/T), renormalised: the
softmax of the logits / T) and averaged over the teachers (and over each face and its mirror
image with `teacher_flip`), become part of the target:

    target = (1 - distill_weight) * label + distill_weight * teacher

and the student keeps its ordinary cross-entropy, metrics and int8 export. Validation and
checkpoint selection still use the true labels only. On --resume the teachers are loaded again
from the paths in config.json (their sha256 is recorded there).
"""

from __future__ import annotations

from ..errors import FerEdgeError


def teacher_paths(value) -> list[str]:
    """--teacher as "a.keras,b.keras" or a list -> list of paths."""
    from ..options import split_commas

    if not value:
        return []
    return [str(p).strip() for p in split_commas(value) if str(p).strip()]


def load_teachers(paths: list[str], classes: int | None = None):
    """The teacher models, frozen; each must map a 48x48x1 face to the student's `classes`
    emotion scores (7 or 8; None: 7)."""
    from ..edge.preprocessing import INPUT_SHAPE, NUM_CLASSES
    from .keras_io import load_keras

    classes = classes or NUM_CLASSES
    models = []
    for p in paths:
        m = load_keras(p)
        if tuple(m.input_shape[1:]) != INPUT_SHAPE or m.output_shape[-1] != classes:
            raise FerEdgeError(f"--teacher {p}: takes {m.input_shape} and gives "
                               f"{m.output_shape}, not a fer-edge emotion model of "
                               f"{classes} classes")
        m.trainable = False
        models.append(m)
    return models


class Teachers:
    """The frozen teachers as one scorer: fn(images float32 (B,48,48,1)) -> their softened
    probabilities (the softmax of the logits / T), averaged over the teachers and, with `flip`,
    over each face and its mirror image. Called from the input pipeline's worker threads, so the
    models are run one batch at a time (a Keras model's predict state is not thread-safe)."""

    def __init__(self, models, temperature: float, flip: bool):
        import threading

        self.models, self.temperature, self.flip = models, float(temperature), bool(flip)
        self._lock = threading.Lock()

    def __call__(self, x):
        import numpy as np

        views = np.concatenate([x, x[:, :, ::-1]]) if self.flip else x
        with self._lock:
            probs = [np.asarray(m.predict_on_batch(views), np.float64) for m in self.models]
        soft = []
        for p in probs:
            z = np.log(np.maximum(p, 1e-8)) / self.temperature
            z = np.exp(z - z.max(-1, keepdims=True))
            soft.append(z / z.sum(-1, keepdims=True))
        mean = np.mean(soft, 0)
        if self.flip:
            mean = (mean[:len(x)] + mean[len(x):]) / 2
        return mean.astype(np.float32)


def teachers_of(opts: dict):
    """The run's Teachers, or None without --teacher."""
    paths = teacher_paths(opts.get("teacher"))
    if not paths:
        return None
    from .recipe import classes

    return Teachers(load_teachers(paths, classes(opts)), opts["temperature"],
                    opts["teacher_flip"])


def ensemble_rows(probs: dict, labels: dict) -> list[dict]:
    """Top-1 of every subset of teachers, averaged, with and without the mirror image.

    probs[member][split] = (plain, mirrored) probabilities (N, 7); labels[split] = (N,) ints.
    Returns rows {"members", "flip", split: top-1 ...}, so the teacher is chosen on val and
    reported on test by whoever calls it (benchmarks/teachers.py)."""
    from itertools import combinations

    import numpy as np

    members = list(probs)
    rows = []
    for k in range(1, len(members) + 1):
        for combo in combinations(members, k):
            for flip in (False, True):
                row = {"members": list(combo), "flip": flip}
                for split, y in labels.items():
                    views = [(plain + mirrored) / 2 if flip else plain
                             for plain, mirrored in (probs[m][split] for m in combo)]
                    row[split] = round(float((np.mean(views, 0).argmax(1) == y).mean()), 4)
                rows.append(row)
    return rows
