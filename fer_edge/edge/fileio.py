"""File helpers: atomic, no-clobber writes (a reader never sees half a file, and nothing is
overwritten by accident), and which files count as images."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from pathlib import Path

from ..errors import FerEdgeError

# Image files OpenCV decodes, for the data loader and classify alike.
IMAGE_EXTS = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".webp", ".tif", ".tiff",
              ".pgm", ".ppm", ".pbm", ".pnm"}


def sha256(path: str | os.PathLike) -> str:
    """A file's sha256, as config.json, cards and batch outputs name the files they used."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_writable(path: str | os.PathLike, force: bool) -> Path:
    path = Path(path)
    if path.exists() and not force:
        raise FerEdgeError(f"{path} exists; pass --force to overwrite it")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds,
    after its bytes reached the disk (fsync of the file, then of the folder's entry), so a
    crash leaves the old file or the new one, never a torn or empty one. The temporary file is
    created 0666 less the process's umask by the kernel itself: no process-wide umask change."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_file(path.parent, f".{path.name}.", suffix or path.suffix)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _new_file(folder: Path, prefix: str, suffix: str) -> Path:
    for _ in range(100):
        tmp = folder / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FerEdgeError(f"cannot create a temporary file in {folder}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:          # a platform without folder handles (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
