"""What `classify` reads: image files, folders, videos, cameras, network streams and stdin,
expanded lazily into decoded `Item`s (an image, or one video frame with its index and time).
numpy and OpenCV only (edge runtime).

A bad input becomes an Item with `error` set (the command reports it in one line and goes on).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .. import defaults
from .fileio import IMAGE_EXTS
from .preprocessing import to_uint8

VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm"}
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
STDIN = "-"
CAMERA_PREFIX = "camera:"


_SILENCED = 0   # > 0 inside native_stderr_silenced(): the classify command, never the API


@contextlib.contextmanager
def native_stderr_silenced(err=None):
    """Within this block, quiet_native_stderr() silences fd 2 around native calls. Only the
    classify command enters it: redirecting fd 2 is process-wide, so an app's own threads could
    lose their log lines; the Classifier API leaves stderr alone. Yields the stream for the
    command's own lines: `err`, or, when `err` writes to fd 2, a stream on a copy of fd 2 taken
    here, which no redirect reaches (the inputs are decoded on another thread, whose silenced
    native calls would otherwise swallow the lines written meanwhile)."""
    global _SILENCED
    own = _copy_of_fd2(err)
    _SILENCED += 1
    try:
        yield own or err
    finally:
        _SILENCED -= 1
        if own is not None:
            own.close()


def _copy_of_fd2(err):
    """A line-buffered text stream on a duplicate of fd 2 when `err` writes there, else None."""
    try:
        if err is None or err.fileno() != 2:
            return None
        err.flush()
        return os.fdopen(os.dup(2), "w", buffering=1, encoding=err.encoding or "utf-8",
                         errors="backslashreplace")
    except (AttributeError, OSError, ValueError):   # io.UnsupportedOperation is an OSError
        return None


@contextlib.contextmanager
def quiet_native_stderr(always: bool = False):
    """Silence what C libraries (libpng, libjpeg, FFmpeg, LiteRT's INFO lines) print on fd 2, so
    a bad input yields exactly our one line: inside native_stderr_silenced(), or `always` (a
    command of its own: evaluate, the benchmarks). FER_EDGE_DEBUG=1 keeps them."""
    if os.environ.get("FER_EDGE_DEBUG") or not (_SILENCED or always):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@dataclass
class Item:
    """One thing to classify: an image or a video frame, with the name reported for it."""

    name: str
    image: np.ndarray | None = None      # working image (downscaled to MAX_IMAGE_SIDE)
    scale: float = 1.0                   # original pixels per working pixel
    size: tuple[int, int] = (0, 0)       # original (width, height)
    error: str | None = None
    source: str = ""                     # the input argument it came from (for output names)
    rel: str = ""                        # path relative to that argument (folders)
    frame: int | None = None             # video frames: index in the video ...
    time: float | None = None            # ... its time in seconds ...
    fps: float = 0.0                     # ... the video's frame rate (0: unknown)
    skip: bool = False                   # ... and True for a frame read only to be drawn (--every)


def shrink(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale so the longer side is at most `max_side`; returns (image, original/working)."""
    import cv2

    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image, 1.0
    scale = max(h, w) / max_side
    size = (max(1, round(w / scale)), max(1, round(h / scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return small, max(h / small.shape[0], w / small.shape[1])


# EXIF orientation -> what turns the stored pixels upright (PIL's exif_transpose, in OpenCV)
_UPRIGHT = {2: lambda im: im[:, ::-1], 3: lambda im: im[::-1, ::-1], 4: lambda im: im[::-1],
            5: lambda im: im.swapaxes(0, 1), 6: lambda im: im.swapaxes(0, 1)[:, ::-1],
            7: lambda im: im.swapaxes(0, 1)[::-1, ::-1], 8: lambda im: im.swapaxes(0, 1)[::-1]}


def decode(buf: np.ndarray, max_side: int = defaults.MAX_IMAGE_SIDE,
           max_pixels: int = defaults.MAX_PIXELS):
    """Encoded bytes -> (working image, scale, (width, height)), upright by its EXIF
    orientation; ValueError saying why not. The header's width x height is checked against
    `max_pixels` before anything is decoded (imagesize.py: a small file can decode to billions
    of pixels)."""
    import cv2

    from .imagesize import image_size, orientation

    if buf.size == 0:
        raise ValueError("empty file")
    header = image_size(buf)
    if header is None:
        raise ValueError("not a readable image (not JPEG, PNG, WebP, TIFF, BMP, GIF or PNM, or "
                         "its header is damaged)")
    if header[0] * header[1] > max_pixels:
        raise ValueError(f"{header[0]} x {header[1]} pixels, over the limit of {max_pixels:,} "
                         f"(--max-pixels)")
    with quiet_native_stderr():
        try:
            image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        except cv2.error:
            image = None
    if image is None or image.size == 0:
        raise ValueError("not a readable image (unknown format, truncated or corrupt)")
    if image.shape[0] * image.shape[1] > max_pixels:     # a header that lied to us
        raise ValueError(f"{image.shape[1]} x {image.shape[0]} pixels, over the limit of "
                         f"{max_pixels:,} (--max-pixels)")
    turn = orientation(buf)
    del buf
    if turn in _UPRIGHT:
        image = np.ascontiguousarray(_UPRIGHT[turn](image))
    h, w = image.shape[:2]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    image, scale = shrink(image, max_side)   # at once: no further full-size copies
    return to_uint8(image), scale, (w, h)


def read_image(path) -> np.ndarray:
    """One image file decoded as classify decodes it (working size); FerEdgeError if unreadable."""
    from ..errors import FerEdgeError

    try:
        return decode(np.fromfile(path, np.uint8))[0]
    except (OSError, ValueError) as e:
        raise FerEdgeError(f"{path}: {getattr(e, 'strerror', None) or e}") from None


def _image_item(name: str, read: Callable[[], np.ndarray], max_pixels: int, **kw) -> Item:
    try:
        buf = read()
        image, scale, size = decode(buf, max_pixels=max_pixels)
    except (OSError, ValueError, MemoryError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        return Item(name, error=reason, **kw)
    return Item(name, image=image, scale=scale, size=size, **kw)


def is_stream(arg: str) -> bool:
    return arg.lower().startswith(STREAM_SCHEMES) or arg.startswith(CAMERA_PREFIX)


def open_capture(target):
    """cv2.VideoCapture on a file, URL or camera index ("camera:N"); None when it cannot open."""
    import cv2

    if isinstance(target, str) and target.startswith(CAMERA_PREFIX):
        target = int(target[len(CAMERA_PREFIX):])
    with quiet_native_stderr(), _opencv_log_silenced():
        cap = cv2.VideoCapture(target if isinstance(target, int) else str(target))
    if not cap.isOpened():
        cap.release()
        return None
    return cap


@contextlib.contextmanager
def _opencv_log_silenced():
    """OpenCV's own log lines ("[ WARN:0@0.02] global cap_v4l.cpp:914 open VIDEOIO(V4L2:/dev/
    video7): can't open camera by index", one per backend it tries) off while a capture opens:
    the caller says in one line what could not be opened. OpenCV's logger, not fd 2, so serve's
    live source and the API stay quiet too without touching the process's streams.
    FER_EDGE_DEBUG=1 keeps them."""
    import cv2

    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if os.environ.get("FER_EDGE_DEBUG") or log is None:
        yield
        return
    before = log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        log.setLogLevel(before)


def video_items(target, name: str, every: int = 1, keep_skipped: bool = False,
                start: int = 0, stop: int | None = None, **kw) -> Iterator[Item]:
    """Every `every`th frame of a video file, URL or camera as Items with index and time.

    Time: the container's timestamp of the frame for files (CAP_PROP_POS_MSEC), else index / fps;
    for cameras and network streams, seconds since the stream was opened. With `keep_skipped`,
    the frames in between come too, marked `skip` (drawn into an annotated video, not
    classified). `start` and `stop`: a file's frames [start, stop) only (a segment), with their
    indices in the whole video, so every `every`th frame is the same frame as in a full read."""
    import cv2

    live = is_stream(str(target))
    cap = open_capture(target)
    if cap is None:
        what = "camera" if str(target).startswith(CAMERA_PREFIX) else "stream" if live else "video"
        yield Item(name, error=f"cannot open this {what}", **kw)
        return
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        fps = fps if 0 < fps < 1000 else 0.0
        clock = time.monotonic()
        index, produced = 0, 0
        if start and not live:
            # FFmpeg seeks to the key frame before and decodes forward to the frame asked for
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)
            index = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
            if index != start:
                yield Item(name, error=f"cannot seek to frame {start} (at {index})", **kw)
                return
        while stop is None or index < stop:
            with quiet_native_stderr():
                ok = cap.grab()
            if not ok:
                break
            wanted = index % every == 0
            if wanted or keep_skipped:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    h, w = frame.shape[:2]
                    frame, scale = shrink(frame, defaults.MAX_IMAGE_SIDE)
                    produced += wanted
                    yield Item(name, image=frame, scale=scale, size=(w, h), frame=index,
                               time=round(_frame_time(cap, index, fps, live, clock), 3),
                               fps=fps, skip=not wanted, **kw)
            index += 1
        if produced == 0:
            yield Item(name, error="not a readable video (no frame could be decoded)", **kw)
    finally:
        cap.release()


def _frame_time(cap, index: int, fps: float, live: bool, start: float) -> float:
    import cv2

    if live:
        return time.monotonic() - start
    ms = cap.get(cv2.CAP_PROP_POS_MSEC)
    if ms > 0 or (index == 0 and ms == 0):
        return ms / 1000.0
    return index / fps if fps else 0.0


def _is_media(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTS or p.suffix.lower() in VIDEO_EXTS


def iter_items(paths: Iterable[str], glob: str | None = None, every: int = 1,
               stdin=None, keep_skipped: bool = False,
               max_pixels: int = defaults.MAX_PIXELS) -> Iterator[Item]:
    """Expand the inputs (files, folders, videos, URLs, "camera:N", "-") into decoded items,
    lazily, in order; an image over `max_pixels` is an item with its error."""
    for arg in paths:
        arg = str(arg)
        if arg == STDIN:
            stream = stdin if stdin is not None else sys.stdin.buffer
            yield _image_item(arg, lambda: np.frombuffer(stream.read(), np.uint8), max_pixels,
                              source=arg)
            continue
        if is_stream(arg):
            yield from video_items(arg, arg, every, keep_skipped, source=arg,
                                   rel=arg.replace(":", "_").replace("/", "_"))
            continue
        path = Path(arg)
        if path.is_dir():
            pattern = glob or "*"
            files = sorted((p for p in path.rglob(pattern) if p.is_file() and _is_media(p)),
                           key=lambda p: p.relative_to(path).as_posix())
            if not files:
                what = f"no images or videos matching '{glob}'" if glob else "no images or videos"
                yield Item(arg, error=f"{what} in this folder", source=arg)
            for p in files:
                yield from _file_items(p, every, keep_skipped, max_pixels, source=arg,
                                       rel=p.relative_to(path).as_posix())
        elif path.exists():
            yield from _file_items(path, every, keep_skipped, max_pixels, source=arg,
                                   rel=path.name, name=arg)
        else:
            yield Item(arg, error="no such file or directory", source=arg)


def _file_items(path: Path, every: int, keep_skipped: bool, max_pixels: int,
                name: str | None = None, **kw) -> Iterator[Item]:
    name = name or str(path)
    if path.suffix.lower() in VIDEO_EXTS:
        yield from video_items(path, name, every, keep_skipped, **kw)
    else:
        yield _image_item(name, lambda: np.fromfile(path, np.uint8), max_pixels, **kw)
