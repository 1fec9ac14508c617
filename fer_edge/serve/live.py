"""The live source of `fer-edge serve`: a thread that reads --source (a camera, a file or a
stream URL), classifies each frame with track ids (its own Classifier: the API's workers have
theirs), keeps the last annotated frame as a JPEG for the page and sends each frame's result to
the /events subscribers. A lost source is reopened with back-off, a file played again from its
start; the server never stops on a source error (an unexpected exception is one too), and
/healthz says "failed" if the thread is gone anyway. Nothing it reports names the source: a
stream URL may hold a password."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import numpy as np

from .. import defaults
from ..edge import sources
from ..edge.video import FrameTracker, prefetch
from ..edge.outputs import annotate

BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0   # seconds between attempts to reopen a lost source
SUBSCRIBER_QUEUE = 16                     # frames a slow /events client may fall behind
USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


def without_password(text: str) -> str:
    """`text` with each URL's user:password@ written ***@."""
    return USERINFO.sub(r"\1***@", text)


def redact(text: str, target: str) -> str:
    """`text` without the source's address, nor any user:password@ of a URL."""
    return without_password(text.replace(target, "the source").replace(
        without_password(target), "the source"))


def source_kind(target: str) -> str:
    if target.startswith(sources.CAMERA_PREFIX):
        return "camera"
    return "stream" if sources.is_stream(target) else "file"


class LiveSource:
    def __init__(self, source: str, classifier, metrics, every: int = 1, smooth: float = 0.0,
                 detect_every: int = defaults.VIDEO_DETECT_EVERY):
        self.target = f"{sources.CAMERA_PREFIX}{source}" if str(source).isdigit() \
            else str(source)
        self.clf, self.metrics = classifier, metrics
        self.every, self.smooth, self.detect_every = every, smooth, detect_every
        self.state = "starting"          # starting, running, reconnecting (failed: see health)
        self.error: str | None = None
        self.frames = 0
        self.last_frame_time: float | None = None
        self.reconnects = 0
        self.tracker = None              # the FrameTracker of the source being played
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = []
        self._lock = threading.Lock()
        self.jpeg: bytes | None = None   # the last annotated frame
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fer-edge-live")

    def start(self) -> "LiveSource":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    # ----------------------------------------------------------------------------- consumers

    def health(self) -> dict:
        state = self.state
        if not self._thread.is_alive() and not self._stop.is_set() and state != "starting":
            state = "failed"
        return {"source": source_kind(self.target), "state": state,
                "error": None if self.error is None else redact(self.error, self.target),
                "frames": self.frames, "last_frame_time": self.last_frame_time,
                "reconnects": self.reconnects}

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue:
        """A queue on `loop` that gets (record, jpeg) for each frame from now on."""
        q: asyncio.Queue = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE)
        with self._lock:
            self._subscribers.append((loop, q))
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        with self._lock:
            self._subscribers = [(loop, s) for loop, s in self._subscribers if s is not q]

    # ------------------------------------------------------------------------------ the loop

    def _run(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stop.is_set():
            try:
                produced = self._play()
            except Exception as e:      # a bug or a native error: reported, then reopened
                self.error, produced = f"{type(e).__name__}: {e}", 0
            if self._stop.is_set():
                return
            if produced:           # a file ended, or a stream that was running dropped
                delay = BACKOFF_FIRST
                if self.error is None:
                    continue       # a file: play it again
            self.state = "reconnecting"
            self.reconnects += 1
            self._stop.wait(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    def _play(self) -> int:
        """Read the source until it ends or fails; the frames it gave."""
        # classify's video path (edge/video.py), frames decoded on their own thread, 2 ahead at
        # most (a camera's frame is never more than that behind)
        tracker = self.tracker = FrameTracker(self.smooth, self.detect_every)
        produced = 0
        self.error = None
        # a file plays at its own pace, as a camera would give it
        paced = not (sources.is_stream(self.target)
                     or self.target.startswith(sources.CAMERA_PREFIX))
        t0 = time.monotonic()
        # the frames' "file" (on /events): the address without its password
        items = prefetch(sources.video_items(self.target, without_password(self.target),
                                             self.every), size=2)
        try:
            for item in items:
                if self._stop.is_set():
                    break
                if item.error:
                    self.error = item.error
                    break
                if paced and item.time:
                    self._stop.wait(max(0.0, t0 + item.time - time.monotonic()))
                self.state = "running"
                record = tracker.record(self.clf, item)
                produced += 1
                self._publish(record, item)
        finally:
            items.close()
        return produced

    def _publish(self, record: dict, item) -> None:
        self.frames += 1
        self.last_frame_time = time.time()
        self.metrics.frame(len(record["faces"]))
        self.jpeg = annotated_jpeg(item.image, record["faces"], item.scale)
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, q in subscribers:
            try:
                loop.call_soon_threadsafe(_offer, q, (record, self.jpeg))
            except RuntimeError:   # that loop has closed: its streams are gone
                self.unsubscribe(q)


def _offer(q: asyncio.Queue, frame) -> None:
    """On the subscriber's loop: a slow client loses its oldest frame, not our memory."""
    if q.full():
        q.get_nowait()
    q.put_nowait(frame)


def annotated_jpeg(image: np.ndarray, faces: list[dict], scale: float) -> bytes:
    """The frame with each face's box, track and emotion drawn (as --save-annotated draws
    them), as a JPEG."""
    import cv2

    ok, buf = cv2.imencode(".jpg", annotate(image, faces, scale), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes()
