"""Every default of the toolkit, in one place. Architectures override the training ones with
their own recipe (`archs.register(..., **recipe)`); the CLI overrides anything."""

from importlib import resources
from pathlib import Path

# Training (the base; each architecture's recipe in archs.py replaces what it names).
TRAIN = dict(
    arch="seed",
    epochs=60,
    batch_size=64,
    learning_rate=1e-4,
    decay=0.0,              # Keras-2 style: lr / (1 + decay * iterations)
    schedule="decay",       # "decay" (+ ReduceLROnPlateau) or "cosine" (warm-up + cosine)
    warmup_epochs=0,
    weight_decay=0.0,       # decoupled (AdamW) when > 0
    augment="seed",         # "seed" (ImageDataGenerator-like), "edge" (stronger), "none"
    erasing=0.0,            # probability of random erasing per image
    label_smoothing=0.0,
    class_weight="none",    # "none", "balanced", "sqrt"
    early_stopping_patience=15,  # 0: off
    reduce_lr_patience=5,
    reduce_lr_factor=0.5,
    val_fraction=0.1,       # only used when the data has no val split (Kaggle layout)
    seed=0,
    time_budget=None,       # seconds (or "90m", "2h"): stop cleanly, keep the best checkpoint
    track_test=False,       # also log test accuracy/loss each epoch (a curve to report, never
                            # used for selection: checkpoints and early stopping watch val)
    init=None,              # a .keras model of the same architecture to start from (warm restart)
    swa_start=None,         # SWA: average the weights of every epoch after this one (swa.keras)
    swa_lr=None,            # SWA: the constant lr after swa_start (cosine decays to it); None:
                            # learning_rate * SWA_LR_FRACTION
    teacher=None,           # distillation: .keras teachers, comma-separated (distill.py)
    distill_weight=0.7,     # share of the teachers' soft targets in the training target
    temperature=2.0,        # softening of the teachers' probabilities (softmax of logits / T)
    teacher_flip=True,      # teachers also score each face's mirror image (averaged)
    qat=False,              # quantization-aware fine-tuning of an --init model (qat.py)
    target="fer2013",       # "fer2013" (the one-annotator labels), "ferplus" (the FER+ vote
                            # distribution) or "mix" (votes.py)
    ferplus_weight=0.5,     # --target mix: share of the vote distribution in the target
    votes=None,             # FER+ votes file (None: the one beside the data)
    select="auto",          # checkpoint selection on val: "fer2013" labels, "ferplus" majority,
                            # "auto": fer2013 for --target fer2013, else ferplus
)
SWA_LR_FRACTION = 0.25

# Export
QUANTIZE_MODES = ("float32", "float16", "dynamic", "int8")
EXPORT_NAMES = {m: f"fer_{m}.tflite" for m in QUANTIZE_MODES}
CALIB_SIZE = 500
CALIB_SEED = 0
CALIB_MANIFEST_NAME = "fer2013_train_calib.json"

# Evaluation
EVAL_SPLIT = "test"
EVAL_THREADS = 1
EVAL_LATENCY_RUNS = 500
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
DETECTOR = "auto"         # classify's face detector: both BlazeFace models merged (detect.py)
ALIGN_FACES = True        # level the eyes before the crop (reports/alignment.json)
CLASSIFY_THREADS = 1      # LiteRT threads of `classify`
VIDEO_EVERY = 1           # classify every Nth video frame
VIDEO_SMOOTH = 0.0        # weight of the past in a track's score average (0: no smoothing)
VIDEO_DETECT_EVERY = 1    # run the face detector on every Nth classified frame, optical flow
                          # between (1: every frame; benchmarks/e2e_speed.py measures the trade)


def package_path(subpackage: str) -> Path:
    """Folder of `fer_edge.<subpackage>` (the repo's top-level `calibration/`, `models/`), in an
    installed and in an editable checkout alike."""
    return Path(str(resources.files(f"fer_edge.{subpackage}")))


def calib_manifest() -> Path:
    return package_path("calibration") / CALIB_MANIFEST_NAME


def default_model() -> Path:
    return package_path("models") / DEFAULT_MODEL_NAME


def shipped_model(name: str) -> Path:
    return package_path("models") / SHIPPED_MODELS[name]
