"""Knowledge distillation for `fer-edge train --teacher A.keras[,B.keras]`.

The frozen teachers score every training batch after augmentation, so they see exactly the faces
the student sees. Their probabilities, softened by `temperature` (p^(1/T), renormalised: the
softmax of the logits / T) and averaged over the teachers (and over each face and its mirror
image with `teacher_flip`), become part of the target:

    target = (1 - distill_weight) * label + distill_weight * teacher

and the student keeps its ordinary cross-entropy, metrics and int8 export. Validation and
checkpoint selection still use the true labels only. On --resume the teachers are loaded again
from the paths in config.json (their sha256 is recorded there).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import FerEdgeError


def teacher_paths(value) -> list[str]:
    """--teacher as "a.keras,b.keras" or a list -> list of paths."""
    from .config import split_commas

    if not value:
        return []
    return [str(p).strip() for p in split_commas(value) if str(p).strip()]


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_teachers(paths: list[str]):
    """The teacher models, frozen; each must map a 48x48x1 face to the 7 emotion scores."""
    from .edge.preprocessing import INPUT_SHAPE, NUM_CLASSES
    from .keras_io import load_keras

    models = []
    for p in paths:
        m = load_keras(p)
        if tuple(m.input_shape[1:]) != INPUT_SHAPE or m.output_shape[-1] != NUM_CLASSES:
            raise FerEdgeError(f"--teacher {p}: takes {m.input_shape} and gives "
                               f"{m.output_shape}, not a fer-edge emotion model")
        m.trainable = False
        models.append(m)
    return models


def soft_targets(teachers, temperature: float, flip: bool):
    """fn(images) -> the teachers' averaged, softened probabilities (a tf function body)."""
    import tensorflow as tf

    def soften(p):
        logp = tf.math.log(tf.maximum(p, 1e-8)) / temperature
        return tf.nn.softmax(logp, axis=-1)

    def targets(x):
        views = [x, tf.reverse(x, axis=[2])] if flip else [x]
        probs = [soften(t(v, training=False)) for t in teachers for v in views]
        return tf.add_n(probs) / len(probs)

    return targets


def add_to_stream(ds, opts: dict):
    """The training stream (images, labels, weights) with the labels mixed with the teachers'
    soft targets; unchanged without --teacher."""
    import tensorflow as tf

    paths = teacher_paths(opts.get("teacher"))
    if not paths:
        return ds
    targets = soft_targets(load_teachers(paths), float(opts["temperature"]),
                           bool(opts["teacher_flip"]))
    w = float(opts["distill_weight"])
    return ds.map(lambda x, y, sw: (x, (1 - w) * y + w * targets(x), sw),
                  num_parallel_calls=tf.data.AUTOTUNE)


def ensemble_rows(probs: dict, labels: dict) -> list[dict]:
    """Top-1 of every subset of teachers, averaged, with and without the mirror image.

    probs[member][split] = (plain, mirrored) probabilities (N, 7); labels[split] = (N,) ints.
    Returns rows {"members", "flip", split: top-1 ...}, so the teacher is chosen on val and
    reported on test by whoever calls it (benchmarks/teachers.py, gpu/train.py ensemble)."""
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
