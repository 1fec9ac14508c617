"""Training speed of an architecture as `fer-edge train` runs it: Keras `fit` at the recipe's
batch size, on random faces (weights and data do not change the speed), for a given Keras
backend and precision policy. Prints images/s and the seconds an epoch of the FER+ training set
(about 27,000 usable faces) would take on this machine.

    python benchmarks/fit_speed.py --arch conv_ferplus [--classes 8] [--batch 128] [--precision mixed_bfloat16]
    KERAS_BACKEND=jax python benchmarks/fit_speed.py --arch sep_ferplus
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def main(arch: str, classes: int = 8, batch: int = 128, steps: int = 12,
         precision: str = "float32", faces: int = 27000):
    import keras

    from fer_edge.machine import host
    from fer_edge.training import archs

    if precision != "float32":
        keras.mixed_precision.set_global_policy(precision)
    model = archs.build(arch, classes)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch * steps, 48, 48, 1)).astype("float32")
    y = np.eye(classes, dtype="float32")[rng.integers(0, classes, batch * steps)]
    model.fit(x[:2 * batch], y[:2 * batch], batch_size=batch, epochs=1, verbose=0)  # trace
    t = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    ips = len(x) / (time.perf_counter() - t)
    print(json.dumps({"arch": arch, "params": model.count_params(), "backend":
                      keras.backend.backend(), "precision": precision, "batch": batch,
                      "images_per_s": round(ips, 1), "epoch_s": round(faces / ips),
                      "cpu": host()["cpu"]}))


if __name__ == "__main__":
    import fire

    fire.Fire(main)
