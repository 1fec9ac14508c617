"""The committed models of the runtime's tests (tests/data) are what tests/make_tiny_models.py
makes: regenerated here, they give the same scores on the same faces."""

import numpy as np
import pytest

from conftest import TINY

pytest.importorskip("tensorflow", reason="regenerating the models needs fer-edge[train]")


def test_the_committed_tiny_models_are_the_scripts(tmp_path):
    import make_tiny_models

    from fer_edge.edge.runtime import EmotionModel

    float32, int8 = make_tiny_models.build()
    (tmp_path / "a.tflite").write_bytes(float32)
    (tmp_path / "b.tflite").write_bytes(int8)
    faces = np.random.default_rng(1).integers(0, 256, (32, 48, 48), dtype=np.uint8)
    for committed, made in (("tiny.tflite", "a.tflite"), ("tiny_int8.tflite", "b.tflite")):
        ours, theirs = EmotionModel(TINY / committed), EmotionModel(tmp_path / made)
        assert ours.labels == theirs.labels and ours.kind == theirs.kind
        np.testing.assert_allclose(ours.predict(faces), theirs.predict(faces), atol=1e-6)
