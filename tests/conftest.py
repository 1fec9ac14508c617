"""Shared fixtures. Everything is synthetic: the tests need neither FER2013 nor real photos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory):
    """A small synthetic FER2013 folder tree (train/val/test) for training tests."""
    from synth import make_tree

    root = tmp_path_factory.mktemp("fer")
    make_tree(root, per_split={"train": 40, "val": 10, "test": 10})
    return root


TINY = REPO / "tests" / "data"      # made by tests/make_tiny_models.py (test_tiny_models.py)


@pytest.fixture(scope="session")
def tiny_tflite() -> Path:
    """An untrained `tiny` emotion model as a float32 .tflite, committed (tests/data), so the
    runtime's tests need no TensorFlow. FER_EDGE_TEST_TFLITE=path uses another emotion .tflite."""
    given = os.environ.get("FER_EDGE_TEST_TFLITE")
    return Path(given) if given else TINY / "tiny.tflite"


@pytest.fixture(scope="session")
def tiny_tflite_int8() -> Path:
    """The same model as a full-integer int8 .tflite (the default model's kind), calibrated on
    random grey faces, committed beside it."""
    return TINY / "tiny_int8.tflite"


@pytest.fixture(scope="session")
def face_tile():
    """The astronaut's face with a margin, as the detector frames it: what the synthetic clips
    move around (test_video.py, test_video_path.py)."""
    import cv2

    from fer_edge.edge import detect

    img = cv2.imread(str(REPO / "examples" / "astronaut.jpg"))
    (x, y, w, h), = detect.get("blazeface_dual")(img)
    m = w // 4
    return img[max(0, y - m):y + h + m, max(0, x - m):x + w + m]
