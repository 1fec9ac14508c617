"""The Keras callbacks of `fer-edge train`, each with its inputs passed explicitly."""

from __future__ import annotations

import time

import keras
import numpy as np

from ..edge.fileio import atomic_path
from .runs import RunFolder


class TestCurve(keras.callbacks.Callback):
    """Adds test_accuracy / test_loss to the epoch's logs before CSVLogger writes them (a curve
    to report; nothing selects on it)."""

    def __init__(self, test):
        super().__init__()
        self.x, self.y = test     # faces as model inputs, one-hot labels (pipeline.eval_arrays)

    def on_epoch_end(self, epoch, logs=None):
        from .pipeline import EVAL_BATCH

        loss, acc = self.model.evaluate(self.x, self.y, batch_size=EVAL_BATCH, verbose=0)
        logs.update(test_loss=float(loss), test_accuracy=float(acc))


class FerPlusVal(keras.callbacks.Callback):
    """Adds val_ferplus_accuracy (the FER+ majority benchmark on val, votes.py) to the epoch's
    logs, before the checkpoint, early stopping and state callbacks read it (--select
    ferplus). With --qat the model scored is the int8 simulation, as for val_accuracy."""

    def __init__(self, val):
        super().__init__()
        from .. import votes

        keep = votes.majority(val.votes) >= 0
        self.x, self.votes = val.x[keep], val.votes[keep]
        self.predict = None

    def on_train_begin(self, logs=None):
        from .keras_io import KerasPredictor

        self.predict = KerasPredictor(self.model)   # traced once for the whole fit

    def on_epoch_end(self, epoch, logs=None):
        from .. import votes

        scores = self.predict(self.x)
        logs["val_ferplus_accuracy"] = votes.majority_summary(self.votes, scores)["top1"]


def monitor(opts: dict) -> str:
    """The val log that selects checkpoints and stops early (recipe.selection)."""
    from .recipe import selection

    return "val_ferplus_accuracy" if selection(opts) == "ferplus" else "val_accuracy"


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping that continues a resumed run's best value and wait count."""

    def __init__(self, patience: int, best: float | None = None, wait: int = 0,
                 watch: str = "val_accuracy"):
        super().__init__(monitor=watch, mode="max", patience=patience, verbose=1)
        self.resumed_best, self.resumed_wait = best, wait

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.resumed_best is not None:
            self.best, self.wait = self.resumed_best, self.resumed_wait


class EpochState(keras.callbacks.Callback):
    """last.keras + state.json after every epoch, so --resume continues from here."""

    def __init__(self, run: RunFolder, state: dict, early: ResumableEarlyStopping | None,
                 watch: str = "val_accuracy", snapshot=None):
        super().__init__()
        self.run, self.state, self.early, self.watch = run, state, early, watch
        self.snapshot = snapshot
        self.best = state.get("best_val_accuracy", -np.inf)
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        self.best = max(self.best, float(logs.get(self.watch, -np.inf)))
        with atomic_path(self.run / RunFolder.LAST) as tmp:
            self.model.save(tmp)
        self.state.update(epoch=epoch + 1, best_val_accuracy=self.best,
                          train_seconds=self.state.get("train_seconds", 0.0)
                          + time.time() - self.started,
                          early_stopping_wait=getattr(self.early, "wait", 0))
        self.started = time.time()
        self.run.write_state(self.state)
        if self.snapshot:
            self.run.snapshot(self.snapshot)


class TimeBudget(keras.callbacks.Callback):
    """Stop cleanly before the deadline: after an epoch when the next would not fit, or
    mid-epoch as a last resort (best.keras is kept either way)."""

    def __init__(self, budget: float):
        super().__init__()
        self.budget, self.t0 = budget, time.time()
        self.epoch_t0 = self.t0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_t0 = time.time()

    def on_epoch_end(self, epoch, logs=None):
        elapsed, last_epoch = time.time() - self.t0, time.time() - self.epoch_t0
        if elapsed + last_epoch > self.budget:
            print(f"time budget: stopping after epoch {epoch + 1} "
                  f"({elapsed:.0f}s of {self.budget:.0f}s)", flush=True)
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        if time.time() - self.t0 > self.budget:
            self.model.stop_training = True


def tensorboard(run: RunFolder) -> list:
    """TensorBoard's logs, where TensorFlow is installed (its summary writer); an accelerator
    machine without it trains all the same, with history.csv and curves.png."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        return []
    return [keras.callbacks.TensorBoard(log_dir=str(run / "logs"))]


def make(run: RunFolder, opts: dict, state: dict, resume: bool, test=None,
         snapshot=None) -> list:
    """The callbacks of one fit, in the order their effects must happen."""
    from . import swa

    # patience 0 turns early stopping off: a warm restart's high-lr phase dips below the best
    # val of the weights it started from for longer than any useful patience.
    patience = opts["early_stopping_patience"] or 0
    best = state.get("best_val_accuracy") if resume else None
    watch = monitor(opts)
    early = ResumableEarlyStopping(patience, best, state.get("early_stopping_wait", 0), watch) \
        if patience > 0 else None
    cbs = [TestCurve(test)] if test is not None else []
    cbs += [
        keras.callbacks.ModelCheckpoint(run / RunFolder.BEST, monitor=watch,
                                        mode="max", save_best_only=True, verbose=1,
                                        initial_value_threshold=best),
        keras.callbacks.CSVLogger(run.history, append=resume),
        *tensorboard(run),
        *([early] if early else []),
        # before EpochState, so state.json never records an epoch the average has not seen
        *([swa.callback(run.path, int(opts["swa_start"]), state.get("epoch", 0))]
          if opts.get("swa_start") else []),
        EpochState(run, state, early, watch, snapshot),
    ]
    if opts["schedule"] == "decay":  # a schedule owns the lr otherwise
        cbs.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=opts["reduce_lr_factor"],
            patience=opts["reduce_lr_patience"], min_lr=1e-7, verbose=1))
    if opts["time_budget"]:
        cbs.append(TimeBudget(opts["time_budget"]))
    return cbs
