"""The commands of `fer-edge`, each a call of the library, and the python-fire component built
from the option table: every command's signature and --help come from options.COMMANDS, so an
option is declared in one place. Heavy modules (TensorFlow) are imported inside the commands
that need them, so `classify` stays light.
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


# ------------------------------------------------------------------------------- the commands

def train(**given):
    from .training.engine import train as run

    run(**given)   # validated there, before anything is written


def calibrate(**given):
    from .export import calibrate as run

    run(**given)


def export(**given):
    from .export import export as run

    for path in run(**given):   # validated there, before anything is loaded or written
        print(path)


def evaluate(*paths, models=None, format=None, **given):
    from .evaluate import evaluate as run, markdown

    options.check("evaluate", {"format": format}, partial=True)
    result = run(([models] if models else []) + list(paths), **given)
    if format == "json":
        return _print_json(result)
    print(markdown(result))


SWITCHES_BEFORE_PATHS = ("no_detect", "force", "tta", "align", "summary", "quiet")


def _switch_words_as_paths(paths: tuple, given: dict) -> tuple:
    """python-fire gives a switch the next word as its value (`--no-detect a.jpg`): such a word
    is taken back as a path, and the switch as on."""
    for name in SWITCHES_BEFORE_PATHS:
        value = given.get(name)
        if value is not None and not isinstance(value, bool):
            paths = (value, *paths)
            given[name] = True
    return paths


def classify(*paths, **given):
    from .edge.classify import classify as run

    paths = _switch_words_as_paths(paths, given)
    run([STDIN if p == STDIN_ARG else str(p) for p in paths], **given)


def batch(*paths, **given):
    from .batch.job import batch as run
    from .edge.sources import native_stderr_silenced

    paths = _switch_words_as_paths(paths, given)
    with native_stderr_silenced():    # FFmpeg's and libjpeg's lines: errors/ says what failed
        summary = run([str(p) for p in paths], **given)
    _print_json(summary)


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

    from .shipped import shipped_rows, timing

    options.check("models list", {"format": format})
    shipped, timed = shipped_rows(), timing()
    # the runtime install has no Keras: the shipped models are listed all the same
    trainable = importlib.util.find_spec("keras") is not None
    rows = []
    if trainable:
        from .edge.sources import quiet_native_stderr
        from .training import archs

        with quiet_native_stderr(always=True):   # TensorFlow's start-up lines
            rows = [{"name": a, "params": int(archs.build(a).count_params()),
                     "description": archs.get(a).description} for a in archs.names()]
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
    print("(PrivateTest accuracy on FER2013's labels and on the FER+ majority, from "
          "models/eval/report.json)")
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
        print(f"{r['name']:<{width}} {r['params']:>11,}  {r['description']}")


# --------------------------------------------------------------- the component fire is given

_ANNOTATIONS = {bool: bool, int: int, float: float}


def _docstring(command: options.Command) -> str:
    """The command's help as python-fire reads it: summary, details, and an Args section with
    each option's help (and a training option's base default, which its recipe may replace)."""
    # one line an option: python-fire's parser takes a wrapped line holding a colon for a new
    # argument (cli.py wraps the help it prints)
    wrap = lambda text: "  " + text  # noqa: E731
    lines = [command.summary, ""]
    if command.details:
        lines += [textwrap.fill(command.details, 96), ""]
    lines.append("Args:")
    if command.paths:
        lines.append(wrap(f"paths: {command.paths}."))
    for o in command.options:
        text = o.help
        if o.recipe and o.default is not None:
            text += f" (default: the recipe's, else {o.default!r})"
        lines.append(wrap(f"{o.name}: {text}."))
    return "\n".join(lines)


def method(name: str, run):
    """A method of the CLI for options.COMMANDS[name], calling `run`: its signature holds the
    table's options with their defaults (a training option's is None: its recipe decides)."""
    command = options.COMMANDS[name]
    kind = inspect.Parameter.KEYWORD_ONLY if command.paths else \
        inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if command.paths:
        params.append(inspect.Parameter("paths", inspect.Parameter.VAR_POSITIONAL))
    params += [inspect.Parameter(o.name, kind, default=None if o.recipe else o.default,
                                 annotation=_ANNOTATIONS.get(o.kind, str))
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
    return call


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
