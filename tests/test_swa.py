"""Stochastic weight averaging: the running mean, its resumability, the BN recompute, the schedule
and the train integration (swa.keras, selection on val)."""

import json

import numpy as np
import pytest

from fer_edge.training import swa
from fer_edge.errors import FerEdgeError
from fer_edge.training.engine import resolve_options, train


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))


def _small_model():
    import keras

    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(2, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))


def _epoch_end(cb, model, epoch, value):
    model.set_weights([np.full(w.shape, value, w.dtype) for w in model.get_weights()])
    cb.on_epoch_end(epoch, {})


def test_callback_averages_epochs_after_start_and_resumes_the_average(tmp_path):
    model = _small_model()
    cb = swa.callback(tmp_path, start=2, initial_epoch=0)
    cb.set_model(model)
    cb.on_train_begin()
    for epoch, value in enumerate([100.0, 50.0, 1.0, 2.0]):  # epochs 1, 2 are before the start
        _epoch_end(cb, model, epoch, value)
    mean, count = swa.load(tmp_path, 4)
    assert count == 2
    assert all(np.allclose(w, 1.5) for w in mean)
    # only the last two epochs' files stay (a kill before state.json resumes from the earlier)
    assert sorted(p.name for p in tmp_path.glob("swa_*.npz")) == ["swa_0003.npz", "swa_0004.npz"]

    # resumed after epoch 4: the average continues instead of restarting
    cb = swa.callback(tmp_path, start=2, initial_epoch=4)
    cb.set_model(model)
    cb.on_train_begin()
    _epoch_end(cb, model, 4, 6.0)
    mean, count = swa.load(tmp_path, 5)
    assert count == 3 and all(np.allclose(w, 3.0) for w in mean)


def test_recompute_bn_sets_the_plain_mean_of_batch_statistics():
    import keras

    inputs = keras.Input((3,))
    bn = keras.layers.BatchNormalization(momentum=0.9)
    model = keras.Model(inputs, bn(inputs))
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc, 1.0, (8, 3)).astype("float32") for loc in (0.0, 4.0, 8.0)]
    assert swa.recompute_bn(model, batches) == 3
    expected_mean = np.mean([b.mean(0) for b in batches], axis=0)
    expected_var = np.mean([b.var(0) for b in batches], axis=0)
    assert np.allclose(bn.moving_mean.numpy(), expected_mean, atol=1e-5)
    assert np.allclose(bn.moving_variance.numpy(), expected_var, atol=1e-4)
    assert bn.momentum == 0.9  # restored


def test_swa_schedule_decays_to_swa_lr_then_stays_flat():
    from fer_edge.training import optim

    opts = resolve_options("tiny", {"epochs": 10, "learning_rate": 1e-3, "swa_start": 4,
                                    "swa_lr": 2e-4})
    lr = optim.make(opts, steps_per_epoch=10)._learning_rate
    assert float(lr(0)) == pytest.approx(1e-3)
    assert float(lr(40)) == pytest.approx(2e-4)
    assert float(lr(99)) == pytest.approx(2e-4)
    opts = resolve_options("tiny", {"epochs": 10, "learning_rate": 1e-3, "swa_start": 4})
    assert optim.swa_lr(opts) == pytest.approx(2.5e-4)  # the default fraction
    with pytest.raises(FerEdgeError, match="--swa-lr needs --swa-start"):
        resolve_options("tiny", {"swa_lr": 1e-4})
    plain = optim.make(resolve_options("tiny", {"epochs": 10, "learning_rate": 1e-3}), 10)
    assert float(plain._learning_rate(99)) < 2e-5  # without SWA the cosine runs to the end


def test_train_with_swa_writes_swa_keras_selects_on_val_and_resumes(synth_data, tmp_path):
    from fer_edge.training.keras_io import load_keras

    out = tmp_path / "run"
    train(synth_data, arch="tiny", out=out, epochs=6, batch_size=16, swa_start=3, verbose=0)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["swa"]["epochs_averaged"] == 3
    assert (out / "swa.keras").exists() and (out / "swa_confusion_val.png").exists()
    val = {k: metrics[k]["splits"]["val"]["top1"] for k in ("swa",)}
    val["best"] = metrics["splits"]["val"]["top1"]
    assert metrics["selected"] == ("swa.keras" if val["swa"] > val["best"] else "best.keras")
    # the saved model holds the averaged weights (BN statistics aside, which are recomputed)
    mean, _ = swa.load(out, 6)
    model = load_keras(out / "swa.keras")
    bn_stats = {id(v) for l in model.layers if "batch_norm" in l.name
                for v in (l.moving_mean, l.moving_variance)}
    for var, m in zip(model.weights, mean):
        if id(var) not in bn_stats:
            assert np.allclose(var.numpy(), m, atol=1e-6)
    # extending the run keeps averaging where it stopped
    metrics = train(synth_data, out=out, resume=True, epochs=8, verbose=0)
    assert metrics["swa"]["epochs_averaged"] == 5
