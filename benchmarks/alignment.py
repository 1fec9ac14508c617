"""Does levelling the eyes before the crop help? Detect + classify with and without alignment on
upright and tilted copies (+-15, +-30 degrees, canvas expanded, border repeated) of
  - the photos of ../shared/photos whose labels.csv names an expected emotion (the main face),
  - FER2013 PublicTest (val) faces, upscaled to 192 px (--val-faces N; never the test split).
Reports per angle and setting: faces found, correct-emotion rate, and agreement with the
same setting's prediction on the upright (0 degrees) face: how little a tilt changes the answer.
Prints JSON.

    python benchmarks/alignment.py [--photos ../shared/photos] [--data ../shared/fer2013]
        [--val-faces 600] [--out reports/alignment.json]
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from detectors import rotate  # noqa: E402
from fer_edge import defaults  # noqa: E402
from fer_edge.edge.classify import Classifier  # noqa: E402
from fer_edge.edge.fileio import write_json  # noqa: E402
from fer_edge.edge.preprocessing import LABELS  # noqa: E402
from fer_edge.edge.sources import read_image  # noqa: E402

ANGLES = (0, 15, -15, 30, -30)
VAL_FACE_SIDE = 192


def photo_faces(photos: Path):
    rows = [r for r in csv.DictReader(open(photos / "labels.csv", newline=""))
            if r["expected_emotion"]]
    return [(r["file"], read_image(photos / r["file"]), r["expected_emotion"]) for r in rows]


def val_faces(data: Path, n: int, seed: int = 0):
    from fer_edge import data as fdata

    split = fdata.load(data).split("val")
    idx = np.random.default_rng(seed).choice(len(split), size=min(n, len(split)), replace=False)
    out = []
    for i in idx:
        face = cv2.resize(split.x[i], (VAL_FACE_SIDE, VAL_FACE_SIDE),
                          interpolation=cv2.INTER_LINEAR)
        out.append((str(split.ids[i]), cv2.cvtColor(face, cv2.COLOR_GRAY2BGR),
                    LABELS[int(split.y[i])]))
    return out


def main_face(faces: list[dict]) -> str | None:
    """The emotion of the largest face (None when no face was found)."""
    if not faces:
        return None
    return max(faces, key=lambda f: f["box"][2] * f["box"][3])["emotion"]


def measure(items, classifiers) -> dict:
    preds = {}
    for name, image, _ in items:
        for angle in ANGLES:
            img = image if angle == 0 else rotate(image, angle)
            for setting, clf in classifiers.items():
                preds[(name, angle, setting)] = main_face(clf.faces(img))
    table = {}
    for angle in ANGLES:
        for setting in classifiers:
            got = [preds[(n, angle, setting)] for n, _, _ in items]
            upright = [preds[(n, 0, setting)] for n, _, _ in items]
            truth = [t for _, _, t in items]
            table[f"{angle:+d}/{setting}"] = {
                "found": round(float(np.mean([g is not None for g in got])), 4),
                "correct": round(float(np.mean([g == t for g, t in zip(got, truth)])), 4),
                "agree_with_upright": round(float(np.mean(
                    [g == u for g, u in zip(got, upright)])), 4),
            }
    tilted = [a for a in ANGLES if a]
    for setting in classifiers:
        table[f"tilted/{setting}"] = {k: round(float(np.mean(
            [table[f"{a:+d}/{setting}"][k] for a in tilted])), 4)
            for k in ("found", "correct", "agree_with_upright")}
    return {"faces": len(items), "table": table}


def main(photos=str(REPO.parent / "shared" / "photos"), data=str(REPO.parent / "shared" /
         "fer2013"), val_faces_n: int = 600, model: str = None, out: str = None):
    """Alignment on/off, upright and tilted; `model` defaults to the shipped int8."""
    classifiers = {s: Classifier(model, align=(s == "align")) for s in ("no_align", "align")}
    result = {"model": str(model or defaults.default_model().name),
              "detector": classifiers["align"].detector_name, "angles": list(ANGLES)}
    if (Path(photos) / "labels.csv").exists():
        result["photos"] = measure(photo_faces(Path(photos)), classifiers)
    if val_faces_n and Path(data).exists():
        result["fer2013_val"] = measure(val_faces(Path(data), val_faces_n), classifiers)
    print(json.dumps(result, indent=1))
    if out:
        write_json(Path(out), result)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
