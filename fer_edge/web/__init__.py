"""`fer-edge export --target web`: a static folder that runs classify in the browser.

    index.html, fer-web.js, pipeline.js, imageops.js   the page and its script
    fer-web.json                                        labels and the runtime's settings
    model.tflite                                        the emotion model (float ends, batch 1)
    face_detection_{full,short}_range.tflite            BlazeFace, as classify uses it
    litert/                                             LiteRT.js 2.5 (Apache-2.0), vendored

Every file is local: served by any static server (python -m http.server), the page works
offline, and no picture leaves the device. By default it opens the camera and draws each
face's box and emotion; `index.html?image=URL` classifies that image and writes classify's
JSON into the element #result. The page's script does what the CLI does (detect.py,
preprocessing.py, classify.py; fer-web.json carries their constants), so its answers are
classify's.

Only numpy, flatbuffers and LiteRT's Python package (the runtime install) are needed here, so
`serve` builds the same page for its model without TensorFlow (`page_files`). The LiteRT.js
files are vendored from npm, pinned in litert/PIN.json (vendor_litert.py refreshes them): an
export needs neither Node nor a network.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__, defaults
from ..errors import FerEdgeError

HERE = Path(__file__).resolve().parent
PAGE = ("index.html", "fer-web.js", "pipeline.js", "imageops.js")
MODEL_FILE = "model.tflite"
CONFIG_FILE = "fer-web.json"
LICENCE = "LICENSE-Apache-2.0.txt"
NOTICE = """\
This page was written by fer-edge (MIT licence) for the emotion model {model}.

It includes third-party files, each under the Apache License, Version 2.0 (litert/{licence}):
- litert/: LiteRT.js {litert} (npm @litertjs/core and @litertjs/wasm-utils, Copyright Google
  LLC), copied unmodified from the npm packages (their integrity and each file's sha256 in
  litert/PIN.json).
- face_detection_full_range.tflite, face_detection_short_range.tflite: MediaPipe BlazeFace
  face detectors, Copyright Google LLC, unmodified.
"""


# the page's framing map (pipeline.js): the weight of the past in an average over a track's
# full-detection frames (classify's path takes the median of a track's recent measures instead)
PAGE_FRAMING_KEEP = 0.5

def default_out(model) -> Path:
    """Where the page goes when --out is left out: a folder `web` beside the model."""
    return Path(model).parent / "web"


def page_files(model, labels=None) -> dict[str, bytes]:
    """The page's files for the emotion model `model` (a .tflite): relative path -> bytes.
    Raises FerEdgeError (one line) for a model the page cannot run."""
    from ..edge import detect
    from ..edge.runtime import EmotionModel
    from ..edge.preprocessing import canonical_label
    from ..edge.sources import quiet_native_stderr
    from .float_io import for_page

    path = Path(model)
    if path.suffix.lower() != ".tflite":
        raise FerEdgeError(f"--target web takes an exported .tflite model, not {path.name} "
                           f"(export a .keras model with `fer-edge export --model {path}` "
                           f"first)")
    with quiet_native_stderr():                     # LiteRT's INFO line, in the command
        emotion = EmotionModel(path, labels=labels)  # the CLI's checks: 48x48x1, labels
    buf = path.read_bytes()
    files = {name: (HERE / "assets" / name).read_bytes() for name in PAGE}
    files[MODEL_FILE] = for_page(buf)
    for key in ("blazeface_full", "blazeface"):
        name = detect._BLAZE[key][0]
        files[name] = (detect.ASSETS / name).read_bytes()
    pin = _litert_pin()
    for name, digest in pin["files"].items():
        files[f"litert/{name}"] = _vendored(name, digest)
    files["litert/PIN.json"] = (HERE / "litert" / "PIN.json").read_bytes()
    files[f"litert/{LICENCE}"] = (detect.ASSETS / LICENCE).read_bytes()
    version = pin["packages"]["@litertjs/core"]["version"]
    files["NOTICE"] = NOTICE.format(model=path.name, licence=LICENCE,
                                    litert=version).encode()
    names = [canonical_label(lab) or lab for lab in emotion.labels]
    files[CONFIG_FILE] = (json.dumps(config(path.name, names, emotion.kind, version),
                                     indent=2) + "\n").encode()
    return files


def config(model_name: str, labels: list[str], kind: str, litert: str) -> dict:
    """fer-web.json: what pipeline.js reads, each value from the module the CLI takes it from."""
    from ..edge import detect, video
    from ..edge.classify import MIN_IMAGE_SIDE

    def blaze(key):
        file, side, strides, interpolated = detect._BLAZE[key]
        return {"file": file, "side": side, "strides": list(strides),
                "interpolated": interpolated}

    return {"fer_edge": __version__, "model": MODEL_FILE, "source_model": model_name,
            "kind": kind, "labels": labels, "litert": litert,
            "detector": detect.resolve(defaults.DETECTOR),
            "detectors": {"full": blaze("blazeface_full"), "short": blaze("blazeface")},
            "blazeface": {"min_score": detect.BLAZE_MIN_SCORE, "nms_iou": detect.BLAZE_NMS_IOU,
                          "raw_score_limit": detect.BLAZE_RAW_SCORE_LIMIT},
            "dual_same_face": {"iou": detect.DUAL_SAME_FACE_IOU,
                               "inside": detect.DUAL_SAME_FACE_INSIDE},
            "margin": defaults.FACE_MARGIN, "align": defaults.ALIGN_FACES,
            "max_image_side": defaults.MAX_IMAGE_SIDE, "min_image_side": MIN_IMAGE_SIDE,
            "video": {"detect_every": defaults.VIDEO_DETECT_EVERY,
                      "roi_scale": video.ROI_SCALE, "framing_keep": PAGE_FRAMING_KEEP,
                      "motion": {"thumb_step": video.MOTION_THUMB_STEP, "diff": video.MOTION_DIFF,
                                 "keep_out": video.MOTION_KEEP_OUT,
                                 "min_pixels": video.MOTION_MIN_PIXELS}}}


def _litert_pin() -> dict:
    try:
        return json.loads((HERE / "litert" / "PIN.json").read_text())
    except (OSError, ValueError):
        raise FerEdgeError(f"{HERE / 'litert' / 'PIN.json'} is missing or damaged: reinstall "
                           f"fer-edge") from None


def _vendored(name: str, digest: str) -> bytes:
    """A LiteRT.js file of the package, checked against its pinned sha256."""
    import hashlib

    path = HERE / "litert" / name
    data = path.read_bytes() if path.is_file() else b""
    if hashlib.sha256(data).hexdigest() != digest:
        raise FerEdgeError(f"{path} is missing or not the pinned LiteRT.js file: reinstall "
                           f"fer-edge")
    return data


def build(model, out=None, force: bool = False, labels=None) -> list[Path]:
    """Write the page for `model` into `out` (default: `web` beside the model); returns the
    written paths. Every file is checked before any is written: an existing one is kept
    unless `force`."""
    from ..edge.fileio import check_writable, write_bytes

    out = Path(out) if out else default_out(model)
    if out.exists() and not out.is_dir():
        raise FerEdgeError(f"--out {out} is a file: the page is a folder")
    files = page_files(model, labels)
    targets = {name: check_writable(out / name, force) for name in files}
    for name, data in files.items():
        write_bytes(targets[name], data)
    return list(targets.values())
