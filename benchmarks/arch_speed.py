"""Cost of each architecture before training it: parameters, MACs, training images/s (Keras,
batch 64, no augmentation, this machine's threads) and int8 TFLite latency (LiteRT, batch 1,
1 thread, all the architectures timed in interleaved rounds, benchmarks/interleave.py; ratios to
the first one). The issue's rule: measure before you choose. Prints JSON.

    python benchmarks/arch_speed.py --names edge_vgg,edge_vgg_s [--steps 30] [--out speed.json]
    python benchmarks/arch_speed.py --names edge_fast,widths=16-48-72-256 --train False

A name is a registered architecture or `widths=A-B-C-D`: edge_fast's layout (one conv at 48, 24
and 6 px, two at 12 px) with those channel counts, to probe widths before registering one.
Weights do not change int8 speed, so untrained models calibrated on noise time as trained ones.
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
sys.path.insert(0, str(REPO / "benchmarks"))

from interleave import interleaved_ms  # noqa: E402
from fer_edge.machine import host  # noqa: E402
from fer_edge.training import archs  # noqa: E402
from fer_edge.converters import tflite as converter  # noqa: E402
from fer_edge.edge.fileio import write_json  # noqa: E402
from fer_edge.edge.preprocessing import IMG_SIZE, NUM_CLASSES  # noqa: E402


def macs(model) -> int:
    """Multiply-accumulates of the conv, depthwise and dense layers for one image."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
            continue
        out = layer.output.shape
        spatial = int(np.prod(out[1:-1])) if len(out) > 2 else 1
        # (kh, kw, cin, cout) / (kh, kw, cin, mult) / (in, out); a separable convolution's
        # depthwise kernel, then its pointwise (1, 1, cin, cout)
        kernels = layer.weights[:2] if kind == "SeparableConv2D" else layer.weights[:1]
        total += spatial * sum(int(np.prod(k.shape)) for k in kernels)
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


def build(name: str):
    """A registered architecture, or edge_fast's layout at the widths `widths=A-B-C-D` gives."""
    if not name.startswith("widths="):
        return archs.build(name)
    return archs.build_edge_fast_widths(tuple(int(w) for w in name.split("=", 1)[1].split("-")))


def int8_file(model, folder: Path, name: str) -> Path:
    rng = np.random.default_rng(0)
    calib = rng.integers(0, 256, (64, IMG_SIZE, IMG_SIZE)).astype("uint8")
    path = folder / f"{name.replace('=', '_')}.tflite"
    path.write_bytes(converter.convert(model, "int8", calib))
    return path


def main(names="edge_vgg", steps: int = 30, rounds: int = 7, runs: int = 300,
         train: bool = True, out: str = None):
    """names: comma-separated architecture names (see above); train: also time training."""
    names = names if isinstance(names, (list, tuple)) else str(names).split(",")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name in names:
            model = build(name)
            files[name] = int8_file(model, Path(tmp), name)
            rows[name] = {"arch": name, "params": model.count_params(), "macs": macs(model),
                          "int8_bytes": files[name].stat().st_size}
            if train:
                rows[name]["train_images_per_s"] = round(train_speed(model, steps), 1)
        p50, _ = interleaved_ms(files, rounds, runs)
    first = p50[names[0]]
    for name in names:
        rows[name].update(int8_p50_ms=round(p50[name], 4),
                          int8_ratio_to_first=round(p50[name] / first, 3))
        print(json.dumps(rows[name]), flush=True)
    if out:
        write_json(Path(out), {"command": " ".join(["python", "benchmarks/arch_speed.py",
                                                    *sys.argv[1:]]),
                               "host": host(), "rounds": rounds, "runs": runs,
                               "archs": list(rows.values())})


if __name__ == "__main__":
    import fire

    fire.Fire(main, name="arch_speed", serialize=lambda _: None)
