import os
import time

import numpy as np
import pytest

from fer_edge import data as fdata
from fer_edge.errors import FerEdgeError
from fer_edge.edge.preprocessing import LABELS

from synth import ODD_SPELLINGS, make_tree, write_csv


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))


def _sorted(split):
    order = np.lexsort((split.x.reshape(len(split), -1).sum(1), split.y))
    return split.x[order], split.y[order]


def test_tree_labels_follow_fer2013_ids_not_folder_order(tmp_path):
    made = make_tree(tmp_path / "d", spellings=ODD_SPELLINGS)
    ds = fdata.load(tmp_path / "d")
    assert list(ds.splits) == ["train", "val", "test"]
    for split, (x, y) in made.items():
        got = ds.split(split)
        assert got.counts() == {lab: int((y == k).sum()) for k, lab in enumerate(LABELS)}
        # The label of every image matches the class its pixels were drawn for.
        for k in range(len(LABELS)):
            mine = got.x[got.y == k].astype(int)
            theirs = x[y == k].astype(int)
            assert sorted(m.sum() for m in mine) == sorted(t.sum() for t in theirs)


def test_csv_loads_to_the_same_counts_and_labels_as_the_tree(tmp_path):
    made = make_tree(tmp_path / "d")
    write_csv(tmp_path / "fer2013.csv", made)
    tree, table = fdata.load(tmp_path / "d"), fdata.load(tmp_path / "fer2013.csv")
    assert tree.counts() == table.counts()
    for split in made:
        xa, ya = _sorted(tree.split(split))
        xb, yb = _sorted(table.split(split))
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
    assert tree.fingerprint != "" and table.split("train").ids[0].startswith("Training_row")
    # a folder that holds fer2013.csv is accepted too
    assert fdata.load(tmp_path).counts() == table.counts()


def test_kaggle_layout_carves_a_stratified_seeded_val(tmp_path, capsys):
    make_tree(tmp_path / "k", per_split={"train": 40, "test": 5},
              spellings=ODD_SPELLINGS, splits=("train", "test"))
    a = fdata.load(tmp_path / "k", val_fraction=0.1, seed=3)
    b = fdata.load(tmp_path / "k", val_fraction=0.1, seed=3)
    assert any("carved" in n for n in a.notes)
    assert a.split("val").counts() == {lab: 4 for lab in LABELS}
    assert a.split("train").counts() == {lab: 36 for lab in LABELS}
    np.testing.assert_array_equal(a.split("val").ids, b.split("val").ids)
    assert not set(a.split("val").ids) & set(a.split("train").ids)


def test_cache_makes_the_second_load_fast_and_identical(tmp_path):
    make_tree(tmp_path / "d")
    first = fdata.load(tmp_path / "d")
    t = time.perf_counter()
    second = fdata.load(tmp_path / "d")
    assert time.perf_counter() - t < 1.0
    assert any((tmp_path / "cache").iterdir())
    assert first.fingerprint == second.fingerprint
    np.testing.assert_array_equal(first.split("train").x, second.split("train").x)


def test_limit_takes_n_per_split(tmp_path):
    make_tree(tmp_path / "d")
    ds = fdata.load(tmp_path / "d", limit=20)
    assert {n: len(s) for n, s in ds.splits.items()} == {"train": 20, "val": 20, "test": 20}


def test_corrupt_and_empty_images_are_skipped_and_counted(tmp_path):
    make_tree(tmp_path / "d")
    (tmp_path / "d/train/happy/empty.png").write_bytes(b"")
    (tmp_path / "d/train/happy/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = fdata.load(tmp_path / "d")
    assert ds.skipped == {"train": 2}
    assert len(ds.split("train")) == 30 * 7
    assert any("skipped 2" in n for n in ds.notes)


def test_unknown_class_folder_is_skipped_with_a_warning(tmp_path, capsys):
    make_tree(tmp_path / "d")
    (tmp_path / "d/train/contempt").mkdir()
    ds = fdata.load(tmp_path / "d")
    assert "contempt" in capsys.readouterr().err
    assert len(ds.split("train")) == 30 * 7


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "not found"),
    (lambda p: p.mkdir(), "no train/val/test"),
    (lambda p: (p / "train" / "cats").mkdir(parents=True), "no recognisable class folders"),
])
def test_bad_folders(tmp_path, setup, message):
    target = tmp_path / "bad"
    setup(target)
    with pytest.raises(FerEdgeError, match=message):
        fdata.load(target)


@pytest.mark.parametrize("row, message", [
    ("3,1 2 3,Training", "expected 2304 pixel values"),
    ("x,y", "malformed row"),
    ("9," + " ".join(["0"] * 2304) + ",Training", "emotion 9"),
    ("3," + " ".join(["0"] * 2304) + ",Elsewhere", "unknown Usage"),
])
def test_bad_csv_rows_name_the_line(tmp_path, row, message):
    p = tmp_path / "fer2013.csv"
    p.write_text("emotion,pixels,Usage\n3," + " ".join(["7"] * 2304) + ",Training\n" + row + "\n")
    with pytest.raises(FerEdgeError, match=f"fer2013.csv:3: .*{message}"):
        fdata.load(p)


def test_csv_without_the_right_header(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(FerEdgeError, match="emotion,pixels,Usage"):
        fdata.load(p)


def test_missing_split_is_a_clear_error(tmp_path):
    make_tree(tmp_path / "d", splits=("train", "val"))
    with pytest.raises(FerEdgeError, match="split 'test' is not in"):
        fdata.load(tmp_path / "d").split("test")


REAL = os.environ.get("FER_EDGE_DATA")
README_COUNTS = {
    "train": dict(angry=3994, disgust=436, fear=4097, happy=7214, sad=4830, surprise=3170, neutral=4964),
    "val": dict(angry=467, disgust=56, fear=496, happy=895, sad=653, surprise=415, neutral=607),
    "test": dict(angry=491, disgust=55, fear=528, happy=879, sad=594, surprise=416, neutral=626),
}


@pytest.mark.skipif(not REAL, reason="FER_EDGE_DATA is not set (the real FER2013 folder tree)")
def test_real_fer2013_counts_and_csv_round_trip(tmp_path, monkeypatch):
    monkeypatch.delenv("FER_EDGE_CACHE")  # share the user's cache: the real set is big
    ds = fdata.load(REAL)
    assert ds.counts() == README_COUNTS
    splits = {n: (s.x, s.y) for n, s in ds.splits.items()}
    write_csv(tmp_path / "fer2013.csv", splits)
    table = fdata.load(tmp_path / "fer2013.csv", cache=False)
    assert table.counts() == README_COUNTS
    for name in splits:
        np.testing.assert_array_equal(table.split(name).y, ds.split(name).y)
        np.testing.assert_array_equal(table.split(name).x, ds.split(name).x)
