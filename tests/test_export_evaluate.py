"""Converters, calibration manifests and the evaluator, on a tiny model and synthetic data."""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from fer_edge import defaults
from fer_edge.edge import tflite_meta
from fer_edge.calibration import manifest
from fer_edge.data import load
from fer_edge.errors import FerEdgeError
from fer_edge.evaluate import evaluate, load_variant
from fer_edge.export import calibrate, export
from fer_edge.edge.preprocessing import LABELS
from fer_edge.edge.runtime import EmotionModel

from synth import arrays, make_tree, trained_tiny


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Synthetic data, a briefly trained tiny model and every TFLite variant of it."""
    root = tmp_path_factory.mktemp("export")
    trained_tiny(root)
    paths = export(root / "best.keras", quantize="all", data=root / "data", calib=70)
    return root, {p.stem.split("_")[1]: p for p in paths}


def test_every_quantize_mode_is_written_with_its_metadata(workdir):
    root, paths = workdir
    assert set(paths) == set(defaults.QUANTIZE_MODES)
    for mode, path in paths.items():
        assert path.name == f"fer_{mode}.tflite"
        meta = tflite_meta.read(path.read_bytes())
        assert meta["labels"] == list(LABELS) and meta["quantize"] == mode
        assert meta["input_size"] == [48, 48] and meta["color_mode"] == "grayscale"
        assert meta["params"] == 1439
    int8 = tflite_meta.read(paths["int8"].read_bytes())
    # full integer: int8 in and out; raw grey levels map to int8 exactly (pixel - 128)
    assert int8["tensors"]["input"] == {"dtype": "int8", "scale": 1.0, "zero_point": -128}
    assert int8["tensors"]["output"]["dtype"] == "int8"
    assert int8["calibration"]["size"] == 70 and int8["calibration"]["split"] == "train"
    assert tflite_meta.read(paths["float32"].read_bytes())["tensors"]["input"]["dtype"] == "float32"
    model = EmotionModel(paths["int8"])
    assert model.input["dtype"] == np.int8 and model.output["dtype"] == np.int8
    # int8 also quantizes the weights: the smallest file
    sizes = {m: p.stat().st_size for m, p in paths.items()}
    assert sizes["int8"] < sizes["float32"] and sizes["float16"] < sizes["float32"]


def test_metadata_round_trip_replaces_the_record(workdir):
    _, paths = workdir
    buf = paths["float32"].read_bytes()
    again = tflite_meta.write(buf, {"labels": ["a"] * 7, "note": "x"})
    meta = tflite_meta.read(again)
    assert meta["labels"] == ["a"] * 7 and meta["note"] == "x" and "quantize" not in meta
    with pytest.raises(struct.error):   # callers check tflite_meta.is_tflite first
        tflite_meta.read(b"not a flatbuffer")


def test_keras_and_tflite_see_identical_inputs(workdir):
    """Same uint8 faces through the Keras path and the LiteRT path of `evaluate`."""
    root, paths = workdir
    faces = load(root / "data").split("test").x
    keras_scores = load_variant(root / "best.keras").predict(faces)
    fp32 = load_variant(paths["float32"]).predict(faces)
    np.testing.assert_allclose(fp32, keras_scores, atol=1e-5)
    fp16 = load_variant(paths["float16"]).predict(faces)
    np.testing.assert_allclose(fp16, keras_scores, atol=1e-2)
    int8 = load_variant(paths["int8"]).predict(faces)
    assert (int8.argmax(1) == keras_scores.argmax(1)).mean() > 0.9


def test_ties_at_the_top_are_counted():
    from fer_edge.evaluate import tied_top

    steps = np.array([[0.5, 0.5, 0.0], [0.6, 0.2, 0.2], [0.25, 0.375, 0.375], [0.1, 0.8, 0.1]])
    assert tied_top(steps) == 2     # rows 1 and 3 tie at the top; row 2 ties only below it


def test_calibration_manifest_is_deterministic_and_stratified(workdir, tmp_path):
    root, _ = workdir
    train = load(root / "data").split("train")
    a, b = manifest.make(train, 50, seed=1), manifest.make(train, 50, seed=1)
    assert a == b and manifest.make(train, 50, seed=2) != a
    counts = np.bincount(train.y, minlength=7)
    for k, lab in enumerate(LABELS):
        exact = 50 * counts[k] / counts.sum()
        assert abs(len(a["ids"][lab]) - exact) <= 1
    assert sum(len(v) for v in a["ids"].values()) == 50
    assert all(i.startswith("Training_") for v in a["ids"].values() for i in v)
    out = calibrate(root / "data", size=21, seed=0, out=tmp_path / "m.json")
    assert json.loads(out.read_text())["size"] == 21
    with pytest.raises(FerEdgeError, match="exists"):
        calibrate(root / "data", size=21, seed=0, out=tmp_path / "m.json")


def test_real_calibration_proportions():
    """The committed default manifest: 500 Training images, within one image of exact shares."""
    m = manifest.load(defaults.calib_manifest())
    assert m["split"] == "train" and m["size"] == 500
    readme = dict(angry=3994, disgust=436, fear=4097, happy=7214, sad=4830, surprise=3170, neutral=4964)
    total = sum(readme.values())
    for lab, n in readme.items():
        assert abs(len(m["ids"][lab]) - 500 * n / total) <= 1
        assert all(i.startswith("Training_") for i in m["ids"][lab])


def test_manifest_that_does_not_match_the_data(workdir):
    root, _ = workdir
    with pytest.raises(FerEdgeError, match="calibration images .* are not in the training split"):
        export(root / "best.keras", quantize="int8", out=root / "other", data=root / "data",
               calib=str(defaults.calib_manifest()))


@pytest.mark.parametrize("content", [b"", b"hello, I am text", b"PK\x03\x04truncated"])
def test_files_that_are_not_keras_models(tmp_path, content):
    bad = tmp_path / "model.keras"
    bad.write_bytes(content)
    with pytest.raises(FerEdgeError, match="not a Keras"):
        export(bad, quantize="float32")


def test_truncated_keras_model(workdir, tmp_path):
    root, _ = workdir
    data = (root / "best.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(FerEdgeError, match="Keras"):
        export(tmp_path / "cut.keras", quantize="float32")


def test_unknown_quantization_and_existing_outputs(workdir):
    root, _ = workdir
    with pytest.raises(FerEdgeError, match="--quantize must be one of none, float32, float16, dynamic, int8, all, not 'int9'"):
        export(root / "best.keras", quantize="int9")
    with pytest.raises(FerEdgeError, match="exists; pass --force"):
        export(root / "best.keras", quantize="float16")


def test_tflite_with_a_wrong_input_shape_is_named(tmp_path):
    import keras

    from fer_edge.converters.tflite import convert

    inp = keras.Input((32, 32, 3))
    out = keras.layers.Dense(7, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inp))
    (tmp_path / "rgb.tflite").write_bytes(convert(keras.Model(inp, out), "float32"))
    with pytest.raises(FerEdgeError, match=r"input shape is \(1, 32, 32, 3\)"):
        EmotionModel(tmp_path / "rgb.tflite")


def test_evaluate_reports_every_variant(workdir, tmp_path):
    root, paths = workdir
    models = [root / "best.keras", paths["float32"], paths["int8"]]
    result = evaluate(models, data=root / "data", split="test", out=tmp_path / "rep",
                      latency_runs=20)
    assert result["split"] == "test" and result["n"] == 42
    keys = {"model", "kind", "size_bytes", "top1", "macro_f1", "per_class_accuracy",
            "confusion_matrix", "latency_ms", "threads", "agreement_with_reference"}
    for row in result["variants"]:
        assert keys <= set(row)
        assert set(row["per_class_accuracy"]) == set(LABELS)
        assert np.asarray(row["confusion_matrix"]).sum() == 42
        assert row["latency_ms"]["p50"] <= row["latency_ms"]["p95"]
    assert [r["kind"] for r in result["variants"]] == ["keras", "float32", "int8"]
    assert result["variants"][0]["agreement_with_reference"] == 1.0
    assert result["variants"][1]["top1"] == pytest.approx(result["variants"][0]["top1"])
    # float scores practically never tie; int8 ones can (steps of 1/256)
    assert result["variants"][0]["tied_top"] == 0
    assert isinstance(result["variants"][2]["tied_top"], int)
    for name in ("report.md", "report.json", "tradeoff.png", "confusion_best.png",
                 "confusion_fer_int8.png"):
        assert (tmp_path / "rep" / name).exists(), name
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| `fer_int8.tflite` | int8 |" in md
    # a time says what it measures and on which CPU
    from fer_edge.machine import host

    assert result["host"] == host()
    assert f"no detection), batch 1, 1 thread(s), after warm-up, on {host()['cpu']}." in md
    with pytest.raises(FerEdgeError, match="exists"):
        evaluate(models, data=root / "data", out=tmp_path / "rep", latency_runs=5)
    with pytest.raises(FerEdgeError, match="--split must be one of train, val, test, not 'holdout'"):
        evaluate(models, data=root / "data", split="holdout", latency_runs=5)


def test_cli_errors_are_one_line_without_traceback(workdir, tmp_path):
    root, paths = workdir
    (tmp_path / "notes.keras").write_text("not a model")
    cases = [
        ["export", "--model", str(tmp_path / "notes.keras"), "--quantize", "float32"],
        ["export", "--model", str(root / "best.keras"), "--quantize", "int9"],
        ["evaluate", "--models", str(paths["int8"]), "--data", str(root / "data"),
         "--split", "holdout"],
        ["data", "info", "--data", str(tmp_path / "missing")],
    ]
    for args in cases:
        r = subprocess.run([sys.executable, "-m", "fer_edge.cli", *args], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2, (args, r.stderr)
        lines = [l for l in r.stderr.splitlines() if l.startswith("fer-edge: error:")]
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr


def test_evaluate_json_cli(workdir):
    root, paths = workdir
    r = subprocess.run([sys.executable, "-m", "fer_edge.cli", "evaluate", "--models",
                        str(paths["float32"]), str(paths["int8"]), "--data", str(root / "data"),
                        "--format", "json", "--latency-runs", "10"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n"] == 42 and [v["kind"] for v in out["variants"]] == ["float32", "int8"]
    # TFLite-only evaluation never needs TensorFlow
    probe = subprocess.run([sys.executable, "-c", (
        "import sys; from fer_edge.cli import main; "
        f"main(['evaluate', '--models', {str(paths['int8'])!r}, '--data', {str(root / 'data')!r}, "
        "'--format', 'json', '--latency-runs', '5']); "
        "print('TF', 'tensorflow' in sys.modules)")], capture_output=True, text=True, timeout=120)
    assert probe.stdout.strip().endswith("TF False"), probe.stderr


def test_evaluate_tta_adds_flip_averaged_rows(workdir, tmp_path):
    root, paths = workdir
    result = evaluate([paths["float32"]], data=root / "data", split="test",
                      out=tmp_path / "rep", latency_runs=5, tta=True)
    plain, tta = result["variants"]
    assert (plain["kind"], plain["tta"]) == ("float32", False)
    assert (tta["kind"], tta["tta"]) == ("float32+tta", True)
    # the TTA row is exactly the argmax of the mean of the face's and its mirror's scores
    sp = load(root / "data").split("test")
    model = EmotionModel(paths["float32"])
    mean = (model.predict(sp.x) + model.predict(sp.x[:, :, ::-1])) / 2
    assert tta["top1"] == pytest.approx(float((mean.argmax(1) == sp.y).mean()))
    assert (tmp_path / "rep" / "confusion_fer_float32_tta.png").exists()
    assert "float32+tta" in (tmp_path / "rep" / "report.md").read_text()

def test_models_sharing_a_file_name_get_their_folder_in_tables_and_files(tmp_path):
    from fer_edge.edge.preprocessing import LABELS
    from fer_edge.evaluate import write_reports

    def row(model):
        return {"model": model, "kind": "int8", "tta": False, "size_bytes": 1024, "params": 10,
                "top1": 0.5, "macro_f1": 0.5, "latency_ms": {"p50": 1.0, "p95": 1.0},
                "threads": 1, "throughput_ips": 1.0, "agreement_with_reference": 1.0,
                "per_class_accuracy": {lab: 0.5 for lab in LABELS},
                "confusion_matrix": [[1] * len(LABELS)] * len(LABELS)}

    result = {"split": "test", "n": 7, "reference": "a", "variants": [
        row("runs/seed/fer_int8.tflite"), row("models/fer_int8.tflite"), row("models/x.keras")]}
    write_reports(result, tmp_path)
    assert {p.name for p in tmp_path.glob("confusion_*.png")} == {
        "confusion_seed_fer_int8.png", "confusion_models_fer_int8.png", "confusion_x.png"}
    md = (tmp_path / "report.md").read_text()
    assert "| `seed/fer_int8.tflite` |" in md and "| `x.keras` |" in md
