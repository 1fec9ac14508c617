"""The toolkit's constants: file names, the shipped models, the edge runtime's settings. Each
command option's default is declared with the option, in options.py (the runtime ones below are
named there, so the Classifier API and `classify` share them)."""

import os
from importlib import resources
from pathlib import Path

from .errors import FerEdgeError

# Training: each option's base default is in options.py (the table); recipes in archs.py.
SWA_LR_FRACTION = 0.25

# Export
QUANTIZE_MODES = ("float32", "float16", "dynamic", "int8")
EXPORT_NAMES = {m: f"fer_{m}.tflite" for m in QUANTIZE_MODES}
CALIB_MANIFEST_NAME = "fer2013_train_calib.json"

# Evaluation
EVAL_WARMUP = 50

# Edge runtime
DEFAULT_MODEL_NAME = "ferplus_int8.tflite"
# Shipped models `classify --model NAME` knows by name (files in models/): "fer2013" learned
# FER2013's one-annotator labels, "ferplus" FER+'s 10-annotator votes (models/MODEL_CARD*.md).
SHIPPED_MODELS = {"default": DEFAULT_MODEL_NAME, "fast": "fer_fast_int8.tflite",
                  "fer2013": "fer_int8.tflite", "ferplus": "ferplus_int8.tflite"}
SHIPPED_REPORT = "eval/report.json"   # their evaluate report, inside models/
SHIPPED_LATENCY = "eval/peer_latency.json"   # their time per face beside fer's (benchmarks/)
FACE_MARGIN = 0.1         # extra border around a detected face, as a fraction of its size
MAX_IMAGE_SIDE = 4096     # larger images are downscaled before detection (memory, speed)
# The largest image (width x height, read from its header before decoding) any entry point
# decodes, unless --max-pixels says otherwise: a 50-megapixel phone photo passes, a 1 MB PNG of
# 30000 x 30000 pixels (1.8 GB decoded) does not.
MAX_PIXELS = 200_000_000
DETECTOR = "auto"         # classify's face detector: both BlazeFace models merged (detect.py)
ALIGN_FACES = True        # level the eyes before the crop (reports/alignment.json)
CLASSIFY_THREADS = 1      # LiteRT threads of `classify`
VIDEO_EVERY = 1           # classify every Nth video frame
VIDEO_SMOOTH = 0.0        # weight of the past in a track's score average (0: no smoothing)
VIDEO_DETECT_EVERY = 30   # the full-frame face detector on every Nth classified frame (and on a
                          # lost face, a scene cut or motion away from the followed faces); in
                          # between, each face followed by optical flow and checked by
                          # BlazeFace in a crop around it (edge/video.py); a face that appears
                          # without moving is found within N frames. 1: the full detector on
                          # every frame (benchmarks/e2e_speed.py measures both)


def package_path(subpackage: str) -> Path:
    """Folder of `fer_edge.<subpackage>` (the repo's top-level `calibration/`, `models/`), in an
    installed and in an editable checkout alike."""
    return Path(str(resources.files(f"fer_edge.{subpackage}")))


def calib_manifest() -> Path:
    return package_path("calibration") / CALIB_MANIFEST_NAME


def default_model() -> Path:
    return package_path("models") / DEFAULT_MODEL_NAME


def shipped_model(name: str | os.PathLike | None) -> Path:
    """A --model (classify, serve, batch) or --models (evaluate) value as a file: a shipped
    model's name ("default", "fast", ...; None is "default") as its installed file, any other
    value as the path it is. A bare word that is neither a file nor a shipped name, or a shipped
    name whose file is not installed, ends in one line. The one lookup of the shipped names."""
    key = str(name) if name else "default"
    if key not in SHIPPED_MODELS:
        path = Path(name)
        if not path.exists() and not path.suffix and len(path.parts) == 1:
            raise FerEdgeError(f"model not found: {key} is neither a file nor a shipped model "
                               f"({', '.join(SHIPPED_MODELS)})")
        return path
    path = package_path("models") / SHIPPED_MODELS[key]
    if not path.exists():
        raise FerEdgeError(
            f"no {key} model is shipped ({path} does not exist); pass one with "
            f"--model PATH.tflite (export a trained model with `fer-edge export`)")
    return path
