"""One training engine on every Keras backend (training/engine.py): the same `fer-edge train`
on TensorFlow and on JAX writes run folders with the same files and keys; --init, --swa-start and
--teacher take effect on JAX; TensorFlow-only options are refused there in one line, before any
file is written. Each backend runs in its own process (Keras picks it once per process)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("jax", reason="the JAX backend: pip install -e '.[test]' installs CPU JAX")
pytestmark = pytest.mark.slow        # trainings in subprocesses on two backends

COMMAND = ["train", "--arch", "tiny", "--epochs", "2", "--limit", "300", "--batch-size", "32",
           "--verbose", "2"]


def fer_edge(backend: str, *args, tmp_path, check: bool = True):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2",
           "FER_EDGE_CACHE": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-m", "fer_edge.cli", *map(str, args)], env=env,
                       capture_output=True, text=True, timeout=300)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def keys(obj, prefix=""):
    """Every key path of a JSON object (versions name the backend's own package: left out)."""
    if not isinstance(obj, dict):
        return set()
    out = set()
    for k, v in obj.items():
        if prefix == "versions." and k in ("tensorflow", "jax", "torch"):
            continue
        out |= {prefix + k} | keys(v, f"{prefix}{k}.")
    return out


@pytest.fixture(scope="module")
def runs(synth_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("backends")
    for backend in ("tensorflow", "jax"):
        fer_edge(backend, *COMMAND, "--data", synth_data, "--out", tmp / backend,
                 "--swa-start", "1", tmp_path=tmp)
    return tmp


def test_both_backends_write_the_same_run_folder(runs):
    tf_run, jax_run = runs / "tensorflow", runs / "jax"
    listing = lambda run: sorted(p.name for p in run.iterdir())  # noqa: E731
    assert listing(tf_run) == listing(jax_run)
    assert {"best.keras", "last.keras", "swa.keras", "history.csv", "curves.png",
            "metrics.json", "config.json", "state.json"} <= set(listing(jax_run))
    for name in ("config.json", "metrics.json", "state.json"):
        a, b = (json.loads((run / name).read_text()) for run in (tf_run, jax_run))
        assert keys(a) == keys(b), name
    assert json.loads((jax_run / "config.json").read_text())["versions"]["backend"] == "jax"
    headers = [next(csv.reader(open(run / "history.csv"))) for run in (tf_run, jax_run)]
    assert headers[0] == headers[1]
    # SWA took effect on both: the average is written and scored
    for run in (tf_run, jax_run):
        assert json.loads((run / "metrics.json").read_text())["swa"]["epochs_averaged"] == 1


def test_a_jax_run_starts_from_its_init_weights(runs, synth_data, tmp_path):
    import keras

    init = runs / "tensorflow" / "best.keras"
    out = tmp_path / "warm"
    # a learning rate too small to move a weight: what the run saves is what it loaded
    fer_edge("jax", *COMMAND, "--data", synth_data, "--out", out, "--init", init,
             "--learning-rate", "1e-12", "--epochs", "1", tmp_path=tmp_path)
    given = keras.saving.load_model(init, compile=False)
    saved = keras.saving.load_model(out / "best.keras", compile=False)
    kernels = lambda m: [w for w in m.weights if "kernel" in w.path]  # noqa: E731
    assert kernels(given)
    for a, b in zip(kernels(given), kernels(saved)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    fresh = keras.saving.load_model(runs / "jax" / "best.keras", compile=False)
    assert not np.allclose(np.asarray(kernels(fresh)[0]), np.asarray(kernels(given)[0]))


def test_on_jax_the_teachers_change_the_target(runs, tmp_path):
    teacher = runs / "tensorflow" / "best.keras"
    script = f"""
import numpy as np
from fer_edge.data import Split
from fer_edge.training import distill
from fer_edge.training.pipeline import TrainStream
rng = np.random.default_rng(0)
split = Split(rng.integers(0, 256, (8, 48, 48), dtype=np.uint8), rng.integers(0, 7, 8),
              np.arange(8).astype(str))
opts = dict(teacher={str(teacher)!r}, distill_weight=0.7, temperature=2.0, teacher_flip=False,
            batch_size=8, seed=0, class_weight="none", augment="none", erasing=0.0)
teachers = distill.teachers_of(opts)
x, y, _ = TrainStream(split, opts, teachers)[0]
label = np.eye(7)[split.y[TrainStream(split, opts).order]]
p = teachers.models[0].predict_on_batch(x)
z = np.exp(np.log(np.maximum(p, 1e-8)) / 2.0)
np.testing.assert_allclose(y, 0.3 * label + 0.7 * z / z.sum(1, keepdims=True), atol=1e-5)
import keras; print(keras.backend.backend())
"""
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.split()[-1] == "jax", r.stderr[-2000:]


@pytest.mark.parametrize("extra, says", [
    (["--qat", "--init", "{init}"], "--qat needs Keras's TensorFlow backend (this one is jax)"),
    (["--strategy", "mirrored"], "--strategy needs Keras's TensorFlow backend (this one is jax)"),
    (["--logical-cpus", "2"], "--logical-cpus needs Keras's TensorFlow backend"),
])
def test_tensorflow_only_options_are_refused_on_jax_before_any_file(runs, synth_data, tmp_path,
                                                                     extra, says):
    extra = [e.format(init=runs / "tensorflow" / "best.keras") for e in extra]
    out = tmp_path / "refused"
    r = fer_edge("jax", *COMMAND, "--data", synth_data, "--out", out, *extra,
                 tmp_path=tmp_path, check=False)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"fer-edge: error: {r.stderr.split('error: ')[1].strip()}"]
    assert says in r.stderr and not out.exists()
