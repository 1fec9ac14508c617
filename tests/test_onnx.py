"""ONNX, end to end on a small trained synthetic model: `export --target onnx` (float32, int8 QDQ,
the fer-edge record in metadata_props), and the .onnx in classify, the Python API, serve, batch and
evaluate giving the .tflite's answers; a missing onnxruntime or tf2onnx is one line.

Tolerances: float32 ONNX and float32 .tflite are the same float network on two runtimes, so their
scores agree within 1e-5 (classify prints 4 decimals: within 1e-4 there); int8 ONNX (onnxruntime's
QDQ, its own scales from the same calibration faces) and int8 .tflite each round differently, so
they are compared by their answers (at least 95% the same emotion on these faces) and their scores
within a few int8 steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="pip install 'fer-edge[onnx]' (the test extra has it)")
pytest.importorskip("tf2onnx", reason="pip install 'fer-edge[onnx]' (the test extra has it)")
onnx = pytest.importorskip("onnx")

from cli_helpers import json_lines, run_classify  # noqa: E402
from fer_edge.edge import tflite_meta  # noqa: E402
from fer_edge.edge.preprocessing import LABELS, LABELS8  # noqa: E402
from fer_edge.edge.runtime import EmotionModel, OnnxModel, open_model  # noqa: E402
from fer_edge.errors import FerEdgeError  # noqa: E402
from synth import arrays, make_tree, trained_tiny  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
INT8_AGREEMENT = 0.95        # int8 ONNX vs int8 .tflite: share of faces with the same answer
INT8_SCORE_ATOL = 4 / 256    # and scores within 4 of the .tflite's output steps (1/256)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Synthetic data, a briefly trained tiny model, its .tflite (float32, int8) and .onnx
    (float32, int8) exports calibrated on the same Training faces, and test faces as PNGs."""
    from fer_edge.export import export

    root = tmp_path_factory.mktemp("onnx")
    trained_tiny(root)
    tflite = export(root / "best.keras", quantize="all", data=root / "data", calib=70)
    onnx_files = export(root / "best.keras", quantize="all", data=root / "data", calib=70,
                        target="onnx")
    faces, _ = arrays(6, seed=21)
    (root / "faces").mkdir()
    for i, face in enumerate(faces):
        cv2.imwrite(str(root / "faces" / f"face_{i:02d}.png"), face)
    return {"root": root, "faces": faces, "onnx": {p.stem.split("_")[1]: p for p in onnx_files},
            "tflite": {p.stem.split("_")[1]: p for p in tflite}}


def _record(path: Path) -> dict:
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return json.loads(props["fer_edge"])


def test_export_writes_float32_and_int8_qdq_with_the_tflite_record(made):
    paths = made["onnx"]
    assert sorted(p.name for p in paths.values()) == ["fer_float32.onnx", "fer_int8.onnx"]
    for mode, path in paths.items():
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        record = _record(path)
        lite = tflite_meta.read(made["tflite"][mode].read_bytes())
        # the .tflite's record, but for its tensors (float in and out here) and the ONNX facts
        for key in ("labels", "input_size", "color_mode", "normalization", "quantize", "arch",
                    "params", "source_model", "calibration", "format"):
            assert record.get(key) == lite.get(key), key
        assert record["labels"] == list(LABELS) and record["quantize"] == mode
        assert record["onnx"]["opset"] == model.opset_import[0].version
        ops = {n.op_type for n in model.graph.node}
        if mode == "int8":
            # QDQ: int8 weights behind DequantizeLinear, activations through Q/DQ pairs
            assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
            assert record["calibration"]["size"] == 70
            int8_weights = [t for t in model.graph.initializer
                            if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]
            assert int8_weights
        else:
            assert not ops & {"QuantizeLinear", "DequantizeLinear"}


def test_onnx_model_gives_the_tflite_scores(made):
    faces = made["faces"]
    for mode in ("float32", "int8"):
        ours, lite = OnnxModel(made["onnx"][mode]), EmotionModel(made["tflite"][mode])
        assert ours.labels == lite.labels == list(LABELS) and ours.kind == f"onnx-{mode}"
        a, b = ours.predict(faces, batch_size=5), lite.predict(faces)   # batches of any size
        if mode == "float32":
            np.testing.assert_allclose(a, b, atol=1e-5)
        else:
            assert (a.argmax(1) == b.argmax(1)).mean() >= INT8_AGREEMENT
            np.testing.assert_allclose(a, b, atol=INT8_SCORE_ATOL)
    assert isinstance(open_model(made["onnx"]["int8"]), OnnxModel)
    assert isinstance(open_model(made["tflite"]["int8"]), EmotionModel)


def test_classify_onnx_answers_as_the_tflite(made, capsys):
    folder = made["root"] / "faces"
    for mode in ("float32", "int8"):
        got = {}
        for kind in ("onnx", "tflite"):
            rc, out, err = run_classify(capsys, folder, "--no-detect", "--model",
                                        made[kind][mode], "--format", "json")
            assert rc == 0, err
            got[kind] = [rec["faces"][0] for rec in json_lines(out)]
        assert len(got["onnx"]) == len(made["faces"])
        same = np.mean([a["emotion"] == b["emotion"] for a, b in zip(got["onnx"], got["tflite"])])
        assert same == 1.0 if mode == "float32" else same >= INT8_AGREEMENT
        tol = 1e-4 + 1e-6 if mode == "float32" else INT8_SCORE_ATOL
        for a, b in zip(got["onnx"], got["tflite"]):
            assert a["scores"] == pytest.approx(b["scores"], abs=tol)


def test_the_api_and_serve_take_an_onnx(made):
    from fer_edge import Classifier
    from test_serve import Running, post_image

    face = made["faces"][0]
    with Classifier(model=made["onnx"]["float32"], no_detect=True) as clf:
        ours = clf.faces(face)
    with Classifier(model=made["tflite"]["float32"], no_detect=True) as clf:
        lite = clf.faces(face)
    assert ours[0]["emotion"] == lite[0]["emotion"]
    assert ours[0]["scores"] == pytest.approx(lite[0]["scores"], abs=1e-4)
    png = cv2.imencode(".png", face)[1].tobytes()
    running = Running(model=str(made["onnx"]["float32"]), workers=1, no_detect=True)
    try:
        status, _, body = post_image(running.url, png)
    finally:
        running.close()
    assert status == 200, body
    assert json.loads(body)["faces"][0]["emotion"] == lite[0]["emotion"]


def test_an_eight_class_onnx_names_contempt(tmp_path, capsys):
    from fer_edge.converters import onnx_export
    from fer_edge.training import archs
    from test_eight_classes import _always_contempt

    path = tmp_path / "eight.onnx"
    path.write_bytes(onnx_export.convert(_always_contempt(archs.build("tiny", 8)), "float32"))
    assert OnnxModel(path).labels == list(LABELS8)
    cv2.imwrite(str(tmp_path / "face.png"), np.full((48, 48), 128, np.uint8))
    rc, out, err = run_classify(capsys, tmp_path / "face.png", "--no-detect", "--model", path,
                                "--format", "json")
    assert rc == 0, err
    assert json_lines(out)[0]["faces"][0]["emotion"] == "contempt"


def test_evaluate_puts_onnx_rows_beside_tflite_rows(made, tmp_path):
    from fer_edge.evaluate import evaluate, openvino_installed

    models = [made["tflite"]["int8"], made["onnx"]["int8"], made["onnx"]["float32"]]
    result = evaluate(models, data=made["root"] / "data", split="test", latency_runs=5,
                      out=tmp_path / "rep")
    rows = result["variants"]
    openvino = ["openvino-int8"] if openvino_installed() else []
    kinds = ["int8", "onnx-int8", *openvino, "onnx-float32",
             *(["openvino-float32"] if openvino else [])]
    assert [r["kind"] for r in rows] == kinds
    for r in rows:
        assert r["latency_ms"]["p50"] > 0 and r["size_bytes"] > 0 and r["params"] == 1439
        assert r["agreement_with_reference"] >= INT8_AGREEMENT
    by_kind = {r["kind"]: r for r in rows}
    assert by_kind["onnx-int8"]["size_bytes"] == made["onnx"]["int8"].stat().st_size
    if openvino:   # OpenVINO reads the same file: the onnxruntime row's answers
        assert by_kind["openvino-int8"]["agreement_with_reference"] >= INT8_AGREEMENT
    # the .onnx's (and OpenVINO's) confusion pictures do not overwrite the .tflite's
    names = {p.name for p in (tmp_path / "rep").glob("confusion_*.png")}
    assert {"confusion_fer_int8.png", "confusion_fer_int8_onnx.png",
            "confusion_fer_float32_onnx.png"} <= names
    if openvino:
        assert "confusion_fer_int8_openvino.png" in names
    assert "| `fer_int8.onnx` | onnx-int8 |" in (tmp_path / "rep" / "report.md").read_text()


def test_batch_takes_an_onnx(made, tmp_path):
    pytest.importorskip("ray", reason="pip install 'fer-edge[ray]' (the test extra has it)")
    pd = pytest.importorskip("pandas")

    exe = BIN / "fer-edge"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fer_edge.cli"]
    r = subprocess.run(cmd + ["batch", str(made["root"] / "faces"), "--out", str(tmp_path / "out"),
                              "--model", str(made["onnx"]["int8"]), "--no-detect",
                              "--workers", "1", "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    faces = pd.read_parquet(tmp_path / "out" / "faces").sort_values("file")
    expected = OnnxModel(made["onnx"]["int8"]).predict(made["faces"]).argmax(1)
    assert faces["emotion"].tolist() == [LABELS[k] for k in expected]


def test_bad_onnx_options_are_one_line_and_write_nothing(made, tmp_path, capsys):
    from fer_edge.cli import main

    keras_model = made["root"] / "best.keras"
    for args, message in [
            (["--quantize", "float16", "--target", "onnx"],
             "--target onnx writes float32 or int8 (QDQ), not float16"),
            (["--quantize", "int8", "--target", "onnx", "--npu", "ethos-u55-128"],
             "--npu is for --target ethos-u"),
            (["--target", "tensorrt"], "--target must be one of litert, micro, onnx, ethos-u")]:
        rc = main(["export", "--model", str(keras_model), "--out", str(tmp_path / "x"), *args])
        err = capsys.readouterr().err
        assert rc == 2 and message in err, err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    (tmp_path / "notes.onnx").write_text("not a model")
    with pytest.raises(FerEdgeError, match="onnxruntime cannot load it"):
        OnnxModel(tmp_path / "notes.onnx")


# ------------------------------------------------------------- without the onnx extra

def _without(modules: list[str], tmp_path: Path, *args) -> subprocess.CompletedProcess:
    """`fer-edge ARGS` in a process where `modules` are not installed: a sitecustomize on
    PYTHONPATH puts None in sys.modules for them, so importing one raises ModuleNotFoundError
    and importlib.util.find_spec finds nothing, as when the package is absent."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import sys\n"
        f"for name in {modules!r}:\n"
        "    sys.modules[name] = None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "fer_edge.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=180, env=env)


def test_a_missing_onnxruntime_is_one_line(made, tmp_path):
    r = _without(["onnxruntime"], tmp_path, "classify", made["root"] / "faces" / "face_00.png",
                 "--no-detect", "--model", made["onnx"]["int8"])
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == ("fer-edge: error: a .onnx model needs onnxruntime: "
                                "pip install 'fer-edge[onnx]'")
    # the .tflite still runs in the same process: onnxruntime is imported for a .onnx only
    r = _without(["onnxruntime"], tmp_path, "classify", made["root"] / "faces" / "face_00.png",
                 "--no-detect", "--model", made["tflite"]["int8"], "--format", "json")
    assert r.returncode == 0, r.stderr
    assert len(json_lines(r.stdout)[0]["faces"]) == 1


def test_a_missing_tf2onnx_is_one_line_before_anything_is_written(made, tmp_path):
    out = tmp_path / "out"
    r = _without(["tf2onnx"], tmp_path, "export", "--model", made["root"] / "best.keras",
                 "--quantize", "int8", "--target", "onnx", "--out", out,
                 "--data", made["root"] / "data", "--calib", 20)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == ("fer-edge: error: --target onnx needs tf2onnx: "
                                "pip install 'fer-edge[onnx]'")
    assert not out.exists()
