"""gpu/pack.py: FER2013 as lossless mosaics for a device call, read back by `fer_edge.data.load`
face for face, with its votes, and trained on like the tree it was packed from."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu"))

import pack  # noqa: E402

from fer_edge import data as fdata  # noqa: E402
from fer_edge.errors import FerEdgeError  # noqa: E402


@pytest.fixture
def voted_tree(tmp_path):
    from synth import make_tree, write_tree_votes

    root = tmp_path / "fer"
    splits = make_tree(root, per_split={"train": 20, "val": 6, "test": 6})
    write_tree_votes(root / "ferplus.csv", splits)
    return root


def test_pack_round_trip_is_exact(voted_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fdata, "PACK_COLUMNS", 4)   # several tile rows, a partial last row
    monkeypatch.setattr(fdata, "PACK_ROWS", 3)      # and several tiles per split
    pack.main(str(voted_tree), str(tmp_path / "packed"))
    back = fdata.load(tmp_path / "packed")
    ds = fdata.load(voted_tree)
    for split in ("train", "val", "test"):
        s, b = ds.split(split), back.split(split)
        assert b.x.shape == (len(s), 48, 48) and b.x.dtype == np.uint8
        assert np.array_equal(b.x, s.x) and np.array_equal(b.y, s.y)
        assert np.array_equal(b.ids, s.ids) and np.array_equal(b.votes, s.votes)
    assert back.fingerprint == ds.fingerprint
    assert back.votes_path == ds.votes_path and len(back.votes_sha256) == 64
    assert len(list((tmp_path / "packed").glob("train_*.jp2"))) == -(-len(ds.split("train")) // 12)


def test_a_packed_folder_trains_with_its_votes(voted_tree, tmp_path, monkeypatch):
    from fer_edge.training.engine import train

    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    pack.main(str(voted_tree), str(tmp_path / "packed"))
    train(str(tmp_path / "packed"), arch="tiny", out=str(tmp_path / "run"), epochs=1,
          batch_size=16, target="ferplus", verbose=0)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data_fingerprint"] == fdata.load(voted_tree).fingerprint
    assert config["options"]["votes_sha256"] == json.loads(
        (tmp_path / "packed" / "meta.json").read_text())["votes_sha256"]
    with pytest.raises(FerEdgeError, match="packed with its votes"):
        fdata.load(tmp_path / "packed", votes=str(voted_tree / "ferplus.csv"))


def test_a_damaged_packed_folder_is_one_line(voted_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    pack.main(str(voted_tree), str(tmp_path / "packed"))
    (tmp_path / "packed" / "val_0.jp2").write_bytes(b"not a picture")
    with pytest.raises(FerEdgeError, match="not a packed FER2013 folder"):
        fdata.load(tmp_path / "packed")
