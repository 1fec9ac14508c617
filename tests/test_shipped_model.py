"""The default model shipped in models/: what the card says must be what the files do."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fer_edge import defaults
from fer_edge.edge import tflite_meta
from fer_edge.edge.preprocessing import LABELS, LABELS8

ROOT = Path(__file__).resolve().parents[1]
MODELS = defaults.package_path("models")
REPORT = MODELS / "eval" / "report.json"


def _card_row(name: str) -> dict:
    rows = json.loads(REPORT.read_text())["variants"]
    return next(r for r in rows if Path(r["model"]).name == name and not r.get("tta"))


# the FER+ model tells FER+'s 8 emotions (contempt included), the FER2013 one FER2013's 7
@pytest.mark.parametrize("family,card,labels", [("ferplus", "MODEL_CARD_ferplus.md", LABELS8),
                                                ("fer", "MODEL_CARD.md", LABELS)])
def test_shipped_files_are_the_edge_models_the_card_describes(family, card, labels):
    int8 = MODELS / f"{family}_int8.tflite"
    meta = tflite_meta.read(int8.read_bytes())
    assert meta["quantize"] == "int8" and meta["labels"] == list(labels)
    assert meta["tensors"]["input"]["dtype"] == "int8"
    assert int8.stat().st_size <= 400 * 1024
    for name in (f"{family}.keras", f"{family}_float16.tflite", card, "eval/report.md",
                 "eval/tradeoff.png", "eval/peer_latency.json"):
        assert (MODELS / name).exists(), name
    text = (MODELS / card).read_text()
    row = _card_row(int8.name)
    assert f"{row['top1']:.2%}" in text and f"{row['macro_f1']:.4f}" in text
    assert f"{row['ferplus']['top1']:.2%}" in text          # the FER+ benchmark too
    assert row["size_bytes"] == int8.stat().st_size  # the card speaks of these very files
    if family == "fer":   # the fast model: its own section of the card, its row in the report
        fast = MODELS / defaults.SHIPPED_MODELS["fast"]
        assert tflite_meta.read(fast.read_bytes())["quantize"] == "int8"
        row = _card_row(fast.name)
        assert "## The fast model" in text and f"{row['top1']:.2%}" in text
        assert row["size_bytes"] == fast.stat().st_size


def test_the_default_is_the_ferplus_model_and_the_names_point_at_their_families():
    assert defaults.default_model().name == "ferplus_int8.tflite"
    assert defaults.SHIPPED_MODELS["ferplus"] == "ferplus_int8.tflite"
    assert defaults.SHIPPED_MODELS["fer2013"] == "fer_int8.tflite"
    card = (MODELS / "MODEL_CARD_ferplus.md").read_text()
    assert card.startswith("# Model card: fer-edge `ferplus` models, the default model")


def test_models_list_times_are_the_latency_benchmarks(capsys):
    from fer_edge.cli import main

    assert main(["models", "list", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    bench = json.loads((MODELS / defaults.SHIPPED_LATENCY).read_text())
    for row in out["shipped"]:
        assert row["time_vs_fer"] == bench["ratio_to_fer"][f"models/{row['file']}"], row
    # and it says what the ratio measures, and on which CPU
    assert out["timing"]["host"] == bench["host"] and out["timing"]["threads"] == 1
    assert main(["models", "list"]) == 0
    assert f"1 thread, on {bench['host']['cpu']}" in capsys.readouterr().out


def test_classify_without_model_uses_the_shipped_one():
    r = subprocess.run([sys.executable, "-m", "fer_edge.cli", "classify",
                        str(ROOT / "examples" / "astronaut.jpg"), "--format", "json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    (face,) = out["faces"]
    # the astronaut smiles: the shipped default says so, with her face where it is
    assert face["emotion"] == "happy" and face["confidence"] > 0.9
    assert face["box"] == pytest.approx([174, 70, 105, 105], abs=3)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("FER_EDGE_DATA"),
                    reason="FER_EDGE_DATA is not set (the real FER2013 folder tree)")
def test_shipped_models_reproduce_the_card_on_privatetest():
    pytest.importorskip("sklearn", reason="evaluate needs pip install '.[train]'")
    from fer_edge.evaluate import evaluate

    shipped = [MODELS / f for f in dict.fromkeys(defaults.SHIPPED_MODELS.values())
               if (MODELS / f).exists()]
    result = evaluate(shipped, data=os.environ["FER_EDGE_DATA"], split="test", latency_runs=20)
    assert result["n"] == 3589
    for path, got in zip(shipped, result["variants"]):
        assert abs(got["top1"] - _card_row(path.name)["top1"]) <= 0.001, path.name


def test_models_list_shows_the_shipped_models_with_their_report_figures(capsys):
    from fer_edge.cli import main

    assert main(["models", "list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    report = json.loads((REPORT).read_text())
    for row in listed["shipped"]:
        same = [v for v in report["variants"]
                if v["model"].endswith("/" + Path(row["file"]).name) and not v.get("tta")]
        assert row["top1"] == same[0]["top1"]
        assert row["size_bytes"] == (MODELS / Path(row["file"]).name).stat().st_size
    assert "default" in {r["name"] for r in listed["shipped"]}
    if importlib.util.find_spec("keras"):       # the runtime install lists no architectures
        assert {"seed", "edge_fast"} <= {r["name"] for r in listed["architectures"]}


def test_classify_knows_shipped_models_by_name(capsys):
    from fer_edge.cli import main

    image = ROOT / "examples" / "astronaut.jpg"
    for name, fname in defaults.SHIPPED_MODELS.items():
        rc = main(["classify", str(image), "--model", name, "--format", "json"])
        out, err = capsys.readouterr()
        if (MODELS / fname).exists():
            assert rc == 0 and json.loads(out)["faces"], err
        else:
            assert rc == 2 and err.startswith(f"fer-edge: error: no {name} model is shipped")
    rc = main(["classify", str(image), "--model", "fastest"])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip() == ("fer-edge: error: model not found: fastest is neither a "
                                       "file nor a shipped model (default, fast, fer2013, "
                                       "ferplus)")


def test_models_list_in_the_runtime_install_lists_the_shipped_models(capsys, monkeypatch):
    import importlib.util

    from fer_edge.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "keras" else real(name, *a))
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "fer_int8.tflite" in out and "FER+" in out
    assert out.strip().endswith("architectures: pip install 'fer-edge[train]' to list and "
                                "train them")


def test_litert_kernel_sets_answer_alike_on_a_model_whose_activations_are_fused():
    """fer_int8.tflite has only ReLUs, fused into its convolutions: LiteRT's builtin and
    reference kernels give the same answers at most one output step apart (1/256: the int8
    softmax's scale), XNNPack a few steps; an unknown kernel set is refused by name."""
    import numpy as np

    from fer_edge.edge.runtime import EmotionModel
    from fer_edge.errors import FerEdgeError

    faces = np.random.default_rng(0).random((20, 48, 48, 1)).astype("float32")
    path = MODELS / "fer_int8.tflite"
    scores = {k: EmotionModel(path, kernels=k).predict(faces, batch_size=1)
              for k in ("xnnpack", "builtin", "reference")}
    step = 1 / 256
    np.testing.assert_array_equal(scores["reference"].argmax(1), scores["builtin"].argmax(1))
    assert np.abs(scores["reference"] - scores["builtin"]).max() <= step + 1e-6
    assert np.abs(scores["xnnpack"] - scores["builtin"]).max() <= 4 * step + 1e-6
    assert not np.array_equal(scores["xnnpack"], scores["builtin"])    # other kernels indeed
    with pytest.raises(FerEdgeError, match="unknown kernels 'gpu': one of xnnpack, builtin"):
        EmotionModel(path, kernels="gpu")
