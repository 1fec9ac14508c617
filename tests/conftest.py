"""Shared fixtures. Everything is synthetic: the tests need neither FER2013 nor real photos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _export_tflite(model, out_path: Path, mode: str = "float32", calib=None) -> None:
    """Keras model -> .tflite carrying the fer-edge metadata record (the project's converter)."""
    from fer_edge.converters.tflite import convert

    out_path.write_bytes(convert(model, mode, calib_images=calib))


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory):
    """A small synthetic FER2013 folder tree (train/val/test) for training tests."""
    from synth import make_tree

    root = tmp_path_factory.mktemp("fer")
    make_tree(root, per_split={"train": 40, "val": 10, "test": 10})
    return root


@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory) -> Path:
    """An untrained `tiny` emotion model exported to .tflite (seconds; built once per session).

    FER_EDGE_TEST_TFLITE=path reuses an existing emotion .tflite instead."""
    given = os.environ.get("FER_EDGE_TEST_TFLITE")
    if given:
        return Path(given)
    from fer_edge.training import archs

    work = tmp_path_factory.mktemp("tiny_model")
    out = work / "tiny.tflite"
    _export_tflite(archs.build("tiny"), out)
    return out


@pytest.fixture(scope="session")
def tiny_tflite_int8(tmp_path_factory) -> Path:
    """The `tiny` model as a full-integer int8 .tflite (the default model's kind), calibrated on
    random grey faces."""
    import numpy as np

    from fer_edge.training import archs

    work = tmp_path_factory.mktemp("tiny_int8")
    out = work / "tiny_int8.tflite"
    calib = np.random.default_rng(0).integers(0, 256, (16, 48, 48), dtype=np.uint8)
    _export_tflite(archs.build("tiny"), out, mode="int8", calib=calib)
    return out
