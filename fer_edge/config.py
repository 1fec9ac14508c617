"""One typed, validated configuration per command.

Each command's options are declared once here (`SPECS`): type, range or choices, whether a file
must exist, and for training whether it may change on `--resume`. `check(command, values)` turns
what the CLI or a Python caller gave into a `Config` (a dict with attribute access), or raises
`FerEdgeError` with one line that names the option and what it accepts, before anything is read
or written. Defaults stay in `defaults.py` (and each architecture's recipe in `archs.py`); a
value of None here means "not given".

The CLI's signatures are checked against these specs by a test (tests/test_config.py), so an
option cannot go missing on either side, and the bad-option test matrix is generated from them.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import defaults
from .errors import FerEdgeError


class Config(dict):
    """Validated options: config["epochs"] or config.epochs."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


# ------------------------------------------------------------------------------- value kinds

def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


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

    @property
    def flag(self) -> str:
        return _flag(self.name)

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


def _archs():
    from . import archs

    return archs.names()


def _augments():
    from . import augment   # TensorFlow only inside augment.make()

    return tuple(augment.PRESETS)


_DATA = Opt("data", "path")

SPECS: dict[str, list[Opt]] = {
    "train": [
        _DATA,
        Opt("arch", str, choices=_archs),
        Opt("out", "out"),
        Opt("epochs", int, low=1, resume=True),
        Opt("batch_size", int, low=1),
        Opt("learning_rate", float, low=0, low_open=True),
        Opt("decay", float, low=0),
        Opt("schedule", str, choices=("decay", "cosine")),
        Opt("warmup_epochs", int, low=0),
        Opt("weight_decay", float, low=0),
        Opt("augment", str, choices=_augments),
        Opt("erasing", float, low=0, high=1),
        Opt("label_smoothing", float, low=0, high=1, high_open=True),
        Opt("class_weight", str, choices=("none", "balanced", "sqrt")),
        Opt("early_stopping_patience", int, low=0, resume=True),
        Opt("reduce_lr_patience", int, low=1),
        Opt("reduce_lr_factor", float, low=0, high=1, low_open=True, high_open=True),
        Opt("val_fraction", float, low=0, high=1, low_open=True, high_open=True),
        Opt("seed", int, low=0),
        Opt("time_budget", "duration", resume=True),
        Opt("track_test", bool),
        Opt("init", "file", suffixes=(".keras", ".tflite")),
        Opt("swa_start", int, low=1),
        Opt("swa_lr", float, low=0, low_open=True),
        Opt("teacher", "files", suffixes=(".keras",)),
        Opt("distill_weight", float, low=0, high=1),
        Opt("temperature", float, low=0, low_open=True),
        Opt("teacher_flip", bool),
        Opt("qat", bool),
        Opt("target", str, choices=("fer2013", "ferplus", "mix")),
        Opt("ferplus_weight", float, low=0, high=1, low_open=True, high_open=True),
        Opt("votes", "file", suffixes=(".csv",)),
        Opt("select", str, choices=("auto", "fer2013", "ferplus")),
        Opt("limit", int, low=1),
        Opt("resume", bool),
        Opt("force", bool),
        Opt("strategy", str, choices=("default", "mirrored", "multiworker"), resume=True),
        Opt("logical_cpus", int, low=1, resume=True),
        Opt("verbose", str, choices=("auto", 0, 1, 2), resume=True),
    ],
    "export": [
        Opt("model", "file", suffixes=(".keras",), required=True),
        Opt("quantize", str, choices=("none", *defaults.QUANTIZE_MODES, "all")),
        Opt("out", "out"),
        _DATA,
        Opt("calib", "int_or_path"),
        Opt("force", bool),
        Opt("target", str, choices=("litert", "micro")),
    ],
    "calibrate": [
        Opt("data", "path", required=True),
        Opt("size", int, low=1),
        Opt("seed", int, low=0),
        Opt("out", "out"),
        Opt("force", bool),
    ],
    "evaluate": [
        Opt("models", "file", suffixes=(".keras", ".tflite"), required=True),
        _DATA,
        Opt("split", str, choices=("train", "val", "test")),
        Opt("threads", int, low=1),
        Opt("out", "out"),
        Opt("format", str, choices=("text", "json")),
        Opt("limit", int, low=1),
        Opt("latency_runs", int, low=1),
        Opt("force", bool),
        Opt("tta", bool),
        Opt("micro", bool),
        Opt("votes", "file", suffixes=(".csv",)),
    ],
    "classify": [
        Opt("model", str),        # the runtime names what is wrong with a model file
        Opt("detector", str, choices=lambda: __import__("fer_edge.edge.detect",
                                                        fromlist=["x"]).DETECTORS),
        Opt("no_detect", bool),
        Opt("glob", str),
        Opt("every", int, low=1),
        Opt("threads", int, low=1),
        Opt("format", str, choices=("table", "json", "csv")),
        Opt("save_annotated", "out"),
        Opt("force", bool),
        Opt("labels", "names"),
        Opt("tta", bool),
        Opt("align", bool),
        Opt("smooth", float, low=0, high=1, high_open=True),
        Opt("summary", bool),
        Opt("camera", int, low=0),
        Opt("detect_every", int, low=1),
    ],
    "timeline": [
        Opt("results", "path", required=True),
        Opt("out", "out", required=True),
        Opt("force", bool),
    ],
    "card": [
        Opt("run", "dir", required=True),
        Opt("report", "dir", required=True),
        Opt("out", "out"),
        Opt("train_command", str, required=True),
        Opt("fast_run", "dir"),
        Opt("fast_train_command", str),
        Opt("peer_latency", "file", suffixes=(".json",)),
        Opt("force", bool),
        Opt("name", str, choices=("fer", "ferplus")),
        Opt("outside", "file", suffixes=(".json",)),
        Opt("checkpoint", str, choices=("best.keras", "swa.keras")),
        Opt("rule", "file"),
    ],
    "data info": [
        Opt("data", "path", required=True),
        Opt("format", str, choices=("text", "json")),
        Opt("votes", "file", suffixes=(".csv",)),
    ],
    "models list": [
        Opt("format", str, choices=("text", "json")),
    ],
}

# Values that stand for "read from stdin" and skip the existence check.
STDIN_VALUES = {"classify": set(), "timeline": {"-"}}


def spec(command: str) -> dict[str, Opt]:
    return {o.name: o for o in SPECS[command]}


def check(command: str, values: dict, partial: bool = False) -> Config:
    """Validate the given options of `command` (None = not given): unknown names, types,
    ranges, choices, files that must exist. One FerEdgeError line for the first bad one.
    `partial`: check only the options in `values` (a command checks the rest itself)."""
    opts = spec(command)
    if partial:
        opts = {k: v for k, v in opts.items() if k in values}
    unknown = sorted(set(values) - set(opts))
    if unknown:
        raise FerEdgeError(f"unknown option {_flag(unknown[0])} for {command} "
                           f"(known: {', '.join(o.flag for o in opts.values())})")
    out = Config()
    for name, opt in opts.items():
        value = values.get(name)
        if value is None:
            if opt.required:
                raise FerEdgeError(f"{opt.flag} is required: {opt.accepts()}")
            out[name] = None
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
    return out


# --------------------------------------------------------------------------------- training

def train_options(arch: str, given: dict) -> Config:
    """A new run's options: base defaults <- the architecture's recipe <- what was given,
    with the combinations checked (--swa-lr needs --swa-start, which must be < --epochs)."""
    from . import archs

    opts = Config(defaults.TRAIN)
    opts.update(archs.get(arch).recipe)
    opts["arch"] = arch
    opts.update({k: v for k, v in given.items() if k in defaults.TRAIN and v is not None})
    opts["time_budget"] = parse_duration(opts["time_budget"])
    if opts["swa_lr"] is not None and not opts["swa_start"]:
        raise FerEdgeError("--swa-lr needs --swa-start (the epoch after which weights are "
                           "averaged)")
    if not opts["teacher"] and any(given.get(k) is not None for k in
                                   ("distill_weight", "temperature", "teacher_flip")):
        raise FerEdgeError("--distill-weight, --temperature and --teacher-flip need --teacher")
    if opts["qat"] and not opts["init"]:
        raise FerEdgeError("--qat fine-tunes a trained model: pass --init MODEL.keras")
    if opts["qat"] and opts["swa_start"]:
        raise FerEdgeError("--qat and --swa-start do not combine (an average of weights leaves "
                           "the int8 ranges it was trained on)")
    if given.get("ferplus_weight") is not None and opts["target"] != "mix":
        raise FerEdgeError("--ferplus-weight is the share of the votes in --target mix")
    if opts["swa_start"] and opts["swa_start"] >= opts["epochs"]:
        raise FerEdgeError(f"--swa-start must be below --epochs ({opts['epochs']}), "
                           f"not {opts['swa_start']}")
    return opts


def selection(opts: dict) -> str:
    """What picks checkpoints on val: "fer2013" (FER2013 labels) or "ferplus" (the FER+
    majority benchmark)."""
    if opts.get("select", "auto") != "auto":
        return opts["select"]
    return "fer2013" if opts.get("target", "fer2013") == "fer2013" else "ferplus"


RESUMABLE = tuple(o.name for o in SPECS["train"] if o.resume)


def resume_options(saved: dict, given: dict) -> Config:
    """A resumed run's options: the run's own, with only RESUMABLE ones allowed to change.
    `given` holds checked values (`check` already turned a --time-budget into seconds)."""
    opts = Config(saved)
    for name, value in given.items():
        if value is None or name not in defaults.TRAIN:
            continue
        old = opts.get(name)
        if value != old and name not in RESUMABLE:
            raise FerEdgeError(f"{_flag(name)} is {old!r} in this run; --resume continues it "
                               f"as it was (only {', '.join(map(_flag, RESUMABLE))} may change)")
        opts[name] = value
    return opts
