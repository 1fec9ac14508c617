"""Every command's options, declared once: type, range or choices, default and help.

`COMMANDS` is the table. The CLI's commands, their --help, the Python API's defaults and the
validation all come from it: `check(command, values)` turns what the CLI or a Python caller gave
into a `Config` (a dict with attribute access), with the defaults filled in, or raises
`FerEdgeError` with one line that names the option and what it accepts, before anything is read
or written. Training options (`recipe=True`) keep None when not given: the architecture's recipe
is merged over their base defaults by training/recipe.py. Constants that are not options (model
names, margins, file names) live in defaults.py.

This module imports nothing of fer-edge but errors and defaults, so every part (the edge runtime
included) can validate its options without importing another.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import defaults
from .errors import FerEdgeError


class Config(dict):
    """A command's validated options, each typed by the table: config["epochs"] or
    config.epochs. Read-only: built once by `check` and passed down, never changed on the way
    (a different value is a different configuration: `replace`)."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def _read_only(self, *args, **kwargs):
        raise TypeError("a checked configuration is read-only (options.Config.replace makes "
                        "another)")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = _read_only

    def replace(self, **changes) -> "Config":
        return Config({**self, **changes})


# ------------------------------------------------------------------------------- value kinds

def flag(name: str) -> str:
    """--learning-rate for learning_rate: the one spelling of a flag."""
    return "--" + name.replace("_", "-")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# What a switch's value may be written as on the command line (`--tta=false`), any case.
SWITCH_WORDS = {"true": True, "yes": True, "on": True, "1": True,
                "false": False, "no": False, "off": False, "0": False}


def parse_duration(value) -> float | None:
    """Seconds from 5400, "5400", "90m", "1.5h", "30s"; None for none."""
    if value in (None, "", 0):
        return None
    if _is_number(value) and value > 0:
        return float(value)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", str(value))
    if not m or float(m.group(1)) <= 0:
        raise FerEdgeError(f"bad duration {value!r} (use seconds, or e.g. 90m, 2h)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


@dataclass(frozen=True)
class Opt:
    """One option: `kind` is int, float, bool, str, "path" (must exist), "file" (an existing
    file), "dir" (an existing folder), "out" (a path to write), "duration", "int_or_path" or
    "names" / "files" (comma-separated, or a list)."""

    name: str
    kind: Any
    low: float | None = None           # range, inclusive unless low_open / high_open
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | Callable | None = None
    suffixes: tuple = ()               # for files: accepted suffixes
    resume: bool = False               # train: may differ from the run's value on --resume
    required: bool = False
    default: Any = None                # the value when not given (None: not given)
    help: str = ""                     # what it does, for --help and the README
    recipe: bool = False               # train: a training option, the architecture's recipe
                                       # replaces `default` (config.json "options")

    @property
    def flag(self) -> str:
        return flag(self.name)

    def accepts(self) -> str:
        """What the option accepts, in words (the second half of an error line)."""
        k = self.kind
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.allowed())
        if k in (int, float):
            what = "a whole number" if k is int else "a number"
            if self.low is not None and self.high is not None:
                lo, hi = "(" if self.low_open else "[", ")" if self.high_open else "]"
                return f"{what} in {lo}{_num(self.low)}, {_num(self.high)}{hi}"
            if self.low is not None:
                return f"{what} {'>' if self.low_open else '>='} {_num(self.low)}"
            return what
        return {bool: "true or false (a flag)", str: "a text", "duration":
                "a duration > 0 (seconds, or e.g. 90m, 2h)", "out": "a path",
                "int_or_path": "a manifest file or a whole number >= 1",
                "names": "names separated by commas",
                "files": "existing files separated by commas"
                + (f" ({'/'.join(self.suffixes)})" if self.suffixes else "")}.get(
            k, "an existing " + ("folder" if k == "dir" else "file" if k == "file" else "path")
            + (f" ({'/'.join(self.suffixes)})" if self.suffixes else ""))

    def parse(self, text: str):
        """The value of this option's command-line text, by its kind (the CLI's one converter;
        python-fire calls it in place of its own literal parsing): a number for int and float
        options, True or False for a switch's words, the choice the table writes ("1" is
        --verbose's 1) and the text itself for every other kind, so `--source 0` is the text
        "0". Text that is not of its kind stays text, for `check` to refuse by name."""
        if self.choices is not None:
            return next((c for c in self.allowed() if str(c) == text), text)
        if self.kind is bool:
            return SWITCH_WORDS.get(text.lower(), text)
        if self.kind in (int, float):
            for number in (int, float):   # 1.5 for an int option: refused as the number it is
                try:
                    return number(text)
                except ValueError:
                    pass
        return text

    def allowed(self) -> tuple:
        return tuple(self.choices()) if callable(self.choices) else tuple(self.choices)

    def check(self, value):
        """The value, converted; ValueError when it is not acceptable."""
        k = self.kind
        if self.choices is not None:
            if str(value) not in [str(c) for c in self.allowed()]:
                raise ValueError
            return value if value in self.allowed() else str(value)
        if k is bool:
            if not isinstance(value, bool):
                raise ValueError
            return value
        if k in (int, float):
            if not (_is_int(value) if k is int else _is_number(value)):
                raise ValueError
            if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
                raise ValueError
            if self.high is not None and (value > self.high
                                          or (self.high_open and value == self.high)):
                raise ValueError
            return value
        if k == "duration":
            try:
                return parse_duration(value)
            except FerEdgeError:
                raise ValueError from None
        if k == "names":
            names = split_commas(value)
            if not all(
                    isinstance(n, str) and n.strip() for n in names):
                raise ValueError
            return value
        if k == "files":
            names = split_commas(value)
            if not names:
                raise ValueError
            # The shell expands a leading ~ only before the first comma: expand each name here.
            paths = [os.path.expanduser(str(n).strip()) for n in names]
            for p in paths:
                self._path(p, "file")
            return ",".join(paths)
        if k == "int_or_path":
            if _is_int(value) or (isinstance(value, str) and value.isdigit()):
                if int(value) < 1:
                    raise ValueError
                return int(value)
            return self._path(value, "file")
        if k in ("path", "file", "dir"):
            return self._path(value, k)
        if not isinstance(value, (str, os.PathLike)) or str(value) == "":
            raise ValueError
        return str(value)

    def _path(self, value, kind: str) -> str:
        if not isinstance(value, (str, os.PathLike)) or str(value) == "":
            raise ValueError
        p = Path(value)
        ok = p.is_file() if kind == "file" else p.is_dir() if kind == "dir" else p.exists()
        if not ok or (self.suffixes and p.is_file() and p.suffix not in self.suffixes):
            raise ValueError
        return str(value)


def split_commas(value) -> list:
    """"a,b,c" or a sequence -> list of its items (python-fire hands "a,b" over as a tuple)."""
    if isinstance(value, str):
        return value.split(",")
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ValueError


def _num(x) -> str:
    return f"{x:g}"


# ------------------------------------------------------------------------------- the table

@dataclass(frozen=True)
class Command:
    """One command: its help (a summary line, then details) and its options, in --help order.
    `paths`: the help of the paths it takes before its options (None: it takes none)."""

    name: str
    summary: str
    options: tuple[Opt, ...]
    details: str = ""
    paths: str | None = None


def _train(name, kind, default, help, **kw) -> Opt:
    """A training option: its default is the base that each architecture's recipe
    (`fer-edge models list`) may replace."""
    return Opt(name, kind, default=default, help=help, recipe=True, **kw)


_DATA_HELP = "FER2013: a folder tree (train/val/test or Kaggle's train/test) or fer2013.csv"
_VOTES_HELP = ("FER+ votes: a CSV keyed by path relative to the tree (default: ferplus.csv "
               "beside the tree), or Microsoft's fer2013new.csv (default: beside fer2013.csv)")
AUGMENTS = ("none", "seed", "edge", "strong")   # training/augment.py's presets (a test keeps
                                                # them equal)
DETECTORS = ("auto", "blazeface_dual", "blazeface_full", "blazeface", "haar_alt2", "haar")

TRAIN = Command("train", "Train an architecture on FER2013 (Keras), keeping the best "
                "val-accuracy checkpoint.", details=(
    "Unset training options take the architecture's recipe (`fer-edge models list`), then the "
    "base defaults below. The same command runs on any Keras 3 backend (KERAS_BACKEND="
    "tensorflow, jax or torch); the options that need TensorFlow say so."), options=(
    Opt("data", "path", help=_DATA_HELP + ", or a folder packed by gpu/pack.py (with "
        "--resume, leave it out: the run knows)"),
    Opt("arch", str, help="a registered architecture (`fer-edge models list`; default seed); "
        "an unknown name is refused with the known ones"),
    Opt("out", "out", help="run folder (default runs/ARCH); must be new unless --resume or "
        "--force"),
    _train("epochs", int, 60, "number of epochs (with --resume, extend a finished run)", low=1,
           resume=True),
    _train("batch_size", int, 64, "images per step", low=1),
    _train("learning_rate", float, 1e-4, "(peak) learning rate", low=0, low_open=True),
    _train("decay", float, 0.0, "Keras-2 decay, lr / (1 + decay * iterations) (schedule "
           "decay)", low=0),
    _train("schedule", str, "decay", '"decay" (+ ReduceLROnPlateau) or "cosine" (warm-up + '
           'cosine)', choices=("decay", "cosine")),
    _train("warmup_epochs", int, 0, "linear warm-up epochs (cosine)", low=0),
    _train("weight_decay", float, 0.0, "decoupled weight decay (AdamW) when > 0", low=0),
    _train("augment", str, "seed", '"seed" (ImageDataGenerator-like), "edge" (stronger), '
           '"strong" (rotation 30, shift and zoom 0.2, brightness 0.2-1.2: the long FER+ '
           'recipe\'s), "none"', choices=AUGMENTS),
    _train("erasing", float, 0.0, "random-erasing probability per image", low=0, high=1),
    _train("label_smoothing", float, 0.0, "label smoothing of the cross-entropy", low=0, high=1,
           high_open=True),
    _train("class_weight", str, "none", '"none", "balanced" or "sqrt" (of balanced)',
           choices=("none", "balanced", "sqrt")),
    _train("early_stopping_patience", int, 15, "epochs without a val gain before stopping "
           "(0: never)", low=0, resume=True),
    _train("reduce_lr_patience", int, 5, "ReduceLROnPlateau patience (schedule decay)", low=1),
    _train("reduce_lr_factor", float, 0.5, "ReduceLROnPlateau factor", low=0, high=1,
           low_open=True, high_open=True),
    _train("val_fraction", float, 0.1, "share of train carved out as val when the data has "
           "none", low=0, high=1, low_open=True, high_open=True),
    _train("seed", int, 0, "random seed (data order, augmentation, init)", low=0),
    _train("time_budget", "duration", None, 'stop cleanly before this much time (seconds, '
           '"90m", "2h"); best.keras is kept', resume=True),
    _train("track_test", bool, False, "also log test accuracy and loss every epoch "
           "(history.csv, curves.png), for reporting; checkpoints and early stopping still "
           "watch val only"),
    _train("init", "file", None, "start from the weights of this .keras model of the same "
           "architecture (a warm restart: a fresh optimizer and schedule over a trained model), "
           "of a wider one (slimmed), or with --qat of a full-integer .tflite of the same "
           "architecture", suffixes=(".keras", ".tflite")),
    _train("swa_start", int, None, "stochastic weight averaging: average the weights of every "
           "epoch after this one into OUT/swa.keras (BN statistics recomputed); with the cosine "
           "schedule the cosine ends at this epoch and the lr then stays at --swa-lr. "
           "metrics.json says which of best.keras and swa.keras has the higher val accuracy "
           '("selected")', low=1),
    _train("swa_lr", float, None, "the constant learning rate of the SWA phase (default: "
           "learning_rate / 4)", low=0, low_open=True),
    _train("teacher", "files", None, "distillation from frozen trained models, comma-separated "
           ".keras files; their softened probabilities on the same augmented batch are mixed "
           "into the target", suffixes=(".keras",)),
    _train("distill_weight", float, 0.7, "share of the teachers' soft targets in the target",
           low=0, high=1),
    _train("temperature", float, 2.0, "softening of the teachers' probabilities (softmax of "
           "logits / T)", low=0, low_open=True),
    _train("teacher_flip", bool, True, "teachers also score each face's mirror image "
           "(--no-teacher-flip turns it off)"),
    _train("qat", bool, False, "quantization-aware fine-tuning of the --init model: trains with "
           "int8 rounding simulated (folded BN, per-channel weights, calibrated activation "
           "ranges), so its int8 export loses less; val accuracy is then the int8 simulation's "
           "(TensorFlow backend)"),
    _train("target", str, "fer2013", 'what the model learns: "fer2013" (FER2013\'s '
           'one-annotator labels), "ferplus" (the distribution of FER+\'s 10 crowd votes over '
           'the 7 emotions; faces whose votes agree on no emotion are left out), "ferplus8" '
           '(the same over FER+\'s 8 emotions, contempt included: an 8-class model) or "mix" '
           '(FER2013 labels and 7-class votes, see --ferplus-weight); composes with --teacher',
           choices=("fer2013", "ferplus", "ferplus8", "mix")),
    _train("ferplus_weight", float, 0.5, "--target mix: the share of the vote distribution",
           low=0, high=1, low_open=True, high_open=True),
    _train("votes", "file", None, "the FER+ votes (default: ferplus.csv beside a folder tree, "
           "fer2013new.csv beside fer2013.csv)", suffixes=(".csv",)),
    _train("select", str, "auto", 'what picks the checkpoint and stops early on val: "fer2013" '
           '(accuracy on FER2013 labels), "ferplus" (the FER+ majority benchmark) or "auto" '
           '(fer2013 for --target fer2013, ferplus otherwise)',
           choices=("auto", "fer2013", "ferplus")),
    Opt("limit", int, low=1, help="use N images per split (smoke runs)"),
    Opt("resume", bool, default=False, help="continue the run in --out from its last finished "
        "epoch, with its own data and options; only --epochs, --early-stopping-patience, "
        "--time-budget, --snapshot, --strategy, --logical-cpus and --verbose may differ from "
        "the run's; --data may name another copy of the same data"),
    Opt("force", bool, default=False, help="delete an existing run in --out and start over"),
    Opt("snapshot", "out", resume=True, help="after every epoch, copy what --resume needs "
        "(config, state, last and best checkpoints, history, the SWA average: a few MB) into "
        "this folder, e.g. one in a git repository to commit; --resume --snapshot DIR then "
        "continues from it on any machine, --out being empty or behind it"),
    Opt("strategy", str, choices=("default", "mirrored", "multiworker"), resume=True,
        help='"default", "mirrored" (tf.distribute.MirroredStrategy over this machine\'s '
        'devices) or "multiworker" (several machines, the cluster from TF_CONFIG; see the '
        'README); TensorFlow backend'),
    Opt("logical_cpus", int, low=1, resume=True, help="split the CPU into N logical devices "
        "(to try --strategy mirrored); TensorFlow backend"),
    Opt("verbose", str, choices=("auto", 0, 1, 2), resume=True, default="auto",
        help='"auto" (progress bar on a terminal, a line per epoch otherwise), 0, 1, 2'),
))

CALIBRATE = Command("calibrate", "Write the int8 calibration manifest: a stratified, seeded "
                    "subset of FER2013 Training.", options=(
    Opt("data", "path", required=True, help=_DATA_HELP + " (only its Training split is used)"),
    Opt("size", int, low=1, default=500, help="number of images"),
    Opt("seed", int, low=0, default=0, help="random seed (same seed and data -> same ids)"),
    Opt("out", "out", help="manifest path (default: the package's "
        "calibration/fer2013_train_calib.json)"),
    Opt("force", bool, default=False, help="overwrite an existing manifest"),
))

EXPORT = Command("export", "Convert a trained .keras model to TFLite: "
                 "fer_{float32,float16,dynamic,int8}.tflite (or ONNX, TFLite Micro, Ethos-U: "
                 "--target), or an exported .tflite to a web page (--target web).", options=(
    Opt("model", "file", suffixes=(".keras", ".tflite"), required=True,
        help="the trained Keras model (e.g. runs/x/best.keras); for --target web an exported "
        ".tflite (e.g. models/ferplus_int8.tflite)"),
    Opt("quantize", str, choices=("none", *defaults.QUANTIZE_MODES, "all"), default="int8",
        help="none|float32, float16, dynamic (int8 weights), int8 (full integer), or all"),
    Opt("out", "out", help="output folder (default: the model's folder; for --target web, "
        "a folder web beside the model)"),
    Opt("data", "path", help="FER2013 for int8 calibration (default: the data of the model's "
        "run, then $FER_EDGE_DATA)"),
    Opt("calib", "int_or_path", help="int8 calibration: a manifest path, or a number N for a "
        "fresh stratified subset of N Training images (default: the committed manifest)"),
    Opt("force", bool, default=False, help="overwrite existing files"),
    Opt("target", str, choices=("litert", "micro", "onnx", "ethos-u", "web"), default="litert",
        help='"litert" (the .tflite files), "micro" (also fer_int8_model.cc and .h for '
        "TFLite Micro on a microcontroller; needs int8 and pip install 'fer-edge[micro]'), "
        '"onnx" (fer_float32.onnx / fer_int8.onnx, int8 as QDQ, instead of .tflite files; '
        "pip install 'fer-edge[onnx]'), \"ethos-u\" (also the int8 model compiled by Arm's "
        "Vela for each --npu into OUT/ethos-u/NPU/, with OUT/ethos-u/summary.json; needs int8 "
        "and pip install 'fer-edge[ethos-u]') or \"web\" (--model a .tflite: a static page in "
        "OUT, index.html with LiteRT.js, the model and the face detector, every file local; "
        "served by any static server it shows the camera's faces and emotions, "
        "index.html?image=URL classifies one image into its #result as classify --format json; "
        "needs only the runtime install)"),
    Opt("npu", "names", help="--target ethos-u: the Ethos-U configurations to compile for, "
        "comma-separated, as Vela names them (default: ethos-u55-64,ethos-u55-128,"
        "ethos-u55-256,ethos-u65-256; also ethos-u55-32, ethos-u65-512, ethos-u85-128 to "
        "ethos-u85-2048)"),
))

EVALUATE = Command("evaluate", "Compare model variants (.keras, .tflite, .onnx) on the same "
                   "images.",
                   details=(
    "Reports top-1, macro-F1, per-class accuracy, confusion matrix, size, parameters, batch-1 "
    "latency (p50/p95), batched throughput and agreement with the first model; with FER+ votes, "
    "also the FER+ majority benchmark (8 emotions, as FER+ results are published) and the mean "
    "share of annotators who chose each model's answer."),
    paths="more model files (so `--models A.keras B.tflite C.tflite` works)", options=(
    Opt("models", "file", suffixes=(".keras", ".tflite", ".onnx"), required=True,
        help="the first (reference) model"),
    Opt("data", "path", help=_DATA_HELP + " (default: the reference's run data, then "
        "$FER_EDGE_DATA)"),
    Opt("split", str, choices=("train", "val", "test"), default="test",
        help="train, val or test"),
    Opt("threads", int, low=1, default=1, help="interpreter / TensorFlow threads for latency "
        "and throughput"),
    Opt("out", "out", help="folder for report.md, report.json, confusion PNGs and "
        "tradeoff.png"),
    Opt("format", str, choices=("text", "json"), default="text",
        help='"text" (a table) or "json" (on stdout)'),
    Opt("limit", int, low=1, help="evaluate on N images only"),
    Opt("latency_runs", int, low=1, default=500, help="batch-1 invokes timed per model (after "
        "warm-up)"),
    Opt("force", bool, default=False, help="overwrite reports in --out"),
    Opt("tta", bool, default=False, help='also score each model with horizontal-flip '
        'averaging, as separate "+tta" rows'),
    Opt("micro", bool, default=False, help='also run each int8 .tflite on TFLite Micro\'s '
        'interpreter, as "int8-micro" rows (pip install \'fer-edge[micro]\'; about 15-40 ms a '
        'face, so pair it with --limit)'),
    Opt("votes", "file", suffixes=(".csv",), help="FER+ votes for the FER+ rows (default: "
        "ferplus.csv beside a folder tree, fer2013new.csv beside fer2013.csv)"),
))

CLASSIFY = Command("classify", "Detect faces and classify their emotion with a .tflite model "
                   "(LiteRT, no TensorFlow).", details=(
    "Results stream to stdout, one line per face (or per image / frame with no face). Exit "
    "status: 0 when every input was processed (even with no face found), 1 when some input "
    "could not be read (each named on stderr; the others are still processed), 2 for a bad "
    "option or model. Put flags after the paths (`fer-edge classify a.jpg --no-detect`)."),
    paths="image files (JPEG, PNG, BMP, WebP, TIFF; gray, colour, alpha, 16-bit), folders "
    "(searched recursively, sorted), videos (.mp4 .avi .mov .mkv .m4v .webm), stream URLs "
    "(rtsp, http, https), or - to read one image from stdin", options=(
    Opt("model", str, help='emotion model .tflite (LiteRT) or .onnx (onnxruntime, pip install '
        '\'fer-edge[onnx]\') exported by `fer-edge export`, or a shipped model by name: '
        '"default" (used when --model is left out), "fast", "fer2013", "ferplus"; `fer-edge '
        'models list` shows them'),
    Opt("detector", str, choices=DETECTORS, default=defaults.DETECTOR,
        help='face detector: "auto" (= blazeface_dual), "blazeface_dual" (BlazeFace full-range '
        'and short-range merged, from group photos to tight face crops), "blazeface_full", '
        '"blazeface" (short-range), "haar_alt2", "haar" (OpenCV cascades)'),
    Opt("no_detect", bool, default=False, help="skip detection: each whole image is one face "
        "(pre-cropped faces)"),
    Opt("glob", str, help='in folders, only files matching this pattern (e.g. "*.png"; '
        'recursive)'),
    Opt("every", int, low=1, default=defaults.VIDEO_EVERY, help="in videos and streams, "
        "classify every Nth frame (frames 0, N, 2N, ...)"),
    Opt("threads", int, low=1, default=defaults.CLASSIFY_THREADS,
        help="CPU threads for LiteRT (the model and the detector)"),
    Opt("format", str, choices=("table", "json", "csv"), default="table",
        help='"table" (readable), "json" (one JSON object per image or video frame per line: '
        '"file", for frames "frame" (index) and "time" (seconds), and "faces", each with "box" '
        '(x, y, w, h in original pixels), "emotion", "confidence", "scores" and in videos '
        '"track") or "csv" (a row per face with file, frame, time, face, track, box, emotion, '
        'confidence, scores)'),
    Opt("save_annotated", "out", help="folder for copies of the inputs with boxes and labels "
        "drawn (a video becomes NAME_annotated.mp4 with every frame)"),
    Opt("force", bool, default=False, help="overwrite existing files in --save-annotated"),
    Opt("labels", "names", help="the model's class names in output order, comma-separated, for "
        "a .tflite without fer-edge metadata (one not exported by fer-edge)"),
    Opt("tta", bool, default=False, help="average each face's scores with its mirror image's "
        "(two model runs per face)"),
    Opt("align", bool, default=defaults.ALIGN_FACES, help="turn each face so its eyes are level "
        "before classifying (BlazeFace detectors; --no-align to crop the box as it is)"),
    Opt("smooth", float, low=0, high=1, high_open=True, default=defaults.VIDEO_SMOOTH,
        help="in videos, an exponential moving average of each track's scores, the weight of "
        "the past in [0, 1) (0 is off; 0.6 steadies the label over about 2-3 frames)"),
    Opt("summary", bool, default=False, help="after the results, a table per video and per "
        "track with frames seen, time span, dominant emotion and share of each emotion (on "
        "stderr with --format json/csv)"),
    Opt("camera", int, low=0, help="also read camera N (e.g. 0), until it ends or Ctrl-C"),
    Opt("detect_every", int, low=1, default=defaults.VIDEO_DETECT_EVERY,
        help="in videos and streams, the full-frame face detector on every Nth classified "
        "frame, and on a lost face or a scene cut; motion away from the followed faces is "
        "searched by short-range BlazeFace in a crop around it (a face that comes in is found "
        "on its first frame; one that appears without moving at most N-1 frames late); in "
        "between, each face is followed by optical flow in a crop around it and checked by "
        "short-range BlazeFace there every 5th frame, all faces in one small call (default: "
        "2-3x the frame rate of 1, the same emotion on 96-97% of faces: "
        "models/eval/e2e_speed.json). 1 runs the full detector on every frame: the reference, "
        "slowest"),
    Opt("max_pixels", int, low=1, default=defaults.MAX_PIXELS, help="largest image, width x "
        "height, read from its header before anything is decoded (a bigger one is refused in "
        "one line, the other inputs still processed; a 50-megapixel photo passes)"),
))

def _classify_option(name: str) -> Opt:
    """A classify option that another command takes as it is (declared once, above)."""
    return next(o for o in CLASSIFY.options if o.name == name)


BATCH = Command("batch", "Classify an archive of images and videos on a Ray cluster (or this "
                "machine) into Parquet: faces, per-video summaries and errors.", details=(
    "Needs pip install 'fer-edge[ray]'. Images go in tasks of --images-per-task, each video in "
    "--segment pieces; every task's rows are written atomically under OUT, so running the same "
    "command again (after a crash, a Ctrl-C or a lost machine) does only what is missing."),
    paths="images, videos, folders (searched recursively), and manifests (.csv or .parquet "
    "with a `path` column); local paths or any filesystem pyarrow reads (s3://...)", options=(
    Opt("out", "out", required=True, help="the output folder: faces/, videos/ and errors/ "
        "Parquet datasets, and the tasks done"),
    Opt("glob", str, help='in folders, only files matching this pattern (e.g. "*.jpg")'),
    Opt("address", str, help='the Ray cluster to join: "auto" (the one this machine belongs '
        'to) or "ray://HOST:PORT"; left out, Ray starts inside this process on this machine'),
    Opt("workers", int, low=1, help="classifier actors (default: this machine's CPUs, or the "
        "cluster's)"),
    Opt("worker_cpus", float, low=0, low_open=True, default=0.5, help="CPUs Ray reserves for "
        "each actor: a fraction leaves room for Ray's own tasks (whole CPUs on a 2-core machine "
        "starve them)"),
    Opt("images_per_task", int, low=1, default=64, help="images in one task (the unit that is "
        "retried, and written atomically)"),
    Opt("segment", "duration", default=60.0, help='length of a video\'s pieces, each an '
        'independent task (seconds, or e.g. "60s", "5m"); tracks are numbered within a piece'),
    _classify_option("model"), _classify_option("detector"), _classify_option("no_detect"),
    _classify_option("every"), _classify_option("threads"), _classify_option("tta"),
    _classify_option("align"), _classify_option("smooth"), _classify_option("detect_every"),
    _classify_option("max_pixels"),
    Opt("quiet", bool, default=False, help="no progress line, only the final summary"),
))

SERVE = Command("serve", "A live page and an HTTP API on this device: the camera's faces and "
                "emotions, and POST /v1/classify for other programs.", details=(
    "GET / is the page (the annotated picture, each track's emotion, a timeline of the last "
    "minute), GET /events streams each frame's result, POST /v1/classify takes an image and "
    "answers as classify --format json, GET /v1/models, /healthz and /metrics (Prometheus), "
    "GET /web/ the browser page of export --target web for the model (the visitor's browser "
    "classifies its own camera). Without --source only the API and /web/ run."), options=(
    Opt("source", str, help="the live source: a camera number (0), a video file (played in a "
        "loop) or a stream URL; reopened with back-off when lost"),
    Opt("host", str, default="127.0.0.1", help="the address to listen on; one other machines "
        "reach needs --token"),
    Opt("port", int, low=0, high=65535, default=8000, help="the port (0: any free one)"),
    Opt("token", str, help="every route but a minimal /healthz needs Authorization: Bearer "
        "TOKEN, or the page's session cookie (sign in at /login)"),
    Opt("workers", int, low=1, default=2, help="inference workers for /v1/classify, each with "
        "its own model"),
    Opt("queue", int, low=0, default=4, help="requests waiting for a worker; beyond it 503 with "
        "Retry-After"),
    Opt("max_body", int, low=1, default=20 * 2**20, help="largest request body in bytes "
        "(413 before it is read)"),
    _classify_option("max_pixels"),
    Opt("max_connections", int, low=1, default=512, help="open connections at most; one more "
        "is answered 503 and closed"),
    Opt("request_timeout", float, low=0, low_open=True, default=20.0, help="seconds a "
        "request's headers, then its body, may take to arrive (408 after)"),
    Opt("idle_timeout", float, low=0, low_open=True, default=5.0, help="seconds a "
        "kept-alive connection may wait for its next request"),
    Opt("shutdown_timeout", float, low=0, default=30.0, help="on SIGTERM or Ctrl-C: "
        "seconds the requests in flight get to finish"),
    Opt("certfile", "file", help="serve HTTPS with this PEM certificate (with --keyfile)"),
    Opt("keyfile", "file", help="the PEM private key of --certfile"),
    Opt("cors_origin", str, help="let pages from these origins (comma-separated, or *) call "
        "the API from a browser; no CORS header without it"),
    _classify_option("model"), _classify_option("detector"), _classify_option("no_detect"),
    _classify_option("threads"), _classify_option("tta"), _classify_option("align"),
    _classify_option("every"), _classify_option("smooth"), _classify_option("detect_every"),
))

TIMELINE = Command("timeline", "Pictures of a video's emotions over time from `classify "
                   "--format json` output.", details=(
    "Writes one PNG per video and track (each emotion's score over time, the top emotion as a "
    "coloured band) and summary.json into --out, and prints the per-track summary. Needs "
    "matplotlib (pip install 'fer-edge[plot]')."), options=(
    Opt("results", "path", required=True, help="the JSON lines that `fer-edge classify VIDEO "
        "--format json` printed (a file, or - for stdin)"),
    Opt("out", "out", required=True, help="folder for the pictures"),
    Opt("force", bool, default=False, help="overwrite existing pictures"),
))

CARD = Command("card", "Write a model card from a training run and a `fer-edge evaluate --out` "
               "report.", options=(
    Opt("run", "dir", required=True, help="the training run folder (config.json, metrics.json, "
        "state.json)"),
    Opt("report", "dir", required=True, help="the folder `fer-edge evaluate --out` wrote "
        "(report.json)"),
    Opt("out", "out", default="models/MODEL_CARD.md", help="the card's path"),
    Opt("train_command", str, required=True, help="the command that reproduces the run (shown "
        "in the card)"),
    Opt("fast_run", "dir", help="the fast model's run folder: adds its section to the card"),
    Opt("fast_train_command", str, help="the command that reproduces the fast model's run"),
    Opt("peer_latency", "file", suffixes=(".json",), help="a `benchmarks/peer_latency.py --out` "
        "JSON: adds latency beside `fer`"),
    Opt("force", bool, default=False, help="overwrite an existing card"),
    Opt("name", str, choices=("fer", "ferplus"), default="fer", help='the model family the card '
        'describes: "fer" (models/fer*.keras/.tflite, trained on FER2013\'s labels) or '
        '"ferplus" (models/ferplus*, trained on FER+\'s votes)'),
    Opt("outside", "file", suffixes=(".json",), help="a `benchmarks/outside_faces.py score "
        "--out` JSON: adds the faces from outside FER2013"),
    Opt("checkpoint", str, choices=("best.keras", "swa.keras"), help='the run\'s checkpoint '
        'that ships, "best.keras" or "swa.keras", when a rule other than train\'s val choice '
        'picked it (default: train\'s choice)'),
    Opt("rule", "file", help="the file where that rule is written (needed with --checkpoint)"),
))

DATA_INFO = Command("data info", "Per-split, per-class image counts, and the FER+ vote counts "
                    "when votes are found.", options=(
    Opt("data", "path", required=True, help=_DATA_HELP),
    Opt("format", str, choices=("text", "json"), default="text",
        help='"text" (a table) or "json"'),
    Opt("votes", "file", suffixes=(".csv",), help=_VOTES_HELP),
))

MODELS_LIST = Command("models list", "The shipped models (size, PrivateTest accuracy on "
                      "FER2013's labels and the FER+ majority from their evaluate report, time "
                      "per face beside fer's from the latency benchmark) and the registered "
                      "architectures with their parameter counts.", options=(
    Opt("format", str, choices=("text", "json"), default="text",
        help='"text" (tables) or "json"'),
))

COMMANDS: dict[str, Command] = {c.name: c for c in (
    TRAIN, CALIBRATE, EXPORT, EVALUATE, CLASSIFY, BATCH, SERVE, TIMELINE, CARD,
    DATA_INFO, MODELS_LIST)}

# The base of every training option (`--arch`'s recipe replaces what it names), and the
# architecture trained when --arch is left out (None in `check`: --resume takes the run's).
DEFAULT_ARCH = "seed"
TRAIN_BASE = {"arch": DEFAULT_ARCH, **{o.name: o.default for o in TRAIN.options if o.recipe}}

# Values that stand for "read from stdin" and skip the existence check.
STDIN_VALUES = {"timeline": {"-"}}


def spec(command: str) -> dict[str, Opt]:
    return {o.name: o for o in COMMANDS[command].options}


def defaults_of(command: str) -> dict:
    """Each option's value when it is not given (training options: their recipe's base)."""
    return {o.name: o.default for o in COMMANDS[command].options}


def check(command: str, values: dict, partial: bool = False) -> Config:
    """Validate the given options of `command` (None = not given): unknown names, types,
    ranges, choices, files that must exist; one FerEdgeError line for the first bad one. Options
    not given take their default from the table, but training options stay None (the
    architecture's recipe decides: training/recipe.py). `partial`: check only the options in
    `values` (a command checks the rest itself)."""
    opts = spec(command)
    if partial:
        opts = {k: v for k, v in opts.items() if k in values}
    unknown = sorted(set(values) - set(opts))
    if unknown:
        raise FerEdgeError(f"unknown option {flag(unknown[0])} for {command} "
                           f"(known: {', '.join(o.flag for o in opts.values())})")
    out = {}
    for name, opt in opts.items():
        value = values.get(name)
        if value is None:
            if opt.required:
                raise FerEdgeError(f"{opt.flag} is required: {opt.accepts()}")
            out[name] = None if opt.recipe else opt.default
            continue
        if value in STDIN_VALUES.get(command, ()):
            out[name] = value
            continue
        listed = isinstance(value, (list, tuple)) and opt.kind not in (str, "names", "files")
        checked = []
        for item in (value if listed else [value]):
            try:
                checked.append(opt.check(item))
            except (ValueError, TypeError):
                raise FerEdgeError(f"{opt.flag} must be {opt.accepts()}, not {item!r}") \
                    from None
        out[name] = checked if listed else checked[0]
    return Config(out)


def takes(command: str):
    """Decorator of the Python function behind `command`: arguments left at None take the
    table's default, so the Python API and the CLI default alike (training options excepted:
    their recipe decides)."""
    table = spec(command)

    def wrap(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def call(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            for name, opt in table.items():
                if name in signature.parameters and bound.arguments.get(name) is None \
                        and not opt.recipe and opt.default is not None:
                    bound.arguments[name] = opt.default
            return fn(*bound.args, **bound.kwargs)

        return call

    return wrap


def reference() -> str:
    """Every command's options as Markdown tables: docs/options.md
    (`python -m fer_edge.options > docs/options.md`; a test keeps it current)."""
    lines = ["# Options of every command", "",
             "Generated from the option table (`fer_edge/options.py`) by "
             "`python -m fer_edge.options > docs/options.md`; `fer-edge COMMAND --help` says the "
             "same. Training options marked *recipe* take the architecture's recipe when not "
             "given, then the base default shown.", ""]
    for command in COMMANDS.values():
        lines += [f"## fer-edge {command.name}", "", command.summary, ""]
        if command.paths:
            lines += [f"Paths: {command.paths}.", ""]
        lines += ["| option | accepts | default | |", "|---|---|---|---|"]
        for o in command.options:
            default = "required" if o.required else "" if o.default is None else (
                f"`{o.default}`" + (" (recipe)" if o.recipe else ""))
            help_text = o.help.replace("|", "\\|")
            lines.append(f"| `{o.flag}` | {o.accepts()} | {default} | {help_text} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference(), end="")
