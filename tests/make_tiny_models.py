"""Write the small emotion models the runtime's tests use (tests/data/tiny.tflite, float32, and
tests/data/tiny_int8.tflite, full int8): the `tiny` architecture, untrained, from seed 0, exported
by fer-edge's converter. They are committed so that the edge runtime's tests run where
TensorFlow is not installed (a device, the runtime-only install); tests/test_tiny_models.py
checks that this script still makes models that answer as the committed ones.

    python tests/make_tiny_models.py [--out tests/data]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def build():
    """(the float32 .tflite bytes, the int8 .tflite bytes)."""
    import keras

    from fer_edge.converters.tflite import convert
    from fer_edge.training import archs

    keras.utils.set_random_seed(0)
    model = archs.build("tiny")
    calib = np.random.default_rng(0).integers(0, 256, (16, 48, 48), dtype=np.uint8)
    return convert(model, "float32"), convert(model, "int8", calib_images=calib)


def main(out: str = str(HERE / "data")) -> None:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    float32, int8 = build()
    (folder / "tiny.tflite").write_bytes(float32)
    (folder / "tiny_int8.tflite").write_bytes(int8)
    print(folder / "tiny.tflite", folder / "tiny_int8.tflite")


if __name__ == "__main__":
    main(*sys.argv[2:3] if len(sys.argv) > 2 and sys.argv[1] == "--out" else ())
