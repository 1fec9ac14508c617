"""`fer-edge train --strategy multiworker`: data-parallel training on several machines with
TensorFlow's MultiWorkerMirroredStrategy, the cluster read from TF_CONFIG.

Keras 3's own `fit` cannot run under this strategy (keras-team/keras#20585: it fails while
building the step and again when reducing per-replica results), so this module drives the same
compiled model, optimizer, loss and callbacks with a small loop of its own:

- each step runs on every worker's shard of the global batch (`--batch-size` is the global batch)
  and the gradients are all-reduced, so every worker holds the same weights;
- validation, and the test curve with --track-test, are computed by every worker on the whole
  split, so the callbacks take the same decisions everywhere (early stopping, lr reductions); a
  stop asked for by any worker (the time budget reads each machine's clock) is agreed at the end
  of the epoch;
- only the chief (task `chief`, or worker 0 when the cluster has none) writes the run folder; the
  other workers write into a scratch copy of it that is discarded. On --resume every worker reads
  the run folder at --out (a shared or copied folder on machines of their own).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass

from ..errors import FerEdgeError
from .runs import RunFolder


@dataclass(frozen=True)
class Task:
    kind: str          # "chief" or "worker"
    index: int
    workers: int       # chief + workers: the machines that train
    has_chief: bool    # a cluster without a "chief" entry makes worker 0 the chief

    @property
    def chief(self) -> bool:
        return self.kind == "chief" or (self.index == 0 and not self.has_chief)


def task() -> Task:
    """This process's place in the cluster, from TF_CONFIG (checked before anything is written)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise FerEdgeError("--strategy multiworker needs TF_CONFIG (the cluster's addresses and "
                           "this machine's task); see the README's multi-machine section")
    try:
        cfg = json.loads(raw)
        cluster, me = cfg["cluster"], cfg["task"]
        kind, index = str(me["type"]), int(me["index"])
        if kind not in ("chief", "worker"):
            raise KeyError(f"task type {kind}")
        members = cluster[kind]
        if not 0 <= index < len(members):
            raise IndexError(index)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise FerEdgeError(f"TF_CONFIG is not a cluster with this task in it ({e!r}): expected "
                           f'{{"cluster": {{"worker": ["host:port", ...]}}, '
                           f'"task": {{"type": "worker", "index": 0}}}}') from None
    workers = sum(len(v) for k, v in cluster.items() if k in ("chief", "worker"))
    return Task(kind, index, workers, "chief" in cluster)


def strategy():
    import tensorflow as tf

    return tf.distribute.MultiWorkerMirroredStrategy()


def scratch_copy(run: RunFolder, resume: bool) -> RunFolder:
    """A non-chief worker's run folder: a temporary copy of what --resume reads, discarded at
    exit, so only the chief writes to --out."""
    import atexit

    scratch = RunFolder(tempfile.mkdtemp(prefix="fer-edge-worker-"))
    atexit.register(shutil.rmtree, scratch.path, ignore_errors=True)
    if resume:
        for item in run.path.iterdir():
            if item.is_file():
                shutil.copy2(item, scratch.path / item.name)
    else:
        scratch.path.rmdir()   # run.start() creates it, as for a new run at --out
    return scratch


def _evaluate(predict, loss_fn, model, ds) -> tuple[float, float]:
    """(loss, accuracy) of the whole split on this worker: the compiled loss plus the weight
    regularizers, as Keras's evaluate reports it."""
    import numpy as np

    total = correct = n = 0.0
    for x, y in ds:
        p = predict(x)
        total += float(np.sum(loss_fn(y, p)))
        correct += float(np.sum(np.argmax(p, -1) == np.argmax(y, -1)))
        n += len(y)
    reg = sum(float(r) for r in model.losses)
    return total / max(n, 1) + reg, correct / max(n, 1)


def _train_step(model, strat, loss_fn):
    """One global step: each replica's gradients on its share, all-reduced by the strategy;
    returns the summed (loss, hits, faces) over every worker."""
    import tensorflow as tf

    def replica(x, y, w):
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            per_example = loss_fn(y, p) * w
            loss = tf.nn.compute_average_loss(per_example)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply(grads, model.trainable_variables)
        hits = tf.cast(tf.equal(tf.argmax(p, -1), tf.argmax(y, -1)), tf.float32)
        return tf.reduce_sum(per_example), tf.reduce_sum(hits), tf.cast(tf.shape(x)[0], tf.float32)

    @tf.function
    def step(x, y, w):
        return [strat.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for v in strat.run(replica, args=(x, y, w))]

    return step


def _statistics_sync(model, strat):
    """BatchNormalization's moving averages are not synchronized by the strategy (Keras adds them
    with aggregation "none"), so each worker's drift apart; the returned fn sets their mean on
    every worker, so all validate, and save, the same model."""
    import tensorflow as tf

    @tf.function
    def means():
        local = strat.run(lambda: [tf.identity(v.value) for v in model.non_trainable_variables])
        return [strat.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for v in local]

    def sync():
        if model.non_trainable_variables:
            for v, mean in zip(model.non_trainable_variables, means()):
                v.assign(mean)

    return sync


def _any_worker(strat, flag: bool) -> bool:
    """A stop must be agreed: a worker that left the loop alone would leave the others waiting in
    the next all-reduce (the time budget is measured on each machine's clock)."""
    import tensorflow as tf

    local = strat.run(lambda: tf.constant(float(flag)))
    return float(strat.reduce(tf.distribute.ReduceOp.SUM, local, axis=None)) > 0


def _as_tf_data(stream):
    """The engine's training stream (pipeline.TrainStream) as the tf.data dataset the strategy
    distributes: every worker computes the same (seeded) batches and keeps its share of each."""
    import tensorflow as tf

    from ..edge.preprocessing import INPUT_SHAPE

    def batches():
        for i in range(len(stream)):
            yield stream[i]
        stream.on_epoch_end()   # the next pass is the next epoch's order and draws

    signature = (tf.TensorSpec((None, *INPUT_SHAPE), tf.float32),
                 tf.TensorSpec((None, stream.targets.shape[1]), tf.float32),
                 tf.TensorSpec((None,), tf.float32))
    # unbatched and batched again, so the strategy splits each global batch between workers
    ds = tf.data.Dataset.from_generator(batches, output_signature=signature)
    ds = ds.unbatch().batch(stream.batch_size)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _batches(split, size: int = 256):
    x, y = split
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


def fit(model, strat, stream, val, test, epochs: int, initial_epoch: int,
        callbacks: list, verbose: int, label_smoothing: float) -> None:
    """Keras `fit`'s epoch loop for MultiWorkerMirroredStrategy (see the module doc): the same
    model, stream, loss and callbacks as the engine's `fit`, with a step of its own."""
    import keras
    import tensorflow as tf

    loss_fn = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing,
                                                   reduction=None)
    dist = strat.experimental_distribute_dataset(_as_tf_data(stream))
    val_ds = _batches(val)
    test_ds = _batches(test) if test is not None else None
    step, sync = _train_step(model, strat, loss_fn), _statistics_sync(model, strat)
    predict = tf.function(lambda x: model(x, training=False))
    cbs = keras.callbacks.CallbackList(callbacks, model=model, add_history=False,
                                       add_progbar=False, epochs=epochs, verbose=0)
    model.stop_training = False
    cbs.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        t0 = time.time()
        cbs.on_epoch_begin(epoch)
        loss = hits = n = 0.0
        for i, (x, y, w) in enumerate(dist):
            cbs.on_train_batch_begin(i)
            loss, hits, n = (a + float(b) for a, b in zip((loss, hits, n), step(x, y, w)))
            cbs.on_train_batch_end(i)   # a stop asked for here takes effect at epoch end
        sync()
        logs = {"accuracy": hits / max(n, 1),
                "loss": loss / max(n, 1) + sum(float(r) for r in model.losses)}
        logs["val_loss"], logs["val_accuracy"] = _evaluate(predict, loss_fn, model, val_ds)
        if test_ds is not None:
            logs["test_loss"], logs["test_accuracy"] = _evaluate(predict, loss_fn, model, test_ds)
        cbs.on_epoch_end(epoch, logs)
        if verbose:
            shown = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            print(f"Epoch {epoch + 1}/{epochs} - {time.time() - t0:.0f}s - {shown}", flush=True)
        model.stop_training = _any_worker(strat, model.stop_training)
        if model.stop_training:
            break
    cbs.on_train_end()
    sys.stdout.flush()
