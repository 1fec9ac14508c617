"""gpu/pack.py: FER2013 as lossless mosaics for a device call, read back face for face."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu"))

import pack  # noqa: E402

from fer_edge import data as fdata  # noqa: E402


def test_pack_round_trip_is_exact(synth_data, tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(pack, "COLS", 4)   # several tile rows and a partial last row
    monkeypatch.setattr(pack, "ROWS", 3)   # and several tiles per split
    pack.main(str(synth_data), str(tmp_path / "packed"))
    back = pack.load(tmp_path / "packed")
    ds = fdata.load(synth_data)
    for split in ("train", "val", "test"):
        s = ds.split(split)
        faces, labels = back[split]
        assert faces.shape == (len(s), 48, 48) and faces.dtype == np.uint8
        assert np.array_equal(faces, s.x.reshape(len(s), 48, 48))
        assert np.array_equal(labels, s.y)
    assert len(list((tmp_path / "packed").glob("train_*.jp2"))) == -(-len(ds.split("train")) // 12)
