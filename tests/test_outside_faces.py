"""benchmarks/outside_faces.py's `prepare` of the Taiwanese actors' set, on a tiny synthetic
clone laid out like lai-wei-cheng/b12207073 (no real photo: a few made-up pixels and votes)."""

import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import outside_faces  # noqa: E402

xlwt = pytest.importorskip("xlwt", reason="the synthetic voting.xls needs xlwt (test extra)")
pytest.importorskip("xlrd", reason="prepare reads voting.xls with xlrd (test extra)")

HEADER = ["Photo", "happy", "angry", "sad", "fear", "disgust", "surprise", "centropy", "peace"]


def _votes(**shares) -> list[float]:
    """A voting.xls row's shares in the sheet's column order (centropy: a made-up entropy)."""
    return [shares.get(col, 0.0) for col in HEADER[1:7]] + [0.5, shares.get("peace", 0.0)]


# photo stem -> its votes, and whether the file is committed to the clone
PHOTOS = {
    "0101a02": (_votes(peace=0.71, disgust=0.25), True),   # performed calm, most chose calm
    "0111b01": (_votes(happy=0.9, peace=0.1), True),       # performed happy, most chose happy
    "0211f09": (_votes(surprise=0.5, fear=0.3), True),     # performed fear, most chose surprise
    "0121c01": (_votes(sad=0.4, angry=0.4), True),         # a tie at the top
    "1201002": (_votes(peace=0.8), True),                  # no performed letter in its name
    "0131g04": (_votes(surprise=0.9), False),              # on disk, not in the repository
}


def _clone(root: Path, header=HEADER) -> Path:
    faces = root / "Taiwanese" / "faces_256x256"
    faces.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for stem in [*PHOTOS, "0221d03"]:                        # 0221d03: a photo with no votes
        # squeezed square copies, as in the repository: a 64x64 grey level ramp
        ramp = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[:, None], 64, axis=1)
        cv2.imwrite(str(faces / f"{stem}.jpg"), np.dstack([ramp] * 3))
    book = xlwt.Workbook()
    sheet = book.add_sheet("voting")
    for j, name in enumerate(header):
        sheet.write(0, j, name)
    for i, (stem, (shares, _)) in enumerate(PHOTOS.items(), start=1):
        sheet.write(i, 0, f"{stem}.tif")
        for j, share in enumerate(shares, start=1):
            sheet.write(i, j, share)
    book.save(str(root / "Taiwanese" / "voting.xls"))
    committed = [f"Taiwanese/faces_256x256/{s}.jpg" for s, (_, c) in PHOTOS.items() if c]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "Taiwanese/voting.xls",
                    "Taiwanese/faces_256x256/0221d03.jpg", *committed], check=True)
    return root


def test_prepare_keeps_the_faces_whose_performed_expression_most_observers_chose(tmp_path):
    clone = _clone(tmp_path / "clone")
    out = tmp_path / "sets" / "taiwanese"
    counts = outside_faces.prepare_taiwanese(clone, out)

    assert counts == {"happy": 1, "neutral": 1}
    with open(out / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows == [{"path": "neutral/0101a02.png", "label": "neutral"},
                    {"path": "happy/0111b01.png", "label": "happy"}]
    assert sorted(p.name for p in out.rglob("*.*g")) == ["0101a02.png", "0111b01.png"]
    # stretched back to the database's 4:5 (width kept), the ramp still top to bottom
    face = cv2.imread(str(out / "happy" / "0111b01.png"), cv2.IMREAD_GRAYSCALE)
    assert face.shape == (80, 64)
    assert face[0].mean() < 10 and face[-1].mean() > 245
    # the prepared folder reads as a set that `score` takes: its labels are fer-edge's
    items = outside_faces._labelled(out, outside_faces.SETS["taiwanese"]["exclude_prefix"])
    assert [(p.name, lab) for p, lab in items] == [("0101a02.png", "neutral"),
                                                   ("0111b01.png", "happy")]


def test_prepare_refuses_a_sheet_without_the_vote_columns(tmp_path, capsys):
    clone = _clone(tmp_path / "clone", header=[h for h in HEADER if h != "peace"])
    with pytest.raises(SystemExit) as stop:
        outside_faces.prepare(taiwanese=str(clone), out=str(tmp_path / "sets"))
    assert str(stop.value) == (f"{clone / 'Taiwanese' / 'voting.xls'}: not the set's voting "
                               "sheet (no column ['peace'])")
    assert not (tmp_path / "sets" / "taiwanese").exists()


def test_prepare_names_a_photo_that_is_not_an_image(tmp_path):
    clone = _clone(tmp_path / "clone")
    broken = clone / "Taiwanese" / "faces_256x256" / "0111b01.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(SystemExit) as stop:
        outside_faces.prepare_taiwanese(clone, tmp_path / "sets" / "taiwanese")
    assert str(stop.value) == f"{broken}: not an image"


def test_overlap_finds_a_fer2013_face_and_its_mirror_image_among_others():
    rng = np.random.default_rng(1)
    fer = rng.integers(0, 256, (50, 48, 48)).astype(np.uint8)
    crops = np.stack([fer[7], fer[31][:, ::-1], rng.integers(0, 256, (48, 48)).astype(np.uint8)])
    best, where = outside_faces.nearest_fer2013(crops, fer)
    assert list(where[:2]) == [7, 31]
    assert best[:2] == pytest.approx([1.0, 1.0], abs=1e-4)
    assert best[2] < 0.9
