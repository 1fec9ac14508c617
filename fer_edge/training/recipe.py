"""A training run's options: the base defaults (options.TRAIN_BASE) <- the architecture's recipe
(archs.py) <- what was given, with the combinations checked; on --resume, the run's own options
with only the resumable ones changed; and what selects its checkpoints on val."""

from __future__ import annotations

from .. import options
from ..errors import FerEdgeError
from . import archs


def train_options(arch: str, given: dict) -> dict:
    """A new run's options: base defaults <- the architecture's recipe <- what was given,
    with the combinations checked (--swa-lr needs --swa-start, which must be < --epochs). A
    plain dict, not a read-only Config: it is the run's record (config.json "options"), to which
    the run adds what it used (the votes file and its sha256, the --init and teachers' digests)."""
    opts = dict(options.TRAIN_BASE)
    opts.update(archs.get(arch).recipe)
    opts["arch"] = arch
    opts.update({k: v for k, v in given.items() if k in options.TRAIN_BASE and v is not None})
    opts["time_budget"] = options.parse_duration(opts["time_budget"])
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


def classes(opts: dict) -> int:
    """The model's outputs: FER+'s 8 emotions for --target ferplus8, else FER2013's 7."""
    from ..edge.preprocessing import LABELS, LABELS8

    return len(LABELS8) if opts.get("target") == "ferplus8" else len(LABELS)


def selection(opts: dict) -> str:
    """What picks checkpoints on val: "fer2013" (FER2013 labels) or "ferplus" (the FER+
    majority benchmark)."""
    if opts.get("select", "auto") != "auto":
        return opts["select"]
    return "fer2013" if opts.get("target", "fer2013") == "fer2013" else "ferplus"


RESUMABLE = tuple(o.name for o in options.TRAIN.options if o.resume)


def resume_options(saved: dict, given: dict) -> dict:
    """A resumed run's options: the run's own, with only RESUMABLE ones allowed to change.
    `given` holds checked values (`check` already turned a --time-budget into seconds)."""
    opts = dict(saved)
    for name, value in given.items():
        if value is None or name not in options.TRAIN_BASE:
            continue
        old = opts.get(name)
        if value != old and name not in RESUMABLE:
            raise FerEdgeError(f"{options.flag(name)} is {old!r} in this run; --resume continues "
                               f"it as it was (only {', '.join(map(options.flag, RESUMABLE))} "
                               f"may change)")
        opts[name] = value
    return opts
