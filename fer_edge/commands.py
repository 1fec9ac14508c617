"""The commands of `fer-edge`, each a call of the library, and the python-fire component built
from the option table: every command's signature, the converter of each option's text and
--help come from options.COMMANDS, so an option is declared in one place. Heavy modules
(TensorFlow, Ray) are imported inside the commands that need them, after checking that they are
installed, so `classify` stays light and a runtime-only install answers in one line.
"""

from __future__ import annotations

import inspect
import json
import sys
import textwrap

from . import options
from .errors import FerEdgeError

# python-fire reads a bare "-" as its command separator: the "-" (stdin) of classify and
# timeline reaches the command as this placeholder (cli.py puts it there).
STDIN = "-"
STDIN_ARG = "<fer-edge:stdin>"


def _print_json(obj) -> None:
    print(json.dumps(obj))


# ------------------------------------------------------------ what a command needs installed

# The runtime install (numpy, OpenCV, LiteRT, fire) runs classify, serve and the rest; these
# commands import more, from an extra. Checked by module name (importlib.util.find_spec) before
# a command imports or reads anything, so a runtime-only install answers in one line.
_NAMES = {"keras": "Keras", "tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch",
          "sklearn": "scikit-learn", "matplotlib": "matplotlib", "seaborn": "seaborn",
          "pandas": "pandas", "ray": "Ray", "pyarrow": "pyarrow", "tflite_micro": "TFLite Micro",
          "onnxruntime": "onnxruntime"}


def _needs(command: str, extra: str, *modules: str) -> None:
    """FerEdgeError naming `extra` when one of `modules` is not installed."""
    import importlib.util

    missing = [_NAMES.get(m, m) for m in dict.fromkeys(modules)
               if importlib.util.find_spec(m) is None]
    if missing:
        names = ", ".join(missing[:-1]) + " and " + missing[-1] if len(missing) > 1 \
            else missing[0]
        raise FerEdgeError(f"{command} needs {names}: pip install 'fer-edge[{extra}]'")


def _keras_backend() -> str:
    """The module Keras runs on (KERAS_BACKEND, TensorFlow when unset)."""
    import os

    name = os.environ.get("KERAS_BACKEND", "tensorflow")
    return name if name in ("jax", "torch") else "tensorflow"


# ------------------------------------------------------------------------------- the commands

def train(**given):
    _needs("train", "train", "keras", _keras_backend(), "sklearn")
    from .training.engine import train as run
    from .training.runs import RunFolder

    # A new run's folder is checked here, before the data is read and TensorFlow imported
    # (train checks it again when it makes the folder); on other machines of a multiworker run
    # the chief may have made it already.
    cfg = options.check("train", given)
    run_folder = RunFolder(cfg.out or f"runs/{cfg.arch or options.DEFAULT_ARCH}")
    if run_folder.path.exists() and not run_folder.path.is_dir():
        raise FerEdgeError(f"{run_folder} is a file: --out is the run's folder")
    if not (cfg.resume or cfg.force or cfg.strategy == "multiworker") \
            and run_folder.holds_anything():
        raise FerEdgeError(f"{run_folder} already holds a run; pass --resume to continue it or "
                           f"--force to start over")
    run(**given)   # validated there, before anything is written


def calibrate(**given):
    from .export import calibrate as run

    run(**given)


def export(**given):
    if given.get("target") != "web":      # the web page is built from a .tflite, no TensorFlow
        _needs("export", "train", "keras", "tensorflow")
    from .edge.sources import native_stderr_silenced
    from .export import export as run

    with native_stderr_silenced():   # the converter's lines on fd 2
        written = run(**given)       # validated there, before anything is loaded or written
    for path in written:
        print(path)


def evaluate(*paths, models=None, format=None, **given):
    from .defaults import shipped_model

    # shipped models by name, as classify's --model takes them
    files = [shipped_model(m) for m in ([models] if models else []) + list(paths)]
    _needs("evaluate", "train", "sklearn",
           *(("keras", "tensorflow") if any(f.suffix == ".keras" for f in files) else ()),
           *(("matplotlib", "seaborn", "pandas") if given["out"] else ()))
    if any(f.suffix == ".onnx" for f in files):
        _needs("evaluate", "onnx", "onnxruntime")
    if given["micro"]:
        _needs("evaluate --micro", "micro", "tflite_micro")
    from .evaluate import evaluate as run, markdown

    options.check("evaluate", {"format": format}, partial=True)
    result = run([str(f) for f in files], **given)
    if format == "json":
        return _print_json(result)
    print(markdown(result))


def classify(*paths, **given):
    from .edge.classify import classify as run

    run([STDIN if p == STDIN_ARG else p for p in paths], **given)


def batch(*paths, **given):
    _needs("batch", "ray", "ray", "pyarrow", "pandas")
    options.check("batch", given)
    _batch_inputs(paths, given["glob"])
    from .batch.job import batch as run, command_streams

    with command_streams():   # Ray's, FFmpeg's lines silenced: errors/ says what failed
        summary = run(list(paths), **given)
    _print_json(summary)


def _batch_inputs(paths: tuple, glob: str | None) -> None:
    """One line for a local input that is not there or a folder without an image or video
    (--glob's), before --out is written: batch itself records a missing input as an error row
    and goes on. Remote inputs (s3://...) are their filesystem's to answer."""
    import fnmatch
    from pathlib import Path

    from .edge.fileio import IMAGE_EXTS
    from .edge.sources import VIDEO_EXTS

    if not paths:
        raise FerEdgeError("nothing to classify: give images, videos, folders or manifests")
    for given in paths:
        if "://" in given and not given.startswith("file://"):
            continue
        path = Path(given.removeprefix("file://"))
        if not path.exists():
            raise FerEdgeError(f"{given}: no such file or directory")
        if path.is_dir() and not any(
                f.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS and f.is_file() and (
                    glob is None or fnmatch.fnmatch(str(f.relative_to(path)), glob)
                    or fnmatch.fnmatch(f.name, glob)) for f in path.rglob("*")):
            raise FerEdgeError(f"{given}: no image or video in this folder"
                               + (f" matching --glob {glob}" if glob else ""))


def serve(**given):
    from .serve import serve as run

    try:
        run(**given)
    except KeyboardInterrupt:
        print("fer-edge serve: stopped", file=sys.stderr)


def timeline(results=None, **given):
    from .timeline import timeline as run

    if not results:
        raise FerEdgeError("pass the JSON lines of `fer-edge classify VIDEO --format json` "
                           "(a file, or - for stdin)")
    for path in run(STDIN if results == STDIN_ARG else results, **given):
        print(path, file=sys.stderr)


def card(**given):
    from .card import write_card

    print(write_card(**given))   # --run, --report and --train-command: required by the table


def data_info(data=None, format=None, votes=None):
    from . import data as fdata, votes as fvotes
    from .edge.preprocessing import LABELS

    options.check("data info", {"data": data, "format": format, "votes": votes})
    ds = fdata.load(data, votes=votes)
    for note in ds.notes:
        print(f"fer-edge: {note}", file=sys.stderr)
    counts = ds.counts()
    voted = {name: fvotes.counts(s.votes) for name, s in ds.splits.items()
             if s.votes is not None}
    if format == "json":
        return _print_json({**counts, **({"ferplus": {"votes": ds.votes_path, **voted}}
                                          if voted else {})})
    print(f"{'split':<6}{'images':>8}" + "".join(f"{lab:>10}" for lab in LABELS))
    for name, c in counts.items():
        print(f"{name:<6}{sum(c.values()):>8}" + "".join(f"{c[lab]:>10}" for lab in LABELS))
    print(f"fingerprint {ds.fingerprint}")
    if voted:
        print(f"\nFER+ votes ({ds.votes_path}): faces with votes, with a usable training "
              f"target (--target ferplus), in the majority benchmark, and its classes")
        labels = fvotes.MAJORITY_LABELS
        print(f"{'split':<6}{'votes':>7}{'target':>8}{'major.':>8}"
              + "".join(f"{lab:>10}" for lab in labels))
        for name, v in voted.items():
            per = v["majority_per_class"]
            print(f"{name:<6}{v['with_votes']:>7}{v['target_usable']:>8}{v['majority']:>8}"
                  + "".join(f"{per[lab]:>10}" for lab in labels))


def models_list(format=None):
    import importlib.util

    from .defaults import package_path
    from .shipped import architecture_rows, shipped_rows, timing

    options.check("models list", {"format": format})
    shipped, timed = shipped_rows(), timing()
    # parameter counts from architectures.json: no Keras imported; the runtime install, which
    # cannot train them, lists the shipped models alone
    trainable = importlib.util.find_spec("keras") is not None
    rows = architecture_rows() if trainable else []
    if format == "json":
        return _print_json({"shipped": shipped, "timing": timed, "architectures": rows})
    files = max([len("file")] + [len(r["file"]) for r in shipped])
    print(f"{'--model':<9} {'file':<{files}} {'size':>9} {'FER2013':>8} {'FER+':>7} "
          f"{'vs fer':>7}")
    pct = lambda v: "-" if v is None else f"{v:.2%}"  # noqa: E731
    for r in shipped:
        ratio = "-" if r["time_vs_fer"] is None else f"{r['time_vs_fer']:.2f}x"
        print(f"{r['name']:<9} {r['file']:<{files}} {r['size_bytes']:>9,} "
              f"{pct(r['top1']):>8} {pct(r['ferplus_top1']):>7} {ratio:>7}")
    print(f"(the files are in {package_path('models').resolve()}; PrivateTest accuracy on "
          f"FER2013's labels and on the FER+ majority, from their eval/report.json)")
    if timed:
        print(f"(vs fer: time per face, {timed['measures']}, batch {timed['batch']}, "
              f"{timed['threads']} thread, on {timed['host'].get('cpu', 'an unrecorded CPU')}: "
              f"{timed['source']}; other CPUs give other ratios)")
    print()
    if not trainable:
        print("architectures: pip install 'fer-edge[train]' to list and train them")
        return
    width = max(len("architecture"), *(len(r["name"]) for r in rows))
    print(f"{'architecture':<{width}} {'params':>11}  description")
    for r in rows:
        params = "?" if r["params"] is None else f"{r['params']:,}"
        print(f"{r['name']:<{width}} {params:>11}  {r['description']}")


# --------------------------------------------------------------- the component fire is given

def _docstring(command: options.Command) -> str:
    """The command's summary and details, which python-fire's help of the CLI and of a group
    shows (a command's own --help is cli.command_help, from the table)."""
    return "\n\n".join([command.summary] + ([textwrap.fill(command.details, 96)]
                                             if command.details else []))


def method(name: str, run):
    """A method of the CLI for options.COMMANDS[name], calling `run`: its signature holds the
    table's options with their defaults (a training option's is None: its recipe decides), and
    python-fire hands each option's text to that option's converter (Opt.parse), the paths' as
    they are, instead of reading them as Python literals."""
    from fire import decorators

    command = options.COMMANDS[name]
    kind = inspect.Parameter.KEYWORD_ONLY if command.paths else \
        inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if command.paths:
        params.append(inspect.Parameter("paths", inspect.Parameter.VAR_POSITIONAL))
    params += [inspect.Parameter(o.name, kind, default=None if o.recipe else o.default)
               for o in command.options]

    signature = inspect.Signature(params)

    def call(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()   # every option reaches the command, given or default
        values = dict(bound.arguments)
        values.pop("self")
        return run(*values.pop("paths", ()), **values)

    call.__signature__ = signature
    call.__doc__ = _docstring(command)
    call.__name__ = call.__qualname__ = name.split()[-1]
    decorators.SetParseFn(str)(call)
    return decorators.SetParseFns(**{o.name: o.parse for o in command.options})(call)


class Data:
    """Inspect FER2013 data (folder tree, fer2013.csv or a packed folder)."""

    info = method("data info", data_info)


class Models:
    """The shipped models and the architecture registry."""

    list = method("models list", models_list)


class CLI:
    """fer-edge: train a facial-emotion CNN on FER2013, export TFLite, evaluate, classify faces,
    serve them live on a device, batch-classify archives on Ray."""

    train = method("train", train)
    calibrate = method("calibrate", calibrate)
    export = method("export", export)
    evaluate = method("evaluate", evaluate)
    classify = method("classify", classify)
    batch = method("batch", batch)
    serve = method("serve", serve)
    timeline = method("timeline", timeline)
    card = method("card", card)

    def __init__(self):
        self.data = Data()
        self.models = Models()
