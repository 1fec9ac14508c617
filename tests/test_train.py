import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fer_edge.errors import FerEdgeError
from fer_edge.options import parse_duration
from fer_edge.training.engine import resolve_options, train
from fer_edge.training.pipeline import class_weights

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ["best.keras", "last.keras", "state.json", "history.csv", "config.json", "curves.png",
             "metrics.json", "logs"] + [f"{kind}_{s}.{ext}" for s in ("train", "val", "test")
                                        for kind, ext in (("confusion", "png"),
                                                          ("classification_report", "txt"))]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))


def test_tiny_model_learns_synthetic_data_and_writes_every_artifact(synth_data, tmp_path):
    out = tmp_path / "run"
    metrics = train(synth_data, arch="tiny", out=out, epochs=12, batch_size=16, verbose=0)
    for name in ARTIFACTS:
        assert (out / name).exists(), name
    # chance is 1/7 = 14%: the training path must really learn
    assert metrics["splits"]["val"]["top1"] > 0.6, metrics["splits"]["val"]
    assert metrics["splits"]["test"]["top1"] > 0.6, metrics["splits"]["test"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["options"]["epochs"] == 12 and cfg["data_fingerprint"]
    assert {"tensorflow", "keras", "numpy"} <= set(cfg["versions"])
    history = (out / "history.csv").read_text().strip().splitlines()
    assert len(history) == 1 + 12


def test_existing_run_needs_resume_or_force(synth_data, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "history.csv").write_text("x")
    with pytest.raises(FerEdgeError, match="--resume .* --force"):
        train(synth_data, arch="tiny", out=out, epochs=1, verbose=0)
    with pytest.raises(FerEdgeError, match="nothing to resume"):
        train(synth_data, arch="tiny", out=tmp_path / "new", resume=True, verbose=0)


def test_resume_after_a_kill_mid_epoch_continues_from_the_last_finished_epoch(synth_data, tmp_path):
    out = tmp_path / "run"
    # Many small steps so the kill lands inside an epoch, after at least one finished epoch.
    cmd = [sys.executable, "-m", "fer_edge.cli", "train", "--data", str(synth_data), "--arch",
           "tiny", "--out", str(out), "--epochs", "50", "--batch-size", "2", "--verbose", "0"]
    proc = subprocess.Popen(cmd, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            state = out / "state.json"
            if state.exists() and json.loads(state.read_text())["epoch"] >= 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail("training did not finish two epochs in time")
        time.sleep(0.5)  # now inside a later epoch
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = json.loads((out / "state.json").read_text())["epoch"]
    assert 2 <= done < 50
    rows_before = len((out / "history.csv").read_text().strip().splitlines()) - 1
    # the kill may land after CSVLogger wrote epoch `done`'s row but before state.json saw it
    assert rows_before in (done, done + 1)
    train(synth_data, out=out, resume=True, epochs=done + 1, verbose=0)
    state = json.loads((out / "state.json").read_text())
    assert state["epoch"] == done + 1
    epochs = [int(line.split(",")[0]) for line in
              (out / "history.csv").read_text().strip().splitlines()[1:]]
    assert epochs == list(range(done + 1))  # continued, not restarted


def test_resume_drops_a_history_row_the_state_never_recorded(synth_data, tmp_path):
    out = tmp_path / "run"
    train(synth_data, arch="tiny", out=out, epochs=1, verbose=0)
    history = out / "history.csv"
    row = history.read_text().splitlines()[1]
    history.write_text(history.read_text() + "1" + row[row.index(","):] + "\n")  # killed there
    train(synth_data, out=out, resume=True, epochs=2, verbose=0)
    epochs = [int(line.split(",")[0]) for line in history.read_text().strip().splitlines()[1:]]
    assert epochs == [0, 1]


def test_mirrored_strategy_on_two_logical_cpus(synth_data, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "fer_edge.cli", "train", "--data", str(synth_data), "--arch",
           "tiny", "--out", str(out), "--epochs", "1", "--strategy", "mirrored",
           "--logical-cpus", "2", "--verbose", "0"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "MirroredStrategy over /device:CPU:0, /device:CPU:1" in r.stderr
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["strategy"] == "mirrored" and cfg["replicas"] == 2
    assert (out / "best.keras").exists()


def test_keras2_decay_semantics():
    import keras

    from fer_edge.training.optim import AdamDecay

    opt = AdamDecay(1e-4, decay=1e-6)
    opt.iterations.assign(10_000)
    assert float(opt.learning_rate) == pytest.approx(1e-4 / (1 + 1e-6 * 10_000), rel=1e-6)
    # ReduceLROnPlateau can still lower the base rate
    opt.learning_rate = 5e-5
    assert float(opt.learning_rate) == pytest.approx(5e-5 / 1.01, rel=1e-6)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert restored.decay == 1e-6


def test_options_resolution_and_helpers():
    opts = resolve_options("seed", {"epochs": 3, "batch_size": None})
    assert opts["epochs"] == 3 and opts["batch_size"] == 64 and opts["decay"] == 1e-6
    assert parse_duration("90m") == 5400 and parse_duration("1.5h") == 5400
    with pytest.raises(FerEdgeError):
        parse_duration("soon")
    with pytest.raises(FerEdgeError, match="unknown training option"):
        resolve_options("seed", {"epochz": 3})
    y = np.array([0] * 90 + [1] * 10)
    w = class_weights(y, "balanced")
    assert w[1] / w[0] == pytest.approx(9.0)
    assert (w[y]).mean() == pytest.approx(1.0)


def test_init_warm_starts_from_a_trained_model_and_rejects_another_architecture(synth_data,
                                                                               tmp_path):
    first = train(synth_data, arch="tiny", out=tmp_path / "a", epochs=12, batch_size=16,
                  verbose=0)
    # One epoch at a tiny learning rate: only a warm start can keep the first run's accuracy.
    warm = train(synth_data, arch="tiny", out=tmp_path / "b", epochs=1, batch_size=16,
                 learning_rate=1e-6, init=str(tmp_path / "a" / "best.keras"), verbose=0)
    cold = train(synth_data, arch="tiny", out=tmp_path / "c", epochs=1, batch_size=16,
                 learning_rate=1e-6, seed=1, verbose=0)
    assert first["splits"]["val"]["top1"] > 0.6
    assert warm["splits"]["val"]["top1"] >= first["splits"]["val"]["top1"] - 0.1
    assert cold["splits"]["val"]["top1"] < 0.4
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    assert cfg["options"]["init"].endswith("best.keras")
    assert len(cfg["options"]["init_sha256"]) == 64
    with pytest.raises(FerEdgeError, match="not .edge_vgg_s. nor a wider one"):
        train(synth_data, arch="edge_vgg_s", out=tmp_path / "d", epochs=1,
              init=str(tmp_path / "a" / "best.keras"), verbose=0)


def test_track_test_logs_a_test_curve_beside_val(synth_data, tmp_path):
    import pandas as pd

    metrics = train(synth_data, arch="tiny", out=tmp_path / "run", epochs=3, batch_size=16,
                    track_test=True, verbose=0)
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert {"val_accuracy", "test_accuracy", "test_loss"} <= set(history.columns)
    assert len(history) == 3 and history["test_accuracy"].between(0, 1).all()
    # the last epoch's test accuracy is the final model's own (best.keras may be another epoch)
    from fer_edge import data as fdata
    from fer_edge.training.keras_io import load_keras
    from fer_edge.training.engine import predict

    last = load_keras(tmp_path / "run" / "last.keras")
    test = fdata.load(synth_data).split("test")
    acc = (predict(last, test.x).argmax(1) == test.y).mean()
    assert abs(acc - history["test_accuracy"].iloc[-1]) < 1e-6
    assert "test" in metrics["splits"]


def test_early_stopping_patience_zero_turns_it_off(tmp_path):
    import keras

    from fer_edge.training import callbacks
    from fer_edge.training.runs import RunFolder

    def early_stoppers(patience):
        opts = resolve_options("edge_fast", {"early_stopping_patience": patience})
        return [c for c in callbacks.make(RunFolder(tmp_path), opts, {}, False)
                if isinstance(c, keras.callbacks.EarlyStopping)]

    assert [c.patience for c in early_stoppers(15)] == [15]
    assert early_stoppers(0) == []


def test_resume_takes_data_and_options_from_the_run(synth_data, tmp_path, capsys):
    from fer_edge.cli import main

    out = tmp_path / "run"
    train(synth_data, arch="tiny", out=out, epochs=1, batch_size=16, verbose=0)
    capsys.readouterr()
    state = (out / "state.json").read_text()
    from synth import make_tree

    make_tree(tmp_path / "other", per_split={"train": 12, "val": 4, "test": 4})
    # an option that differs from the run's is refused, in one line, before anything changes;
    # --data may name another copy of the run's images, not other images
    for extra, message in ((["--learning-rate", "0.5"], "--learning-rate is 0.003 in this run"),
                           (["--data", str(tmp_path / "other")], "is not the data of the run"),
                           (["--arch", "edge_fast"], "--arch is 'tiny' in this run")):
        rc = main(["train", "--out", str(out), "--resume", *extra])
        err = capsys.readouterr().err
        assert rc == 2 and message in err and len(err.splitlines()) == 1, err
        assert (out / "state.json").read_text() == state
    # no --data: the run folder knows it; --epochs is one of the options that may change
    metrics = train(out=out, resume=True, epochs=2, verbose=0)
    assert metrics["epochs_done"] == 2
    # the same images in another folder (another machine's copy) continue the run
    import shutil

    shutil.copytree(synth_data, tmp_path / "copy")
    metrics = train(data=str(tmp_path / "copy"), out=out, resume=True, epochs=3, verbose=0)
    assert metrics["epochs_done"] == 3
    assert len((out / "history.csv").read_text().strip().splitlines()) == 1 + 3


def test_init_from_a_wider_model_keeps_its_strongest_channels(synth_data, tmp_path):
    import keras

    from fer_edge.training import archs
    from fer_edge.training.slim import slim_into

    wide, narrow = archs.build("edge_fast"), archs.build("edge_fast_s")
    rng = np.random.default_rng(0)
    for layer in wide.layers:   # distinct BN scales, so the ranking is defined
        if isinstance(layer, keras.layers.BatchNormalization):
            w = layer.get_weights()
            w[0] = rng.uniform(0.1, 2.0, w[0].shape).astype("float32")
            layer.set_weights(w)
    slim_into(wide, narrow)
    bns = [l for l in wide.layers if isinstance(l, keras.layers.BatchNormalization)]
    convs = [(l, n) for l, n in zip(wide.layers, narrow.layers)
             if isinstance(l, keras.layers.Conv2D)]
    # Second conv (48 -> 32 channels): its kept outputs are the 32 largest |gamma| of its BN,
    # and its inputs are the first conv's kept channels (all 16: same width).
    gamma = bns[1].get_weights()[0]
    kept = np.sort(np.argsort(-gamma)[:32])
    np.testing.assert_array_equal(convs[1][1].get_weights()[0], convs[1][0].get_weights()[0][..., kept])
    kept3 = np.sort(np.argsort(-bns[2].get_weights()[0])[:64])
    np.testing.assert_array_equal(convs[2][1].get_weights()[0],
                                  convs[2][0].get_weights()[0][:, :, kept, :][..., kept3])
    # The head reads the last conv's kept channels.
    last = np.sort(np.argsort(-bns[-1].get_weights()[0])[:192])
    np.testing.assert_array_equal(narrow.layers[-1].get_weights()[0],
                                  wide.layers[-1].get_weights()[0][last])
    with pytest.raises(FerEdgeError, match="not narrower than 'edge_fast_s'"):
        slim_into(narrow, wide)
    with pytest.raises(FerEdgeError, match="differ in their layers"):
        slim_into(wide, archs.build("edge_vgg_s"))
    wide.save(tmp_path / "wide.keras")
    train(synth_data, arch="edge_fast_s", out=tmp_path / "s", epochs=1, batch_size=64,
          init=str(tmp_path / "wide.keras"), verbose=0)
    cfg = json.loads((tmp_path / "s" / "config.json").read_text())
    assert cfg["options"]["init_slimmed_from"] == "edge_fast" and "init_arch" not in cfg["options"]


def test_init_from_another_architecture_of_the_same_widths_records_it_as_such(synth_data, tmp_path):
    """conv_ferplus_relu from a conv_ferplus checkpoint: the same weights, not a slimmed start
    (the card words the two apart)."""
    from fer_edge.training import archs
    from fer_edge.training.engine import train

    leaky = archs.build("conv_ferplus", 7)
    leaky.save(tmp_path / "leaky.keras")
    train(synth_data, arch="conv_ferplus_relu", target="fer2013", out=tmp_path / "relu", epochs=1,
          batch_size=32, init=str(tmp_path / "leaky.keras"), verbose=0)
    options = json.loads((tmp_path / "relu" / "config.json").read_text())["options"]
    assert options["init_arch"] == "conv_ferplus" and "init_slimmed_from" not in options
