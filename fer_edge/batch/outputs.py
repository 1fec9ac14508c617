"""The three Parquet datasets of a batch job and its bookkeeping, under OUT:

- faces/   a row per face: file, frame, time, segment, track, x, y, w, h, emotion, confidence,
           score_<label> for each label, model, model_sha256 (frame, time, segment and track are
           null for still images);
- videos/  per video and per track (within a segment): frames seen, time span, dominant emotion,
           the share of each emotion (as `classify --summary`; track null: the whole video);
- errors/  every input that failed, with the reason;
- _tasks/  a marker per finished task (its counts), written after its rows: a task without one is
           done again, and rewrites the same part files, so nothing is counted twice.

Each part is written to a temporary name and renamed, so a reader never sees half a file; its
rows are written a row group at a time as they come (a video's rows are never all in memory).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..edge.fileio import atomic_path, write_json

FACES, VIDEOS, ERRORS, TASKS = "faces", "videos", "errors", "_tasks"
ROWS_PER_GROUP = 4096      # rows held before they are written: a row group of a part file
COUNTS = ("inputs", "failed", "faces")   # a task marker's counts


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


def write_part(out: Path, dataset: str, name: str, rows, schema,
               rows_per_group: int | None = None) -> int:
    """Write `rows` (any iterable of dicts: a generator is read as it yields) to
    dataset/part-name.parquet, a row group of `rows_per_group` (ROWS_PER_GROUP) at a time;
    returns their count.
    The part appears, whole, only when the last row is in (atomic_path)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows_per_group = rows_per_group or ROWS_PER_GROUP
    count, held = 0, []
    with atomic_path(out / dataset / f"part-{name}.parquet") as tmp, \
            pq.ParquetWriter(tmp, schema) as writer:
        for row in rows:
            held.append(row)
            if len(held) >= rows_per_group:
                writer.write_table(pa.Table.from_pylist(held, schema=schema))
                count, held = count + len(held), []
        if held or not count:     # an empty part still has one (empty) row group
            writer.write_table(pa.Table.from_pylist(held, schema=schema))
        count += len(held)
    return count


def mark_done(out: Path, task_id: str, counts: dict) -> None:
    write_json(out / TASKS / f"{task_id}.json", counts)


def done(out: Path) -> tuple[dict[str, dict], list[tuple[Path, str]]]:
    """({task id: its counts} of the finished tasks, [(marker, why)] of the markers that cannot
    be read: truncated, not JSON, not a marker: their tasks count as not done)."""
    folder = out / TASKS
    finished, damaged = {}, []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            counts = _marker(path)
        except (OSError, ValueError) as e:       # JSONDecodeError and UnicodeError included
            damaged.append((path, why_damaged(e)))
            continue
        finished[path.stem] = counts
    return finished, damaged


def _marker(path: Path) -> dict:
    counts = json.loads(path.read_text())
    if not isinstance(counts, dict):
        raise ValueError(f"a JSON {type(counts).__name__}, not a task's counts")
    missing = [k for k in COUNTS if not isinstance(counts.get(k), int)]
    if missing or counts.get("id") != path.stem:
        raise ValueError(f"no {', '.join(missing) or 'id'} of its task")
    return counts


def why_damaged(e: Exception) -> str:
    """A damaged file's reason in a few words."""
    if isinstance(e, json.JSONDecodeError):
        if not e.doc.strip():
            return "empty"
        return f"unreadable JSON at byte {e.pos}"      # where the parser gave up
    return getattr(e, "strerror", None) or str(e)


def read(out: Path, dataset: str):
    """A dataset as a pandas DataFrame (empty when nothing was written)."""
    import pyarrow.dataset as pads

    folder = Path(out) / dataset
    if not folder.is_dir() or not any(folder.glob("part-*.parquet")):
        import pandas as pd

        return pd.DataFrame()
    return pads.dataset(str(folder), format="parquet").to_table().to_pandas()


def column(out: Path, dataset: str, name: str) -> list:
    """One column of a dataset, read alone ([] when nothing was written)."""
    import pyarrow.dataset as pads

    folder = Path(out) / dataset
    if not folder.is_dir() or not any(folder.glob("part-*.parquet")):
        return []
    return pads.dataset(str(folder), format="parquet").to_table(columns=[name]) \
        .column(name).to_pylist()


def _part_video_faces(part: Path):
    """(file, segment, track, frame, time, emotion) of each video face of one part file, read
    in record batches of those six columns."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    columns = ["file", "segment", "track", "frame", "time", "emotion"]
    scanner = pads.dataset(str(part), format="parquet").scanner(
        columns=columns, filter=pc.field("frame").is_valid(), batch_size=65536)
    for batch in scanner.to_batches():
        yield from zip(*(batch.column(c).to_pylist() for c in columns))


def video_summaries(out: Path) -> list:
    """summarize_faces (edge/track.py) of every video face in faces/, one part file at a time:
    a part holds one task, so one whole segment of a video, and its tracks' summaries are
    complete; a video's own summary (track None) is its segments' merged (their frames are
    disjoint). The driver holds one part's frame numbers at a time and a summary per track, never
    the faces of the run."""
    from ..edge.track import summarize_faces

    tracks, videos = [], {}
    for part in sorted((Path(out) / FACES).glob("part-*.parquet")):
        for g in summarize_faces(_part_video_faces(part)):
            if g.track is not None or g.segment is not None:
                tracks.append(g)
            elif g.file in videos:
                videos[g.file].merge(g)
            else:
                videos[g.file] = g
    return sorted([*tracks, *videos.values()], key=lambda g: (
        g.file, -1 if g.segment is None else g.segment, -1 if g.track is None else g.track))


def write_video_summary(out: Path, labels: list[str]) -> int:
    """videos/part-summary.parquet from the faces of every video (rewritten each run: it is
    derived from faces/), by the summary classify and the timeline print (edge/track.py);
    returns its rows."""
    import pyarrow as pa

    rows = [{"file": g.file, "segment": g.segment, "track": g.track, "frames": g.frames,
             "from": g.first, "to": g.last, "dominant": g.dominant,
             **{f"share_{lab}": share for lab, share in g.shares(labels).items()}}
            for g in video_summaries(out)]
    schema = pa.schema(
        [("file", pa.string()), ("segment", pa.int64()), ("track", pa.int64()),
         ("frames", pa.int64()), ("from", pa.float64()), ("to", pa.float64()),
         ("dominant", pa.string())] + [(f"share_{lab}", pa.float64()) for lab in labels])
    write_part(out, VIDEOS, "summary", rows, schema)
    return len(rows)
