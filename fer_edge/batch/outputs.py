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


def _video_faces(out: Path):
    """(file, segment, track, frame, time, emotion) of every video face in faces/, read in
    record batches of those six columns: the driver never holds the whole table."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    folder = Path(out) / FACES
    if not folder.is_dir() or not any(folder.glob("part-*.parquet")):
        return
    columns = ["file", "segment", "track", "frame", "time", "emotion"]
    scanner = pads.dataset(str(folder), format="parquet").scanner(
        columns=columns, filter=pc.field("frame").is_valid(), batch_size=65536)
    for batch in scanner.to_batches():
        yield from zip(*(batch.column(c).to_pylist() for c in columns))


def write_video_summary(out: Path, labels: list[str]) -> int:
    """videos/part-summary.parquet from the faces of every video (rewritten each run: it is
    derived from faces/), by the summary classify and the timeline print (edge/track.py);
    returns its rows."""
    import pyarrow as pa

    from ..edge.track import summarize_faces

    rows = [{"file": g.file, "segment": g.segment, "track": g.track, "frames": g.frames,
             "from": g.first, "to": g.last, "dominant": g.dominant,
             **{f"share_{lab}": share for lab, share in g.shares(labels).items()}}
            for g in summarize_faces(_video_faces(out))]
    schema = pa.schema(
        [("file", pa.string()), ("segment", pa.int64()), ("track", pa.int64()),
         ("frames", pa.int64()), ("from", pa.float64()), ("to", pa.float64()),
         ("dominant", pa.string())] + [(f"share_{lab}", pa.float64()) for lab in labels])
    write_part(out, VIDEOS, "summary", rows, schema)
    return len(rows)
