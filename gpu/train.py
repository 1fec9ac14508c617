"""`fer-edge train`'s recipes on any Keras 3 backend, for accelerator machines without TensorFlow.

The device machines lent to this project carry PyTorch and JAX but no TensorFlow (and nothing can
be installed there from a registry), so `fer-edge train`'s tf.data engine cannot run on them. This
trainer runs the same things on another Keras 3 backend (JAX: its compiled step is 65x faster than
eager torch there, gpu/README.md):

- the same architectures (`fer_edge.archs`), options and validation (`train.resolve_options`:
  the architecture's recipe <- what is given), optimizers and schedules (`fer_edge.optim`);
- the same augmentation presets (`augment.PRESETS`: one affine warp per image, jitter, random
  erasing), here in `keras.ops` on the accelerator instead of in tf.data;
- the same distillation target, (1 - w) * label + w * teachers' softened probabilities averaged
  over the teachers (and the mirrored face), computed on the augmented batch the student sees;
- the same selection: the checkpoint with the best val accuracy; EarlyStopping on val accuracy;
  ReduceLROnPlateau on val loss for the 'decay' schedule. Test is scored each epoch for the curve
  only (`test_accuracy` in history.csv), never for a choice.

What it writes (`--out`): the run folder as `fer-edge train` leaves it, so `fer-edge export`,
`evaluate` and `card` (and a student's card, of its teachers) read it alike: best.keras (the
student alone, loadable by TensorFlow's Keras), history.csv, config.json (the options, the epochs
actually run, the command, device and backend), metrics.json (val and test of best.keras),
state.json; and probs_{val,test}.npy, the best checkpoint's probabilities.
`--time-budget` fits the epochs to the time: after the second epoch (the first pays for
compiling) the run is shortened to what the budget allows and the cosine schedule ends with it,
so the same run reproduces with `--epochs N` (config.json's `epochs`) and no budget.

    KERAS_BACKEND=jax python gpu/train.py run --packed .gpu/data --arch teacher_resnet --out runs/t1
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")   # compiled steps: gpu/README.md
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

OUTPUTS = 7


def _keras():
    import keras

    return keras


# ------------------------------------------------------------------ augmentation in keras.ops

def augmenter(preset: str, erasing: float, seed: int):
    """fn(images float32 (B,48,48,1) 0..255) -> augmented, the tf.data presets in keras.ops."""
    from fer_edge import augment

    keras = _keras()
    ops = keras.ops
    p = augment.PRESETS[preset]
    gen = keras.random.SeedGenerator(seed)

    def uniform(shape, lo=0.0, hi=1.0):
        return keras.random.uniform(shape, lo, hi, seed=gen)

    def affine(x):
        b = ops.shape(x)[0]
        h, w = float(x.shape[1]), float(x.shape[2])
        cx, cy = (w - 1) / 2, (h - 1) / 2
        theta = uniform((b,), -1, 1) * p["rotation"] * math.pi / 180
        s = 1.0 / (1.0 + uniform((b,), -p["zoom"], p["zoom"]))
        tx = uniform((b,), -p["shift"], p["shift"]) * w
        ty = uniform((b,), -p["shift"], p["shift"]) * h
        f = ops.where(uniform((b,)) < 0.5, -1.0, 1.0) if p["flip"] else ops.ones((b,))
        a0, a1 = s * ops.cos(theta) * f, -s * ops.sin(theta)
        b0, b1 = s * ops.sin(theta) * f, s * ops.cos(theta)
        a2 = cx - a0 * cx - a1 * cy + tx
        b2 = cy - b0 * cx - b1 * cy + ty
        zeros = ops.zeros((b,))
        t = ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        out = ops.image.affine_transform(x, t, interpolation="bilinear", fill_mode="nearest",
                                         data_format="channels_last")
        if p["jitter"]:
            gain = 1.0 + uniform((b, 1, 1, 1), -p["jitter"], p["jitter"])
            bias = uniform((b, 1, 1, 1), -p["jitter"], p["jitter"]) * 64.0
            mean = ops.mean(out, axis=(1, 2, 3), keepdims=True)
            out = ops.clip((out - mean) * gain + mean + bias, 0.0, 255.0)
        return out

    def erase(x):
        b = ops.shape(x)[0]
        h, w = float(x.shape[1]), float(x.shape[2])
        area = uniform((b,), 0.02, 0.25) * h * w
        aspect = ops.exp(uniform((b,), math.log(0.3), math.log(3.3)))
        eh = ops.minimum(ops.sqrt(area * aspect), h)
        ew = ops.minimum(ops.sqrt(area / aspect), w)
        y0 = uniform((b,)) * (h - eh)
        x0 = uniform((b,)) * (w - ew)
        yy = ops.reshape(ops.arange(int(h), dtype="float32"), (1, -1, 1))
        xx = ops.reshape(ops.arange(int(w), dtype="float32"), (1, 1, -1))
        col = lambda v: ops.reshape(v, (-1, 1, 1))  # noqa: E731
        box = ops.logical_and(
            ops.logical_and(yy >= col(y0), yy < col(y0 + eh)),
            ops.logical_and(xx >= col(x0), xx < col(x0 + ew)))
        on = col(uniform((b,)) < erasing)
        mask = ops.expand_dims(ops.cast(ops.logical_and(box, on), "float32"), -1)
        return x * (1 - mask) + uniform(ops.shape(x), 0.0, 255.0) * mask

    def fn(x):
        if p is not None:
            x = affine(x)
        if erasing:
            x = erase(x)
        return x

    return fn if (p is not None or erasing) else None


# ------------------------------------------------------------------ the training model

def make_trainer(student, teachers, opts):
    """A Keras model around the student: augments while training, adds the teachers' soft
    targets beside the student's output (columns 7..13), and computes the distillation loss."""
    keras = _keras()
    ops = keras.ops
    aug = augmenter(opts["augment"], float(opts["erasing"]), int(opts["seed"]))
    w = float(opts["distill_weight"]) if teachers else 0.0
    temperature, flip = float(opts["temperature"]), bool(opts["teacher_flip"])
    smoothing = float(opts["label_smoothing"])

    class Trainer(keras.Model):
        def __init__(self):
            super().__init__()
            self.student = student
            self.teachers = teachers
            for t in teachers:
                t.trainable = False

        def soft_targets(self, x):
            # one teacher call on the faces and their mirror images together
            views = ops.concatenate([x, ops.flip(x, axis=2)], axis=0) if flip else x
            probs = sum(ops.softmax(ops.log(ops.maximum(t(views, training=False), 1e-8))
                                    / temperature, axis=-1) for t in self.teachers)
            probs = probs / len(self.teachers)
            if flip:
                b = ops.shape(x)[0]
                probs = (probs[:b] + probs[b:]) / 2
            return ops.stop_gradient(probs)

        def call(self, x, training=False):
            if training and aug is not None:
                x = aug(x)
            s = self.student(x, training=training)
            t = self.soft_targets(x) if (training and self.teachers) else ops.stop_gradient(s)
            return ops.concatenate([s, t], axis=-1)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            s, t = y_pred[:, :OUTPUTS], y_pred[:, OUTPUTS:]
            target = (1 - w) * y + w * t if (training and w) else y
            loss = keras.losses.categorical_crossentropy(target, s, label_smoothing=smoothing)
            if sample_weight is not None:
                loss = loss * ops.reshape(sample_weight, ops.shape(loss))
            loss = ops.mean(loss)
            for extra in self.student.losses:   # the architecture's weight regularizers
                loss = loss + extra
            return loss

    return Trainer()


def student_accuracy():
    keras = _keras()

    def accuracy(y_true, y_pred):
        return keras.metrics.categorical_accuracy(y_true, y_pred[:, :OUTPUTS])

    return accuracy


# ------------------------------------------------------------------ callbacks

def callbacks(out: Path, opts: dict, trainer_ref: dict, test, budget, steps_per_epoch):
    keras = _keras()

    class Epochs(keras.callbacks.Callback):
        """Test curve, best checkpoint of the student, early stopping, time-fitted epochs."""

        def __init__(self):
            super().__init__()
            self.best, self.wait, self.t0 = -1.0, 0, time.time()
            self.epochs = int(opts["epochs"])

        def on_epoch_end(self, epoch, logs=None):
            if test is not None:
                p = predict(trainer_ref["student"], test[0])
                logs["test_accuracy"] = float((p.argmax(1) == test[1]).mean())
            acc = float(logs["val_accuracy"])
            if acc > self.best:
                self.best, self.wait = acc, 0
                trainer_ref["student"].save(out / "best.keras")
                logs["best"] = 1
            else:
                self.wait += 1
                logs["best"] = 0
            patience = int(opts["early_stopping_patience"] or 0)
            if patience and self.wait >= patience:
                print(f"early stopping: val accuracy {self.best:.4f}, {patience} epochs without "
                      f"a better one", flush=True)
                self.model.stop_training = True
            if epoch == 0:
                self.t1 = time.time()
            if epoch == 1 and budget:   # the second epoch: the first pays one-time costs
                self.fit_epochs_to(budget)
            if epoch == (1 if budget else 0):
                (out / "epochs.json").write_text(json.dumps({"epochs": self.epochs}))
            if epoch + 1 >= self.epochs:
                self.model.stop_training = True
            print(json.dumps({"epoch": epoch + 1, **{k: round(float(v), 4) for k, v in
                                                      logs.items()}}), flush=True)

        def fit_epochs_to(self, budget):
            now = time.time()
            per_epoch = now - self.t1
            fits = 2 + max(0, int((budget - (now - self.t0) - 5) / per_epoch))
            if fits < self.epochs:
                print(f"time budget {budget:.0f} s at {per_epoch:.1f} s an epoch: "
                      f"{fits} epochs instead of {self.epochs}", flush=True)
                self.epochs = fits
                sched = getattr(self.model.optimizer, "_learning_rate", None)
                if hasattr(sched, "total_steps"):   # the cosine ends where the run ends
                    sched.total_steps = fits * steps_per_epoch
                    # a compiled step (jax) holds the old length: trace it again
                    self.model.make_train_function(force=True)
            opts["epochs"] = self.epochs

    cbs = [Epochs(), keras.callbacks.CSVLogger(str(out / "history.csv"))]
    if opts["schedule"] == "decay":
        cbs.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=opts["reduce_lr_factor"],
            patience=opts["reduce_lr_patience"], min_lr=1e-7, verbose=1))
    # CSVLogger must see the test accuracy: Epochs runs first and writes it into logs
    return cbs


# ------------------------------------------------------------------ data and prediction

def load_packed(packed: str, limit: int | None = None, seed: int = 0):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pack

    splits = pack.load(packed)
    out = {}
    for name, (x, y) in splits.items():
        if limit:
            idx = np.random.default_rng(seed).permutation(len(x))[:limit]
            x, y = x[idx], y[idx]
        out[name] = (x[..., None].astype(np.float32), y.astype(np.int64))
    return out


def wait_for_epochs(run_dir: Path, timeout: float = 900) -> int:
    t0 = time.time()
    while not (run_dir / "epochs.json").exists():
        if time.time() - t0 > timeout:
            raise SystemExit(f"{run_dir}/epochs.json did not appear in {timeout:.0f} s")
        time.sleep(2)
    return int(json.loads((run_dir / "epochs.json").read_text())["epochs"])


def _fast_math() -> None:
    """cuDNN autotuning and TF32 matrix products on NVIDIA GPUs (torch backend)."""
    if _keras().backend.backend() != "torch":
        return
    import torch

    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def predict(model, x, batch_size: int = 1024) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))


def device_name() -> str:
    backend = _keras().backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return device.device_kind
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    return platform.processor() or platform.machine()


# ------------------------------------------------------------------ one run

def run(packed: str, arch: str, out: str, time_budget: float | None = None,
        limit: int | None = None, match_epochs: str | None = None, **overrides):
    """Train `arch` on the packed data with its recipe (<- overrides, as `fer-edge train`).

    --match-epochs RUN: run as many epochs as RUN (running beside this one) settles on, e.g. the
    same student without its teacher; waits for RUN's epochs.json.
    """
    keras = _keras()
    from fer_edge import archs, distill, optim
    from fer_edge.train import class_weights, resolve_options

    if match_epochs:
        overrides["epochs"] = wait_for_epochs(Path(match_epochs))
    opts = dict(resolve_options(arch, overrides))
    # The packed data holds no FER+ votes: refuse what would be recorded and then ignored.
    voted = [n for n in ("target", "ferplus_weight", "votes", "select")
             if overrides.get(n) not in (None, "fer2013", "auto")]
    if voted:
        from fer_edge.errors import FerEdgeError

        raise FerEdgeError(f"--{voted[0].replace('_', '-')}: gpu/train.py trains on FER2013's "
                           f"labels only (its packed data has no FER+ votes); use fer-edge train")
    _fast_math()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(int(opts["seed"]))
    data = load_packed(packed, limit, int(opts["seed"]))
    (x, y), (xv, yv) = data["train"], data["val"]
    test = data.get("test")
    teachers = [keras.saving.load_model(p, compile=False)
                for p in distill.teacher_paths(opts["teacher"])]

    student = archs.build(arch)
    ref = {"student": student}
    trainer = make_trainer(student, teachers, opts)
    steps = math.ceil(len(x) / int(opts["batch_size"]))
    trainer.compile(optimizer=optim.make(opts, steps), metrics=[student_accuracy()])
    weights = class_weights(y, opts["class_weight"])
    eye = np.eye(OUTPUTS, dtype=np.float32)
    t0 = time.time()
    trainer.fit(x, eye[y], batch_size=int(opts["batch_size"]), epochs=int(opts["epochs"]),
                sample_weight=weights[y].astype(np.float32), shuffle=True, verbose=0,
                validation_data=(xv, eye[yv]),
                callbacks=callbacks(folder, opts, ref, test, time_budget, steps))
    seconds = time.time() - t0

    splits = {"val": (xv, yv), **({"test": test} if test else {})}
    return write_run_files(folder, opts, packed, limit, seconds, splits)


def write_run_files(folder: Path, opts: dict, packed: str, limit, seconds: float,
                    splits: dict) -> dict:
    """The run folder as `fer-edge train` leaves it (config.json, metrics.json, state.json, read
    by `fer_edge.runs.RunFolder`, so export, evaluate and card take GPU runs and teachers alike),
    plus probs_{split}.npy of the best checkpoint."""
    keras = _keras()
    from fer_edge import distill, report
    from fer_edge.runs import RunFolder

    run = RunFolder(folder)
    best = keras.saving.load_model(run / RunFolder.BEST, compile=False)
    meta = json.loads((Path(packed) / "meta.json").read_text())
    metrics = {"arch": opts["arch"], "params": int(best.count_params()),
               "epochs_done": len(run.history.read_text().strip().splitlines()) - 1,
               "fit_seconds_this_call": round(seconds, 1), "splits": {},
               "selected": RunFolder.BEST}
    for name, (x, y) in splits.items():
        p = predict(best, x)
        np.save(folder / f"probs_{name}.npy", p.astype(np.float32))
        flipped = (p + predict(best, x[:, :, ::-1])) / 2
        metrics["splits"][name] = {**report.summary(y, p.argmax(1)),
                                   "top1_flip": float((flipped.argmax(1) == y).mean())}
    backend, device = keras.backend.backend(), device_name()
    teachers = distill.teacher_paths(opts["teacher"])
    if teachers:
        opts["teacher_sha256"] = [distill.sha256(t) for t in teachers]
    run.write_config({
        "options": opts, "data": meta.get("source"), "data_fingerprint": meta["fingerprint"],
        "limit": limit, "params": metrics["params"], "strategy": "default", "replicas": 1,
        "versions": {"keras": keras.__version__, "backend": backend,
                     backend: __import__(backend).__version__},
        "device": device, "packed": str(packed),
        "command": f"KERAS_BACKEND={backend} python gpu/train.py " + " ".join(sys.argv[1:])})
    run.write_metrics(metrics)
    run.write_state({"epoch": metrics["epochs_done"], "train_seconds": round(seconds, 1),
                     "best_val_accuracy": metrics["splits"]["val"]["top1"]})
    print(json.dumps({"run": str(folder), "device": device, "seconds": round(seconds, 1),
                      **{f"{k}_top1": v["top1"] for k, v in metrics["splits"].items()},
                      **{f"{k}_top1_flip": v["top1_flip"] for k, v in metrics["splits"].items()}}),
          flush=True)
    return metrics


# ------------------------------------------------------------------ teacher ensembles

def ensemble(packed: str, runs: str, out: str, limit: int | None = None):
    """Val/test top-1 of every run's best.keras and of their average, with and without flip."""
    keras = _keras()
    data = load_packed(packed, limit)
    folders = [Path(r) for r in runs.split(",")]
    from fer_edge.distill import ensemble_rows

    splits = [s for s in ("val", "test") if s in data]
    probs = {}                       # run -> split -> (plain, mirrored) probabilities
    for f in folders:
        m = keras.saving.load_model(f / "best.keras", compile=False)
        probs[f.name] = {s: (predict(m, data[s][0]), predict(m, data[s][0][:, :, ::-1]))
                         for s in splits}
    rows = ensemble_rows(probs, {s: data[s][1] for s in splits})
    Path(out).write_text(json.dumps(rows, indent=1))
    print(json.dumps(rows, indent=1), flush=True)
    return rows


def seed_weights(run_dir: str, out_prefix: str, chunk_mb: float = 15.5):
    """best.keras's weights as float16 in chunks (a device call returns files of <= 16 MB)."""
    keras = _keras()
    m = keras.saving.load_model(Path(run_dir) / "best.keras", compile=False)
    arrays = [np.asarray(w, np.float16) for w in m.get_weights()]
    blob = b"".join(a.tobytes() for a in arrays)
    header = json.dumps([[list(a.shape), "float16"] for a in arrays]).encode()
    payload = len(header).to_bytes(8, "little") + header + blob
    size = int(chunk_mb * 2**20)
    for i in range(0, len(payload), size):
        Path(f"{out_prefix}.part{i // size}").write_bytes(payload[i:i + size])
    print(f"{len(arrays)} arrays, {len(payload) / 2**20:.1f} MiB in "
          f"{-(-len(payload) // size)} parts", flush=True)


def read_weights(prefix: str) -> list[np.ndarray]:
    """The inverse of seed_weights (here, where TensorFlow is), as float32 arrays."""
    parts = sorted(Path(prefix).parent.glob(Path(prefix).name + ".part*"),
                   key=lambda p: int(p.suffix[5:]))
    payload = b"".join(p.read_bytes() for p in parts)
    n = int.from_bytes(payload[:8], "little")
    spec = json.loads(payload[8:8 + n])
    arrays, pos = [], 8 + n
    for shape, dtype in spec:
        count = int(np.prod(shape)) if shape else 1
        a = np.frombuffer(payload, dtype, count, pos).reshape(shape)
        arrays.append(a.astype(np.float32))
        pos += count * np.dtype(dtype).itemsize
    return arrays


def weights_to_keras(prefix: str, arch: str, out: str, check: str | None = None):
    """Rebuild `arch` with the weights `seed-weights` wrote (here, where TensorFlow is) and save
    it as .keras; with --check PROBS.npy (the run's probs_val.npy), report how far the float16
    weights move the val probabilities."""
    from fer_edge import archs

    model = archs.build(arch)
    model.set_weights(read_weights(prefix))
    model.save(out)
    if check:
        x, y = load_packed(str(Path(__file__).resolve().parents[1] / ".gpu/data"))["val"]
        p, q = predict(model, x), np.load(check)
        print(json.dumps({"max_abs_diff": float(np.abs(p - q).max()),
                          "same_top1": float((p.argmax(1) == q.argmax(1)).mean()),
                          "val_accuracy": float((p.argmax(1) == y).mean())}), flush=True)


if __name__ == "__main__":
    import fire

    fire.Fire({"run": run, "ensemble": ensemble, "seed-weights": seed_weights,
               "weights-to-keras": weights_to_keras},
              serialize=lambda result: None)   # results are printed and written, not echoed
