"""Face identity across video frames, smoothing of a face's scores over time, and the per-track
summary of a clip. numpy only (edge runtime).

The tracker is a plain greedy IoU matcher with a centre-distance fallback: a face in a new frame
continues the live track whose last box overlaps it most (IoU >= TRACK_MIN_IOU), or failing that
whose centre lies within TRACK_MAX_CENTRE_SHIFT box sizes; a track not seen for more than
TRACK_MAX_GAP classified frames ends, so a face that leaves and returns later gets a new id.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

TRACK_MIN_IOU = 0.3
TRACK_MAX_CENTRE_SHIFT = 0.75   # in units of the track's box size (w + h) / 2
TRACK_MAX_GAP = 10              # classified frames a track may go unseen and still continue


def _iou(a, b) -> float:
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    iw = max(0.0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    ih = max(0.0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _centre_shift(a, b) -> float:
    """Distance between the boxes' centres in units of a's size."""
    ax, ay = a[0] + a[2] / 2, a[1] + a[3] / 2
    bx, by = b[0] + b[2] / 2, b[1] + b[3] / 2
    return float(np.hypot(ax - bx, ay - by) / max(1.0, (a[2] + a[3]) / 2))


@dataclass
class _Track:
    id: int
    box: tuple
    last_seen: int
    scores: np.ndarray | None = None     # smoothed scores (when smoothing)


class Tracker:
    """Assigns a track id to each face box of successive frames of one video or stream."""

    def __init__(self, max_gap: int = TRACK_MAX_GAP):
        self.max_gap = max_gap
        self.tracks: list[_Track] = []
        self.next_id = 1
        self.step = 0

    def update(self, boxes) -> list[_Track]:
        """The track of each box (in order) for the next frame."""
        self.step += 1
        self.tracks = [t for t in self.tracks if self.step - t.last_seen <= self.max_gap + 1]
        pairs = []
        for i, box in enumerate(boxes):
            for j, t in enumerate(self.tracks):
                iou = _iou(t.box, box)
                if iou >= TRACK_MIN_IOU:
                    pairs.append((1.0 + iou, i, j))        # any overlap beats any distance
                else:
                    shift = _centre_shift(t.box, box)
                    if shift <= TRACK_MAX_CENTRE_SHIFT:
                        pairs.append((1.0 - shift / TRACK_MAX_CENTRE_SHIFT, i, j))
        assigned: dict[int, _Track] = {}
        used = set()
        for _, i, j in sorted(pairs, reverse=True):
            if i not in assigned and j not in used:
                assigned[i] = self.tracks[j]
                used.add(j)
        out = []
        for i, box in enumerate(boxes):
            track = assigned.get(i)
            if track is None:
                track = _Track(self.next_id, tuple(box), self.step)
                self.next_id += 1
                self.tracks.append(track)
            track.box, track.last_seen = tuple(box), self.step
            out.append(track)
        return out


def smooth(track: _Track, scores: np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average of a track's scores: `weight` is the share kept from the past
    (0: no smoothing)."""
    scores = np.asarray(scores, np.float32)
    if weight <= 0 or track.scores is None:
        track.scores = scores
    else:
        track.scores = weight * track.scores + (1 - weight) * scores
    return track.scores


# ------------------------------------------------------------------------------- summaries

@dataclass
class TrackSummary:
    file: str
    track: int | None                   # None: every face of the file
    frames: int = 0
    first: float | None = None          # time of the first and last frame seen, seconds
    last: float | None = None
    emotions: Counter = field(default_factory=Counter)

    @property
    def dominant(self) -> str:
        return self.emotions.most_common(1)[0][0] if self.emotions else "-"

    def shares(self, labels) -> dict[str, float]:
        n = sum(self.emotions.values()) or 1
        return {lab: round(self.emotions[lab] / n, 4) for lab in labels}


def summarize(records) -> list[TrackSummary]:
    """Per video (all its faces) and per track: frames seen, emotion counts, time span. Takes
    classify's records ({"file", "frame", "time", "faces": [{"track", "emotion"}]}); records of
    still images (no "frame") are left out."""
    groups: dict[tuple, TrackSummary] = {}
    seen = defaultdict(set)
    for rec in records:
        if rec.get("frame") is None:
            continue
        name, t = rec["file"], rec.get("time")
        for face in rec["faces"]:
            for key in ((name, None), (name, face.get("track"))):
                g = groups.setdefault(key, TrackSummary(*key))
                g.emotions[face["emotion"]] += 1
                if rec["frame"] not in seen[key]:
                    seen[key].add(rec["frame"])
                    g.frames += 1
                    g.first = t if g.first is None else min(g.first, t)
                    g.last = t if g.last is None else max(g.last, t)
    return sorted(groups.values(), key=lambda g: (g.file, -1 if g.track is None else g.track))
