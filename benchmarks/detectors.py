"""Compare the face detectors of `fer-edge classify` (all in the plain runtime install): face
counts against labels.csv on two kinds of picture, and milliseconds per image. Prints JSON.

    python benchmarks/detectors.py [--photos ../shared/photos] [--repeat 3] [--out F.json]

"scenes" (whole photos, faces of any size; expected count from labels.csv): the photos;
mirrored; rotated 15 degrees (canvas expanded, so no face leaves the frame); scaled to 50%; a 2x2
collage of four single-face photos (4 faces); the single-face photos shifted so the face is cut by
the left border (still 1 face).
"closeups" (the face fills the frame, like profile pictures and pre-cropped faces): every face of
the photos cut at its box (found by a reference detector on the photo) and resized to each of
CROP_SIDES px (1 face each). Per kind: exact face counts, and of the images that hold a face,
the share where one was found ("found_share"; for close-ups, the face).
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_edge.edge import detect  # noqa: E402
from fer_edge.edge.sources import decode, quiet_native_stderr  # noqa: E402
from fer_edge.edge.fileio import write_json  # noqa: E402
from fer_edge.machine import host  # noqa: E402


def rotate(img, deg):
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * s + w * c), int(h * c + w * s)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(img, m, (nw, nh), borderMode=cv2.BORDER_REPLICATE)


def _square(img, side):
    h, w = img.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return cv2.resize(img[y:y + s, x:x + s], (side, side), interpolation=cv2.INTER_AREA)


CROP_SIDES = (40, 56, 80, 112, 160, 224, 300, 400)
KINDS = {"scenes": ("photo", "mirror", "rot15", "half", "collage", "border"),
         "closeups": ("crop",)}


def tight_crops(base, reference):
    """Each face of each photo cut at the reference detector's box, at every CROP_SIDES size."""
    out = []
    for n, im, _ in base:
        for i, (x, y, w, h) in enumerate(reference(im)):
            face = im[y:y + h, x:x + w]
            for side in CROP_SIDES:
                interp = cv2.INTER_AREA if side < w else cv2.INTER_LINEAR
                out.append((f"crop/{n}#{i}@{side}", cv2.resize(face, (side, side),
                                                               interpolation=interp), 1))
    return out


def variants(photos: Path, haar_ref, crop_ref):
    """(name, image, expected faces) for the photos and their synthetic variants."""
    rows = list(csv.DictReader(open(photos / "labels.csv", newline="")))
    base = []
    for r in rows:
        img, _, _ = decode(np.fromfile(photos / r["file"], np.uint8))
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        base.append((r["file"], img, int(r["faces"])))
    out = [(f"photo/{n}", im, k) for n, im, k in base]
    out += [(f"mirror/{n}", cv2.flip(im, 1), k) for n, im, k in base]
    out += [(f"rot15/{n}", rotate(im, 15), k) for n, im, k in base]
    out += [(f"half/{n}", cv2.resize(im, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA), k)
            for n, im, k in base]
    singles = [(n, im) for n, im, k in base if k == 1]
    if len(singles) >= 4:
        tiles = [_square(im, 320) for _, im in singles[:4]]
        collage = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
        out.append(("collage/2x2", collage, 4))
    for n, im in singles:
        # cut the face (as found by a reference detector on the photo) by the left border:
        # keep from 35% into the face box onwards
        boxes = haar_ref(im)
        if len(boxes) != 1:
            continue
        x, y, w, h = boxes[0]
        out.append((f"border/{n}", np.ascontiguousarray(im[:, x + int(0.35 * w):]), 1))
    return out + tight_crops(base, crop_ref)


def main(photos=str(REPO.parent / "shared" / "photos"), repeat: int = 3, threads: int = 1,
         detectors=",".join(d for d in detect.DETECTORS if d != "auto"), out: str = None):
    """Face counts vs labels.csv and ms per image for each detector (repeat: timed runs per
    image, median)."""
    photos = Path(photos)
    if not (photos / "labels.csv").exists():
        sys.exit(f"no labels.csv in {photos}")
    items = variants(photos, detect.get("haar_alt2"), detect.get("blazeface_dual"))
    result = {"command": " ".join(["python", "benchmarks/detectors.py", *sys.argv[1:]]),
              "host": host(), "photos": str(photos), "images": len(items), "repeat": repeat,
              "threads": threads, "detectors": {}}
    for name in (detectors if isinstance(detectors, (tuple, list)) else detectors.split(",")):
        with quiet_native_stderr(always=True):
            det = detect.get(name, threads=threads)
        per_image, ms_photos, ms_all, groups = {}, [], [], {}
        for key, img, expected in items:
            det(img)  # warm-up
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                found = len(det(img))
                times.append((time.perf_counter() - t0) * 1000)
            ms = statistics.median(times)
            ms_all.append(ms)
            if key.startswith("photo/"):
                ms_photos.append(ms)
            per_image[key] = [found, expected]
            g = groups.setdefault(key.split("/")[0], {"exact": 0, "images": 0, "found": 0,
                                                      "expected": 0, "any_found": 0,
                                                      "with_face": 0})
            g["images"] += 1
            g["with_face"] += int(expected > 0)
            g["any_found"] += int(found > 0 and expected > 0)
            g["exact"] += int(found == expected)
            g["found"] += found
            g["expected"] += expected
        kinds = {kind: {k: sum(groups[v][k] for v in members if v in groups)
                        for k in ("exact", "images", "any_found", "with_face")}
                 for kind, members in KINDS.items()}
        for k in kinds.values():
            k["exact_share"] = round(k["exact"] / max(1, k["images"]), 4)
            # of the images that hold a face, the share where the detector found one
            k["found_share"] = round(k.pop("any_found") / max(1, k.pop("with_face")), 4)
        result["detectors"][name] = {
            "exact_images": sum(g["exact"] for g in groups.values()),
            "by_kind": kinds,
            "by_variant": groups,
            "ms_per_photo_median": round(statistics.median(ms_photos), 2),
            "ms_per_image_mean": round(statistics.mean(ms_all), 2),
            "counts_found_expected": per_image,
        }
    print(json.dumps(result, indent=1))
    if out:
        write_json(Path(out), result)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
