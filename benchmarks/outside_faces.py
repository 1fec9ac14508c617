"""Faces from outside FER2013: every model decision looks at them beside FER2013's val split.

Four public labelled sets (sources, licences, counts and cropping in benchmarks/outside_faces.md;
none may be redistributed, so none is in the repository): build each set's folder from a clone of
its repository with `prepare`, then score models with `score`.

    git clone https://github.com/muxspace/facial_expressions /tmp/mux
    git clone https://github.com/WuJie1010/Facial-Expression-Recognition.Pytorch /tmp/ckp
    git clone https://github.com/lai-wei-cheng/b12207073 /tmp/tw
    python benchmarks/outside_faces.py prepare --ckplus /tmp/ckp --muxspace /tmp/mux \
        --taiwanese /tmp/tw --out ~/fer-edge-outside
    python benchmarks/outside_faces.py score --sets ~/fer-edge-outside \
        --models models/fer_int8.tflite,models/fer_fast_int8.tflite --out reports/x.json

How each set is scored (the same for every model, .keras or .tflite):
- `ckplus` (posed, lab): the 48x48 face crops as given; 6 emotions (CK+ has no neutral frames):
  the answer is the highest of the model's 6 emotion scores, as the posed-face column of the
  FER+ issue was scored; contempt frames left out; subject S055 left out (3 of its frames are a
  FER2013 Training image).
- `muxspace` (in the wild: LFW news photos, film stills): detect + crop as `classify` does
  (BlazeFace, eyes levelled, the largest face; the whole image when none is found); its disgust
  (mostly mislabelled crops) and fear (21 images) and contempt (9) are left out; the figure is
  the mean recall over angry, happy, neutral, sad and surprise, so the 12,557 happy and neutral
  faces do not drown the rest.
- `jaffe` (posed, 68 images of the JAFFE set found in the muxspace repository): detect + crop,
  7 classes; a sanity check, too small to decide anything alone.
- `taiwanese` (posed by 29 professional Taiwanese actors, studio, frontal; the normative set of
  Chen, Cho & Tseng 2013, each photo rated by student observers): detect + crop; a face is kept
  when the expression its actor performed is also the one most observers chose (7 classes,
  calm = neutral); the figure is the mean recall over the 7 classes (fear has 25 faces, happy 225).
The crops are made once per set and detector and cached beside the set (crops_<detector>.npz).
`overlap --sets DIR --name SET --data ../shared/fer2013` checks a set for FER2013 faces (each
crop's highest pixel correlation with any FER2013 face; outside_faces.md gives the figures).
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_edge.edge.fileio import write_json  # noqa: E402
from fer_edge.edge.preprocessing import LABELS, face_to_input  # noqa: E402

# name -> the repository and commit the set was read from, and how it is scored
SETS = {
    "ckplus": dict(repo="https://github.com/WuJie1010/Facial-Expression-Recognition.Pytorch",
                   commit="fefe6653f3e09912693a73c54e6a8247adca3090", detect=False,
                   scored=("angry", "disgust", "fear", "happy", "sad", "surprise"),
                   argmax_over="scored", metric="accuracy", exclude_prefix=("S055_",)),
    "muxspace": dict(repo="https://github.com/muxspace/facial_expressions",
                     commit="5fb9c13afac07c55eae8d25eb6b50af344ad60c9", detect=True,
                     scored=("angry", "happy", "neutral", "sad", "surprise"),
                     argmax_over="all", metric="mean_recall", exclude_prefix=()),
    # the muxspace images that are not LFW's (Name_0001.jpg): 919 small colour
    # crops of film stills, labelled by one student; all 7 classes, plain accuracy (the
    # in-the-wild column of the FER+ issue was measured on this part)
    "films": dict(repo="https://github.com/muxspace/facial_expressions",
                  commit="5fb9c13afac07c55eae8d25eb6b50af344ad60c9", detect=True, folder="muxspace",
                  files=r"(?!.*_\d{4}\.jpg$)", scored=LABELS,
                  argmax_over="all", metric="accuracy", exclude_prefix=()),
    "jaffe": dict(repo="https://github.com/muxspace/facial_expressions",
                  commit="5fb9c13afac07c55eae8d25eb6b50af344ad60c9", detect=True,
                  scored=LABELS, argmax_over="all", metric="accuracy", exclude_prefix=()),
    # unbalanced (happy 225 faces, fear 25): mean recall, so that no class weighs by its count
    "taiwanese": dict(repo="https://github.com/lai-wei-cheng/b12207073",
                      commit="790c44989ebf3b9835806512ce2f929fe441244f", detect=True,
                      scored=LABELS, argmax_over="all", metric="mean_recall", exclude_prefix=()),
}
# the sets' own label spellings -> ours (anything else, contempt included, is left out)
SPELLINGS = {"anger": "angry", "angry": "angry", "disgust": "disgust", "fear": "fear",
             "happy": "happy", "happiness": "happy", "neutral": "neutral", "sadness": "sad",
             "sad": "sad", "surprise": "surprise",
             "AN": "angry", "DI": "disgust", "FE": "fear", "HA": "happy", "NE": "neutral",
             "SA": "sad", "SU": "surprise"}


# ------------------------------------------------------------------------------- prepare

def _git_files(clone: Path, folder: str) -> list[str]:
    out = subprocess.run(["git", "-C", str(clone), "ls-files", folder], check=True,
                         capture_output=True, text=True).stdout
    return sorted(out.split())


def _write_set(out: Path, items: list[tuple[Path | bytes, str, str]]) -> dict:
    """Write (source file or its new bytes, label, name) to out/<label>/<name>, and labels.csv."""
    rows = []
    for src, label, name in items:
        dst = out / label / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src if isinstance(src, bytes) else src.read_bytes())
        rows.append((f"{label}/{name}", label))
    with open(out / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    return {lab: sum(r[1] == lab for r in rows) for lab in sorted({r[1] for r in rows})}


def prepare_ckplus(clone: Path, out: Path) -> dict:
    """CK+48/<emotion>/<subject>_<sequence>_<frame>.png -> out/<label>/."""
    items = []
    for rel in _git_files(clone, "CK+48"):
        _, folder, name = rel.split("/")
        if folder in SPELLINGS:
            items.append((clone / rel, SPELLINGS[folder], name))
    return _write_set(out, items)


def prepare_muxspace(clone: Path, out: Path) -> dict:
    """images/ labelled by data/legend.csv (user, image, emotion); an image given two
    different labels is left out."""
    labels: dict[str, set] = {}
    with open(clone / "data" / "legend.csv", newline="") as f:
        for row in csv.DictReader(f):
            labels.setdefault(row["image"], set()).add(row["emotion"].strip().lower())
    items = [(clone / "images" / name, SPELLINGS[lab], name)
             for name, (lab,) in ((n, tuple(v)) for n, v in sorted(labels.items()) if len(v) == 1)
             if lab in SPELLINGS and (clone / "images" / name).is_file()]
    return _write_set(out, items)


def prepare_jaffe(clone: Path, out: Path) -> dict:
    """The JAFFE files in the muxspace repository's test/ (e.g. KA.AN1.39.jpg)."""
    items = []
    for rel in _git_files(clone, "test"):
        parts = Path(rel).name.split(".")
        if len(parts) == 4 and parts[1][:2] in SPELLINGS and parts[1][:2].isupper():
            items.append((clone / rel, SPELLINGS[parts[1][:2]], Path(rel).name))
    return _write_set(out, items)


# the Taiwanese set: the letter after a file name's 4 digits is the expression the actor
# performed; voting.xls's columns are the share of observers who chose each expression
PERFORMED = {"a": "neutral", "b": "happy", "c": "sad", "d": "angry", "e": "disgust",
             "f": "fear", "g": "surprise"}
VOTE_COLUMNS = {"happy": "happy", "angry": "angry", "sad": "sad", "fear": "fear",
                "disgust": "disgust", "surprise": "surprise", "peace": "neutral"}
TAIWANESE_NAME = re.compile(r"\d{4}([a-g])\d{2}$")
# the database's photos are 1024x1280 (width x height); the repository's copies were squeezed
# to 256x256, so each face is stretched back to 4:5 before it is detected and cropped
TAIWANESE_HEIGHT_PER_WIDTH = 5 / 4


def _votes(sheet_path: Path) -> dict[str, dict[str, float]]:
    """{photo's stem: {label: share of observers}} from the set's voting.xls."""
    import xlrd     # .xls (BIFF) files; the test extra installs it

    sheet = xlrd.open_workbook(str(sheet_path)).sheet_by_index(0)
    header = [str(h).strip() for h in sheet.row_values(0)]
    missing = set(VOTE_COLUMNS) - set(header)
    if "Photo" not in header or missing:
        absent = sorted(missing) or "Photo"
        sys.exit(f"{sheet_path}: not the set's voting sheet (no column {absent})")
    votes = {}
    for r in range(1, sheet.nrows):
        row = dict(zip(header, sheet.row_values(r)))
        if str(row["Photo"]).strip():
            votes[Path(str(row["Photo"]).strip()).stem] = {
                ours: float(row[col]) for col, ours in VOTE_COLUMNS.items()}
    return votes


def prepare_taiwanese(clone: Path, out: Path) -> dict:
    """Taiwanese/faces_256x256/<stem>.jpg, kept where the performed expression (the file name's
    letter) is the one the most observers chose in Taiwanese/voting.xls (a tie at the top, an
    unreadable letter or a photo with no votes is left out); written as <stem>.png at 4:5."""
    votes = _votes(clone / "Taiwanese" / "voting.xls")
    items = []
    for rel in _git_files(clone, "Taiwanese/faces_256x256"):
        stem = Path(rel).stem
        named = TAIWANESE_NAME.fullmatch(stem)
        shares = votes.get(stem)
        if named is None or shares is None:
            continue
        top = max(shares.values())
        chosen = [lab for lab, share in shares.items() if share == top]
        performed = PERFORMED[named.group(1)]
        if chosen == [performed]:
            items.append((_unsqueezed_png(clone / rel), performed, f"{stem}.png"))
    return _write_set(out, items)


def _unsqueezed_png(path: Path) -> bytes:
    """The photo at the database's 4:5 aspect again (its width kept), as PNG bytes."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        sys.exit(f"{path}: not an image")
    width = image.shape[1]
    height = round(width * TAIWANESE_HEIGHT_PER_WIDTH)
    ok, png = cv2.imencode(".png", cv2.resize(image, (width, height),
                                              interpolation=cv2.INTER_CUBIC))
    return png.tobytes()


def prepare(ckplus: str = None, muxspace: str = None, taiwanese: str = None, out: str = None):
    """Build the sets' folders under OUT from clones of their repositories (at the commits in
    SETS; the clone's checked-out files are read)."""
    out = Path(out).expanduser()
    made = {}
    if ckplus:
        made["ckplus"] = prepare_ckplus(Path(ckplus), out / "ckplus")
    if muxspace:
        made["muxspace"] = prepare_muxspace(Path(muxspace), out / "muxspace")
        made["jaffe"] = prepare_jaffe(Path(muxspace), out / "jaffe")
    if taiwanese:
        made["taiwanese"] = prepare_taiwanese(Path(taiwanese), out / "taiwanese")
    print(json.dumps(made, indent=1))


# ------------------------------------------------------------------------------- score

def _labelled(folder: Path, exclude: tuple) -> list[tuple[Path, str]]:
    with open(folder / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [(folder / r["path"], r["label"]) for r in rows
            if r["label"] in LABELS and not Path(r["path"]).name.startswith(exclude)]


def crops(folder: Path, spec: dict, detector: str):
    """(48x48 model inputs, label ids, whether the detector found the face, file names) of a
    set's folder, cached."""
    cache = folder / f"crops_{detector if spec['detect'] else 'given'}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return z["x"], z["y"], z["found"], z["names"]
    from fer_edge.edge.classify import Classifier
    from fer_edge.edge.preprocessing import to_gray
    from fer_edge.edge.sources import read_image

    items = _labelled(folder, spec["exclude_prefix"])
    finder = Classifier(detector=detector) if spec["detect"] else None
    xs, found = [], []
    for path, _ in items:
        image = read_image(path)
        gray = to_gray(image)
        faces = finder._detect(image) if finder is not None else []
        found.append(len(faces) > 0)
        if len(faces):
            largest = int(np.argmax(faces.boxes[:, 2] * faces.boxes[:, 3]))
            xs.append(finder._crops(gray, faces)[largest])
        else:
            xs.append(face_to_input(gray))     # given crop, or no face found: the whole image
    x, found = np.stack(xs), np.array(found)
    y = np.array([LABELS.index(lab) for _, lab in items])
    names = np.array([p.name for p, _ in items])
    np.savez(cache, x=x, y=y, found=found, names=names)
    return x, y, found, names


def set_faces(root: Path, name: str, spec: dict, detector: str):
    """(inputs, labels, found) of one set: its folder's crops, filtered by the set's `files`."""
    x, y, found, names = crops(root / spec.get("folder", name), spec, detector)
    if "files" in spec:
        keep = np.array([re.match(spec["files"], n) is not None for n in names], bool)
        x, y, found = x[keep], y[keep], found[keep]
    return x, y, found


def score_set(scores: np.ndarray, y: np.ndarray, spec: dict) -> dict:
    """Accuracy, mean recall and per-class recall over the set's scored classes."""
    scored = [LABELS.index(lab) for lab in spec["scored"]]
    keep = np.isin(y, scored)
    s, t = scores[keep], y[keep]
    if spec["argmax_over"] == "scored":
        pred = np.asarray(scored)[s[:, scored].argmax(1)]
    else:
        pred = s.argmax(1)
    recall = {LABELS[k]: round(float((pred[t == k] == k).mean()), 4) for k in scored
              if (t == k).any()}
    return {"n": int(keep.sum()), "accuracy": round(float((pred == t).mean()), 4),
            "mean_recall": round(float(np.mean(list(recall.values()))), 4),
            "per_class_recall": recall}


def score(sets: str = None, models: str = None, detector: str = "auto", out: str = None):
    """Score each model (comma-separated .keras / .tflite) on every prepared set under SETS;
    prints JSON (and writes it to OUT): per set and model, the set's figure ("score"),
    accuracy, mean recall and per-class recall, and for detected sets the faces found."""
    from fer_edge.evaluate import load_variant

    root = Path(sets).expanduser()
    paths = [p.strip() for p in str(models).split(",") if p.strip()] \
        if isinstance(models, str) else list(models)
    data = {name: set_faces(root, name, spec, detector) for name, spec in SETS.items()
            if (root / spec.get("folder", name) / "labels.csv").exists()}
    if not data:
        sys.exit(f"no prepared set under {root} (run `prepare` first)")
    result = {"sets": str(root), "detector": detector, "models": paths, "results": {}}
    for path in paths:
        variant = load_variant(path)
        row = {}
        for name, (x, y, found) in data.items():
            spec = SETS[name]
            m = score_set(variant.predict(x), y, spec)
            row[name] = {"score": m[spec["metric"]], "metric": spec["metric"], **m,
                         **({"faces_found": int(found.sum()), "images": int(len(y))}
                            if spec["detect"] else {})}
        result["results"][path] = row
        print(path, {n: r["score"] for n, r in row.items()}, file=sys.stderr, flush=True)
    print(json.dumps(result, indent=1))
    if out:
        write_json(Path(out), result)


# ------------------------------------------------------------------------------- overlap

def _unit_rows(faces: np.ndarray) -> np.ndarray:
    """Each 48x48 face as a zero-mean unit vector (so a dot product is their correlation)."""
    flat = faces.reshape(len(faces), -1).astype(np.float32)
    flat -= flat.mean(1, keepdims=True)
    return flat / (np.linalg.norm(flat, axis=1, keepdims=True) + 1e-6)


def nearest_fer2013(crops_48: np.ndarray, fer_faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each crop, the highest pixel correlation with any FER2013 face (the crop or its
    mirror image) and that face's index."""
    fer = _unit_rows(fer_faces)
    best, where = np.full(len(crops_48), -1.0), np.zeros(len(crops_48), int)
    for view in (crops_48, crops_48[:, :, ::-1]):
        corr = _unit_rows(view) @ fer.T
        idx = corr.argmax(1)
        top = corr[np.arange(len(idx)), idx]
        better = top > best
        best[better], where[better] = top[better], idx[better]
    return best, where


def overlap(sets: str = None, name: str = "taiwanese", data: str = None, detector: str = "auto"):
    """Whether a set holds FER2013 faces: each of its 48x48 crops against every FER2013 face of
    DATA's folder tree (pixel correlation, mirror included). A copy scores about 0.93-0.97 (CK+'s
    S055 frames against FER2013's Training_75609687, made from the same photo); prints the
    quantiles and the closest pairs."""
    import cv2

    paths = sorted(Path(data).expanduser().rglob("*.png"))
    if not paths:
        sys.exit(f"no FER2013 image (*.png) under {data}")
    fer = np.stack([cv2.imread(str(q), cv2.IMREAD_GRAYSCALE) for q in paths])
    spec = SETS[name]
    x, _, _, names = crops(Path(sets).expanduser() / spec.get("folder", name), spec, detector)
    best, where = nearest_fer2013(x, fer)
    order = np.argsort(-best)
    result = {"set": name, "faces": int(len(x)), "fer2013_faces": len(paths),
              "quantiles_50_90_99_100": [round(float(q), 3)
                                         for q in np.quantile(best, [0.5, 0.9, 0.99, 1.0])],
              "closest": [{"face": str(names[k]), "fer2013": paths[where[k]].name,
                           "correlation": round(float(best[k]), 3)} for k in order[:5]]}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    import fire

    fire.Fire({"prepare": prepare, "score": score, "overlap": overlap})
