"""The video path of classify, streams and cameras, serve's live source, batch's videos and
`Classifier.video`: every frame gets every face's box and emotion, without the full-frame
detector on every frame (numpy, OpenCV and LiteRT only).

`FrameTracker(detect_every=N)`, N > 1 (the default, defaults.VIDEO_DETECT_EVERY):

- full-frame detection (the Classifier's detector, `blazeface_dual` by default) on the first
  frame; on every Nth frame (the net under the newcomer search below: a face that came in
  without moving, or turned towards the camera, is found at most N - 1 frames late); on a
  frame where a followed face is lost; and on a scene cut (the frame's 32x24 thumbnail, shrunk
  from the 80x60 one, far from the last one);
- newcomers: where the picture changed away from the followed faces (an 80x60 thumbnail
  against the last frame's, the faces' boxes and what moves with them left out), something
  came in. The short-range model searches a square crop around the change (1 ms, against 6
  for the full detector), so a face that enters is found on its first frame. The full
  detector looks instead when that crop would be larger than the frame's height, when what
  it finds there covers part of a followed face (faces over faces), and on every
  ARRIVAL_TRIES-th motion frame in a row with nothing found (a face the short-range model
  misses there, or motion that is no face: a waving hand);
- on the frames between, a per-track step of two kinds:
  - on most frames, optical flow ("median flow", track.flow_boxes): Lucas-Kanade on a grid of
    points inside each face, in a small crop around it, forward and back; the box follows the
    points' median shift and spread. A face the flow loses is checked at once;
  - on every FACE_CHECK_EVERY-th frame, the check MediaPipe's trackers make: each followed
    face is searched for by the short-range BlazeFace model in a square crop around its
    predicted box (its last box moved on at its velocity). The crops of all the faces are
    tiled into the model's one 128x128 input ("mosaic"), so a check costs one small detector
    call whatever the number of faces. A face whose crop holds no detection above BlazeFace's
    own score threshold is lost, and that frame gets the full detector. The box the crop gives
    is mapped onto the full detector's framing of the same face (each track's offset and
    scale, measured on its full-detection frames): the two models frame a face differently.
  Boxes are carried from frame to frame unrounded (rounding a moving face's box every frame
  drifts it by up to half a pixel a frame).
- the faces of a frame are classified in one model batch; track ids carry on; smoothing as
  before (track.smooth).

N = 1 runs the full detector on every frame: the reference, 2-3x slower than the default.
With a detector that is not BlazeFace (Haar), the frames between are followed by optical flow
alone.

`prefetch(items)`: frames are read and decoded on a thread of their own, a few ahead (a bounded
queue), while the model runs on the frame before.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterator

import numpy as np

from .. import defaults
from . import detect, track
from .preprocessing import to_gray

MIN_IMAGE_SIDE = 8            # as classify.MIN_IMAGE_SIDE: smaller frames hold no face
ROI_SCALE = 2.0               # the crop around a predicted box: this many times its larger side
ROI_MIN_SCORE = detect.BLAZE_MIN_SCORE   # a face found in its crop above this score is kept
FACE_CHECK_EVERY = 5          # between full detections, BlazeFace checks the faces on every 5th
                              # frame; optical flow follows them on the frames between (3, 4 and
                              # 5 measured: reports/video_path/settings.json)
CUT_THUMB = (32, 24)          # scene-cut test: thumbnails of the frames ...
CUT_MEAN_DIFF = 40.0          # ... whose mean absolute difference (0..255) over this is a cut
MOTION_THUMB_STEP = 8         # newcomer test: frames shrunk 8x (640x480 -> 80x60) ...
MOTION_DIFF = 24              # ... a thumbnail pixel changed by more than this (0..255) ...
MOTION_KEEP_OUT = 0.6         # ... away from the followed faces (boxes grown by this on each side)
MOTION_MIN_PIXELS = 6         # ... in this many thumbnail pixels: something moved in, look for it
ARRIVAL_GROW = 1.5            # a newcomer is searched for in a square this many times the
ARRIVAL_MIN_SIDE = 96         # changed region's larger side (at least this many pixels) ...
ARRIVAL_TRIES = 3             # ... and after this many motion frames in a row without one found
                              # there, the full detector looks (the bound on a newcomer's delay)
ARRIVAL_MAX_OVERLAP = 0.1     # a face found there covering more of a followed face than this
                              # (and less than the same face would): the full detector looks
FRAMING_MEMORY = 8            # a track's full-detection measures of its framing map kept
PREFETCH = 4                  # frames decoded ahead of the model


class _Prefetched:
    """An iterator over `items` read on a thread of its own, at most `size` ahead; `close()`
    stops the thread and closes the source (a video's capture is released)."""

    _END = object()

    def __init__(self, items, size: int = PREFETCH):
        self._source = items
        self._queue: queue.Queue = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="fer-edge-decode")
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._source:
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    break
            self._put(self._END)
        except BaseException as e:       # handed to the consumer, raised there
            self._put(e)
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()

    def _put(self, what) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(what, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> "_Prefetched":
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        got = self._queue.get()
        if got is self._END:
            self._done = True
            self._thread.join()
            raise StopIteration
        if isinstance(got, BaseException):
            self._done = True
            self._thread.join()
            raise got
        return got

    def close(self) -> None:
        self._done = True
        self._stop.set()
        while True:                       # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not threading.current_thread():
            self._thread.join()


def prefetch(items, size: int = PREFETCH) -> Iterator:
    """`items` (an iterator of frames) decoded on their own thread, `size` ahead at most."""
    return _Prefetched(items, size)


def _roi_detector(clf):
    """The BlazeFace model the per-track step searches crops with (None: not BlazeFace)."""
    found = clf.detector
    if isinstance(found, detect.DualBlazeFaceDetector):
        return found.short
    if isinstance(found, detect.BlazeFaceDetector):
        return found
    return None


def _motion_thumb(gray: np.ndarray) -> np.ndarray:
    """The frame shrunk MOTION_THUMB_STEP times (halved three times: 0.02 ms for 640x480, where
    one 8x INTER_AREA takes 0.13; a pixel differs by 1 at most)."""
    h, w = gray.shape[:2]
    return detect.fit(gray, max(1, w // MOTION_THUMB_STEP), max(1, h // MOTION_THUMB_STEP))[0]


def _cut_thumb(motion_thumb: np.ndarray) -> np.ndarray:
    """The scene-cut thumbnail, from the motion thumbnail (not the frame again)."""
    import cv2

    return cv2.resize(motion_thumb, CUT_THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)


def _motion_outside(thumb: np.ndarray, prev: np.ndarray, boxes):
    """Where the picture changed between two thumbnails away from `boxes` (x, y, w, h in frame
    pixels, grown by MOTION_KEEP_OUT of their size on each side: hair, neck and shoulders move
    with a face): the changed thumbnail pixels' bounds (x0, y0, x1, y1) in frame pixels, or None
    (fewer than MOTION_MIN_PIXELS changed: nothing came in)."""
    changed = np.abs(thumb - prev) > MOTION_DIFF
    th, tw = changed.shape
    for x, y, w, h in np.asarray(boxes, np.float64).reshape(-1, 4):
        gx, gy = w * MOTION_KEEP_OUT, h * MOTION_KEEP_OUT
        x0 = max(0, int((x - gx) / MOTION_THUMB_STEP))
        y0 = max(0, int((y - gy) / MOTION_THUMB_STEP))
        x1 = min(tw, int(np.ceil((x + w + gx) / MOTION_THUMB_STEP)))
        y1 = min(th, int(np.ceil((y + h + gy) / MOTION_THUMB_STEP)))
        changed[y0:y1, x0:x1] = False
    if int(changed.sum()) < MOTION_MIN_PIXELS:
        return None
    ys, xs = np.nonzero(changed)
    return tuple(MOTION_THUMB_STEP * v for v in (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))


def _overlapping(boxes: np.ndarray, iou: float = track.TRACK_MIN_IOU) -> bool:
    """Whether any two of the boxes overlap by more than `iou`."""
    return any(track._iou(boxes[i], boxes[j]) > iou
               for i in range(len(boxes)) for j in range(i + 1, len(boxes)))


class FrameTracker:
    """Classifies the frames of one video with track ids (see the module's docstring).

    `detect_every` N: the full-frame detector on every Nth classified frame at least (1: on
    every frame, the reference); `check_every` M: between full detections, BlazeFace checks the
    faces on every Mth frame (1: on every frame, no optical flow); `smooth` in [0, 1) is the
    weight of the past in an exponential moving average of each track's scores (0: none).
    `keyframes` counts the frames that got the full detector."""

    def __init__(self, smooth: float = defaults.VIDEO_SMOOTH,
                 detect_every: int = defaults.VIDEO_DETECT_EVERY,
                 check_every: int = FACE_CHECK_EVERY):
        self.tracker = track.Tracker(max_gap=track.TRACK_MAX_GAP * detect_every)
        self.smooth = smooth
        self.detect_every = detect_every
        self.check_every = check_every
        self.since_detect = 0
        self.since_check = 0       # frames since a detector last saw the followed faces
        self.prev_gray = None
        self.prev_thumb = None
        self.prev_motion = None
        self.followed: tuple[detect.Detections, list] | None = None   # last frame's faces
        self.exact: np.ndarray | None = None      # ... and their boxes unrounded
        self.framing: dict[int, list] = {}   # track id -> recent maps, short-range box -> full's
        self.arrival_misses = 0    # motion frames in a row whose crop search found no newcomer
        self.keyframes = 0
        self.frames = 0

    # ------------------------------------------------------------------ the per-track step

    def _mosaic_search(self, clf, roi, image: np.ndarray, boxes: np.ndarray):
        """Each box's face searched for in a square crop around it, all crops in one call of
        the `roi` detector: (boxes, eyes, scores, found) in image pixels."""
        n = len(boxes)
        side = roi.side
        grid = int(np.ceil(np.sqrt(n)))
        cell = side // grid
        mosaic = np.zeros((side, side, 3), np.uint8)
        H, W = image.shape[:2]
        color = image if image.ndim == 3 and image.shape[2] == 3 else detect._to_rgb(image)[:, :, ::-1]
        origins = []
        for k, (x, y, w, h) in enumerate(np.asarray(boxes, np.float64)):
            s = max(w, h) * ROI_SCALE
            x0, y0 = x + w / 2 - s / 2, y + h / 2 - s / 2
            # the crop, padded with black where it leaves the frame
            ix0, iy0 = int(np.floor(x0)), int(np.floor(y0))
            ix1, iy1 = int(np.ceil(x0 + s)), int(np.ceil(y0 + s))
            crop = np.zeros((iy1 - iy0, ix1 - ix0, 3), np.uint8)
            sx0, sy0, sx1, sy1 = max(0, ix0), max(0, iy0), min(W, ix1), min(H, iy1)
            if sx1 > sx0 and sy1 > sy0:
                crop[sy0 - iy0:sy1 - iy0, sx0 - ix0:sx1 - ix0] = color[sy0:sy1, sx0:sx1]
            f = cell / max(crop.shape[:2])
            cw, ch = max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f))
            tile, scales = detect.fit(crop, cw, ch)
            gx, gy = (k % grid) * cell, (k // grid) * cell
            mosaic[gy:gy + ch, gx:gx + cw] = tile
            origins.append((gx, gy, ix0, iy0, 1.0 / scales))
        with clf._lock:
            clf._check_open()
            got = roi.detect(mosaic)
        out_boxes = np.zeros((n, 4))
        out_eyes = np.zeros((n, 2, 2), np.float32)
        scores = np.zeros(n, np.float32)
        found = np.zeros(n, bool)
        nearest = np.full(n, np.inf)      # a crop may hold another face: the one nearest its
        for b, sc, e in zip(got.boxes, got.scores, got.eyes if got.eyes is not None   # centre
                            else [None] * len(got)):
            cx, cy = b[0] + b[2] / 2, b[1] + b[3] / 2
            k = int(cy // cell) * grid + int(cx // cell)
            if not (0 <= k < n) or sc < ROI_MIN_SCORE:
                continue
            gx, gy, ix0, iy0, inv = origins[k]
            shift = np.hypot(cx - gx - cell / 2, cy - gy - cell / 2)
            if shift >= nearest[k]:
                continue
            nearest[k] = shift
            out_boxes[k] = ((b[0] - gx) * inv[0] + ix0, (b[1] - gy) * inv[1] + iy0,
                            b[2] * inv[0], b[3] * inv[1])
            if e is not None:
                out_eyes[k] = (e - (gx, gy)) * inv + (ix0, iy0)
            scores[k], found[k] = sc, True
        return out_boxes, out_eyes, scores, found

    def _calibrate(self, clf, roi, image, found: detect.Detections, tracks) -> np.ndarray:
        """The map from the crop search's box to the full detector's box of the same face,
        measured on this full-detection frame for each face, added to the recent ones. Returns
        the faces' steadied boxes: each one's crop-search box so mapped (the full detector's
        own where the search misses it), what the frames that follow are followed from."""
        steady = found.boxes.astype(np.float64)
        if roi is None or not len(found):
            return steady
        boxes, _, _, ok = self._mosaic_search(clf, roi, image, found.boxes)
        live = {t.id for t in tracks}
        self.framing = {k: v for k, v in self.framing.items() if k in live}
        for t, ref, got, good in zip(tracks, steady, boxes, ok):
            if good and got[2] > 0 and got[3] > 0:
                seen = self.framing.setdefault(t.id, [])
                seen.append(np.array([(ref[0] + ref[2] / 2 - got[0] - got[2] / 2) / got[2],
                                      (ref[1] + ref[3] / 2 - got[1] - got[3] / 2) / got[3],
                                      ref[2] / got[2], ref[3] / got[3]]))
                del seen[:-FRAMING_MEMORY]
        # the median of the track's recent measures: a single frame's wobble of the full
        # detector (its box on one face can jump by a third from one frame to the next) is not
        # carried onto the frames that follow it
        return np.array([self._reframe(t.id, got) if good else ref
                         for t, ref, got, good in zip(tracks, steady, boxes, ok)])

    def _reframe(self, tid: int | None, box: np.ndarray) -> np.ndarray:
        """A crop search's box mapped onto the full detector's framing: by the track's recent
        measures, or every track's for a face without one of its own (a newcomer)."""
        seen = self.framing.get(tid) or [m for v in self.framing.values() for m in v]
        if not seen:
            return box
        m = np.median(seen, axis=0)
        x, y, w, h = box
        cx, cy = x + w / 2 + m[0] * w, y + h / 2 + m[1] * h
        nw, nh = w * m[2], h * m[3]
        return np.array([cx - nw / 2, cy - nh / 2, nw, nh])

    # ------------------------------------------------------------------------ frame to frame

    def _scene_cut(self, motion_thumb: np.ndarray) -> bool:
        thumb = _cut_thumb(motion_thumb)
        cut = (self.prev_thumb is not None
               and float(np.abs(thumb - self.prev_thumb).mean()) > CUT_MEAN_DIFF)
        self.prev_thumb = thumb
        return cut

    def _full(self, clf, image, gray):
        """The full detector's faces and tracks, and the boxes the next frame follows."""
        self.keyframes += 1
        self.since_detect = self.since_check = self.arrival_misses = 0
        found = clf._detect(image)
        tracks = self.tracker.update(found.boxes.tolist())
        if self.detect_every > 1 and not clf.no_detect:
            return found, tracks, self._calibrate(clf, _roi_detector(clf), image, found, tracks)
        return found, tracks, found.boxes.astype(np.float64)

    @staticmethod
    def _followed(boxes, scores, eyes, tracks, shape):
        """Every followed face's new box, each in a place of its own: (Detections sorted left
        to right as the detector's, their tracks (None: a newcomer's, started by the caller),
        their boxes unrounded); None where a face was lost or two faces landed on one place
        (faces crossing, one hidden): the full detector then."""
        if not len(boxes) or _overlapping(boxes):
            return None
        boxes = np.asarray(boxes, np.float64)
        H, W = shape[:2]
        x0, y0 = np.clip(boxes[:, 0], 0, W), np.clip(boxes[:, 1], 0, H)
        x1, y1 = np.clip(boxes[:, 0] + boxes[:, 2], 0, W), np.clip(boxes[:, 1] + boxes[:, 3], 0, H)
        exact = np.stack([x0, y0, x1 - x0, y1 - y0], 1)
        rounded = np.round(exact).astype(np.int64)
        if not (rounded[:, 2:] >= 1).all():
            return None
        order = np.lexsort((rounded[:, 1], rounded[:, 0]))
        found = detect.Detections(rounded[order], np.asarray(scores, np.float32)[order],
                                  None if eyes is None else np.asarray(eyes)[order])
        return found, [tracks[k] for k in order], exact[order]

    def _arrivals(self, clf, image: np.ndarray, region, got):
        """Faces that came in where the picture changed (`region` x0, y0, x1, y1), searched for
        by the short-range model in a square crop around it and added to the followed faces
        (`got`, as _follow's; a newcomer's track None). None: the full detector (not BlazeFace,
        a change too large for a crop, or no newcomer found on ARRIVAL_TRIES frames in a row)."""
        roi = _roi_detector(clf)
        H, W = image.shape[:2]
        x0, y0, x1, y1 = region
        side = max(ARRIVAL_MIN_SIDE, ARRIVAL_GROW * max(x1 - x0, y1 - y0))
        if roi is None or side > min(H, W):
            return None
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        ix0, iy0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        ix1, iy1 = int(min(W, cx + side / 2)), int(min(H, cy + side / 2))
        with clf._lock:
            clf._check_open()
            near = roi.detect(image[iy0:iy1, ix0:ix1])
        found, tracks, exact = got
        followed = detect._corners(exact)
        new = []
        for k, box in enumerate(detect._corners(near.boxes + (ix0, iy0, 0, 0))):
            iou, inside = detect._overlap(box, followed)
            if ((iou > detect.DUAL_SAME_FACE_IOU) | (inside > detect.DUAL_SAME_FACE_INSIDE)).any():
                continue                              # a followed face
            if (inside > ARRIVAL_MAX_OVERLAP).any():  # faces over faces (one box on two of them,
                return None                           # one face half hidden): the full detector
            new.append(k)
        if not new:
            self.arrival_misses += 1
            return None if self.arrival_misses >= ARRIVAL_TRIES else got
        self.arrival_misses = 0
        boxes = [self._reframe(None, near.boxes[k] + (ix0, iy0, 0, 0)) for k in new]
        eyes = None if found.eyes is None or near.eyes is None else np.concatenate(
            [found.eyes, near.eyes[new] + (ix0, iy0)])
        return self._followed(np.concatenate([exact, boxes]),
                              np.concatenate([found.scores, near.scores[new]]), eyes,
                              tracks + [None] * len(new), image.shape)

    def _follow(self, clf, image, gray, guess):
        """The per-track step (see the module's docstring): (Detections, tracks, unrounded
        boxes) of the followed faces on this frame, or None (a face lost: the full detector)."""
        last, last_tracks = self.followed
        roi = _roi_detector(clf)
        if roi is None:                  # not BlazeFace: optical flow alone
            boxes, eyes, ok = track.flow_boxes(self.prev_gray, gray, self.exact, last.eyes)
            return (detect.Detections(np.round(boxes[ok]).astype(np.int64), last.scores[ok],
                                      None if eyes is None else eyes[ok]),
                    [t for t, keep in zip(last_tracks, ok) if keep], boxes[ok])
        if self.since_check + 1 < self.check_every:
            # from the unrounded boxes: rounding every frame would drift a moving face's box
            boxes, eyes, ok = track.flow_boxes(self.prev_gray, gray, self.exact, last.eyes)
            if ok.all():
                got = self._followed(boxes, last.scores, eyes, last_tracks, gray.shape)
                if got is not None:
                    self.since_check += 1
                    return got
        # the check (or flow lost a face): BlazeFace on the crops, mapped onto the full
        # detector's framing of each face
        boxes, eyes, scores, ok = self._mosaic_search(clf, roi, image, guess)
        if not ok.all():
            return None
        boxes = np.array([self._reframe(t.id, b) for t, b in zip(last_tracks, boxes)])
        self.since_check = 0
        return self._followed(boxes, scores, None if last.eyes is None else eyes, last_tracks,
                              gray.shape)

    def _faces_and_tracks(self, clf, image: np.ndarray, gray: np.ndarray):
        thumb = _motion_thumb(gray) if self.detect_every > 1 else None
        cut = self._scene_cut(thumb) if thumb is not None else False
        motion = thumb.astype(np.int16) if thumb is not None else None
        keyframe = (self.since_detect % self.detect_every == 0 or not self.followed or cut
                    or clf.no_detect or self.prev_gray is None
                    or self.prev_gray.shape != gray.shape)
        got = None
        if not keyframe:
            last, last_tracks = self.followed
            step = self.tracker.step + 1
            guess = np.array([t.predicted(step) for t in last_tracks], np.float64)
            region = _motion_outside(motion, self.prev_motion,
                                     np.concatenate([guess, last.boxes.astype(np.float64)]))
            if region is None:
                self.arrival_misses = 0
            got = self._follow(clf, image, gray, guess)
            if got is not None and region is not None:
                # something moved where no followed face is: a newcomer, maybe, looked for there
                got = self._arrivals(clf, image, region, got)
            if got is not None:
                found, tracks, exact = got
                got = found, self.tracker.keep(tracks, found.boxes.tolist()), exact
        # a keyframe, or a face lost: the full detector
        found, tracks, self.exact = got if got is not None else self._full(clf, image, gray)
        self.since_detect += 1
        self.followed = (found, tracks) if len(found) else None
        self.prev_gray = gray
        self.prev_motion = motion
        return found, tracks

    def record(self, clf, item) -> dict:
        image = item.image
        faces = []
        self.frames += 1
        if min(image.shape[:2]) >= MIN_IMAGE_SIDE:
            gray = to_gray(image)
            found, tracks = self._faces_and_tracks(clf, image, gray)
            if len(found):
                scores = clf._scores(clf._crops(gray, found))
                for box, s, t in zip(found.boxes, scores, tracks):
                    face = clf._face(box, track.smooth(t, s, self.smooth), item.scale, item.size)
                    faces.append({"track": t.id, **face})
        return {"file": item.name, "frame": item.frame, "time": item.time, "faces": faces}
