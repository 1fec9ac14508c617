"""FER+ crowd votes (Barsoum et al., ICMI 2016): 10 annotators per FER2013 face.

Read in the two forms users hold them, attached to the loaded data as `Split.votes` (N, 10)
counts in FER+'s column order (`COLUMNS`; all zero where FER+ has no votes for a face):

- beside the original `fer2013.csv`: Microsoft's `fer2013new.csv`, one row per row of it;
- beside a folder tree: a CSV with a `path` column (relative to the tree) and the 10 vote
  columns, as `ferplus.csv` in the shared FER2013 folder.

From the votes this module derives what training and evaluation use:

- `target_distribution`: the training target of `train --target ferplus` / `ferplus8` (label
  distribution, Barsoum et al.'s cross-entropy scheme): votes of 1 dropped as outliers (as FER+'s
  own reference code does), the remaining emotion votes normalised over the model's classes:
  FER2013's 7 (`ferplus`, the label set every 7-class runtime and card shares; faces whose top
  vote is contempt carry no target) or FER+'s 8 (`ferplus8`, contempt learned, as published FER+
  models do). Faces whose top vote (after that) is unknown or not-a-face carry no usable target:
  an "unknown" face has no agreed emotion and an NF crop is not a face.
- `majority`: the published FER+ "majority" benchmark protocol: votes of 1 dropped; a face
  counts when its top class holds more than half of the remaining votes (so a tie never
  counts) and is one of the 8 emotions (unknown and NF majorities are left out). It scores 8
  emotions; a 7-class model can never answer contempt, so those faces are its errors (16 of
  3,152 on PrivateTest) and its figures stay comparable with 8-class results, never flattered.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .errors import FerEdgeError
from .edge.preprocessing import LABELS, LABELS8

COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
           "contempt", "unknown", "NF")
EMOTIONS8 = COLUMNS[:8]
# FER+ column -> our label index (LABELS order); contempt has none.
TO_LABEL = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise",
            "sadness": "sad", "anger": "angry", "disgust": "disgust", "fear": "fear"}
_COL_OF_LABEL = np.array([COLUMNS.index(next(c for c, lab in TO_LABEL.items() if lab == name))
                          for name in LABELS])
CONTEMPT = COLUMNS.index("contempt")
_COL_OF_LABEL8 = np.append(_COL_OF_LABEL, CONTEMPT)     # LABELS8 order -> FER+ column
UNKNOWN = COLUMNS.index("unknown")
# 8-class names for the majority benchmark: our 7 labels, then contempt (LABELS8).
MAJORITY_LABELS = LABELS8

TREE_VOTES_NAME = "ferplus.csv"        # beside a folder tree
CSV_VOTES_NAME = "fer2013new.csv"      # beside the original fer2013.csv


def default_path(data: Path) -> Path | None:
    """The votes file found beside the data, or None."""
    folder = data.parent if data.is_file() else data
    name = CSV_VOTES_NAME if data.is_file() else TREE_VOTES_NAME
    path = folder / name
    return path if path.is_file() else None


# ------------------------------------------------------------------------------ reading

def _header_columns(path: Path, header: list[str], key: str) -> tuple[int, list[int]]:
    lower = [h.strip().lower() for h in header]
    missing = [c for c in (key, *COLUMNS) if c.lower() not in lower]
    if missing:
        raise FerEdgeError(f"{path}:1: not a FER+ votes file: no column(s) {', '.join(missing)} "
                           f"(expected {key} and {', '.join(COLUMNS)})")
    return lower.index(key.lower()), [lower.index(c.lower()) for c in COLUMNS]


def _vote_row(path: Path, line: int, row: list[str], cols: list[int]) -> np.ndarray:
    """The 10 counts of one row; all blank means "no votes" (a face FER+ dropped)."""
    try:
        cells = [row[i].strip() for i in cols]
    except IndexError:
        raise FerEdgeError(f"{path}:{line}: expected {len(COLUMNS)} vote columns, found "
                           f"{len(row)} fields") from None
    if all(c == "" for c in cells):
        return np.zeros(len(COLUMNS), np.int16)
    try:
        values = [int(c) for c in cells]
    except ValueError:
        bad = next(c for c in cells if not c.lstrip("-").isdigit())
        raise FerEdgeError(f"{path}:{line}: vote {bad!r} is not a whole number") from None
    if min(values) < 0 or max(values) > 1000:
        raise FerEdgeError(f"{path}:{line}: votes must be counts in 0..1000, got {values}")
    return np.asarray(values, np.int16)


def read_csv_votes(path: Path, ids_by_split: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Microsoft's fer2013new.csv, row-aligned with fer2013.csv, whose rows `data._load_csv`
    names "<Usage>_row<i>": every row must exist, in the same order and Usage."""
    row_of = {}
    for split, ids in ids_by_split.items():
        for k, name in enumerate(ids):
            usage, _, i = str(name).rpartition("_row")
            row_of[int(i)] = (split, k, usage)
    votes = {s: np.zeros((len(ids), len(COLUMNS)), np.int16) for s, ids in ids_by_split.items()}
    n = 0
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        lower = [h.strip().lower() for h in header]
        _, cols = _header_columns(path, header, COLUMNS[0])
        usage_col = lower.index("usage") if "usage" in lower else None
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if n not in row_of:
                raise FerEdgeError(f"{path}:{line}: more rows than the data's {len(row_of)} "
                                   f"(fer2013new.csv must follow fer2013.csv row for row)")
            split, k, usage = row_of[n]
            if usage_col is not None and row[usage_col].strip() != usage:
                raise FerEdgeError(f"{path}:{line}: Usage {row[usage_col].strip()!r} where "
                                   f"fer2013.csv's row says {usage!r} (the files are not "
                                   f"row-aligned)")
            votes[split][k] = _vote_row(path, line, row, cols)
            n += 1
    if n != len(row_of):
        raise FerEdgeError(f"{path}:{n + 2}: {n} vote rows for {len(row_of)} data rows "
                           f"(fer2013new.csv must follow fer2013.csv row for row)")
    return votes


def read_tree_votes(path: Path, keys_by_split: dict[str, dict[tuple, int]],
                    split_of_folder) -> dict[str, np.ndarray]:
    """A votes CSV keyed by `path` relative to a folder tree. `keys_by_split[split]` maps
    (class folder label, file stem) to the row of the split; `split_of_folder` names the split
    of a top folder (None when it is not one). Images without a row have no votes."""
    from .edge.preprocessing import canonical_label

    votes = {s: np.zeros((len(keys), len(COLUMNS)), np.int16)
             for s, keys in keys_by_split.items()}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        key_col, cols = _header_columns(path, header, "path")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            rel = Path(row[key_col].strip()) if key_col < len(row) else Path()
            parts = rel.parts
            split = split_of_folder(parts[0]) if len(parts) == 3 else None
            label = canonical_label(parts[1]) if len(parts) == 3 else None
            k = keys_by_split.get(split, {}).get((label, rel.stem))
            if k is None:
                raise FerEdgeError(f"{path}:{line}: {str(rel)!r} is not an image of the data "
                                   f"(paths are relative to the data folder: "
                                   f"split/class/file)")
            votes[split][k] = _vote_row(path, line, row, cols)
    return votes


# ------------------------------------------------------------------------------ derived

def _denoised(votes: np.ndarray) -> np.ndarray:
    """Votes with the single votes dropped (FER+'s outlier removal)."""
    v = np.asarray(votes, np.float64)
    return np.where(v <= 1, 0.0, v)


def has_votes(votes: np.ndarray) -> np.ndarray:
    return np.asarray(votes).sum(1) > 0


def target_distribution(votes: np.ndarray, classes: int = len(LABELS)
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(targets (N, classes) in LABELS / LABELS8 order, usable (N,) bool): see the module doc."""
    if classes not in (len(LABELS), len(LABELS8)):
        raise ValueError(f"vote targets have 7 or 8 classes, not {classes}")
    v = _denoised(votes)
    emo = v[:, _COL_OF_LABEL8[:classes]]
    top_emotion = emo.max(1)
    # the columns the model does not learn: contempt (7 classes), unknown and NF
    others = v[:, CONTEMPT if classes == len(LABELS) else UNKNOWN:].max(1)
    usable = (top_emotion > 0) & (top_emotion > others)
    total = emo.sum(1, keepdims=True)
    targets = np.divide(emo, total, out=np.zeros_like(emo), where=total > 0)
    return targets.astype(np.float32), usable


def majority(votes: np.ndarray) -> np.ndarray:
    """The FER+ majority label of each face in MAJORITY_LABELS (0..6 ours, 7 contempt), or -1
    when the face is left out of the benchmark (no majority, unknown/NF, no votes)."""
    v = _denoised(votes)
    top = v.argmax(1)
    keep = (v.max(1) * 2 > v.sum(1)) & (top < len(EMOTIONS8))
    ours = np.full(len(COLUMNS), -1)
    for col, lab in TO_LABEL.items():
        ours[COLUMNS.index(col)] = LABELS.index(lab)
    ours[CONTEMPT] = len(LABELS)
    return np.where(keep, ours[top], -1)


def agreement(votes: np.ndarray, pred: np.ndarray) -> float:
    """Mean share of a face's annotators who chose the model's answer (all 10 vote columns in
    the denominator, single votes included), over the faces with votes."""
    v = np.asarray(votes, np.float64)
    keep = v.sum(1) > 0
    if not keep.any():
        return 0.0
    chosen = v[np.arange(len(v)), _COL_OF_LABEL8[np.asarray(pred)]]
    return float((chosen[keep] / v[keep].sum(1)).mean())


def majority_summary(votes: np.ndarray, scores: np.ndarray) -> dict:
    """The FER+ majority benchmark of a 7- or 8-class model's scores: top-1 over the kept faces
    (a 7-class model's contempt faces count as errors), per-class accuracy over 8 classes, an
    8 x classes confusion matrix (rows true in MAJORITY_LABELS, columns predicted in the model's
    labels), and the mean vote agreement over every face with votes."""
    truth = majority(votes)
    scores = np.asarray(scores)
    classes = scores.shape[1]
    pred = scores.argmax(1)
    kept = truth >= 0
    t, p = truth[kept], pred[kept]
    cm = np.zeros((len(MAJORITY_LABELS), classes), np.int64)
    np.add.at(cm, (t, p), 1)
    support = cm.sum(1)
    correct = np.array([cm[i, i] if i < classes else 0 for i in range(len(MAJORITY_LABELS))])
    return {
        "n": int(kept.sum()),
        "top1": float(correct.sum() / max(kept.sum(), 1)),
        "per_class_accuracy": {lab: float(c / s) if s else 0.0
                               for lab, c, s in zip(MAJORITY_LABELS, correct, support)},
        "support": {lab: int(s) for lab, s in zip(MAJORITY_LABELS, support)},
        "confusion_matrix": cm.tolist(),
        "vote_agreement": agreement(votes, pred),
        "n_with_votes": int(has_votes(votes).sum()),
    }


def counts(votes: np.ndarray) -> dict:
    """Vote-derived counts of one split, for `data info`."""
    truth = majority(votes)
    _, usable = target_distribution(votes)
    return {"with_votes": int(has_votes(votes).sum()),
            "target_usable": int(usable.sum()),
            "majority": int((truth >= 0).sum()),
            "majority_per_class": {lab: int((truth == i).sum())
                                   for i, lab in enumerate(MAJORITY_LABELS)}}
