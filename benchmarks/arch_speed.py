"""Cost of each registered architecture before training it: parameters, MACs, training images/s
(Keras, batch 64, no augmentation, this machine's threads) and int8 TFLite latency (LiteRT, batch 1,
1 thread). The issue's rule: measure images/s before you choose. Prints JSON.

    python benchmarks/arch_speed.py --names edge_vgg,edge_vgg_s [--steps 30] [--out speed.json]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_edge import archs, defaults, evaluate  # noqa: E402
from fer_edge.converters import tflite as converter  # noqa: E402
from fer_edge.edge.fileio import write_json  # noqa: E402
from fer_edge.edge.preprocessing import IMG_SIZE, NUM_CLASSES  # noqa: E402


def macs(model) -> int:
    """Multiply-accumulates of the conv, depthwise and dense layers for one image."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D", "Dense"):
            continue
        out = layer.output.shape
        spatial = int(np.prod(out[1:-1])) if len(out) > 2 else 1
        kernel = layer.weights[0].shape  # (kh, kw, cin, cout) / (kh, kw, cin, mult) / (in, out)
        total += spatial * int(np.prod(kernel))
    return total


def train_speed(model, steps: int, batch: int = 64) -> float:
    import keras

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch * 4, IMG_SIZE, IMG_SIZE, 1)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, NUM_CLASSES, batch * 4), NUM_CLASSES)
    model.compile(keras.optimizers.AdamW(1e-3), "categorical_crossentropy")
    model.train_on_batch(x[:batch], y[:batch])  # build + trace
    for _ in range(3):
        model.train_on_batch(x[:batch], y[:batch])
    t = time.perf_counter()
    for i in range(steps):
        j = (i % 4) * batch
        model.train_on_batch(x[j:j + batch], y[j:j + batch])
    return steps * batch / (time.perf_counter() - t)


def int8_latency_ms(model, runs: int) -> float:
    """evaluate's own p50 (batch 1, 1 thread); weights do not change int8 speed, so an untrained
    model calibrated on noise times the same as the trained one."""
    rng = np.random.default_rng(0)
    calib = rng.integers(0, 256, (64, IMG_SIZE, IMG_SIZE)).astype("uint8")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.tflite"
        path.write_bytes(converter.convert(model, "int8", calib))
        stats = evaluate.latency_ms(evaluate.load_variant(path, threads=1), calib[0], runs,
                                    defaults.EVAL_WARMUP)
    return stats["p50"]


def main(names="edge_vgg", steps: int = 30, runs: int = 500, out: str = None):
    """names: comma-separated registry names."""
    names = names if isinstance(names, (list, tuple)) else str(names).split(",")
    rows = []
    for name in names:
        model = archs.build(name)
        row = {"arch": name, "params": model.count_params(), "macs": macs(model),
               "int8_p50_ms": round(int8_latency_ms(model, runs), 3),
               "train_images_per_s": round(train_speed(model, steps), 1)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    if out:
        write_json(Path(out), rows)


if __name__ == "__main__":
    import fire

    fire.Fire(main, name="arch_speed", serialize=lambda _: None)
