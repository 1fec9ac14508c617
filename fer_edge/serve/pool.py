"""A fixed number of inference workers behind a short queue. Each worker owns a Classifier (a
LiteRT interpreter is not thread-safe), so requests never share one; a request that finds the
queue full is refused at once (503 with Retry-After), so memory and latency stay bounded."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future


class Busy(Exception):
    """The queue is full: come back later."""


class InferencePool:
    def __init__(self, make_classifier, workers: int, queue_size: int):
        self._jobs: queue.Queue = queue.Queue(maxsize=queue_size)
        self._threads = []
        self.classifiers = [make_classifier() for _ in range(workers)]
        for clf in self.classifiers:
            t = threading.Thread(target=self._work, args=(clf,), daemon=True,
                                 name="fer-edge-inference")
            t.start()
            self._threads.append(t)

    def submit(self, fn, *args) -> Future:
        """fn(classifier, *args) on a free worker's classifier; Busy when the queue is full."""
        future: Future = Future()
        try:
            self._jobs.put_nowait((future, fn, args))
        except queue.Full:
            raise Busy from None
        return future

    def _work(self, clf) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(clf, *args))
            except BaseException as e:   # the request's own failure, reported to it
                future.set_exception(e)

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for clf in self.classifiers:
            clf.close()
