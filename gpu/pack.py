"""Pack FER2013 for an accelerator machine: each split as lossless JPEG 2000 mosaics + labels.

A device call carries at most 64 MiB; FER2013 as PNG files is 144 MB and as raw uint8 83 MB, as
lossless mosaics ~58 MB. Decoding is checked pixel for pixel before anything is written.

    python gpu/pack.py --data ../shared/fer2013 --out .gpu/data
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

COLS, ROWS = 64, 256          # images per tile row / tile rows: a 3072 x 12288 px tile
SIDE = 48


def to_tiles(x: np.ndarray) -> list[np.ndarray]:
    per_tile = COLS * ROWS
    tiles = []
    for start in range(0, len(x), per_tile):
        chunk = x[start:start + per_tile]
        rows = -(-len(chunk) // COLS)
        tile = np.zeros((rows * SIDE, COLS * SIDE), np.uint8)
        for i, face in enumerate(chunk):
            r, c = divmod(i, COLS)
            tile[r * SIDE:(r + 1) * SIDE, c * SIDE:(c + 1) * SIDE] = face
        tiles.append(tile)
    return tiles


def from_tiles(tiles: list[np.ndarray], n: int) -> np.ndarray:
    faces = [t[r * SIDE:(r + 1) * SIDE, c * SIDE:(c + 1) * SIDE]
             for t in tiles for r in range(t.shape[0] // SIDE) for c in range(COLS)]
    return np.stack(faces[:n])


def load(folder) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (faces uint8 (N,48,48), labels uint8 (N,))} from a packed folder."""
    import cv2

    folder = Path(folder)
    meta = json.loads((folder / "meta.json").read_text())
    out = {}
    for split, info in meta["splits"].items():
        tiles = [cv2.imread(str(folder / f), cv2.IMREAD_UNCHANGED) for f in info["tiles"]]
        labels = np.load(folder / f"{split}_labels.npy")
        out[split] = (from_tiles(tiles, info["n"]), labels)
    return out


def main(data: str, out: str) -> None:
    import cv2

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fer_edge import data as fdata

    ds = fdata.load(data)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"fingerprint": ds.fingerprint, "source": str(data),
            "labels_order": "fer_edge.edge.preprocessing.LABELS", "splits": {}}
    for split in ("train", "val", "test"):
        s = ds.split(split)
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
        meta["splits"][split] = {"n": len(s), "tiles": names}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    back = load(folder)
    for split in meta["splits"]:
        s = ds.split(split)
        assert np.array_equal(back[split][0], s.x.reshape(len(s), SIDE, SIDE)), split
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"{folder}: {size / 2**20:.1f} MiB, fingerprint {ds.fingerprint}")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
