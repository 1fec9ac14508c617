"""`fer-edge card`: write a model card from a training run and an `evaluate` report, so every
figure in the card comes from the tools' own outputs, never typed by hand."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from .training import archs
from . import defaults
from .errors import FerEdgeError
from .evaluate import markdown
from .options import TRAIN_BASE, check as checked
from .training.recipe import classes, selection
from .edge.preprocessing import labels_for
from .edge.fileio import check_writable, sha256, write_text
from .training.runs import RunFolder

LIMITATIONS = """\
- **Data.** FER2013 (Goodfellow et al., 2013) is 35,887 48x48 grayscale faces gathered by Google
  image search and labelled by one annotator each; published human accuracy is about 65±5%, and
  re-annotation (FER+) changed a large share of labels. The ceiling is set by label noise as much
  as by the model.
- **Who is in it.** Web images of mostly adults, skewed towards lighter skin and posed or
  exaggerated expressions. Accuracy on children, older people, darker skin, occlusions (masks,
  glasses, hands), profile views, poor light and spontaneous expressions is unmeasured and likely
  lower. {scarce}
- **What it measures.** A facial configuration, not an inner emotional state: a "happy" face is
  not a happy person. Do not use it to make decisions about people (hiring, policing, education,
  health, credit, border control), for surveillance, or on people who have not agreed to it.
- **Pipeline.** In photos, results also depend on the face detector (frontal faces) and the crop.
"""

INTENDED_USE = """\
Demonstrations, research and prototypes of on-device facial-expression recognition on frontal,
reasonably lit faces: e.g. a Raspberry Pi or phone app that reacts to a smile, or a study that
aggregates expressions over many consenting participants. Outputs are probabilities over seven
FER2013 labels, to be treated as noisy signals."""

LICENCE = """\
The code of fer-edge is MIT-licensed. The weights were trained on FER2013, which was released for
the ICML 2013 "Challenges in Representation Learning" workshop and is distributed for research;
its images come from the web and carry no licence of their own. Check that your use is compatible
before shipping the weights in a product."""


# Each shipped model family (file prefix in models/) and its card.
CARD_NAMES = {"fer": "MODEL_CARD.md", "ferplus": "MODEL_CARD_ferplus.md"}

# The training options a card shows as the recipe.
RECIPE_KEYS = ("epochs", "batch_size", "learning_rate", "schedule", "warmup_epochs", "weight_decay",
               "augment", "erasing", "label_smoothing", "class_weight", "seed", "swa_start",
               "swa_lr", "qat")


def _command(run: RunFolder) -> str:
    """The recorded command line, without the interpreter's or venv's path, and with the home
    folder as ~ (the run folders live outside the repo, e.g. ~/fer-edge-runs)."""
    argv = run.command.split(" ")
    if argv and argv[0].endswith("fer-edge"):
        argv[0] = "fer-edge"
    return " ".join(_tilde(a) for a in argv if a)


def _tilde(text: str) -> str:
    return text.replace(str(Path.home()) + "/", "~/")


def _warm_start_stages(opts: dict) -> tuple[list[str], str]:
    """For a run started with --init: the earlier runs' commands, oldest first (lines of the
    reproduce block), and bullets naming the starting weights of each stage, read from each
    earlier run's own config.json (a chain of warm restarts is followed to its first stage)."""
    commands, bullets, seen = [], [], set()
    lead = "- Warm restart: starts from"
    while opts.get("init") and opts["init"] not in seen:
        seen.add(opts["init"])
        init = Path(opts["init"])
        int8 = init.suffix == ".tflite"
        what = (f"the strongest channels (largest BatchNorm scale, `fer_edge/training/slim.py`) of the "
                f"wider `{opts['init_slimmed_from']}` model" if opts.get("init_slimmed_from")
                else f"the weights of the `{opts['init_arch']}` model" if opts.get("init_arch")
                else "the int8 weights of" if int8 else "the weights of")
        bullet = (f"{lead} {what} `{init}` (sha256 "
                  f"`{opts.get('init_sha256', '?')[:16]}…`) with a fresh optimizer and schedule")
        earlier = RunFolder.of_model(init)
        if earlier is None:   # a file of an old machine: its committed copy, by content
            earlier, copy = _committed_run(opts.get("init_sha256"))
            bullet += f" (committed as `{copy}`)" if copy else ""
        if earlier is None:   # or at least its run's committed reports
            earlier = _committed_reports(init)
            bullet += (f" (not committed; its run's reports are in "
                       f"`{earlier.path.relative_to(COMMITTED_RUNS.parent)}`)" if earlier else "")
        shipped = _shipped_card(init)
        if earlier is None and shipped:
            bullets.append(bullet + f"; that file ships in the repository, and how it was "
                           f"trained is in `{shipped}`.\n")
            break
        if earlier is None:
            bullets.append(bullet + "; the run that made them is not recorded beside them.\n")
            break
        # Name every recipe option the earlier stage set differently, so "the rest" is the same.
        first = earlier.options
        # a snapshot in the repository holds state.json but no metrics.json
        done = earlier.metrics_if_done.get("epochs_done") or earlier.epochs_done or "?"
        # an option a run predates (e.g. qat) had its default value there
        then, now = ({k: o.get(k, TRAIN_BASE.get(k)) for k in RECIPE_KEYS}
                     for o in (first, opts))
        differ = ", ".join(f"{k}={then[k]}" for k in RECIPE_KEYS if then[k] != now[k])
        rest = " (the rest as below)" if not bullets else " (the rest as in the stage after it)"
        bullets.append(bullet + f"; those were trained first ({done} epochs run) with "
                       f"{differ or 'the same recipe'}{rest if differ else ''}.\n")
        if int8:   # that run's selected checkpoint, exported (into its own folder)
            commands.insert(0, f"fer-edge export --model {_out_folder(earlier)}/"
                               f"{earlier.selected.name} --quantize int8")
        commands.insert(0, _command(earlier))
        # how that stage's own teachers were trained: their commands run before it
        bullets.append(_teachers(first).replace("- Distilled", "- That stage was distilled", 1))
        opts, lead = first, "- That stage started from"
    return commands, "".join(bullets)


def _save_command(opts: dict, checkpoint: str, name: str) -> str:
    """The command that writes models/NAME.keras from the run's checkpoint: the checkpoint
    without its optimizer, or for a --qat run its plain float network (what export converts)."""
    if opts.get("qat"):
        return (f"python -c \"import os; from fer_edge.training.keras_io import load_keras; "
                f"from fer_edge.training.qat import plain; plain(load_keras(os.path.expanduser("
                f"'{checkpoint}'))).save('models/{name}.keras')\"")
    return (f"python -c \"import keras, os; keras.saving.load_model(os.path.expanduser("
            f"'{checkpoint}'), compile=False).save('models/{name}.keras')\"")


def _saved_is(opts: dict, chosen: str) -> str:
    if opts.get("qat"):
        return (f"the float network of `{chosen}` (`qat.plain`: BatchNorm folded into the "
                f"convolutions, the simulated rounding taken out), the network `export` "
                f"converts: its int8 file is the one shipped")
    return f"`{chosen}` without its optimizer state (the same weights)"


# Where the repository keeps the models that shipped models started from or were distilled from,
# each beside its run's reports (config.json, metrics.json), so chains reproduce on a new machine.
COMMITTED_RUNS = Path(__file__).resolve().parents[1] / "reports"


@functools.lru_cache(maxsize=None)
def _committed_digests(root: Path) -> dict[str, Path]:
    """sha256 -> path of every committed checkpoint under `root`, hashed once per card (a chain
    asks for each of its stages and teachers)."""
    if not root.is_dir():
        return {}
    # .keras checkpoints and int8 files (a --qat stage starts from one), at any depth
    return {sha256(p): p for p in sorted([*root.rglob("*.keras"), *root.rglob("*.tflite")])}


def _committed_run(digest: str | None) -> tuple["RunFolder | None", str | None]:
    """(the run folder, the repository path) of the committed checkpoint whose sha256 is
    `digest`, or (None, None)."""
    path = _committed_digests(COMMITTED_RUNS).get(digest) if digest else None
    if path is None:
        return None, None
    return RunFolder.of_model(path), str(path.relative_to(COMMITTED_RUNS.parent))


def _committed_reports(model: Path) -> "RunFolder | None":
    """The committed reports (config.json ...) of the run that wrote `model`, found by the
    run folder's name under reports/ (one or two levels down), when its weights are not."""
    if not COMMITTED_RUNS.is_dir():
        return None
    name = Path(model).parent.name
    for config in sorted(COMMITTED_RUNS.glob(f"{name}/config.json")) + sorted(
            COMMITTED_RUNS.glob(f"*/{name}/config.json")):
        return RunFolder(config.parent)
    return None


def _shipped_card(path: Path) -> str | None:
    """The card of a model file that ships in models/ (a later model's starting point), as a
    repository path; None for a file elsewhere."""
    folder = defaults.package_path("models").resolve()
    try:
        if path.resolve().parent != folder:
            return None
    except OSError:
        return None
    card = CARD_NAMES.get(path.stem)
    return f"models/{card}" if card and (folder / card).exists() else None


def _target(opts: dict) -> str:
    """A bullet on what the model learned (--target) and what selected its checkpoint."""
    target = opts.get("target", "fer2013")
    over = ("FER+'s 8 emotions, faces whose top vote is unknown or not-a-face"
            if target == "ferplus8" else
            "the 7 emotions, faces whose top vote is contempt, unknown or not-a-face")
    votes = (f"FER+'s 10 crowd votes per face (`{_tilde(str(opts.get('votes')))}`, sha256 "
             f"`{str(opts.get('votes_sha256', '?'))[:16]}…`; `fer_edge/votes.py`: votes of 1 "
             f"dropped, the rest normalised over {over} left out)")
    what = {"fer2013": "FER2013's one-annotator labels",
            "ferplus": f"the distribution of {votes}",
            "ferplus8": f"the distribution of {votes}",
            "mix": f"{1 - float(opts.get('ferplus_weight') or 0):g} x FER2013's label + "
                   f"{opts.get('ferplus_weight')} x the distribution of {votes}"}[target]
    chosen = ("the FER+ majority benchmark on val" if selection(opts) == "ferplus"
              else "val accuracy on FER2013's labels")
    return f"- Target: {what}; checkpoints selected on {chosen}.\n"


def _images(config: dict, split: str) -> str:
    """The number of images of a split of the run's data, from its config.json."""
    counts = config.get("counts", {}).get(split)
    return f"{sum(counts.values()):,}" if counts else "?"


def _calibration() -> str:
    """What the committed int8 calibration manifest holds, read from it."""
    manifest = json.loads(defaults.calib_manifest().read_text())
    return f"{manifest['size']:,} stratified Training images, seed {manifest['seed']}"


def _scarce_class(config: dict, result: dict, name: str) -> str:
    """The sentence on the rarest training class and the weakest classes of the card's int8
    model (`name`_int8.tflite), from the run's counts and the report's per-class accuracy: on
    the FER+ majority for a model selected on it (contempt, which 7-class models never answer,
    left out), else on FER2013's labels."""
    counts = config.get("counts", {}).get("train") or {}
    rows = [v for v in result["variants"] if not v.get("tta")]
    row = next((v for v in rows if Path(v["model"]).name == f"{name}_int8.tflite"),
               next((v for v in rows if v["kind"] == "int8"), rows[0]))
    votes = selection(config.get("options", {})) == "ferplus" and "ferplus" in row
    pc = {k: v for k, v in (row["ferplus"] if votes else row)["per_class_accuracy"].items()
          if k != "contempt"}
    weakest = sorted(pc, key=pc.get)[:2]
    scarce = min(counts, key=counts.get) if counts else None
    share = f"`{scarce}` has {counts[scarce] / sum(counts.values()):.1%} of the training images; " \
        if scarce else ""
    on = "PrivateTest's FER+ majority" if votes else "PrivateTest"
    return (f"{share}the weakest classes on {on} are `{weakest[0]}` "
            f"({pc[weakest[0]]:.1%}) and `{weakest[1]}` ({pc[weakest[1]]:.1%}) "
            f"(`{Path(row['model']).name}`).")


def _framework(config: dict) -> str:
    """What trained it: Keras on TensorFlow, or on another backend (JAX, PyTorch) with the
    device it ran on."""
    v = config.get("versions", {})
    if "tensorflow" in v:
        return f"TensorFlow {v['tensorflow']} / Keras {v['keras']}"
    backend = v.get("backend", "?")
    return (f"Keras {v.get('keras', '?')} on {backend} {v.get(backend, '')}".rstrip()
            + (f", {config['device']}" if config.get("device") else ""))


def _teachers(opts: dict) -> str:
    """A bullet per distillation teacher: its file and sha256, how it was trained (its run's
    command, val top-1 and epochs), so the chain reproduces from the card."""
    from .training.distill import teacher_paths

    paths = teacher_paths(opts.get("teacher"))
    if not paths:
        return ""
    sums = opts.get("teacher_sha256") or ["?"] * len(paths)
    lines = [f"- Distilled (weight {opts.get('distill_weight')}, temperature "
             f"{opts.get('temperature')}, teachers also on the mirror image: "
             f"{bool(opts.get('teacher_flip'))}) from {len(paths)} frozen teacher(s):\n"]
    for path, digest in zip(paths, sums):
        line = f"  - `{path}` (sha256 `{digest[:16]}…`)"
        run = RunFolder.of_model(path)
        if run is None:
            run, copy = _committed_run(digest)
            line += f" (committed as `{copy}`)" if copy else ""
        if run is None:   # weights lost, but the run's reports committed under its folder's name
            run = _committed_reports(Path(path))
            line += (f" (its weights are not committed; its run's reports are in "
                     f"`{run.path.relative_to(COMMITTED_RUNS.parent)}`)" if run else "")
        if run is None:
            lines.append(line + ": the run that made it is not recorded beside it.\n")
            continue
        metrics = run.metrics_if_done
        # The val of the checkpoint the path names: the weight average's, or the best epoch's.
        named = metrics.get("swa", {}) if Path(path).name == "swa.keras" else metrics
        val = named.get("splits", {}).get("val", {}).get("top1")
        figures = f"val top-1 {val:.2%}, " if val is not None else ""
        lines.append(line + f": `{run.options['arch']}`, {figures}"
                     f"{metrics.get('epochs_done', '?')} epochs, trained by "
                     f"`{_command(run)}`{_earlier_stages(run.options)}.\n")
    return "".join(lines)


def _earlier_stages(opts: dict) -> str:
    """A teacher that was itself a warm restart: the commands of its earlier stages, oldest
    first, so that the card reproduces it without another card's chain."""
    trains = [c for c in _warm_start_stages(opts)[0] if c.startswith("fer-edge train ")]
    if not trains:
        return ""
    return "; its earlier stages, oldest first: " + ", then ".join(
        f"trained by `{c}`" for c in trains)


def _training(run: RunFolder, train_command: str, checkpoint: str | None = None,
              rule: str | None = None) -> dict:
    """What a card says of one training run: its options, architecture, the bullets on data,
    recipe, epochs, val and what it started from, the earlier stages' commands and the
    checkpoint that ships: the one train selected on val, or `checkpoint` when a rule that
    also looks beyond val (`rule`, where it is written) chose it."""
    config, metrics, state = run.config, run.metrics, run.state
    opts = config["options"]
    chosen = checkpoint or run.selected.name
    if not (run / chosen).exists() and chosen not in (RunFolder.BEST, RunFolder.SWA):
        raise FerEdgeError(f"--checkpoint {chosen}: not a checkpoint of {run}")
    swa = metrics.get("swa") if chosen == "swa.keras" else None
    on_votes = selection(opts) == "ferplus"
    figure = "FER+ majority" if on_votes else "top-1"

    def val_of(m: dict) -> float:
        val = m["splits"].get("val", {})
        return (val.get("ferplus", {}) if on_votes else val).get("top1", float("nan"))

    how = (f"chosen by the rule in `{rule}` (val and faces from outside FER2013) over "
           f"{'the weight average' if not swa else 'the best single epoch'}"
           if checkpoint and checkpoint != run.selected.name else "selected on val over")
    other = metrics["swa"] if not swa and "swa" in metrics else metrics
    val_line = (f"weight average (SWA) of the last {swa['epochs_averaged']} epochs, {how} "
                f"({val_of(metrics):.2%}): val (PublicTest) {figure}" if swa
                else f"best val (PublicTest) {figure}" if how.startswith("selected")
                else f"best single epoch, {how} ({val_of(other):.2%}): val (PublicTest) "
                     f"{figure}")
    recipe = ", ".join(f"{k}={opts[k]}" for k in RECIPE_KEYS if opts.get(k) is not None)
    stages, warm = _warm_start_stages(opts)
    if opts.get("qat"):
        warm += ("- Quantization-aware fine-tuning (`--qat`, `fer_edge/training/qat.py`): trained with the "
                 "int8 rounding simulated (BatchNorm folded, per-channel weights, calibrated "
                 "activation ranges); its val figures are the simulation's.\n")
    bullets = f"""\
{_target(opts)}- Data: FER2013 folder tree (`train/` = Training {_images(config, 'train')} images, `val/` = PublicTest for
  model selection, `test/` = PrivateTest for reporting only); data fingerprint
  `{config['data_fingerprint']}`.
- Recipe: {recipe}.
- Epochs run: {state.get('epoch', metrics.get('epochs_done'))}; {val_line}
  {val_of(swa or metrics):.2%}; training time {state.get('train_seconds', 0) / 60:.0f} min with
  {_framework(config)}.
{warm}{_teachers(opts)}"""
    return {"opts": opts, "arch": archs.get(opts["arch"]), "params": config["params"],
            "bullets": bullets, "commands": "".join(c + "\n      " for c in stages) + train_command, "chosen": chosen}


def _out_of(command: str) -> str | None:
    """The --out a command line names (home as ~), or None."""
    argv = command.split()
    return _tilde(argv[argv.index("--out") + 1]) if "--out" in argv[:-1] else None


def _out_folder(run: RunFolder) -> str:
    """Where the run's command wrote its checkpoints (its --out): the run folder itself, or, for
    a run whose reports are all that was committed, the folder its command names."""
    return _out_of(_command(run)) or _tilde(str(run))


def _fast_section(fast: dict, run: RunFolder) -> str:
    """The card's section on the fast model (`fer_fast_int8.tflite`, `--model fast`)."""
    return f"""
## The fast model (`fer_fast_int8.tflite`, `fer-edge classify --model fast`)

- Architecture: `{fast['opts']['arch']}` — {fast['arch'].description}
- Parameters: {fast['params']:,}; the same input, output and metadata as `fer_int8.tflite`;
  full integer int8 only.
{fast['bullets']}- Reproduce (before the evaluate above):

      {fast['commands']}
      fer-edge export --model {_out_folder(run)}/{fast['chosen']} --quantize int8
      cp {_out_folder(run)}/fer_int8.tflite models/fer_fast_int8.tflite

  Its figures are the `fer_fast_int8.tflite` rows of the results below.
"""


def _peer_section(path: Path) -> str:
    """Per-face latency beside `fer`'s model, from benchmarks/peer_latency.py's JSON."""
    bench = json.loads(path.read_text())
    names = [Path(m).name for m in bench["p50_ms"]]
    peers = bench.get("peers", {})             # other packages' models, by their own names

    def label(m: str) -> str:
        if m in peers:
            return f"`{peers[m]}` (from PyPI)"
        return f"`{Path(m).name if names.count(Path(m).name) == 1 else _tilde(m)}`"

    rows = "".join(f"| {label(m)} | {ms:.3f} | {bench['ratio_to_fer'][m]:.2f} |\n"
                   for m, ms in bench["p50_ms"].items() if m != "fer")
    return f"""
## Per-face latency beside `fer`

From `{path}`, written by `{bench.get('command', 'benchmarks/peer_latency.py')}`: LiteRT,
batch 1, {bench['threads']} thread, {bench['rounds']} interleaved rounds of {bench['runs']}
invokes in one process on {bench.get('host', {}).get('cpu', 'a CPU it does not name')}, the
peers' models taken from their PyPI packages at run time (`benchmarks/peer_latency.py` says how
each runs). Each invoke sets the input, runs the model and reads the output: the model alone, so
these times are below the results table's, which also convert the input. Ratios below 1 are
faster than `fer`; absolute times vary with the machine, ratios much less.

| model | p50 ms | / `fer` |
|---|---:|---:|
{rows}| `fer` (its tflite) | {bench['p50_ms']['fer']:.3f} | 1.00 |
"""


def _outside_section(path: Path, models: list[str]) -> str:
    """Faces from outside FER2013, from benchmarks/outside_faces.py's JSON: each set's figure
    for the models of the card's report (by path) that it scored."""
    bench = json.loads(path.read_text())
    results = bench["results"]
    sets = list(next(iter(results.values())))
    rows = "".join(f"| `{Path(m).name}` | " + " | ".join(f"{results[m][s]['score']:.2%}"
                                                       for s in sets)
                   + " |\n" for m in models if m in results)
    if not rows:
        return ""
    first = next(iter(results.values()))
    metrics = " | ".join(f"{s} ({first[s]['metric'].replace('_', ' ')}, n={first[s]['n']})"
                         for s in sets)
    return f"""
## Faces from outside FER2013

From `{path}`, written by `benchmarks/outside_faces.py` (the sets, their licences and how each
is scored: `benchmarks/outside_faces.md`; none is in the repository).

| model | {metrics} |
|---|{'---:|' * len(sets)}
{rows}"""


def _role(name: str) -> str:
    """"the default model" or how `classify --model` names the model family `name`."""
    int8 = f"{name}_int8.tflite"
    if int8 == defaults.DEFAULT_MODEL_NAME:
        return "the default model"
    known = [k for k, v in defaults.SHIPPED_MODELS.items() if v == int8]
    return f"`--model {known[0]}`" if known else f"`{int8}`"


def write_card(run, report, out, train_command: str, fast_run=None,
               fast_train_command: str = None, peer_latency=None, force: bool = False,
               name: str = "fer", outside=None, checkpoint: str = None,
               rule: str = None) -> Path:
    cfg = checked("card", {"run": run, "report": report, "out": out,
                           "train_command": train_command, "fast_run": fast_run,
                           "fast_train_command": fast_train_command,
                           "peer_latency": peer_latency, "force": force, "name": name,
                           "outside": outside, "checkpoint": checkpoint, "rule": rule})
    if cfg.checkpoint and not cfg.rule:
        raise FerEdgeError("--checkpoint needs --rule: the file where the rule that chose it "
                           "is written")
    if bool(cfg.fast_run) != bool(cfg.fast_train_command):
        raise FerEdgeError("--fast-run and --fast-train-command go together (the fast model's "
                           "run folder and the command that trained it)")
    run, report = RunFolder(cfg.run), Path(cfg.report)
    out = check_writable(cfg.out, force)
    if not (report / "report.json").is_file():
        raise FerEdgeError(f"missing {report / 'report.json'}: run `fer-edge evaluate --out "
                           f"{report}` first")
    result = json.loads((report / "report.json").read_text())
    main = _training(run, train_command, cfg.checkpoint, cfg.rule)
    opts, chosen = main["opts"], main["chosen"]
    fast = ""
    if cfg.fast_run:
        fast_folder = RunFolder(cfg.fast_run)
        fast = _fast_section(_training(fast_folder, cfg.fast_train_command), fast_folder)
    # the evaluate command that wrote the report: its models, in its order
    evaluated = " ".join(dict.fromkeys(v["model"] for v in result["variants"]))
    outside_rows = _outside_section(Path(cfg.outside), list(dict.fromkeys(
        v["model"] for v in result["variants"]))) if cfg.outside else ""
    peers = _peer_section(Path(cfg.peer_latency)) if cfg.peer_latency else ""
    rel = lambda p: Path(p).name  # noqa: E731
    curves = "curves.png" if name == "fer" else f"curves_{name}.png"   # one report folder
    tta = " --tta" if any(v.get("tta") for v in result["variants"]) else ""
    # where the reproduce block's train command (the one given, else the run's own) writes
    out_folder = _out_of(train_command) or _out_folder(run)
    text = f"""# Model card: fer-edge `{name}` models, {_role(name)} (`{opts['arch']}`)

Generated by `fer-edge card` from `{run}/config.json`, `{run}/metrics.json` and
`{report}/report.json` (written by `fer-edge evaluate`). Do not edit the figures by hand.

## Model

- Architecture: `{opts['arch']}` — {main['arch'].description}
- Parameters: {main['params']:,}; input 48x48x1 grayscale, raw grey levels 0..255 (the model
  rescales internally); output: softmax over `{' '.join(labels_for(classes(opts)))}`.
- Files: `{name}.keras` (Keras 3), `{name}_float16.tflite`, `{name}_int8.tflite` (full integer:
  int8 weights and activations, int8 input/output; {_role(name)} of `fer-edge classify`). Each
  `.tflite` carries its labels, input size, normalisation and quantization parameters in its
  metadata.

## Training

{main['bullets']}- Reproduce (from the repository root; `--data` names where FER2013's folder tree was
  when the models were made: give yours):

      {main['commands']}
      fer-edge export --model {out_folder}/{chosen} --quantize all
      {_save_command(opts, f"{out_folder}/{chosen}", name)}
      cp {out_folder}/fer_float16.tflite models/{name}_float16.tflite && cp {out_folder}/fer_int8.tflite models/{name}_int8.tflite
      cp {out_folder}/curves.png {report}/{curves}
      fer-edge evaluate --data ../shared/fer2013 --split test --models {evaluated} \\
          --out {report}{tta}

  `{name}.keras` is {_saved_is(opts, chosen)}. The int8
  calibration set is the committed manifest `calibration/fer2013_train_calib.json`
  ({_calibration()}). Training curves: `{rel(report)}/{curves}`.
{fast}
## Results on FER2013 PrivateTest (`test/`, {result['n']} faces)

{markdown(result).split(chr(10), 2)[2].strip()}

Confusion matrices: `{rel(report)}/confusion_*.png`; accuracy vs latency vs size:
`{rel(report)}/tradeoff.png`.
{outside_rows}{peers}
## Intended use

{INTENDED_USE}

## Limitations and biases

{LIMITATIONS.format(scarce=_scarce_class(run.config, result, name))}
## Licence

{LICENCE}
"""
    write_text(out, text)
    return out
