"""The live source of `fer-edge serve`: a thread that reads --source (a camera, a file or a
stream URL), classifies each frame with track ids (its own Classifier: the API's workers have
theirs), keeps the last annotated frame as a JPEG for the page and sends each frame's result to
the /events subscribers. A lost source is reopened with back-off, a file played again from its
start; the server never stops on a source error."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from .. import defaults
from ..edge import sources
from ..edge.video import FrameTracker, prefetch
from ..edge.outputs import annotate

BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0   # seconds between attempts to reopen a lost source
SUBSCRIBER_QUEUE = 16                     # frames a slow /events client may fall behind


class LiveSource:
    def __init__(self, source: str, classifier, metrics, every: int = 1, smooth: float = 0.0,
                 detect_every: int = defaults.VIDEO_DETECT_EVERY):
        self.target = f"{sources.CAMERA_PREFIX}{source}" if str(source).isdigit() \
            else str(source)
        self.clf, self.metrics = classifier, metrics
        self.every, self.smooth, self.detect_every = every, smooth, detect_every
        self.state = "starting"          # starting, running, reconnecting
        self.error: str | None = None
        self.frames = 0
        self.last_frame_time: float | None = None
        self.reconnects = 0
        self.tracker = None              # the FrameTracker of the source being played
        self._subscribers: list[queue.Queue] = []
        self._lock = threading.Lock()
        self._jpeg: bytes | None = None
        self._new_jpeg = threading.Condition()
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
        return {"source": self.target, "state": self.state, "error": self.error,
                "frames": self.frames, "last_frame_time": self.last_frame_time,
                "reconnects": self.reconnects}

    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue(maxsize=SUBSCRIBER_QUEUE)
        with self._lock:
            self._subscribers.append(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            if q in self._subscribers:
                self._subscribers.remove(q)

    def next_jpeg(self, after: bytes | None, timeout: float = 5.0) -> bytes | None:
        """The annotated frame after `after` (None: the current one), waiting up to `timeout`."""
        with self._new_jpeg:
            self._new_jpeg.wait_for(lambda: self._jpeg is not None and self._jpeg is not after,
                                    timeout=timeout)
            return self._jpeg

    # ------------------------------------------------------------------------------ the loop

    def _run(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stop.is_set():
            produced = self._play()
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
        items = prefetch(sources.video_items(self.target, self.target, self.every), size=2)
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
        with self._lock:
            subscribers = list(self._subscribers)
        for q in subscribers:
            try:
                q.put_nowait(record)
            except queue.Full:     # a slow client loses its oldest frame, not our memory
                try:
                    q.get_nowait()
                    q.put_nowait(record)
                except (queue.Empty, queue.Full):
                    pass
        jpeg = annotated_jpeg(item.image, record["faces"], item.scale)
        with self._new_jpeg:
            self._jpeg = jpeg
            self._new_jpeg.notify_all()


def annotated_jpeg(image: np.ndarray, faces: list[dict], scale: float) -> bytes:
    """The frame with each face's box, track and emotion drawn (as --save-annotated draws
    them), as a JPEG."""
    import cv2

    ok, buf = cv2.imencode(".jpg", annotate(image, faces, scale), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes()
