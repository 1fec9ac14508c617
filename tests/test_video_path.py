"""Issue 35's video path (edge/video.py): the full-frame detector at the start, every Nth frame,
on a lost face or a scene cut; each face followed by optical flow and checked in a crop around
it in between; a newcomer searched for in a crop where the picture changed. Synthetic clips
from examples/astronaut.jpg."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_edge import defaults, options
from fer_edge.edge import video
from fer_edge.edge.classify import Classifier
from fer_edge.edge.track import _iou
from synth import moving_faces_video

BOUND = defaults.VIDEO_DETECT_EVERY      # the periodic full detection: at least every BOUNDth frame


@pytest.fixture(scope="module")
def clf():
    with Classifier() as c:
        yield c


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return tmp_path_factory.mktemp("path-clips")


def frames_of(clf, path, detect_every=defaults.VIDEO_DETECT_EVERY):
    with clf.video(str(path), detect_every=detect_every) as frames:
        return list(frames)


def test_the_fast_path_is_the_default_everywhere():
    assert defaults.VIDEO_DETECT_EVERY == 30 > video.FACE_CHECK_EVERY > 1
    for command in ("classify", "serve", "batch"):
        assert options.spec(command)["detect_every"].default == defaults.VIDEO_DETECT_EVERY
    from fer_edge.batch import worker
    from fer_edge.edge import classify
    from fer_edge.serve import live

    # serve's live source and batch's videos (Classifier.video) use this one FrameTracker
    assert live.FrameTracker is video.FrameTracker is classify.FrameTracker
    assert "detect_every" in worker.VIDEO_OPTIONS
    import inspect

    assert inspect.signature(live.LiveSource).parameters["detect_every"].default == \
        defaults.VIDEO_DETECT_EVERY


def _off_line(rows, lines) -> list[float]:
    """Each face's largest distance (x, y, w or h) from its track's straight line."""
    return [float(np.abs(np.array(f["box"]) - [np.polyval(c, r["frame"]) for c in lines[f["track"]]]
                         ).max()) for r in rows for f in r["faces"]]


def test_boxes_within_a_few_pixels_of_detection_on_every_frame(clf, clips, face_tile):
    path = moving_faces_video(clips / "two.mp4", [face_tile, cv2.flip(face_tile, 1)],
                              [(40, 60, 300, 120), (480, 300, 260, 260)], frames=30, fps=15,
                              side=120)
    ref, fast = frames_of(clf, path, 1), frames_of(clf, path)
    ious = []
    for a, b in zip(ref, fast):
        # both faces on every frame: full detection on every frame misses one now and then
        assert len(b["faces"]) == 2, b["frame"]
        for fa in a["faces"]:
            fb = max(b["faces"], key=lambda f: _iou(fa["box"], f["box"]))
            assert fb["track"] == fa["track"], b["frame"]
            ious.append(_iou(fa["box"], fb["box"]))
    assert len(ious) >= 55 and min(ious) >= 0.5
    # the faces glide in straight lines at one size, so the detector's framing of each is a
    # line plus its own wobble from frame to frame (here a few pixels on average, its 75 px
    # boxes jumping by up to 14 now and then): the fast path keeps to that line about as closely
    # as the wobble, and never strays as far as its jumps
    lines = {}
    for t in {f["track"] for r in ref for f in r["faces"]}:
        seen = [(r["frame"], f["box"]) for r in ref for f in r["faces"] if f["track"] == t]
        frames, boxes = np.array([k for k, _ in seen]), np.array([b for _, b in seen], float)
        lines[t] = [np.polyfit(frames, boxes[:, j], 1) for j in range(4)]
    wobble, ours = _off_line(ref, lines), _off_line(fast, lines)
    assert np.mean(ours) <= 1.5 * np.mean(wobble) and max(ours) <= max(wobble), (ours, wobble)
    # and it is the cheap path: the full detector ran on a fraction of the frames
    with clf.video(str(path)) as frames:
        list(frames)
        assert frames.tracker.keyframes <= 30 // BOUND + 2


def test_a_face_entering_mid_clip_is_found_on_its_first_frame(clf, clips, face_tile):
    # the picture changes away from the followed face: the short-range model searches a crop
    # around the change at once, whatever the phase of the periodic search, and the full
    # detector is not needed
    for enter in (7, 8, 9, 10, 11):
        path = moving_faces_video(clips / f"enter{enter}.mp4",
                                  [face_tile, cv2.flip(face_tile, 1)],
                                  [(40, 60, 200, 80), (420, 280, 380, 260, enter, 29)],
                                  frames=30, fps=15, side=120)
        with clf.video(str(path)) as frames:
            rows = list(frames)
            assert frames.tracker.keyframes == 1 + (30 > BOUND)      # the start only
        found = [len(r["faces"]) for r in rows]
        assert found[:enter] == [1] * enter
        first = found.index(2)
        assert first == enter, (enter, found)
        assert found[first:] == [2] * (30 - first)
        ref = frames_of(clf, path, 1)[first]["faces"]
        new = max(rows[first]["faces"], key=lambda f: f["box"][1])     # the lower one
        assert max(_iou(f["box"], new["box"]) for f in ref) >= 0.7
        assert new["track"] == 2 and {f["track"] for f in rows[-1]["faces"]} == {1, 2}


def test_motion_that_is_no_face_gets_the_full_detector_every_few_frames(clf, clips, face_tile):
    # a textured square (no face) glides past the face: the crop search finds nothing there,
    # and the full detector looks on every ARRIVAL_TRIES-th frame of it
    cells = (np.indices(face_tile.shape[:2]) // 30).sum(0) % 2          # a 30 px checkerboard
    blob = np.repeat((30 + 190 * cells).astype(np.uint8)[:, :, None], 3, 2)
    path = moving_faces_video(clips / "blob.mp4", [face_tile, blob],
                              [(40, 60, 60, 80), (420, 300, 200, 300, 10, 25)], frames=30,
                              fps=15, side=120)
    with clf.video(str(path)) as frames:
        rows = list(frames)
        keyframes = frames.tracker.keyframes
    assert [len(r["faces"]) for r in rows] == [1] * 30
    moving = 25 - 10 + 1 + 1                 # the frames it moves on, and the one it leaves
    expected = 1 + moving // video.ARRIVAL_TRIES    # the start, then every third frame of it
    assert expected - 1 <= keyframes <= expected + 1, keyframes


def test_two_faces_crossing_keep_their_ids(clf, clips, face_tile):
    # one glides left to right above, the other right to left below; they pass each other
    path = moving_faces_video(clips / "cross.mp4", [face_tile, cv2.flip(face_tile, 1)],
                              [(20, 40, 500, 150), (500, 300, 20, 190)], frames=30, fps=15,
                              side=120)
    for every in (1, defaults.VIDEO_DETECT_EVERY):
        rows = frames_of(clf, path, every)
        assert all(len(r["faces"]) == 2 for r in rows)
        ids = {}
        for r in rows:
            upper, lower = sorted(r["faces"], key=lambda f: f["box"][1])
            ids.setdefault("upper", upper["track"])
            ids.setdefault("lower", lower["track"])
            assert (upper["track"], lower["track"]) == (ids["upper"], ids["lower"]), r["frame"]
        assert ids == {"upper": 1, "lower": 2}


def test_motion_away_from_the_followed_faces_is_found_where_it_is():
    still = np.full((60, 80), 100, np.int16)
    moved = still.copy()
    moved[40:43, 10:12] = 160                       # 6 thumbnail pixels changed, bottom left
    face = [[320, 120, 80, 80]]                     # frame pixels: thumbnail (40, 15) to (50, 25)
    step = video.MOTION_THUMB_STEP
    assert video._motion_outside(moved, still, face) == (10 * step, 40 * step, 12 * step,
                                                         43 * step)
    assert video._motion_outside(still, still, face) is None
    near = still.copy()
    near[12:28, 35:55] = 200                        # the face and what moves with it
    assert video._motion_outside(near, still, face) is None
    few = still.copy()
    few[40:42, 10:12] = 160                         # 4 pixels: noise, not a face
    assert video._motion_outside(few, still, face) is None


def test_a_scene_cut_gets_the_full_detector(clf, face_tile):
    from fer_edge.edge.sources import Item

    face = cv2.resize(face_tile, (120, 120), interpolation=cv2.INTER_AREA)
    frames = []
    for k in range(10):                   # the face in the same place, the scene cut at frame 3
        canvas = np.full((480, 640, 3), 150 if k < 3 else 30, np.uint8)
        canvas[100:220, 100 + k:220 + k] = face
        frames.append(Item("cut", image=canvas, size=(640, 480), frame=k, time=k / 15))
    tracker = video.FrameTracker()
    rows = [tracker.record(clf, item) for item in frames]
    assert all(len(r["faces"]) == 1 and r["faces"][0]["track"] == 1 for r in rows)
    assert tracker.keyframes == 2         # frames 0 and 3 (the cut); the next periodic one: 33
    assert video.FrameTracker().keyframes == 0


def test_prefetch_hands_on_errors_and_releases_the_source():
    closed = []

    def items():
        try:
            yield 1
            yield 2
            raise ValueError("boom")
        finally:
            closed.append(True)

    got = video.prefetch(items())
    assert next(got) == 1 and next(got) == 2
    with pytest.raises(ValueError, match="boom"):
        next(got)
    assert closed == [True]
    endless = video.prefetch(iter(range(10 ** 9)), size=2)
    assert next(endless) == 0
    endless.close()                       # the reading thread stops
    assert not endless._thread.is_alive()
