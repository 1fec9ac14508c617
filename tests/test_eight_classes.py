"""FER+'s 8 emotions everywhere: the vote targets over 8, a model trained with --target ferplus8,
and a synthetic 8-class model through export, classify, the Python API, serve, batch and
evaluate, each reading the label set from the model's metadata.

The synthetic model answers "contempt" for every face (its class map's bias), with "happy" second:
so every entry point must name the eighth label, and FER2013-label scoring (which has no
contempt) must fall back to the best of the seven."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_edge import votes
from fer_edge.cli import main
from fer_edge.edge.preprocessing import LABELS, LABELS8, fer2013_answers, labels_for

from synth import make_tree, write_tree_votes

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.jpg"
N, H, S, SAD, A, D, F, C, U, NF = range(10)   # FER+'s column order


def _always_contempt(model):
    """Zero the class layer's kernel and bias its outputs: contempt first, happy second."""
    dense = model.layers[-1]
    kernel, bias = dense.get_weights()
    bias[:] = 0.0
    bias[LABELS8.index("contempt")], bias[LABELS8.index("happy")] = 3.0, 2.0
    dense.set_weights([np.zeros_like(kernel), bias])
    return model


@pytest.fixture(scope="module")
def eight(tmp_path_factory) -> Path:
    from fer_edge.converters.tflite import convert
    from fer_edge.training import archs

    out = tmp_path_factory.mktemp("eight") / "eight.tflite"
    out.write_bytes(convert(_always_contempt(archs.build("tiny", 8)), "float32"))
    return out


def test_the_label_sets():
    assert LABELS8 == (*LABELS, "contempt") and labels_for(7) == LABELS
    assert labels_for(8) == LABELS8 == votes.MAJORITY_LABELS
    with pytest.raises(ValueError, match="7 or 8 outputs, not 6"):
        labels_for(6)
    scores = np.array([[0.1, 0, 0, 0.3, 0, 0, 0, 0.6], [0.5, 0, 0, 0.2, 0, 0, 0, 0.3]])
    assert fer2013_answers(scores).tolist() == [3, 0]      # contempt is not a FER2013 answer


def test_vote_targets_over_eight_emotions_learn_contempt():
    v = np.zeros((4, 10))
    v[0, [N, C]] = [3, 7]          # contempt's top: a target over 8, none over 7
    v[1, [H, U]] = [4, 6]          # unknown's top: no target either way
    v[2, [H, S, C]] = [6, 1, 3]    # the single vote dropped, contempt a share over 8
    v[3, [SAD, NF]] = [5, 5]       # a tie with not-a-face is no agreed emotion
    t8, use8 = votes.target_distribution(v, 8)
    t7, use7 = votes.target_distribution(v, 7)
    assert use8.tolist() == [True, False, True, False]
    assert use7.tolist() == [False, False, True, False]
    np.testing.assert_allclose(t8[0], np.eye(8)[[6, 7]].T @ [0.3, 0.7])
    np.testing.assert_allclose(t8[2, [3, 7]], [2 / 3, 1 / 3])
    np.testing.assert_allclose(t7[2, 3], 1.0)
    assert t8.shape == (4, 8) and t7.shape == (4, 7)


def test_majority_benchmark_of_an_eight_class_model_scores_contempt():
    v = np.zeros((3, 10))
    v[0, C], v[1, H], v[2, N] = 8, 9, 7
    eight = np.eye(8)[[7, 3, 7]]                   # contempt right, happy right, neutral wrong
    seven = np.eye(7)[[6, 3, 6]]
    m8, m7 = votes.majority_summary(v, eight), votes.majority_summary(v, seven)
    assert m8["top1"] == pytest.approx(2 / 3) and m8["per_class_accuracy"]["contempt"] == 1.0
    assert m7["top1"] == pytest.approx(2 / 3) and m7["per_class_accuracy"]["contempt"] == 0.0
    assert np.array(m8["confusion_matrix"]).shape == (8, 8)
    assert np.array(m7["confusion_matrix"]).shape == (8, 7)
    # vote agreement: the share of annotators who chose contempt is counted for contempt
    assert m8["vote_agreement"] == pytest.approx((1 + 1 + 0) / 3)


def test_export_writes_the_eight_labels(eight):
    from fer_edge.edge import tflite_meta
    from fer_edge.edge.runtime import EmotionModel

    assert tflite_meta.read(eight.read_bytes())["labels"] == list(LABELS8)
    model = EmotionModel(eight)
    assert model.labels == list(LABELS8)
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    scores = model.predict(faces)
    assert scores.shape == (3, 8) and (scores.argmax(1) == 7).all()


def _classify_json(*args) -> list[dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["classify", *map(str, args), "--format", "json"]) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_classify_and_the_api_name_contempt(eight):
    from fer_edge import Classifier

    faces = _classify_json(ASTRONAUT, "--model", eight)[0]["faces"]
    assert len(faces) == 1 and faces[0]["emotion"] == "contempt"
    assert list(faces[0]["scores"]) == list(LABELS8)
    with Classifier(model=eight) as clf:
        ours = clf.faces(str(ASTRONAUT))
    assert [f["emotion"] for f in ours] == ["contempt"]
    assert ours[0]["scores"] == pytest.approx(faces[0]["scores"], abs=1e-4)


def test_serve_answers_with_eight_labels(eight):
    from test_serve import Running, post_image

    running = Running(model=str(eight), workers=1)
    try:
        status, _, body = post_image(running.url, ASTRONAUT.read_bytes())
    finally:
        running.close()
    assert status == 200, body
    answer = json.loads(body)["faces"]
    assert answer == _classify_json(ASTRONAUT, "--model", eight)[0]["faces"]
    assert answer[0]["emotion"] == "contempt"


def test_batch_writes_contempt_rows(eight, tmp_path):
    pytest.importorskip("ray", reason="pip install 'fer-edge[ray]' (the test extra has it)")
    pd = pytest.importorskip("pandas")
    import shutil

    (tmp_path / "in").mkdir()
    shutil.copy(ASTRONAUT, tmp_path / "in" / "astronaut.jpg")
    exe = Path(sys.executable).parent / "fer-edge"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fer_edge.cli"]
    r = subprocess.run(cmd + ["batch", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                              "--model", str(eight), "--workers", "1", "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    faces = pd.read_parquet(tmp_path / "out" / "faces")
    assert faces["emotion"].tolist() == ["contempt"]


def test_evaluate_scores_eight_classes(eight, tmp_path, monkeypatch):
    from fer_edge.evaluate import evaluate, markdown

    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    made = make_tree(tmp_path / "d", per_split={"train": 4, "val": 2, "test": 3})
    written = write_tree_votes(tmp_path / "d" / "ferplus.csv", made)
    result = evaluate([eight], data=str(tmp_path / "d"), split="test", latency_runs=2,
                      out=tmp_path / "eval")
    row = result["variants"][0]
    # FER2013's labels: the best of the seven, happy, for every face (3 of 21)
    assert row["top1"] == pytest.approx(3 / 21)
    truth = votes.majority(written["test"])
    kept = truth >= 0
    assert row["ferplus"]["n"] == int(kept.sum())
    assert row["ferplus"]["top1"] == pytest.approx(float((truth[kept] == 7).mean()))
    assert np.array(row["ferplus"]["confusion_matrix"]).shape == (8, 8)
    text = markdown(result)
    assert "These models answer all 8 emotions." in text
    assert "| | angry | disgust | fear | happy | sad | surprise | neutral | contempt |" in text


def test_train_ferplus8_makes_an_eight_class_model(tmp_path, monkeypatch):
    from fer_edge.training.engine import train
    from fer_edge.training.keras_io import load_keras

    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    made = make_tree(tmp_path / "d", per_split={"train": 6, "val": 3, "test": 3})
    write_tree_votes(tmp_path / "d" / "ferplus.csv", made)
    m = train(data=str(tmp_path / "d"), arch="tiny", out=str(tmp_path / "run"), epochs=1,
              target="ferplus8", verbose=0)
    assert load_keras(tmp_path / "run" / "best.keras").output_shape[-1] == 8
    assert m["selected_on"] == "ferplus"
    assert np.array(m["splits"]["val"]["ferplus"]["confusion_matrix"]).shape == (8, 8)
    assert np.array(m["splits"]["val"]["confusion_matrix"]).shape == (7, 7)
