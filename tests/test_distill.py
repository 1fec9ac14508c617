"""Distillation (`train --teacher`): the targets the student is trained on, the recorded teachers,
--resume, and the card's account of how each teacher was trained."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_edge.training import distill
from fer_edge.cli import main
from fer_edge.edge.fileio import sha256
from fer_edge.training.engine import train


@pytest.fixture(scope="module")
def teacher_run(synth_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher") / "run"
    train(synth_data, arch="tiny", out=out, epochs=2, batch_size=16, verbose=0)
    return out


def test_targets_mix_labels_with_softened_teacher_scores(teacher_run):
    from fer_edge.data import Split
    from fer_edge.training.keras_io import load_keras
    from fer_edge.training.pipeline import TrainStream

    teacher = load_keras(teacher_run / "best.keras")
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (6, 48, 48), dtype=np.uint8)
    labels = rng.integers(0, 7, 6)
    opts = {"teacher": str(teacher_run / "best.keras"), "distill_weight": 0.6,
            "temperature": 3.0, "teacher_flip": True, "batch_size": 6, "seed": 0,
            "class_weight": "none", "augment": "edge", "erasing": 0.5}
    split = Split(faces, labels, np.arange(6).astype(str))
    stream = TrainStream(split, opts, distill.teachers_of(opts))
    x, target, weights = stream[0]
    order = stream.order
    y = np.eye(7, dtype="float32")[labels[order]]
    # the teachers score the augmented faces the student sees, and their mirror images
    p = np.asarray(teacher(x)), np.asarray(teacher(x[:, :, ::-1]))
    soft = [np.exp(np.log(np.maximum(q, 1e-8)) / 3.0) for q in p]
    soft = sum(s / s.sum(1, keepdims=True) for s in soft) / 2
    np.testing.assert_allclose(target, 0.4 * y + 0.6 * soft, atol=1e-5)
    np.testing.assert_allclose(target.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(weights, np.ones(6, np.float32))
    # the same batch again: the same draws (seed, epoch, batch), whichever thread asks
    np.testing.assert_array_equal(stream[0][0], x)
    # without a teacher the target is the label
    plain = TrainStream(split, {**opts, "teacher": None})
    np.testing.assert_array_equal(plain[0][1], y)
    assert distill.teachers_of({"teacher": None}) is None


def test_train_with_a_teacher_records_it_resumes_and_shows_in_the_card(
        synth_data, teacher_run, tmp_path, capsys):
    teacher = teacher_run / "best.keras"
    out = tmp_path / "student"
    train(synth_data, arch="tiny", out=out, epochs=1, batch_size=16, teacher=str(teacher),
          distill_weight=0.5, verbose=0)
    opts = json.loads((out / "config.json").read_text())["options"]
    assert opts["teacher"] == str(teacher) and opts["distill_weight"] == 0.5
    assert opts["teacher_sha256"] == [sha256(teacher)]
    capsys.readouterr()
    # the teacher cannot be swapped on --resume; the run continues with its own
    rc = main(["train", "--out", str(out), "--resume", "--teacher", str(teacher_run / "last.keras")])
    assert rc == 2 and "--teacher is" in capsys.readouterr().err
    metrics = train(out=out, resume=True, epochs=2, verbose=0)
    assert metrics["epochs_done"] == 2

    from fer_edge.card import write_card
    from fer_edge.evaluate import evaluate

    evaluate([out / "best.keras"], data=synth_data, out=tmp_path / "eval", latency_runs=3)
    card = write_card(out, tmp_path / "eval", tmp_path / "card.md", "fer-edge train ...")
    text = card.read_text()
    assert f"`{teacher}` (sha256 `{sha256(teacher)[:16]}" in text
    assert "`tiny`, val top-1" in text and "trained by `" in text


def test_distillation_options_need_a_teacher(synth_data, tmp_path, capsys):
    rc = main(["train", "--data", str(synth_data), "--arch", "tiny", "--out",
               str(tmp_path / "run"), "--temperature", "4"])
    err = capsys.readouterr().err
    assert rc == 2 and "need --teacher" in err and not (tmp_path / "run").exists()


def test_a_teacher_must_be_an_emotion_model(synth_data, tmp_path):
    import keras

    from fer_edge.errors import FerEdgeError

    bad = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                            keras.layers.Dense(3)])
    bad.save(tmp_path / "three.keras")
    with pytest.raises(FerEdgeError, match="not a fer-edge emotion model"):
        distill.load_teachers([str(tmp_path / "three.keras")])


def test_ensemble_rows_average_members_and_their_mirror_images():
    from fer_edge.training.distill import ensemble_rows

    y = {"val": np.array([0, 1])}
    eye = np.eye(7, dtype=np.float32)
    probs = {"a": {"val": (eye[[0, 2]], eye[[0, 1]])},     # right on face 1 only when mirrored
             "b": {"val": (eye[[3, 1]], eye[[3, 1]])}}     # wrong on face 0
    rows = {(tuple(r["members"]), r["flip"]): r["val"] for r in ensemble_rows(probs, y)}
    assert rows[(("a",), False)] == 0.5 and rows[(("a",), True)] == 1.0
    assert rows[(("b",), False)] == 0.5
    # a+b, no flip: face 0 ties 0 vs 3 (argmax picks 0), face 1 ties 2 vs 1 (argmax picks 1)
    assert rows[(("a", "b"), False)] == 1.0
    assert len(rows) == 6
