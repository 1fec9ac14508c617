"""gpu/train.py, the trainer for lent GPU machines, on TensorFlow's backend here (it is written
for any Keras 3 backend): a teacher, a distilled student, its undistilled twin with the same
epochs, the ensemble report, and the weights' float16 round trip."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "gpu"))

import pack  # noqa: E402


@pytest.fixture(scope="module")
def packed(synth_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("packed")
    pack.main(str(synth_data), str(folder))
    return folder


def gpu_train(*args):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    r = subprocess.run([sys.executable, str(ROOT / "gpu" / "train.py"), *map(str, args)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_teacher_student_twin_ensemble_and_weights(packed, tmp_path):
    import keras

    teacher, student, twin = tmp_path / "t", tmp_path / "s", tmp_path / "p"
    gpu_train("run", "--packed", packed, "--arch", "tiny", "--out", teacher, "--epochs", "2",
              "--augment", "edge", "--erasing", "0.25")
    for name in ("best.keras", "history.csv", "config.json", "probs_val.npy", "probs_test.npy"):
        assert (teacher / name).is_file(), name
    header = (teacher / "history.csv").read_text().splitlines()[0].split(",")
    assert {"accuracy", "val_accuracy", "test_accuracy"} <= set(header)

    gpu_train("run", "--packed", packed, "--arch", "tiny", "--out", student, "--epochs", "2",
              "--teacher", teacher / "best.keras", "--temperature", "3")
    gpu_train("run", "--packed", packed, "--arch", "tiny", "--out", twin,
              "--match-epochs", student)
    # the run folders are fer-edge's own: RunFolder answers, and the card tells the teacher's story
    from fer_edge.card import _framework, _teachers
    from fer_edge.runs import RunFolder

    t_run = RunFolder(teacher)
    assert t_run.metrics["splits"]["val"]["top1"] == pytest.approx(
        float((np.load(teacher / "probs_val.npy").argmax(1) == pack.load(packed)["val"][1]).mean()))
    assert t_run.epochs_done == 2 and t_run.metrics["epochs_done"] == 2
    assert t_run.config["versions"]["backend"] == "tensorflow"
    assert f"Keras {keras.__version__}" in _framework(t_run.config)
    assert _framework({"versions": {"keras": "3.15.1", "backend": "jax", "jax": "0.11.2"},
                       "device": "NVIDIA H200"}) == "Keras 3.15.1 on jax 0.11.2, NVIDIA H200"
    line = _teachers(RunFolder(student).options)
    assert "`tiny`" in line and "2 epochs" in line
    assert f"trained by `KERAS_BACKEND=tensorflow python gpu/train.py run --packed {packed}" in line
    cfg = {p: json.loads((p / "config.json").read_text()) for p in (student, twin)}
    assert cfg[student]["options"]["teacher"] == str(teacher / "best.keras")
    assert cfg[student]["options"]["temperature"] == 3.0
    assert cfg[twin]["options"]["teacher"] is None
    assert cfg[twin]["options"]["epochs"] == cfg[student]["options"]["epochs"] == 2
    assert len((twin / "history.csv").read_text().strip().splitlines()) == 3

    gpu_train("ensemble", "--packed", packed, "--runs", f"{teacher},{student}",
              "--out", tmp_path / "ens.json")
    rows = json.loads((tmp_path / "ens.json").read_text())
    assert [(r["members"], r["flip"]) for r in rows] == [
        (["t"], False), (["t"], True), (["s"], False), (["s"], True),
        (["t", "s"], False), (["t", "s"], True)]
    assert all(0 <= r["val"] <= 1 and 0 <= r["test"] <= 1 for r in rows)

    gpu_train("seed-weights", teacher, tmp_path / "w")
    gpu_train("weights-to-keras", tmp_path / "w", "tiny", tmp_path / "back.keras")
    x = np.random.default_rng(0).uniform(0, 255, (8, 48, 48, 1)).astype(np.float32)
    original = keras.saving.load_model(teacher / "best.keras", compile=False).predict(x, verbose=0)
    back = keras.saving.load_model(tmp_path / "back.keras", compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(original, back, atol=5e-3)   # float16 weights
