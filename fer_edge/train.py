"""`fer-edge train`: the standard Keras training of a registered architecture on FER2013.

The run folder receives best.keras (best val accuracy), last.keras + state.json (every epoch, for
--resume), history.csv, TensorBoard logs, config.json, curves.png, confusion matrices and
classification reports for train/val/test, and metrics.json.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__, archs, data as fdata, defaults
from .errors import FerEdgeError
from .fileio import atomic_path, write_json, write_text
from .labels import LABELS, NUM_CLASSES, batch_to_float


def parse_duration(value) -> float | None:
    """Seconds from 5400, "5400", "90m", "1.5h", "30s"."""
    if value in (None, "", 0):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"\s*([0-9.]+)\s*([smh]?)\s*", str(value))
    if not m:
        raise FerEdgeError(f"bad duration '{value}' (use seconds, or e.g. 90m, 2h)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def resolve_options(arch: str, overrides: dict) -> dict:
    """Base defaults <- the architecture's recipe <- explicit overrides (None = not given)."""
    opts = dict(defaults.TRAIN)
    opts.update(archs.get(arch).recipe)
    opts["arch"] = arch
    unknown = set(overrides) - set(opts)
    if unknown:
        raise FerEdgeError(f"unknown training option(s): {', '.join(sorted(unknown))}")
    opts.update({k: v for k, v in overrides.items() if v is not None})
    opts["time_budget"] = parse_duration(opts["time_budget"])
    if opts["swa_lr"] is not None and not opts["swa_start"]:
        raise FerEdgeError("--swa-lr needs --swa-start (the epoch after which weights are averaged)")
    return opts


def class_weights(y: np.ndarray, mode: str) -> np.ndarray:
    counts = np.bincount(y, minlength=NUM_CLASSES).astype(float)
    if mode == "none":
        return np.ones(NUM_CLASSES)
    w = counts.sum() / (NUM_CLASSES * np.maximum(counts, 1))
    if mode == "sqrt":
        w = np.sqrt(w)
    elif mode != "balanced":
        raise FerEdgeError(f"unknown class_weight '{mode}' (none, balanced, sqrt)")
    return w / (w * counts).sum() * counts.sum()  # mean weight over the data = 1


def make_dataset(split: fdata.Split, opts: dict, training: bool, weights=None):
    import tensorflow as tf

    from . import augment

    x = batch_to_float(split.x) if len(split) else np.zeros((0, 48, 48, 1), np.float32)
    y = np.eye(NUM_CLASSES, dtype=np.float32)[split.y]
    if training:
        w = np.asarray(weights, np.float32)[split.y]
        ds = tf.data.Dataset.from_tensor_slices((x, y, w))
        ds = ds.shuffle(len(x), seed=opts["seed"], reshuffle_each_iteration=True)
        ds = ds.batch(opts["batch_size"])
        aug = augment.make(opts["augment"], opts["erasing"], opts["seed"])
        if aug is not None:
            ds = ds.map(lambda a, b, c: (aug(a), b, c), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(256)
    return ds.prefetch(tf.data.AUTOTUNE)


def _callbacks(run: Path, opts: dict, state: dict, resume: bool, test_ds=None):
    import keras

    from . import swa

    class TestCurve(keras.callbacks.Callback):
        """Adds test_accuracy/test_loss to the epoch's logs before CSVLogger writes them."""

        def on_epoch_end(self, epoch, logs=None):
            loss, acc = self.model.evaluate(test_ds, verbose=0)
            logs.update(test_loss=float(loss), test_accuracy=float(acc))

    class EpochState(keras.callbacks.Callback):
        """last.keras + state.json after every epoch, so --resume continues from here."""

        def __init__(self):
            super().__init__()
            self.started = time.time()
            self.best = state.get("best_val_accuracy", -np.inf)

        def on_epoch_end(self, epoch, logs=None):
            self.best = max(self.best, float(logs.get("val_accuracy", -np.inf)))
            with atomic_path(run / "last.keras") as tmp:
                self.model.save(tmp)
            state.update(epoch=epoch + 1, best_val_accuracy=self.best,
                         train_seconds=state.get("train_seconds", 0.0) + time.time() - self.started,
                         early_stopping_wait=getattr(early, "wait", 0))
            self.started = time.time()
            write_json(run / "state.json", state)

    class TimeBudget(keras.callbacks.Callback):
        """Stop cleanly before the deadline: after an epoch when the next would not fit, or
        mid-epoch as a last resort (best.keras is kept either way)."""

        def __init__(self, budget):
            super().__init__()
            self.budget, self.t0 = budget, time.time()
            self.epoch_t0 = self.t0
            self.last_epoch = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_t0 = time.time()

        def on_epoch_end(self, epoch, logs=None):
            self.last_epoch = time.time() - self.epoch_t0
            if time.time() - self.t0 + self.last_epoch > self.budget:
                print(f"time budget: stopping after epoch {epoch + 1} "
                      f"({time.time() - self.t0:.0f}s of {self.budget:.0f}s)", flush=True)
                self.model.stop_training = True

        def on_train_batch_end(self, batch, logs=None):
            if time.time() - self.t0 > self.budget:
                self.model.stop_training = True

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if resume and "best_val_accuracy" in state:
                self.best = state["best_val_accuracy"]
                self.wait = state.get("early_stopping_wait", 0)

    # patience 0 turns early stopping off: a warm restart's high-lr phase dips below the best
    # val of the weights it started from for longer than any useful patience.
    patience = opts["early_stopping_patience"] or 0
    early = ResumableEarlyStopping(monitor="val_accuracy", mode="max",
                                   patience=patience, verbose=1) if patience > 0 else None
    best = state.get("best_val_accuracy") if resume else None
    cbs = [TestCurve()] if test_ds is not None else []
    cbs += [
        keras.callbacks.ModelCheckpoint(run / "best.keras", monitor="val_accuracy", mode="max",
                                        save_best_only=True, verbose=1,
                                        initial_value_threshold=best),
        keras.callbacks.CSVLogger(run / "history.csv", append=resume),
        keras.callbacks.TensorBoard(log_dir=str(run / "logs")),
        *([early] if early else []),
        # before EpochState, so state.json never records an epoch the average has not seen
        *([swa.callback(run, int(opts["swa_start"]), state.get("epoch", 0))]
          if opts.get("swa_start") else []),
        EpochState(),
    ]
    if opts["schedule"] == "decay":  # a schedule owns the lr otherwise
        cbs.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=opts["reduce_lr_factor"],
            patience=opts["reduce_lr_patience"], min_lr=1e-7, verbose=1))
    if opts["time_budget"]:
        cbs.append(TimeBudget(opts["time_budget"]))
    return cbs


def _warm_start(model, path) -> str:
    """Copy the weights of the .keras model at `path` into `model` (same architecture); returns
    the file's sha256, recorded in config.json so the run names exactly what it started from."""
    import hashlib

    from .keras_io import load_keras

    src = load_keras(path)
    mine, theirs = model.get_weights(), src.get_weights()
    if src.name != model.name or [w.shape for w in mine] != [w.shape for w in theirs]:
        raise FerEdgeError(f"--init {path}: a '{src.name}' model, not '{model.name}' "
                           f"(the weights must match the architecture being trained)")
    model.set_weights(theirs)
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _strategy(name: str | None, logical_cpus: int | None):
    import tensorflow as tf

    if logical_cpus:
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(int(logical_cpus))])
    if not name or name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        print(f"fer-edge: MirroredStrategy over {', '.join(devices)}", file=sys.stderr)
        return tf.distribute.MirroredStrategy(devices=devices)
    raise FerEdgeError(f"unknown strategy '{name}' (default, mirrored)")


def _versions() -> dict:
    import keras
    import tensorflow as tf

    return {"fer_edge": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def predict(model, x_u8: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax scores of a Keras model for uint8 (N,48,48) faces."""
    if len(x_u8) == 0:
        return np.zeros((0, NUM_CLASSES), np.float32)
    return model.predict(batch_to_float(x_u8), batch_size=batch_size, verbose=0)


def write_split_reports(model, ds: fdata.Dataset, run: Path, tag: str = "") -> dict:
    """Confusion matrices (PNG), classification reports and metrics for every split; `tag`
    prefixes the file names (e.g. "swa_")."""
    from . import report

    metrics = {}
    for name, split in ds.splits.items():
        if not len(split):
            continue
        pred = predict(model, split.x).argmax(1)
        m = report.summary(split.y, pred)
        metrics[name] = m
        report.plot_confusion(m["confusion_matrix"],
                              f"{tag}{model.name} — {name} (top-1 {m['top1']:.2%}, n={m['n']})",
                              run / f"{tag}confusion_{name}.png")
        write_text(run / f"{tag}classification_report_{name}.txt",
                   report.classification_report(split.y, pred))
    return metrics


def _trim_history(path: Path, epochs_done: int) -> None:
    """Keep the header and the rows of finished epochs: a kill after CSVLogger wrote an epoch's
    row but before state.json recorded it leaves a row that the resumed run will write again."""
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    kept = lines[:1] + [l for l in lines[1:] if l and int(l.split(",")[0]) < epochs_done]
    if len(kept) != len(lines):
        write_text(path, "\n".join(kept) + "\n")


def train(data, arch: str = defaults.TRAIN["arch"], out: str | None = None, resume: bool = False,
          force: bool = False, limit: int | None = None, strategy: str | None = None,
          logical_cpus: int | None = None, verbose: str = "auto", **overrides) -> dict:
    """Train `arch` on FER2013 at `data`; returns metrics (also written to OUT/metrics.json)."""
    if out is None:
        out = f"runs/{arch}"
    run = Path(out)
    if resume:
        if not (run / "state.json").exists() or not (run / "last.keras").exists():
            raise FerEdgeError(f"nothing to resume in {run} (no state.json / last.keras)")
        saved = json.loads((run / "config.json").read_text())
        opts = saved["options"]
        opts.update({k: v for k, v in overrides.items() if v is not None})
        opts["time_budget"] = parse_duration(opts.get("time_budget"))
        limit = saved.get("limit") if limit is None else limit
        state = json.loads((run / "state.json").read_text())
        _trim_history(run / "history.csv", state["epoch"])
    else:
        if run.exists() and any(run.iterdir()):
            if not force:
                raise FerEdgeError(f"{run} already holds a run; pass --resume to continue it "
                                   f"or --force to start over")
            shutil.rmtree(run)
        opts = resolve_options(arch, overrides)
        state = {}
    ds = fdata.load(data, val_fraction=opts["val_fraction"], seed=opts["seed"], limit=limit)
    for note in ds.notes:
        print(f"fer-edge: {note}", file=sys.stderr)
    train_split, val_split = ds.split("train"), ds.split("val")
    if not len(train_split) or not len(val_split):
        raise FerEdgeError(f"{data}: train and val splits must not be empty")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from . import optim

    keras.utils.set_random_seed(opts["seed"])
    strat = _strategy(strategy, logical_cpus)
    run.mkdir(parents=True, exist_ok=True)
    steps = int(np.ceil(len(train_split) / opts["batch_size"]))
    with strat.scope():
        if resume:
            model = keras.saving.load_model(run / "last.keras")
            schedule = getattr(model.optimizer, "_learning_rate", None)
            if isinstance(schedule, optim.WarmupCosine):  # --epochs may have changed the length
                schedule.total_steps = optim.cosine_epochs(opts) * steps
        else:
            model = archs.build(opts["arch"])
            model.compile(optimizer=optim.make(opts, steps),
                          loss=keras.losses.CategoricalCrossentropy(
                              label_smoothing=opts["label_smoothing"]),
                          metrics=["accuracy"])
            if opts["init"]:
                opts["init_sha256"] = _warm_start(model, opts["init"])
    if not resume:
        write_json(run / "config.json", {
            "options": opts, "data": str(data), "data_fingerprint": ds.fingerprint,
            "data_notes": ds.notes, "limit": limit, "counts": ds.counts(),
            "params": int(model.count_params()), "versions": _versions(),
            "strategy": strategy or "default", "replicas": int(strat.num_replicas_in_sync),
            "command": " ".join(sys.argv)})
    cw = class_weights(train_split.y, opts["class_weight"])
    train_ds = make_dataset(train_split, opts, True, cw)
    val_ds = make_dataset(val_split, opts, False)
    test_ds = None
    if opts.get("track_test"):
        if not len(ds.split("test")):
            raise FerEdgeError(f"{data}: --track-test needs a test split")
        test_ds = make_dataset(ds.split("test"), opts, False)
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    initial_epoch = state.get("epoch", 0)
    if initial_epoch:
        print(f"resuming {run} at epoch {initial_epoch + 1}", flush=True)
    t0 = time.time()
    if initial_epoch < opts["epochs"]:
        model.fit(train_ds, validation_data=val_ds, epochs=opts["epochs"],
                  initial_epoch=initial_epoch, verbose=verbose,
                  callbacks=_callbacks(run, opts, state, resume, test_ds))
    wall = time.time() - t0

    from . import report, swa

    epochs_done = json.loads((run / "state.json").read_text()).get("epoch", 0)
    averaged = swa.finalize(model, run, epochs_done, train_ds) if opts.get("swa_start") else 0
    report.plot_history(run / "history.csv", run / "curves.png")
    best = keras.saving.load_model(run / "best.keras")
    metrics = {"arch": opts["arch"], "params": int(best.count_params()),
               "epochs_done": epochs_done, "fit_seconds_this_call": round(wall, 1),
               "splits": write_split_reports(best, ds, run), "selected": "best.keras"}
    if averaged:
        metrics["swa"] = {"epochs_averaged": averaged,
                          "splits": write_split_reports(model, ds, run, tag="swa_")}
        # Model selection on val only: ship the average if it beats the best single epoch.
        if metrics["swa"]["splits"]["val"]["top1"] > metrics["splits"]["val"]["top1"]:
            metrics["selected"] = "swa.keras"
    write_json(run / "metrics.json", metrics)
    for name, m in [("best.keras", metrics)] + ([("swa.keras", metrics["swa"])] if averaged else []):
        summary = ", ".join(f"{k} {v['top1']:.2%}" for k, v in m["splits"].items())
        print(f"done: {run}/{name} ({summary})", flush=True)
    print(f"selected on val: {run}/{metrics['selected']}", flush=True)
    return metrics
