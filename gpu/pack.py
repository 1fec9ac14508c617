"""Pack FER2013 for an accelerator machine: each split as lossless JPEG 2000 mosaics + labels,
FER+ votes and image ids, in the form `fer_edge.data.load` reads (`fer-edge train --data DIR`).

A device call carries at most 64 MiB; FER2013 as PNG files is 144 MB and as raw uint8 83 MB, as
lossless mosaics ~58 MB. Decoding is checked pixel for pixel before the folder is finished.

    python gpu/pack.py --data ../shared/fer2013 --out .gpu/data
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_edge import data as fdata  # noqa: E402
from fer_edge.edge.fileio import sha256  # noqa: E402

SIDE = fdata.IMG_SIZE


def to_tiles(x: np.ndarray) -> list[np.ndarray]:
    per_tile = fdata.PACK_COLUMNS * fdata.PACK_ROWS
    tiles = []
    for start in range(0, len(x), per_tile):
        chunk = x[start:start + per_tile]
        rows = -(-len(chunk) // fdata.PACK_COLUMNS)
        tile = np.zeros((rows * SIDE, fdata.PACK_COLUMNS * SIDE), np.uint8)
        for i, face in enumerate(chunk):
            r, c = divmod(i, fdata.PACK_COLUMNS)
            tile[r * SIDE:(r + 1) * SIDE, c * SIDE:(c + 1) * SIDE] = face
        tiles.append(tile)
    return tiles


def main(data: str, out: str, votes: str = None) -> None:
    import cv2

    ds = fdata.load(data, votes=votes)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"fingerprint": ds.fingerprint, "source": str(data), "splits": {},
            "labels_order": "fer_edge.edge.preprocessing.LABELS"}
    if ds.votes_path:
        meta.update(votes=ds.votes_path, votes_sha256=sha256(ds.votes_path))
    for split, s in ds.splits.items():
        x = s.x.reshape(len(s), SIDE, SIDE)
        names = []
        for i, tile in enumerate(to_tiles(x)):
            ok, buf = cv2.imencode(".jp2", tile, [cv2.IMWRITE_JPEG2000_COMPRESSION_X1000, 1000])
            if not ok or not np.array_equal(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED), tile):
                raise SystemExit(f"{split} tile {i}: lossless round trip failed")
            name = f"{split}_{i}.jp2"
            (folder / name).write_bytes(buf.tobytes())
            names.append(name)
        np.save(folder / f"{split}_labels.npy", s.y.astype(np.uint8))
        np.save(folder / f"{split}_ids.npy", s.ids.astype(str))
        if s.votes is not None:
            np.save(folder / f"{split}_votes.npy", s.votes)
        meta["splits"][split] = {"n": len(s), "tiles": names}
    (folder / fdata.PACK_META).write_text(json.dumps(meta, indent=1))   # last: now it loads
    back = fdata.load(folder, cache=False)
    for split, s in ds.splits.items():
        assert np.array_equal(back.split(split).x, s.x), split
        assert (back.split(split).votes is None) == (s.votes is None), split
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"{folder}: {size / 2**20:.1f} MiB, fingerprint {ds.fingerprint}")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
