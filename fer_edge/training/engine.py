"""`fer-edge train`: the one training engine, on every Keras 3 backend (TensorFlow, JAX, PyTorch):
prepare the run (validated options, data, run folder), build the model, fit it with Keras's `fit`
on the input pipeline (pipeline.py), finalize (SWA), report. Several machines go through the same
steps with an adapter for the fit (multiworker.py); options a backend cannot honour are refused
before anything is written (`check_backend`).

The run folder (`runs.RunFolder`) receives best.keras (best val accuracy), last.keras +
state.json (every epoch, for --resume), history.csv, TensorBoard logs, config.json, curves.png,
confusion matrices and classification reports for train/val/test, and metrics.json.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import options, data as fdata, defaults
from . import archs, distill, recipe
from .backend import check_backend, device, strategy_for, versions
from ..errors import FerEdgeError
from ..edge.fileio import sha256, write_text
from ..edge.preprocessing import batch_to_float, fer2013_answers
from .runs import RunFolder


def resolve_options(arch: str, overrides: dict) -> dict:
    """Base defaults <- the architecture's recipe <- explicit overrides (None = not given)."""
    unknown = set(overrides) - set(options.TRAIN_BASE)
    if unknown:
        raise FerEdgeError(f"unknown training option(s): {', '.join(sorted(unknown))}")
    return recipe.train_options(arch, options.check("train", overrides))


def _warm_start(model, path, opts: dict):
    """`model` with the weights of the .keras model at `path`: the same architecture as they
    are, a wider one of the same layers slimmed (slim.py); a quantization-aware model
    (an earlier --qat run) or a full-integer .tflite of the same architecture starts a --qat
    run as it is. Records the file's sha256 (and the wider architecture) in `opts`, so
    config.json names what the run started from."""
    from . import qat
    from .keras_io import load_keras
    from .slim import slim_into

    opts["init_sha256"] = sha256(path)
    if str(path).endswith(".tflite"):
        if not opts.get("qat"):
            raise FerEdgeError(f"--init {path}: an int8 file starts only a --qat run (its "
                               f"convolutions have no BatchNorm statistics left to train)")
        return qat.from_int8(path, model.name)
    src = load_keras(path)
    if qat.is_qat(src):
        if not opts.get("qat") or src.name != model.name:
            raise FerEdgeError(f"--init {path}: a quantization-aware '{src.name}' model; it "
                               f"continues only with --qat and --arch {src.name}")
        return src
    if src.name == model.name:
        theirs = src.get_weights()
        if [w.shape for w in model.get_weights()] != [w.shape for w in theirs]:
            raise FerEdgeError(f"--init {path}: its weights do not match '{model.name}'")
        model.set_weights(theirs)
    else:
        try:
            slim_into(src, model)
        except FerEdgeError as e:
            raise FerEdgeError(f"--init {path}: a '{src.name}' model, not '{model.name}' nor a "
                               f"wider one of the same layers ({e})") from None
        same_widths = [w.shape for w in model.get_weights()] == [w.shape for w in src.get_weights()]
        # the card tells a slimmed start from the same weights in another architecture (the
        # same layers with other activations, say)
        opts["init_arch" if same_widths else "init_slimmed_from"] = src.name
        what = "the weights" if same_widths else "the strongest channels"
        print(f"fer-edge: --init: '{model.name}' starts from {what} of '{src.name}'",
              file=sys.stderr)
    return model


def calibration_faces(ds: fdata.Dataset) -> np.ndarray:
    """The int8 calibration images as model inputs: the committed manifest's (what `export`
    calibrates on) when the data holds them, else a stratified seeded sample of its train split
    of the same size (synthetic or other data)."""
    from ..calibration import manifest

    try:
        faces = manifest.images(manifest.load(defaults.calib_manifest()), ds)
    except FerEdgeError:
        train = ds.split("train")
        size, seed = (options.defaults_of("calibrate")[k] for k in ("size", "seed"))
        sample = manifest.make(train, min(size, len(train)), seed)
        faces = manifest.images(sample, ds)
        print(f"fer-edge: --qat: the data lacks the committed calibration images; ranges are "
              f"measured on {len(faces)} of its train images (seed {seed})",
              file=sys.stderr)
    return batch_to_float(faces)


def predict(model, x_u8: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax scores of a Keras model for uint8 (N,48,48) faces (evaluate's predictor)."""
    from .keras_io import KerasPredictor

    return KerasPredictor(model)(x_u8, batch_size)


def write_split_reports(model, ds: fdata.Dataset, run: Path, tag: str = "") -> dict:
    """Confusion matrices (PNG), classification reports and metrics for every split; `tag`
    prefixes the file names (e.g. "swa_")."""
    from .. import report

    metrics = {}
    for name, split in ds.splits.items():
        if not len(split):
            continue
        scores = predict(model, split.x)
        pred = fer2013_answers(scores)
        m = report.summary(split.y, pred)
        if split.votes is not None:
            from .. import votes

            m["ferplus"] = votes.majority_summary(split.votes, scores)
        metrics[name] = m
        if report.can_plot():
            report.plot_confusion(m["confusion_matrix"],
                                  f"{tag}{model.name} — {name} (top-1 {m['top1']:.2%}, n={m['n']})",
                                  run / f"{tag}confusion_{name}.png")
        write_text(run / f"{tag}classification_report_{name}.txt",
                   report.classification_report(split.y, pred))
    return metrics


# ------------------------------------------------------------------------------- the engine

@dataclass
class Session:
    """Everything one `train` call works with, settled before anything is written."""

    run: RunFolder
    opts: dict               # the run's training options, its record (config.json "options")
    given: options.Config    # the command's own options as validated (data, out, limit, ...)
    data: str
    ds: fdata.Dataset
    state: dict
    strategy: Any
    verbose: int


def prepare(given: options.Config, overrides: dict) -> Session:
    """Options checked (types, ranges, combinations), the run found or made, the data loaded."""
    if given.resume and given.force:
        raise FerEdgeError("--resume continues a run and --force starts it over: pass one")
    arch = given.arch or options.DEFAULT_ARCH
    run = RunFolder(given.out or f"runs/{arch}")
    saved = None
    if given.resume:
        if given.snapshot and run.restore(RunFolder(given.snapshot)):
            print(f"fer-edge: --resume: {run} takes epoch {run.epochs_done} from the snapshot "
                  f"in {given.snapshot}", file=sys.stderr)
        if not run.resumable():
            raise FerEdgeError(f"nothing to resume in {run} (no state.json / last.keras)")
        saved = run.config
        opts = recipe.resume_options(saved["options"], {**overrides, "arch": given.arch})
        if given.limit is not None and given.limit != saved.get("limit"):
            raise FerEdgeError(f"--limit is {saved.get('limit')!r} in this run; --resume takes "
                               f"it from the run folder (leave --limit out)")
        _votes_beside_data(opts, given.data is not None)
        data, limit, state = given.data or saved["data"], saved.get("limit"), run.state
    else:
        if given.snapshot and RunFolder(given.snapshot).holds_anything() and not given.force:
            raise FerEdgeError(f"--snapshot {given.snapshot} already holds a snapshot; pass "
                               f"--resume to continue its run or --force to start over")
        if given.data is None:
            raise FerEdgeError("no data given: pass --data DIR (a FER2013 folder tree or "
                               "fer2013.csv)")
        opts = recipe.train_options(arch, overrides)
        data, limit, state = given.data, given.limit, {}
    check_backend(opts, given)
    ds = fdata.load(data, val_fraction=opts["val_fraction"], seed=opts["seed"], limit=limit,
                    votes=opts.get("votes"))
    for note in ds.notes:
        print(f"fer-edge: {note}", file=sys.stderr)
    if saved is not None and ds.fingerprint != saved["data_fingerprint"]:
        raise FerEdgeError(f"{data} is not the data of the run in {run} (its fingerprint "
                           f"differs from config.json's); --resume needs the same images")
    _check_votes(ds, opts, data, saved)
    if not len(ds.split("train")) or not len(ds.split("val")):
        raise FerEdgeError(f"{data}: train and val splits must not be empty")
    if opts.get("track_test") and not len(ds.split("test")):
        raise FerEdgeError(f"{data}: --track-test needs a test split")

    if given.strategy == "multiworker":
        run = _multiworker_run(run, opts, given)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    strategy = strategy_for(given.strategy, given.logical_cpus)
    if given.resume:
        run.trim_history()
    else:
        run.start(given.force)
    verbose = given.verbose if given.verbose not in (None, "auto") else (
        1 if sys.stdout.isatty() else 2)
    return Session(run, opts, given, str(data), ds, state, strategy, int(verbose))


def _votes_beside_data(opts: dict, moved: bool) -> None:
    """A resumed run on other machine (or another copy of its data) reads the votes beside
    the data when the run's votes file is not there; _check_votes then compares their sha256
    with the run's."""
    if opts.get("votes") and (moved or not Path(opts["votes"]).is_file()):
        opts["votes"] = None


def _check_votes(ds: fdata.Dataset, opts: dict, data, saved: dict | None = None) -> None:
    """--target ferplus/mix and --select ferplus need FER+ votes; records the votes file's
    sha256 in the options (config.json) when the run uses them; a resumed run's must be the
    same votes."""
    uses = opts.get("target", "fer2013") != "fer2013" or recipe.selection(opts) == "ferplus"
    if not uses:
        return
    if ds.votes_path is None:
        target = opts.get("target", "fer2013")
        what = f"--target {target}" if target != "fer2013" else "--select ferplus"
        raise FerEdgeError(f"{what} needs FER+ votes: none beside {data} (ferplus.csv beside a "
                           f"folder tree, fer2013new.csv beside fer2013.csv); pass --votes FILE")
    from .. import votes

    if not (votes.majority(ds.split("val").votes) >= 0).any():
        raise FerEdgeError(f"{ds.votes_path}: no val face has a FER+ majority to select on")
    digest = ds.votes_sha256 or sha256(ds.votes_path)
    then = (saved or {}).get("options", {}).get("votes_sha256")
    if then and digest != then:
        raise FerEdgeError(f"{ds.votes_path} are not the FER+ votes of this run (sha256 "
                           f"differs from config.json's); pass --votes with the run's file")
    opts["votes"] = ds.votes_path
    opts["votes_sha256"] = digest


def _multiworker_run(run: RunFolder, opts: dict, given: options.Config) -> RunFolder:
    """The folder this worker writes: --out on the chief, a discarded scratch copy elsewhere."""
    from . import multiworker

    task = multiworker.task()
    for name in ("swa_start", "teacher"):
        if opts.get(name):
            raise FerEdgeError(f"--{name.replace('_', '-')} is not supported with --strategy "
                               f"multiworker")
    print(f"fer-edge: {task.kind} {task.index} of {task.workers} machines"
          f"{' (chief: writes the run folder)' if task.chief else ''}", file=sys.stderr)
    return run if task.chief else multiworker.scratch_copy(run, bool(given.resume))


def build(s: Session):
    """The model, in the strategy's scope: last.keras on --resume, else a new (or --init)
    model compiled with its optimizer; config.json written for a new run."""
    import keras

    from . import optim

    keras.utils.set_random_seed(s.opts["seed"])
    steps = int(np.ceil(len(s.ds.split("train")) / s.opts["batch_size"]))
    with (s.strategy.scope() if s.strategy is not None else contextlib.nullcontext()):
        if s.given.resume:
            from .keras_io import load_keras

            model = load_keras(s.run / RunFolder.LAST, compile=True)
            schedule = getattr(model.optimizer, "_learning_rate", None)
            if isinstance(schedule, optim.WarmupCosine):  # --epochs may have changed the length
                schedule.total_steps = optim.cosine_epochs(s.opts) * steps
            return model
        model = archs.build(s.opts["arch"], recipe.classes(s.opts))
        if s.opts["init"]:
            model = _warm_start(model, s.opts["init"], s.opts)
        if s.opts.get("qat"):   # its ranges are measured when each epoch begins (fit)
            from . import qat

            if not qat.is_qat(model):
                model = qat.wrap(model)
        model.compile(optimizer=optim.make(s.opts, steps),
                      loss=keras.losses.CategoricalCrossentropy(
                          label_smoothing=s.opts["label_smoothing"]),
                      metrics=["accuracy"])
    if s.opts["teacher"]:
        s.opts["teacher_sha256"] = [sha256(p) for p in
                                    distill.teacher_paths(s.opts["teacher"])]
    s.run.write_config({
        "options": s.opts, "data": s.data, "data_fingerprint": s.ds.fingerprint,
        "data_notes": s.ds.notes, "limit": s.given.limit, "counts": s.ds.counts(),
        "params": int(model.count_params()), "versions": versions(),
        "strategy": s.given.strategy or "default", "device": device(),
        "replicas": int(s.strategy.num_replicas_in_sync) if s.strategy is not None else 1,
        "command": " ".join(sys.argv)})
    return model


def fit(s: Session, model) -> tuple[Any, float]:
    """Train from the run's last finished epoch to --epochs; returns (train stream, seconds)."""
    from . import callbacks

    from .pipeline import EVAL_BATCH, TrainStream, eval_arrays

    initial_epoch = s.state.get("epoch", 0)
    train_ds = TrainStream(s.ds.split("train"), s.opts, distill.teachers_of(s.opts),
                           epoch=initial_epoch)
    classes = recipe.classes(s.opts)
    val = eval_arrays(s.ds.split("val"), classes)
    test = eval_arrays(s.ds.split("test"), classes) if s.opts.get("track_test") else None
    extra = []
    if recipe.selection(s.opts) == "ferplus":   # first: the callbacks after it read its value
        from .callbacks import FerPlusVal

        extra.append(FerPlusVal(s.ds.split("val")))
    if s.opts.get("qat"):   # the weights move the activation ranges: re-measure every epoch
        from . import qat

        extra.append(qat.Recalibrate(calibration_faces(s.ds)))
    if initial_epoch:
        print(f"resuming {s.run} at epoch {initial_epoch + 1}", flush=True)
    t0 = time.time()
    if initial_epoch < s.opts["epochs"] and s.given.strategy == "multiworker":
        from . import multiworker

        multiworker.fit(model, s.strategy, train_ds, val, test, s.opts["epochs"],
                        initial_epoch,
                        extra + callbacks.make(s.run, s.opts, s.state, s.given.resume,
                                               snapshot=s.given.snapshot),
                        s.verbose, s.opts["label_smoothing"])
    elif initial_epoch < s.opts["epochs"]:
        model.fit(train_ds, validation_data=val, validation_batch_size=EVAL_BATCH,
                  epochs=s.opts["epochs"], initial_epoch=initial_epoch, verbose=s.verbose,
                  shuffle=False,  # the stream shuffles itself, per epoch (pipeline.py)
                  callbacks=extra + callbacks.make(s.run, s.opts, s.state, s.given.resume,
                                                   test, s.given.snapshot))
    return train_ds, time.time() - t0


def finalize(s: Session, model, train_ds, seconds: float) -> dict:
    """SWA average, curves, per-split reports of the checkpoints, metrics.json; the selected
    checkpoint chosen on val."""
    from .. import report
    from . import swa
    from .keras_io import load_keras

    epochs_done = s.run.epochs_done
    averaged = swa.finalize(model, s.run.path, epochs_done, train_ds.inputs()) \
        if s.opts.get("swa_start") else 0
    if report.can_plot():
        report.plot_history(s.run.history, s.run / "curves.png")
    else:
        print("fer-edge: matplotlib, seaborn or pandas is missing: no curves.png or confusion "
              "pictures (history.csv and the reports are written)", file=sys.stderr)
    best = load_keras(s.run / RunFolder.BEST)
    metrics = {"arch": s.opts["arch"], "params": int(best.count_params()),
               "epochs_done": epochs_done, "fit_seconds_this_call": round(seconds, 1),
               "splits": write_split_reports(best, s.ds, s.run.path), "selected": RunFolder.BEST}
    if averaged:
        metrics["swa"] = {"epochs_averaged": averaged,
                          "splits": write_split_reports(model, s.ds, s.run.path, tag="swa_")}
        # Model selection on val only: ship the average if it beats the best single epoch.
        if _val_score(metrics["swa"], s.opts) > _val_score(metrics, s.opts):
            metrics["selected"] = RunFolder.SWA
    metrics["selected_on"] = recipe.selection(s.opts)
    s.run.write_metrics(metrics)
    return metrics


def _val_score(metrics: dict, opts: dict) -> float:
    """The val figure that selects checkpoints (recipe.selection)."""
    val = metrics["splits"]["val"]
    return val["ferplus"]["top1"] if recipe.selection(opts) == "ferplus" else val["top1"]


def report_done(s: Session, metrics: dict) -> None:
    checkpoints = [(RunFolder.BEST, metrics)]
    if "swa" in metrics:
        checkpoints.append((RunFolder.SWA, metrics["swa"]))
    for name, m in checkpoints:
        summary = ", ".join(f"{k} {v['top1']:.2%}" + (f" (FER+ majority {v['ferplus']['top1']:.2%})"
                                                      if "ferplus" in v else "")
                            for k, v in m["splits"].items())
        print(f"done: {s.run}/{name} ({summary})", flush=True)
    print(f"selected on val: {s.run}/{metrics['selected']}", flush=True)


def train(data=None, arch: str | None = None, out: str | None = None, resume: bool = False,
          force: bool = False, limit: int | None = None, strategy: str | None = None,
          logical_cpus: int | None = None, verbose="auto", snapshot: str | None = None,
          **overrides) -> dict:
    """Train `arch` on FER2013 at `data` (or continue the run in `out` with `resume`); returns
    the metrics (also written to OUT/metrics.json). Unset options (None) take the
    architecture's recipe, then their base default (options.TRAIN_BASE)."""
    given = options.check("train", {"data": data, "arch": arch, "out": out, "resume": resume,
                                   "force": force, "limit": limit, "strategy": strategy,
                                   "logical_cpus": logical_cpus, "verbose": verbose,
                                   "snapshot": snapshot, **overrides})
    s = prepare(given, {k: given[k] for k in overrides})
    model = build(s)
    train_ds, seconds = fit(s, model)
    metrics = finalize(s, model, train_ds, seconds)
    report_done(s, metrics)
    return metrics
