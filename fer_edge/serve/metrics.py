"""The server's counters in Prometheus's text format (GET /metrics): requests by route and
status class, frames and faces of the live source, and a latency histogram of /v1/classify.
A route is one of the app's own (guard.py maps any other path to "other") and a status is
its class (2xx..5xx), so the series are a fixed set whatever strangers send."""

from __future__ import annotations

import threading
from collections import Counter

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


def label(value: str) -> str:
    """A Prometheus label value, escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.requests: Counter = Counter()        # (route, status class) -> count
        self.frames = 0
        self.faces = 0
        self.latency = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.latency_count = 0

    def request(self, route: str, status: int) -> None:
        with self._lock:
            self.requests[(route, status_class(status))] += 1

    def classified(self, seconds: float) -> None:
        with self._lock:
            self.latency[next((i for i, b in enumerate(BUCKETS) if seconds <= b),
                              len(BUCKETS))] += 1
            self.latency_sum += seconds
            self.latency_count += 1

    def frame(self, faces: int) -> None:
        with self._lock:
            self.frames += 1
            self.faces += faces

    def text(self) -> str:
        with self._lock:
            lines = ["# HELP fer_edge_requests_total HTTP requests by route and status class.",
                     "# TYPE fer_edge_requests_total counter"]
            lines += [f'fer_edge_requests_total{{route="{label(r)}",status="{s}"}} {n}'
                      for (r, s), n in sorted(self.requests.items())]
            lines += ["# HELP fer_edge_frames_total Frames of the live source classified.",
                      "# TYPE fer_edge_frames_total counter",
                      f"fer_edge_frames_total {self.frames}",
                      "# HELP fer_edge_faces_total Faces found in the live source's frames.",
                      "# TYPE fer_edge_faces_total counter", f"fer_edge_faces_total {self.faces}",
                      "# HELP fer_edge_classify_seconds Latency of POST /v1/classify.",
                      "# TYPE fer_edge_classify_seconds histogram"]
            total = 0
            for bound, n in zip((*map(str, BUCKETS), "+Inf"), self.latency):
                total += n
                lines.append(f'fer_edge_classify_seconds_bucket{{le="{bound}"}} {total}')
            lines += [f"fer_edge_classify_seconds_sum {self.latency_sum:.6f}",
                      f"fer_edge_classify_seconds_count {self.latency_count}"]
        return "\n".join(lines) + "\n"
