"""Face identity across video frames, smoothing of a face's scores over time, and the per-track
summary of a clip. numpy only (edge runtime).

The tracker is a plain greedy IoU matcher with a centre-distance fallback: a face in a new frame
continues the live track whose predicted box (its last box moved on at its last velocity)
overlaps it most (IoU >= TRACK_MIN_IOU), or failing that whose predicted centre lies within
TRACK_MAX_CENTRE_SHIFT box sizes; a track not seen for more than TRACK_MAX_GAP frames ends, so a
face that leaves and returns later gets a new id.
"""

from __future__ import annotations

from collections import Counter
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
    velocity: tuple = (0.0, 0.0)         # centre shift per frame, from the last two sightings

    def predicted(self, step: int) -> tuple:
        dt = step - self.last_seen
        x, y, w, h = self.box
        return (x + self.velocity[0] * dt, y + self.velocity[1] * dt, w, h)

    def move(self, box, step: int) -> None:
        dt = step - self.last_seen
        if dt > 0:
            self.velocity = ((box[0] + box[2] / 2 - self.box[0] - self.box[2] / 2) / dt,
                             (box[1] + box[3] / 2 - self.box[1] - self.box[3] / 2) / dt)
        self.box, self.last_seen = tuple(box), step


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
        predicted = [t.predicted(self.step) for t in self.tracks]
        for i, box in enumerate(boxes):
            for j, guess in enumerate(predicted):
                iou = _iou(guess, box)
                if iou >= TRACK_MIN_IOU:
                    pairs.append((1.0 + iou, i, j))        # any overlap beats any distance
                else:
                    shift = _centre_shift(guess, box)
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
            track.move(box, self.step)
            out.append(track)
        return out

    def keep(self, tracks: list, boxes) -> list[_Track]:
        """Tracks followed into the next frame without the full detector (their new boxes); a
        None among them: a face found coming in, a new track. The tracks, in order."""
        self.step += 1
        out = []
        for t, box in zip(tracks, boxes):
            if t is None:
                t = _Track(self.next_id, tuple(box), self.step)
                self.next_id += 1
                self.tracks.append(t)
            t.move(box, self.step)
            out.append(t)
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
    """One video's faces (track None), or one track's, of classify, the timeline and batch
    alike: frames seen, time span, emotion counts."""

    file: str
    track: int | None                   # None: every face of the file
    segment: int | None = None          # batch: the piece of the video its tracks belong to
    first: float | None = None          # time of the first and last frame seen, seconds
    last: float | None = None
    emotions: Counter = field(default_factory=Counter)
    frame_ids: set = field(default_factory=set)
    merged_frames: int = 0              # frames of summaries merged in (their ids not kept)

    def add(self, frame: int, t: float | None, emotion: str) -> None:
        self.emotions[emotion] += 1
        if frame not in self.frame_ids:
            self.frame_ids.add(frame)
            if t is not None:
                self.first = t if self.first is None else min(self.first, t)
                self.last = t if self.last is None else max(self.last, t)

    def merge(self, other: "TrackSummary") -> None:
        """Add another summary of the same file over other frames (batch: another segment of
        the video) by its counts alone, so no frame ids pile up."""
        self.emotions += other.emotions
        self.merged_frames += other.frames
        for t in (other.first, other.last):
            if t is not None:
                self.first = t if self.first is None else min(self.first, t)
                self.last = t if self.last is None else max(self.last, t)

    @property
    def frames(self) -> int:
        return len(self.frame_ids) + self.merged_frames

    @property
    def dominant(self) -> str | None:
        """The emotion of the most faces; None when there is none, or when two share the top
        (a 50/50 split has no dominant emotion)."""
        top = self.emotions.most_common(2)
        if not top or (len(top) == 2 and top[0][1] == top[1][1]):
            return None
        return top[0][0]

    def shares(self, labels) -> dict[str, float]:
        """Each emotion's share of the faces (exact; the printed summaries round)."""
        n = sum(self.emotions.values()) or 1
        return {lab: self.emotions[lab] / n for lab in labels}


def summarize_faces(faces) -> list[TrackSummary]:
    """Per video (all its faces) and per (segment, track): from (file, segment, track, frame,
    time, emotion) of each video face, in any order; sorted by file, segment and track."""
    groups: dict[tuple, TrackSummary] = {}
    for file, segment, tid, frame, t, emotion in faces:
        for key in ((file, None, None), (file, segment, tid)):
            g = groups.get(key)
            if g is None:
                g = groups[key] = TrackSummary(file, key[2], segment=key[1])
            g.add(frame, t, emotion)
    return sorted(groups.values(), key=lambda g: (
        g.file, -1 if g.segment is None else g.segment, -1 if g.track is None else g.track))


def summarize(records) -> list[TrackSummary]:
    """summarize_faces of classify's records ({"file", "frame", "time", "faces": [{"track",
    "emotion"}]}); records of still images (no "frame") are left out."""
    return summarize_faces((rec["file"], None, face.get("track"), rec["frame"], rec.get("time"),
                            face["emotion"])
                           for rec in records if rec.get("frame") is not None
                           for face in rec["faces"])


# ------------------------------------------------------------------- between detector frames

FLOW_GRID = 5              # points per side of the grid followed inside each face
FLOW_MIN_POINTS = 8        # fewer points followed than this: the face is lost until redetected
FLOW_REACH = 0.5           # the crop flow runs in: the box grown by this share of its size per side
FLOW_FACE_SIDE = 48        # ... shrunk so the face is about this many pixels wide (LK needs no more)
FLOW_WINDOW = (9, 9)       # Lucas-Kanade window and pyramid levels, at that scale
FLOW_LEVELS = 2
FLOW_MIN_FB_ERROR = 0.5    # forward-backward error (crop pixels) a point may always have


def _flow_crops(prev_gray: np.ndarray, gray: np.ndarray, box):
    """The same region of both frames around `box` (grown by FLOW_REACH), shrunk to a face of
    about FLOW_FACE_SIDE pixels: (previous, current, region origin, scale) or None. Only this
    region is read: the frame's pyramid is never built."""
    import cv2

    H, W = gray.shape[:2]
    x, y, w, h = box
    grow = FLOW_REACH * max(w, h)
    x0, y0 = int(max(0, x - grow)), int(max(0, y - grow))
    x1, y1 = int(min(W, np.ceil(x + w + grow))), int(min(H, np.ceil(y + h + grow)))
    if x1 - x0 < FLOW_GRID or y1 - y0 < FLOW_GRID:
        return None
    f = min(1.0, FLOW_FACE_SIDE / max(w, h, 1.0))
    size = (max(FLOW_GRID, round((x1 - x0) * f)), max(FLOW_GRID, round((y1 - y0) * f)))
    scale = np.array([size[0] / (x1 - x0), size[1] / (y1 - y0)])
    # bilinear is enough for flow, and several times cheaper than INTER_AREA at a ratio that
    # is not a whole number
    a = cv2.resize(prev_gray[y0:y1, x0:x1], size, interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(gray[y0:y1, x0:x1], size, interpolation=cv2.INTER_LINEAR)
    return a, b, np.array([x0, y0], np.float64), scale


def _median(values: np.ndarray) -> np.ndarray:
    """np.median along the first axis, for the few points here (np.median's own set-up costs
    several times the sort of 25 numbers)."""
    v = np.sort(values, axis=0)
    n = len(v)
    return (v[(n - 1) // 2] + v[n // 2]) * 0.5


def _median_flow(a: np.ndarray, b: np.ndarray, points: np.ndarray):
    """Points of crop `a` followed into crop `b` by pyramidal Lucas-Kanade, forward and back
    (a point whose return misses its start by more than the median is dropped: TLD's median
    flow). Returns (start points, end points) of the points kept."""
    import cv2

    p = points.astype(np.float32).reshape(-1, 1, 2)
    q, ok, _ = cv2.calcOpticalFlowPyrLK(a, b, p, None, winSize=FLOW_WINDOW, maxLevel=FLOW_LEVELS)
    r, back, _ = cv2.calcOpticalFlowPyrLK(b, a, q, None, winSize=FLOW_WINDOW,
                                          maxLevel=FLOW_LEVELS)
    ok = (ok & back).ravel().astype(bool)
    d = (r - p).reshape(-1, 2)
    error = np.sqrt((d * d).sum(1))
    if ok.any():
        ok &= error <= max(float(_median(error[ok])), FLOW_MIN_FB_ERROR)
    return p.reshape(-1, 2)[ok], q.reshape(-1, 2)[ok]


# the grid followed inside each face: the inner 60% of its box, as shares of its size
_GRID_T = (np.arange(FLOW_GRID) + 0.5) / FLOW_GRID * 0.6 + 0.2
FLOW_POINTS = np.stack(np.meshgrid(_GRID_T, _GRID_T), -1).reshape(-1, 2)


def flow_boxes(prev_gray: np.ndarray, gray: np.ndarray, boxes: np.ndarray, eyes=None):
    """Move face boxes (and eyes) from one frame to the next by optical flow ("median flow":
    Lucas-Kanade on a grid of points inside each box, in a small crop around it; the box
    follows the points' median shift and the median change of their distance from their
    centre). Returns (boxes, eyes, found): boxes unrounded (float), found False for a face that
    could not be followed or left the frame."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    out_boxes, out_eyes = boxes.copy(), None if eyes is None else np.array(eyes, np.float32)
    found = np.zeros(len(boxes), bool)
    H, W = gray.shape[:2]
    for i, (x, y, w, h) in enumerate(boxes):
        crops = _flow_crops(prev_gray, gray, (x, y, w, h))
        if crops is None:
            continue
        a, b, origin, scale = crops
        start, end = _median_flow(a, b, ((x, y) - origin + FLOW_POINTS * (w, h)) * scale)
        if len(start) < FLOW_MIN_POINTS:
            continue
        start, end = start / scale, end / scale              # back to frame pixels
        sx, sy = _median(end - start)
        d0, d1 = start - start.mean(0), end - end.mean(0)
        d0, d1 = np.sqrt((d0 * d0).sum(1)), np.sqrt((d1 * d1).sum(1))
        spread = d0 > 1
        zoom = float(_median(d1[spread] / d0[spread])) if spread.any() else 1.0
        cx, cy = x + w / 2 + sx, y + h / 2 + sy
        out_boxes[i] = (cx - w * zoom / 2, cy - h * zoom / 2, w * zoom, h * zoom)
        if out_eyes is not None:
            out_eyes[i] = (out_eyes[i] - (x + w / 2, y + h / 2)) * zoom + (cx, cy)
        found[i] = 0 <= cx < W and 0 <= cy < H               # its centre still in the frame
    return out_boxes, out_eyes, found
