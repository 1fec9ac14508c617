"""The real-world classify path: the default detector at every scale, eye alignment, videos with
time and track ids, summaries, timelines, annotated video, streams, cameras, closed pipes and the
Python API. Synthetic clips are made from examples/astronaut.jpg (NASA, public domain), so these
run on a fresh machine; the shipped model classifies."""

from __future__ import annotations

import csv
import functools
import http.server
import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.edge import detect, track
from cli_helpers import free_port, json_lines, run_classify, run_python_ok
from fer_edge.cli import main
from fer_edge.edge.preprocessing import aligned_crop, margin_crop
from synth import moving_faces_video

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.jpg"
FPS = 10.0
FRAMES = 20


@pytest.fixture(scope="module")
def apart_clip(tmp_path_factory, face_tile) -> Path:
    """Two faces side by side in the middle of a 640x480 clip, moving apart to the edges."""
    path = tmp_path_factory.mktemp("clips") / "apart.mp4"
    return moving_faces_video(path, [face_tile, cv2.flip(face_tile, 1)],
                              [(190, 180, 20, 180), (340, 180, 510, 180)], frames=FRAMES,
                              fps=FPS, side=110)


# ------------------------------------------------------------------------------------ videos

def test_two_faces_moving_apart_keep_two_tracks(apart_clip, capsys):
    rc, out, err = run_classify(capsys, apart_clip, "--format", "json")
    assert rc == 0, err
    rows = json_lines(out)
    assert [r["frame"] for r in rows] == list(range(FRAMES))
    assert [r["time"] for r in rows] == pytest.approx([k / FPS for k in range(FRAMES)])
    assert all(r["file"] == str(apart_clip) for r in rows)
    assert all(len(r["faces"]) == 2 for r in rows)
    # exactly two tracks, each staying with its face: 1 on the left, 2 on the right
    for r in rows:
        left, right = sorted(r["faces"], key=lambda f: f["box"][0])
        assert (left["track"], right["track"]) == (1, 2)


def test_csv_rows_carry_frame_time_and_track(apart_clip, capsys):
    rc, out, err = run_classify(capsys, apart_clip, "--format", "csv", "--every", 5)
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["frame"], r["track"]) for r in rows] == [
        (str(k), t) for k in (0, 5, 10, 15) for t in ("1", "2")]
    assert [float(r["time"]) for r in rows[::2]] == pytest.approx([0.0, 0.5, 1.0, 1.5])


def test_summary_per_video_and_track(apart_clip, capsys):
    rc, out, err = run_classify(capsys, apart_clip, "--summary")
    assert rc == 0, err
    table = out.splitlines()[-3:]
    assert [line.split()[1:3] for line in table] == [["all", str(FRAMES)], ["1", str(FRAMES)],
                                                     ["2", str(FRAMES)]]
    assert all(line.startswith(str(apart_clip)) for line in table)
    # with --format json the summary goes to stderr and stdout stays JSON lines
    rc, out, err = run_classify(capsys, apart_clip, "--summary", "--format", "json")
    assert rc == 0 and len(json_lines(out)) == FRAMES
    assert "dominant" in err.splitlines()[0]


def test_smoothing_steadies_scores():
    t = track._Track(1, (0, 0, 1, 1), 0)
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert track.smooth(t, a, 0.6).tolist() == [1.0, 0.0]      # the first frame is itself
    np.testing.assert_allclose(track.smooth(t, b, 0.6), [0.6, 0.4])
    np.testing.assert_allclose(track.smooth(t, b, 0.6), [0.36, 0.64])
    assert track.smooth(t, a, 0.0).tolist() == [1.0, 0.0]      # 0: no smoothing


def test_smooth_option_changes_the_scores(apart_clip, tiny_tflite, capsys):
    # an untrained model's scores move from frame to frame (a trained one may be sure of a
    # face on every frame, leaving nothing to smooth)
    _, plain, _ = run_classify(capsys, apart_clip, "--format", "json", "--model", tiny_tflite)
    rc, smoothed, err = run_classify(capsys, apart_clip, "--format", "json", "--smooth", 0.8,
                                     "--model", tiny_tflite)
    assert rc == 0, err
    plain, smoothed = json_lines(plain), json_lines(smoothed)
    assert plain[0] == smoothed[0]                              # nothing to average yet
    first = [r["faces"][0]["scores"] for r in plain[:5]]
    smooth = [r["faces"][0]["scores"] for r in smoothed[:5]]
    assert first != smooth


def test_tracker_bridges_a_short_gap_and_ends_a_long_one():
    tr = track.Tracker(max_gap=2)
    (a,) = tr.update([(10, 10, 50, 50)])
    for _ in range(2):
        assert tr.update([]) == []
    (b,) = tr.update([(14, 12, 50, 50)])          # back after 2 empty frames: same face
    assert b.id == a.id
    for _ in range(3):
        tr.update([])
    (c,) = tr.update([(14, 12, 50, 50)])          # after 3: a new track
    assert c.id == a.id + 1


def test_tracker_follows_a_fast_face_by_its_centre():
    tr = track.Tracker()
    (a,), = [tr.update([(100, 100, 40, 40)])]
    (b,) = tr.update([(125, 100, 40, 40)])        # IoU 0.23, centre 25 px away: same face
    assert b.id == a.id


def test_detect_every_re_finds_faces_between_full_detections(apart_clip, capsys):
    _, every, _ = run_classify(capsys, apart_clip, "--format", "json", "--detect-every", 1)
    rc, sparse, err = run_classify(capsys, apart_clip, "--format", "json", "--detect-every", 4)
    assert rc == 0, err
    for a, b in zip(json_lines(every), json_lines(sparse)):
        # both faces on every frame (detection on every frame misses one now and then), each
        # where detection on every frame puts it, with its track id
        assert len(b["faces"]) == 2, b["frame"]
        for fa in a["faces"]:
            fb = max(b["faces"], key=lambda f: track._iou(fa["box"], f["box"]))
            assert fb["track"] == fa["track"], a["frame"]
            assert track._iou(fa["box"], fb["box"]) > 0.6, (a["frame"], fa["box"], fb["box"])


def test_annotated_video_has_every_frame(apart_clip, tmp_path, capsys):
    rc, _, err = run_classify(capsys, apart_clip, "--every", 3, "--save-annotated", tmp_path / "ann")
    assert rc == 0, err
    (written,) = list((tmp_path / "ann").iterdir())
    assert written.name == "apart_annotated.mp4"
    video = cv2.VideoCapture(str(written))
    assert video.get(cv2.CAP_PROP_FRAME_COUNT) == FRAMES
    assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == \
        (640, 480)


def test_timeline_pictures_per_track(apart_clip, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="timeline needs pip install '.[plot]'")
    _, out, _ = run_classify(capsys, apart_clip, "--format", "json")
    results = tmp_path / "results.jsonl"
    results.write_text(out)
    rc = main(["timeline", str(results), "--out", str(tmp_path / "tl")])
    printed, err = capsys.readouterr()
    assert rc == 0, err
    pngs = sorted(p.name for p in (tmp_path / "tl").glob("*.png"))
    assert pngs == ["apart_track1.png", "apart_track2.png"]
    img = cv2.imread(str(tmp_path / "tl" / pngs[0]))
    assert img is not None and img.shape[1] > 600
    rows = json.loads((tmp_path / "tl" / "summary.json").read_text())
    assert [(r["track"], r["frames"]) for r in rows] == [("all", FRAMES), (1, FRAMES),
                                                         (2, FRAMES)]
    assert "dominant" in printed
    # no overwrite without --force, checked before anything is written
    rc = main(["timeline", str(results), "--out", str(tmp_path / "tl")])
    assert rc == 2 and "pass --force" in capsys.readouterr().err


def test_timeline_rejects_what_is_not_classify_output(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="timeline needs pip install '.[plot]'")
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"file": "a.mp4", "faces": []}\nnot json\n')
    rc = main(["timeline", str(bad), "--out", str(tmp_path / "tl")])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().endswith("x.jsonl:2 is not a line of `fer-edge classify "
                                            "--format json`")
    assert not (tmp_path / "tl").exists()


# ------------------------------------------------------------------------ streams and cameras

def test_stream_url_served_on_localhost(apart_clip, capsys):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(apart_clip.parent))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{apart_clip.name}"
        rc, out, err = run_classify(capsys, url, "--format", "json", "--every", 4)
    finally:
        server.shutdown()
    assert rc == 0, err
    rows = json_lines(out)
    assert [r["frame"] for r in rows] == [0, 4, 8, 12, 16]
    assert all(r["file"] == url and len(r["faces"]) == 2 for r in rows)
    times = [r["time"] for r in rows]
    assert times == sorted(times)                 # live: seconds since the stream opened


def test_unopenable_camera_and_url_are_one_line(capsys):
    rc, out, err = run_classify(capsys, "--camera", 97)
    assert rc == 1 and out == ""
    first, summary = err.splitlines()
    assert first == "fer-edge: error: camera:97: cannot open this camera"
    url = f"http://127.0.0.1:{free_port()}/nothing.mp4"
    rc, out, err = run_classify(capsys, url)
    assert rc == 1
    assert err.splitlines()[0] == f"fer-edge: error: {url}: cannot open this stream"


@pytest.mark.parametrize("extra", [["--smooth", 1.5], ["--smooth", -0.1], ["--detect-every", 0],
                                   ["--camera", -1]])
def test_bad_video_options(apart_clip, capsys, extra):
    rc, out, err = run_classify(capsys, apart_clip, *extra)
    assert rc == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"fer-edge: error: {extra[0]} must be")


# ------------------------------------------------------------------------- pipes and the API

def test_closed_pipe_ends_quietly(tmp_path, face_tile):
    for i in range(40):
        cv2.imwrite(str(tmp_path / f"{i:02d}.jpg"), face_tile)
    exe = Path(sys.executable).with_name("fer-edge")
    p = subprocess.run(f"'{exe}' classify '{tmp_path}' --format json | head -1; "
                       f"exit ${{PIPESTATUS[0]}}", shell=True, executable="/bin/bash",
                       capture_output=True, text=True, timeout=120)
    assert p.returncode in (0, 141), p.stderr
    assert p.stderr == ""
    assert json.loads(p.stdout)["file"].endswith("00.jpg")


def test_python_api_without_tensorflow(apart_clip):
    code = (
        "import sys\n"
        "from fer_edge import Classifier\n"
        "clf = Classifier()\n"
        f"faces = clf.faces({str(ASTRONAUT)!r})\n"
        "assert len(faces) == 1 and set(faces[0]) == {'box', 'emotion', 'confidence', 'scores'}\n"
        f"frames = list(clf.video({str(apart_clip)!r}, every=5))\n"
        "assert [f['frame'] for f in frames] == [0, 5, 10, 15]\n"
        "assert [sorted(x['track'] for x in f['faces']) for f in frames] == [[1, 2]] * 4\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
        "assert not bad, bad[:3]\n"
        "print('API-OK')\n")
    run_python_ok(code, "API-OK")


# ----------------------------------------------------------------- detector and alignment

def test_default_detector_finds_tight_crops_and_small_faces(face_tile):
    dual, full = detect.get("auto"), detect.get("blazeface_full")
    x, y, w, h = detect.get("blazeface")(face_tile)[0]
    tight = face_tile[y:y + h, x:x + w]
    sides = (40, 64, 100, 160, 250, 400)
    crops = [cv2.resize(tight, (s, s), interpolation=cv2.INTER_AREA if s < w else
                        cv2.INTER_LINEAR) for s in sides]
    assert [len(dual(c)) for c in crops] == [1] * len(sides)
    assert sum(len(full(c)) for c in crops) <= 2     # why full-range alone is not the default
    # four small faces in a wide scene: full-range's part of the default
    group = np.full((960, 1280, 3), 150, np.uint8)
    small = cv2.resize(face_tile, (200, 200), interpolation=cv2.INTER_AREA)
    for gx, gy in ((64, 48), (512, 288), (921, 76), (256, 652)):
        group[gy:gy + 200, gx:gx + 200] = small
    assert len(detect.get("blazeface")(group)) == 0
    assert len(dual(group)) >= 3


def test_detections_carry_level_eyes_for_an_upright_face(face_tile):
    found = detect.get("auto").detect(face_tile)
    (right, left), = found.eyes
    assert right[0] < left[0]                          # the face's right eye is on image left
    assert abs(right[1] - left[1]) < 0.1 * found.boxes[0][2]


def test_aligned_crop_turns_a_tilted_face_upright(face_tile):
    gray = cv2.cvtColor(face_tile, cv2.COLOR_BGR2GRAY)
    found = detect.get("auto").detect(face_tile)
    upright = cv2.resize(aligned_crop(gray, found.boxes[0], 0.1, found.eyes[0]), (48, 48))
    h, w = gray.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0)
    tilted = cv2.warpAffine(gray, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    eyes = np.array([m @ (*e, 1.0) for e in found.eyes[0]])
    box = found.boxes[0].astype(float)
    cx, cy = m @ (box[0] + box[2] / 2, box[1] + box[3] / 2, 1.0)
    moved = (cx - box[2] / 2, cy - box[3] / 2, box[2], box[3])
    levelled = cv2.resize(aligned_crop(tilted, moved, 0.1, eyes), (48, 48))
    as_is = cv2.resize(margin_crop(tilted, [round(v) for v in moved], 0.1), (48, 48))

    def corr(a, b):
        return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])

    assert corr(levelled, upright) > 0.95
    assert corr(levelled, upright) > corr(as_is, upright) + 0.1


def test_one_summary_and_a_tie_has_no_dominant_emotion(tmp_path):
    """classify's, the timeline's and batch's per-video summary is edge/track.py's: a 50/50 split
    has no dominant emotion (None in JSON and Parquet, "none" in the table), shares are exact."""
    import io

    from fer_edge.edge.outputs import print_summary, summary_rows
    from fer_edge.edge.track import summarize, summarize_faces

    records = [{"file": "v.mp4", "frame": i, "time": i / 10,
                "faces": [{"track": 1, "emotion": "happy" if i % 2 else "sad"}]}
               for i in range(4)]
    [whole, track1] = summarize(records)
    assert (whole.track, track1.track, whole.frames) == (None, 1, 4)
    assert whole.dominant is None and whole.shares(["happy", "sad"]) == {"happy": 0.5,
                                                                        "sad": 0.5}
    records.append({"file": "v.mp4", "frame": 4, "time": 0.4,
                    "faces": [{"track": 1, "emotion": "sad"}]})
    assert summarize(records)[0].dominant == "sad"
    thirds = summarize_faces([("a", 0, 1, 0, 0.0, "sad"), ("a", 0, 1, 1, 0.1, "sad"),
                              ("a", 1, 1, 2, 0.2, "fear")])
    assert [(g.segment, g.track, g.frames) for g in thirds] == [(None, None, 3), (0, 1, 2),
                                                                 (1, 1, 1)]
    assert thirds[0].shares(["sad"])["sad"] == 2 / 3                    # not rounded
    assert summary_rows(thirds[:1], ["sad"])[0]["sad"] == 0.6667        # rounded when shown
    out = io.StringIO()
    print_summary(summarize(records[:4]), ["happy", "sad"], out)
    assert out.getvalue().splitlines()[1].split()[4] == "none"
