"""FER2013 in any of the forms users hold it, loaded into one in-memory shape.

Supported sources:
- a folder tree `DIR/{train,val,test}/<class>/*` (ours) or Kaggle's `DIR/{train,test}/<class>/*`
  (then a stratified, seeded validation split is carved out of train, and the notes say so);
- the original `fer2013.csv` (emotion, pixels, Usage), or a folder holding it;
- a packed folder (`meta.json` + lossless JPEG 2000 mosaics, written by `gpu/pack.py`): the
  three splits in the 64 MiB a lent accelerator machine accepts, with their FER+ votes.

Labels always follow `edge.preprocessing.LABELS` (FER2013 ids), never folder order. Decoded
arrays are cached (keyed by the files' names, sizes and mtimes) so a second load of the full set
takes well under a second. FER+ votes found beside the data (or given) are attached to each split
(`votes.py`).
"""

from __future__ import annotations

import csv
import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import FerEdgeError
from .edge.fileio import IMAGE_EXTS
from .edge.preprocessing import IMG_SIZE, LABELS, canonical_label, face_to_input

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "publictest": "val",
    "test": "test", "privatetest": "test",
}
CSV_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
CACHE_VERSION = 1


@dataclass
class Split:
    x: np.ndarray  # uint8 (N, 48, 48)
    y: np.ndarray  # int64 (N,), index into LABELS
    ids: np.ndarray  # str (N,), the image's original id (file stem / CSV row)
    votes: np.ndarray | None = None  # int16 (N, 10) FER+ votes (votes.COLUMNS), when read

    def __len__(self) -> int:
        return len(self.y)

    def counts(self) -> dict[str, int]:
        c = np.bincount(self.y, minlength=len(LABELS))
        return {lab: int(n) for lab, n in zip(LABELS, c)}

    def subset(self, idx) -> "Split":
        return Split(self.x[idx], self.y[idx], self.ids[idx],
                     None if self.votes is None else self.votes[idx])


@dataclass
class Dataset:
    source: str
    splits: dict[str, Split]
    fingerprint: str
    notes: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    votes_path: str | None = None   # the FER+ votes file attached to the splits, if any
    votes_sha256: str | None = None  # its digest, when the file is not here (packed data)

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise FerEdgeError(
                f"split '{name}' is not in {self.source} (it has: {', '.join(self.splits)})")
        return self.splits[name]

    def counts(self) -> dict[str, dict[str, int]]:
        return {name: s.counts() for name, s in self.splits.items()}


def _warn(msg: str) -> None:
    print(f"fer-edge: {msg}", file=sys.stderr)


def _cache_dir() -> Path:
    root = os.environ.get("FER_EDGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "fer-edge")
    return Path(root)


def fingerprint(splits: dict[str, Split]) -> str:
    """Content hash of the decoded pixels and labels: identical data -> identical fingerprint."""
    h = hashlib.sha256()
    for name in sorted(splits):
        s = splits[name]
        order = np.argsort(s.ids, kind="stable")
        h.update(name.encode())
        h.update(np.ascontiguousarray(s.x[order]).tobytes())
        h.update(s.y[order].astype(np.int64).tobytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- folder trees

def _scan_tree(root: Path) -> tuple[dict[str, dict[str, list[Path]]], list[str]]:
    """{split: {label: [files]}} of a folder tree, with warnings for folders that are skipped."""
    warnings: list[str] = []
    tree: dict[str, dict[str, list[Path]]] = {}
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        split = SPLIT_ALIASES.get(entry.name.lower())
        if split is None:
            continue
        classes: dict[str, list[Path]] = {}
        for cdir in sorted(entry.iterdir()):
            if not cdir.is_dir() or cdir.name.startswith("."):
                continue
            label = canonical_label(cdir.name)
            if label is None:
                warnings.append(f"skipping unknown class folder {cdir} "
                                f"(known: {', '.join(LABELS)} and common spellings)")
                continue
            files = sorted(p for p in cdir.iterdir()
                           if p.suffix.lower() in IMAGE_EXTS and p.is_file())
            classes.setdefault(label, []).extend(files)
        if not classes:
            raise FerEdgeError(f"{entry} has no recognisable class folders "
                               f"(expected {', '.join(LABELS)})")
        if split in tree:
            raise FerEdgeError(f"{root} has two folders for the '{split}' split")
        tree[split] = classes
    return tree, warnings


def _tree_key(root: Path, tree) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}|{root.resolve()}".encode())
    for split in sorted(tree):
        for label in sorted(tree[split]):
            for p in tree[split][label]:
                st = p.stat()
                h.update(f"{split}|{label}|{p.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _decode(path: Path) -> np.ndarray | None:
    import cv2

    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if buf.size == 0:
        return None
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        return None
    return face_to_input(img)


def _load_tree(root: Path, tree) -> tuple[dict[str, Split], dict[str, int]]:
    splits, skipped = {}, {}
    for split, classes in tree.items():
        xs, ys, ids, bad = [], [], [], 0
        for label, files in classes.items():
            k = LABELS.index(label)
            for p in files:
                img = _decode(p)
                if img is None:
                    bad += 1
                    continue
                xs.append(img)
                ys.append(k)
                ids.append(p.stem)
        if bad:
            skipped[split] = bad
        x = np.stack(xs) if xs else np.zeros((0, IMG_SIZE, IMG_SIZE), np.uint8)
        splits[split] = Split(x, np.asarray(ys, np.int64), np.asarray(ids, dtype=str))
    return splits, skipped


# ---------------------------------------------------------------- fer2013.csv

def _load_csv(path: Path) -> dict[str, Split]:
    rows: dict[str, tuple[list, list, list]] = {s: ([], [], []) for s in SPLITS}
    npix = IMG_SIZE * IMG_SIZE
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        try:
            ie, ip, iu = header.index("emotion"), header.index("pixels"), header.index("usage")
        except ValueError:
            raise FerEdgeError(f"{path}: header must have emotion,pixels,Usage columns "
                               f"(found: {','.join(header) or 'nothing'})") from None
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                emotion = int(row[ie])
                usage = row[iu].strip()
                pix = np.array(row[ip].split(), dtype=np.int64)
            except (ValueError, IndexError):
                raise FerEdgeError(f"{path}:{line}: malformed row (expected emotion,pixels,Usage)") from None
            if not 0 <= emotion < len(LABELS):
                raise FerEdgeError(f"{path}:{line}: emotion {emotion} is not in 0..{len(LABELS) - 1}")
            if pix.size != npix or pix.min(initial=0) < 0 or pix.max(initial=0) > 255:
                raise FerEdgeError(f"{path}:{line}: expected {npix} pixel values in 0..255, "
                                   f"got {pix.size}")
            if usage not in CSV_USAGE:
                raise FerEdgeError(f"{path}:{line}: unknown Usage '{usage}' "
                                   f"(expected {', '.join(CSV_USAGE)})")
            xs, ys, ids = rows[CSV_USAGE[usage]]
            xs.append(pix.astype(np.uint8).reshape(IMG_SIZE, IMG_SIZE))
            ys.append(emotion)  # the CSV's ids are FER2013's ids == our LABELS order
            ids.append(f"{usage}_row{line - 2}")
    out = {}
    for split, (xs, ys, ids) in rows.items():
        if xs:
            out[split] = Split(np.stack(xs), np.asarray(ys, np.int64), np.asarray(ids, dtype=str))
    if not out:
        raise FerEdgeError(f"{path} has no data rows")
    return out


# ---------------------------------------------------------------- cache

def _cache_load(key: str):
    path = _cache_dir() / f"{key}.npz"
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            names = [str(n) for n in z["splits"]]
            splits = {n: Split(z[f"x_{n}"], z[f"y_{n}"], z[f"ids_{n}"]) for n in names}
            skipped = {n: int(v) for n, v in zip(z["skipped_names"], z["skipped_counts"])}
            return splits, skipped, str(z["fingerprint"])
    except Exception:  # a damaged cache is rebuilt, never fatal
        return None


def _cache_save(key: str, splits, skipped, digest) -> None:
    from .edge.fileio import atomic_path

    arrays = {"splits": np.asarray(list(splits), dtype=str), "fingerprint": np.asarray(digest),
              "skipped_names": np.asarray(list(skipped), dtype=str),
              "skipped_counts": np.asarray(list(skipped.values()), dtype=np.int64)}
    for n, s in splits.items():
        arrays.update({f"x_{n}": s.x, f"y_{n}": s.y, f"ids_{n}": s.ids})
    try:
        with atomic_path(_cache_dir() / f"{key}.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
    except OSError as e:  # read-only home: work without a cache
        _warn(f"could not write the data cache ({e}); continuing without it")


# ---------------------------------------------------------------- public API

def carve_val(train: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Stratified, seeded split of `train` into (train, val)."""
    rng = np.random.default_rng(seed)
    val_idx = []
    for k in range(len(LABELS)):
        idx = np.flatnonzero(train.y == k)
        rng.shuffle(idx)
        val_idx.append(idx[: int(round(len(idx) * fraction))])
    val_idx = np.sort(np.concatenate(val_idx))
    mask = np.ones(len(train), bool)
    mask[val_idx] = False
    return train.subset(np.flatnonzero(mask)), train.subset(val_idx)


def limit_split(split: Split, n: int, seed: int) -> Split:
    """A seeded random subset of n images (for smoke runs)."""
    if n is None or n >= len(split):
        return split
    idx = np.sort(np.random.default_rng(seed).permutation(len(split))[:n])
    return split.subset(idx)


def attach_votes(splits: dict[str, Split], path: Path, from_csv: bool) -> None:
    """Read the FER+ votes at `path` into each split's `votes` (see votes.py): row-aligned with
    fer2013.csv, or keyed by path relative to a folder tree. A file that does not fit the data
    raises one FerEdgeError line naming it and its first bad row."""
    from . import votes as fvotes

    if from_csv:
        read = fvotes.read_csv_votes(path, {n: s.ids for n, s in splits.items()})
    else:
        keys = {n: {(LABELS[y], str(i)): k for k, (y, i) in enumerate(zip(s.y, s.ids))}
                for n, s in splits.items()}
        read = fvotes.read_tree_votes(path, keys, lambda name: SPLIT_ALIASES.get(name.lower()))
    for name, v in read.items():
        splits[name].votes = v


# The packed form (gpu/pack.py writes it, `load` reads it): each split's faces as mosaics of
# PACK_COLUMNS x PACK_ROWS faces, row by row.
PACK_COLUMNS, PACK_ROWS, PACK_META = 64, 256, "meta.json"


def is_packed(root: Path) -> bool:
    return root.is_dir() and (root / PACK_META).is_file()


def from_tiles(tiles: list[np.ndarray], n: int) -> np.ndarray:
    side = IMG_SIZE
    faces = [t[r * side:(r + 1) * side, c * side:(c + 1) * side]
             for t in tiles for r in range(t.shape[0] // side) for c in range(PACK_COLUMNS)]
    return np.stack(faces[:n])


def _load_packed(root: Path) -> tuple[dict[str, Split], str, dict]:
    """(splits, fingerprint of the data it was packed from, meta.json)."""
    import json

    import cv2

    try:
        meta = json.loads((root / PACK_META).read_text())
        splits = {}
        for name, info in meta["splits"].items():
            tiles = [cv2.imread(str(root / f), cv2.IMREAD_UNCHANGED) for f in info["tiles"]]
            if any(t is None for t in tiles):
                raise ValueError(f"unreadable tile in {info['tiles']}")
            votes = root / f"{name}_votes.npy"
            ids = root / f"{name}_ids.npy"
            splits[name] = Split(
                from_tiles(tiles, info["n"]), np.load(root / f"{name}_labels.npy").astype(np.int64),
                np.load(ids) if ids.exists() else np.arange(info["n"]).astype(str),
                np.load(votes) if votes.exists() else None)
    except (OSError, ValueError, KeyError) as e:
        raise FerEdgeError(f"{root}: not a packed FER2013 folder ({e})") from None
    return splits, meta["fingerprint"], meta


def load(data: str | os.PathLike, val_fraction: float = 0.1, seed: int = 0,
         limit: int | None = None, cache: bool = True,
         votes: str | os.PathLike | None = None) -> Dataset:
    """Load FER2013 from a folder tree or the original CSV (see module doc), with the FER+
    votes of `votes` or, when None, of the votes file found beside the data (votes.py)."""
    if data is None or str(data) == "":
        raise FerEdgeError("no data given: pass --data DIR (a FER2013 folder tree or fer2013.csv)")
    root = Path(data).expanduser()
    if not root.exists():
        raise FerEdgeError(f"data not found: {root}")
    if root.is_dir() and not any((root / s).is_dir() for s in SPLIT_ALIASES) \
            and (root / "fer2013.csv").is_file():
        root = root / "fer2013.csv"

    notes: list[str] = []
    packed = {}
    if is_packed(root):
        if votes:
            raise FerEdgeError(f"{root} is packed with its votes (or without): --votes does not "
                               f"apply (pack the data with them: gpu/pack.py)")
        splits, packed_fingerprint, packed = _load_packed(root)
        hit = (splits, {}, packed_fingerprint)
    elif root.is_file():
        if root.suffix.lower() != ".csv":
            raise FerEdgeError(f"{root} is neither a FER2013 folder tree nor a .csv file")
        st = root.stat()
        key = hashlib.sha256(f"v{CACHE_VERSION}|csv|{root.resolve()}|{st.st_size}|{st.st_mtime_ns}"
                             .encode()).hexdigest()[:24]
        hit = _cache_load(key) if cache else None
        if hit is None:
            splits, skipped = _load_csv(root), {}
            hit = (splits, skipped, fingerprint(splits))
            if cache:
                _cache_save(key, *hit)
    else:
        tree, warnings = _scan_tree(root)
        for w in warnings:
            _warn(w)
        if not tree:
            raise FerEdgeError(f"{root} holds no train/val/test folders with class sub-folders "
                               f"(nor a fer2013.csv)")
        key = _tree_key(root, tree)
        hit = _cache_load(key) if cache else None
        if hit is None:
            splits, skipped = _load_tree(root, tree)
            hit = (splits, skipped, fingerprint(splits))
            if cache:
                _cache_save(key, *hit)
    splits, skipped, data_fingerprint = hit
    from . import votes as fvotes

    if is_packed(root):
        votes_path = packed.get("votes")   # as packed: its votes are in the splits already
    else:
        votes_path = Path(votes).expanduser() if votes else fvotes.default_path(root)
        if votes and not votes_path.is_file():
            raise FerEdgeError(f"votes file not found: {votes_path}")
        if votes_path is not None:
            attach_votes(splits, votes_path, root.is_file())
    for split, n in skipped.items():
        notes.append(f"{split}: skipped {n} unreadable image(s)")

    if "train" in splits and "val" not in splits and val_fraction > 0:
        splits["train"], splits["val"] = carve_val(splits["train"], val_fraction, seed)
        notes.append(f"no val split in the data: carved a stratified {val_fraction:.0%} of train "
                     f"(seed {seed}) as val")
    if limit:
        splits = {n: limit_split(s, int(limit), seed) for n, s in splits.items()}
        notes.append(f"limited to {int(limit)} images per split (seed {seed})")
    ordered = {n: splits[n] for n in SPLITS if n in splits}
    return Dataset(str(Path(data)), ordered, data_fingerprint, notes, skipped,
                   None if votes_path is None else str(votes_path), packed.get("votes_sha256"))
