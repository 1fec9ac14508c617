"""The three Parquet datasets of a batch job and its bookkeeping, under OUT:

- faces/   a row per face: file, frame, time, segment, track, x, y, w, h, emotion, confidence,
           score_<label> for each label, model, model_sha256 (frame, time, segment and track are
           null for still images);
- videos/  per video and per track (within a segment): frames seen, time span, dominant emotion,
           the share of each emotion (as `classify --summary`; track null: the whole video);
- errors/  every input that failed, with the reason;
- _tasks/  a marker per finished task (its counts), written after its rows: a task without one is
           done again, and rewrites the same part files, so nothing is counted twice.

Each part is written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..edge.fileio import atomic_path, write_json

FACES, VIDEOS, ERRORS, TASKS = "faces", "videos", "errors", "_tasks"


def faces_schema(labels: list[str]):
    import pyarrow as pa

    return pa.schema(
        [("file", pa.string()), ("frame", pa.int64()), ("time", pa.float64()),
         ("segment", pa.int64()), ("track", pa.int64()), ("x", pa.int64()), ("y", pa.int64()),
         ("w", pa.int64()), ("h", pa.int64()), ("emotion", pa.string()),
         ("confidence", pa.float64())]
        + [(f"score_{label}", pa.float64()) for label in labels]
        + [("model", pa.string()), ("model_sha256", pa.string())])


def errors_schema():
    import pyarrow as pa

    return pa.schema([("file", pa.string()), ("reason", pa.string())])


def face_rows(file: str, faces: list[dict], model: str, sha256: str, frame=None, time=None,
              segment=None) -> list[dict]:
    """Classifier faces -> rows of the faces dataset."""
    rows = []
    for face in faces:
        x, y, w, h = face["box"]
        rows.append({"file": file, "frame": frame, "time": time, "segment": segment,
                     "track": face.get("track"), "x": x, "y": y, "w": w, "h": h,
                     "emotion": face["emotion"], "confidence": face["confidence"],
                     **{f"score_{k}": v for k, v in face["scores"].items()},
                     "model": model, "model_sha256": sha256})
    return rows


def write_part(out: Path, dataset: str, name: str, rows: list[dict], schema) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_path(out / dataset / f"part-{name}.parquet") as tmp:
        pq.write_table(table, tmp)


def mark_done(out: Path, task_id: str, counts: dict) -> None:
    write_json(out / TASKS / f"{task_id}.json", counts)


def done(out: Path) -> dict[str, dict]:
    """{task id: its counts} of the finished tasks."""
    folder = out / TASKS
    if not folder.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}


def read(out: Path, dataset: str):
    """A dataset as a pandas DataFrame (empty when nothing was written)."""
    import pyarrow.dataset as pads

    folder = Path(out) / dataset
    if not folder.is_dir() or not any(folder.glob("part-*.parquet")):
        import pandas as pd

        return pd.DataFrame()
    return pads.dataset(str(folder), format="parquet").to_table().to_pandas()


def write_video_summary(out: Path, labels: list[str]) -> int:
    """videos/part-summary.parquet from the faces of every video (rewritten each run: it is
    derived from faces/); returns its rows."""
    import pyarrow as pa

    faces = read(out, FACES)
    rows = []
    if len(faces):
        frames = faces[faces["frame"].notna()]
        groups = [((file, None, None), g) for file, g in frames.groupby("file", sort=True)]
        groups += [((file, int(seg), int(t)), g) for (file, seg, t), g
                   in frames.groupby(["file", "segment", "track"], sort=True)]
        for (file, segment, track), g in sorted(groups, key=lambda kv: (
                kv[0][0], -1 if kv[0][1] is None else kv[0][1], -1 if kv[0][2] is None
                else kv[0][2])):
            counts = g["emotion"].value_counts()
            rows.append({"file": file, "segment": segment, "track": track,
                         "frames": int(g["frame"].nunique()), "from": float(g["time"].min()),
                         "to": float(g["time"].max()),
                         "dominant": str(counts.index[0]) if len(counts) else None,
                         **{f"share_{lab}": float(counts.get(lab, 0) / len(g))
                            for lab in labels}})
    schema = pa.schema(
        [("file", pa.string()), ("segment", pa.int64()), ("track", pa.int64()),
         ("frames", pa.int64()), ("from", pa.float64()), ("to", pa.float64()),
         ("dominant", pa.string())] + [(f"share_{lab}", pa.float64()) for lab in labels])
    write_part(out, VIDEOS, "summary", rows, schema)
    return len(rows)
