"""The inputs of a batch job as tasks: files, folders (recursive, --glob) and manifests (CSV or
Parquet with a `path` column), local or on any filesystem pyarrow reads; images in chunks,
each video in segments of whole frames.

A task's id is a digest of what it covers, so the same command plans the same tasks again and a
rerun can skip the ones already written."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import dataclass

from ..edge.fileio import IMAGE_EXTS
from ..edge.sources import VIDEO_EXTS

MANIFEST_EXTS = {".csv", ".parquet"}


@dataclass(frozen=True)
class Task:
    kind: str                    # "images" or "video"
    files: tuple[str, ...]       # where to read them: absolute paths or URIs
    segment: int = 0             # a video's piece: frames [start, stop)
    start: int = 0
    stop: int | None = None
    names: tuple[str, ...] = ()  # the files as the command line named them (the rows' `file`)

    @property
    def id(self) -> str:
        what = json.dumps([self.kind, self.files, self.start, self.stop])
        return hashlib.sha256(what.encode()).hexdigest()[:24]

    def row(self) -> dict:
        return {"id": self.id, "kind": self.kind, "files": list(self.files),
                "segment": self.segment, "start": self.start,
                "stop": -1 if self.stop is None else self.stop,
                "names": list(self.names or self.files)}

    @classmethod
    def from_row(cls, row: dict) -> "Task":
        return cls(row["kind"], tuple(row["files"]), int(row["segment"]), int(row["start"]),
                   None if int(row["stop"]) < 0 else int(row["stop"]), tuple(row["names"]))


def suffix(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def filesystem(path: str):
    """(the pyarrow filesystem that holds `path`, the path within it)."""
    from pyarrow import fs

    if is_remote(path):
        return fs.FileSystem.from_uri(path)
    import os

    return fs.LocalFileSystem(), os.path.abspath(path.removeprefix("file://"))


def _qualified(path: str, like: str) -> str:
    """A path found by listing `like`'s filesystem, as an absolute path or a URI."""
    if is_remote(like):
        return like.split("://", 1)[0] + "://" + path
    return path


def _named(path: str, root: str, given: str) -> str:
    """`path` (found below `root`) as the user would write it: below `given`."""
    import posixpath

    return posixpath.join(given, path[len(root):].lstrip("/"))


def manifest_paths(path: str) -> list[str]:
    """The `path` column of a CSV or Parquet manifest; relative paths are relative to it."""
    import posixpath

    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from ..errors import FerEdgeError

    fs, inner = filesystem(path)
    with fs.open_input_file(inner) as f:
        table = pq.read_table(f) if suffix(path) == ".parquet" else pcsv.read_csv(f)
    if "path" not in table.column_names:
        raise FerEdgeError(f"{path}: a manifest needs a `path` column (it has "
                           f"{', '.join(table.column_names)})")
    base = posixpath.dirname(path)
    return [p if ("://" in p or p.startswith("/")) else posixpath.join(base, p)
            for p in table.column("path").to_pylist() if p]


def expand(inputs: list[str], glob: str | None = None
           ) -> tuple[list[str], list[dict], dict[str, str]]:
    """(the media files to read, in order and once each, as absolute paths or URIs; error rows
    for inputs that are not there; each file's name as the command line gave it, the `file` of
    its rows, as `classify` writes it)."""
    from pyarrow import fs as pafs

    files, errors, names = [], [], {}

    def add(path: str, name: str):
        if path not in names:
            names[path] = name
            files.append(path)

    for given in map(str, inputs):
        fs, inner = filesystem(given)
        info = fs.get_file_info(inner)
        if info.type == pafs.FileType.NotFound:
            errors.append({"file": given, "reason": "not found"})
        elif info.type == pafs.FileType.Directory:
            found = fs.get_file_info(pafs.FileSelector(inner, recursive=True))
            for entry in sorted((e for e in found if e.type == pafs.FileType.File),
                                key=lambda e: e.path):
                rel = entry.path[len(inner):].lstrip("/")
                media = suffix(entry.path) in IMAGE_EXTS | VIDEO_EXTS
                if media and (glob is None or fnmatch.fnmatch(rel, glob)
                              or fnmatch.fnmatch(entry.base_name, glob)):
                    add(_qualified(entry.path, given), _named(entry.path, inner, given))
        elif suffix(given) in MANIFEST_EXTS:
            for path in manifest_paths(given):
                add(path if is_remote(path) else filesystem(path)[1], path)
        else:
            add(given if is_remote(given) else inner, given)
    return files, errors, names


def video_frames(path: str) -> tuple[int, float] | None:
    """(frame count, fps) of a local video, or None when it cannot be opened."""
    import cv2

    from ..edge.sources import open_capture

    cap = open_capture(path)
    if cap is None:
        return None
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), float(cap.get(cv2.CAP_PROP_FPS) or 0)
    finally:
        cap.release()


def plan(files: list[str], names: dict[str, str], images_per_task: int,
         segment_seconds: float) -> tuple[list[Task], list[dict]]:
    """The tasks for `files` (error rows for videos that cannot be opened). A video of unknown
    length or frame rate, or on a remote filesystem, is one task."""
    images = [f for f in files if suffix(f) not in VIDEO_EXTS]
    videos = [f for f in files if suffix(f) in VIDEO_EXTS]
    tasks = [Task("images", tuple(chunk), names=tuple(names[f] for f in chunk))
             for chunk in (images[i:i + images_per_task]
                           for i in range(0, len(images), images_per_task))]
    errors = []
    for video in videos:
        whole = Task("video", (video,), names=(names[video],))
        if is_remote(video):
            tasks.append(whole)
            continue
        probe = video_frames(video)
        if probe is None:
            errors.append({"file": names[video], "reason": "cannot open this video"})
            continue
        count, fps = probe
        step = round(segment_seconds * fps) if 0 < fps < 1000 else 0
        if count <= 0 or step <= 0 or count <= step:
            tasks.append(whole)
            continue
        for k, start in enumerate(range(0, count, step)):
            last = start + step >= count
            tasks.append(Task("video", (video,), k, start, None if last else start + step,
                              (names[video],)))
    return tasks, errors
