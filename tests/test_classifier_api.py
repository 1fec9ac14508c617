"""The Python `Classifier` as apps embed it: shared by threads, any image size and channel order,
PIL images, batches, closing, video sources that close, and stderr left alone."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge import Classifier
from fer_edge.errors import FerEdgeError

from cli_helpers import json_lines, run_classify
from synth import moving_faces_video

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "examples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def clf():
    with Classifier() as c:
        yield c


@pytest.fixture(scope="module")
def photo():
    return cv2.imread(str(ASTRONAUT))


def test_one_classifier_shared_by_8_threads_gives_the_sequential_answers(clf, photo):
    images = [photo, cv2.flip(photo, 1), photo[::2, ::2].copy(), cv2.GaussianBlur(photo, (5, 5), 2)]
    expected = [clf.faces(im) for im in images]
    got, errors = {}, []

    def work(t):
        try:
            got[t] = [clf.faces(images[(t + i) % len(images)]) for i in range(50)]
        except Exception as e:   # a LiteRT "reference to internal data" error would land here
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for t in range(8):
        assert got[t] == [expected[(t + i) % len(images)] for i in range(50)]


def test_a_5000_px_image_gives_boxes_in_its_own_pixels_as_the_cli(clf, photo, tmp_path,
                                                                     capsys):
    big = cv2.resize(photo, (5000, 5000 * photo.shape[0] // photo.shape[1]),
                     interpolation=cv2.INTER_CUBIC)
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), big)
    rc, out, _ = run_classify(capsys, path, "--format", "json")
    cli = json_lines(out)[0]["faces"]
    assert rc == 0 and len(cli) == 1
    for faces in (clf.faces(path), clf.faces(big)):
        assert [f["box"] for f in faces] == [f["box"] for f in cli]
        assert faces[0]["box"][2] > 1000          # not the downscaled image's pixels
        assert [f["emotion"] for f in faces] == [f["emotion"] for f in cli]


def test_rgb_arrays_and_pil_images_are_read_as_what_they_are(clf, photo):
    Image = pytest.importorskip("PIL.Image", reason="Pillow (the train extra has it)")

    rgb = cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)
    bgr_answer = clf.faces(photo)
    assert clf.faces(rgb, channels="rgb") == bgr_answer
    assert clf.faces(Image.fromarray(rgb)) == bgr_answer
    assert len(clf.faces(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))) == 1   # gray is taken too
    with pytest.raises(FerEdgeError, match="channels must be 'bgr' or 'rgb'"):
        clf.faces(photo, channels="hsv")
    with pytest.raises(FerEdgeError, match="not shape"):
        clf.faces(np.zeros((2, 2, 2, 2), np.uint8))


def test_faces_batch_equals_one_call_per_image(clf, photo):
    images = [photo, np.zeros((64, 64), np.uint8), cv2.flip(photo, 1), np.zeros((4, 4), np.uint8)]
    batch = clf.faces_batch(images)
    assert batch == [clf.faces(im) if min(im.shape[:2]) >= 8 else [] for im in images]
    assert len(batch[0]) == 1 and batch[1] == []


def test_with_and_close_release_the_classifier_and_its_video(tmp_path, photo):
    clip = moving_faces_video(tmp_path / "clip.avi", [photo[60:260, 150:350]],
                              [(20, 20, 200, 100)], frames=12)
    with Classifier() as clf:
        with clf.video(clip) as frames:
            first = next(frames)
            assert first["frame"] == 0 and len(first["faces"]) == 1
        assert frames._items._source.gi_frame is None   # the capture's generator has finished
        assert not frames._items._thread.is_alive()     # and its decoding thread
        with pytest.raises(StopIteration):
            next(frames)
        assert len(list(clf.video(clip, every=4))) == 3
        # a camera index given as a numpy integer is a camera, not a file named "0"
        assert clf.video(np.int64(0)).target == "camera:0"
    with pytest.raises(FerEdgeError, match="this Classifier is closed"):
        clf.faces(photo)


def test_another_threads_stderr_survives_decodes(tmp_path):
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(ASTRONAUT.read_bytes()[:3000])     # libjpeg complains on fd 2
    code = (
        "import os, sys, threading, time\n"
        "from fer_edge import Classifier\n"
        "from fer_edge.errors import FerEdgeError\n"
        "clf = Classifier()\n"
        "def talk():\n"
        "    for i in range(200):\n"
        "        os.write(2, f'app line {i}\\n'.encode()); time.sleep(0.001)\n"
        "t = threading.Thread(target=talk); t.start()\n"
        "while t.is_alive():\n"
        f"    try: clf.faces({str(bad)!r})\n"
        "    except FerEdgeError: pass\n"
        "t.join(); print('done')\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "done", p.stderr[-2000:]
    lines = {ln for ln in p.stderr.splitlines() if ln.startswith("app line")}
    assert lines == {f"app line {i}" for i in range(200)}


def test_the_public_surface_is_small():
    public = {n for n in dir(Classifier) if not n.startswith("_")}
    assert public == {"faces", "faces_batch", "video", "close"}


@pytest.mark.parametrize("kwargs, message", [
    ({"every": 0}, "--every must be a whole number >= 1, not 0"),
    ({"detect_every": 0}, "--detect-every must be a whole number >= 1, not 0"),
    ({"smooth": 1.0}, "--smooth must be a number in [0, 1), not 1.0"),
    ({"start": -1}, "start must be a whole number >= 0"),
])
def test_video_options_are_checked_by_the_option_table(kwargs, message):
    from fer_edge import Classifier
    from fer_edge.errors import FerEdgeError

    with Classifier() as clf, pytest.raises(FerEdgeError, match=message.replace("[", r"\[")
                                             .replace("(", r"\(").replace(")", r"\)")):
        clf.video(str(ASTRONAUT), **kwargs)


def test_classifier_options_are_checked_by_the_option_table():
    from fer_edge import Classifier
    from fer_edge.errors import FerEdgeError

    with pytest.raises(FerEdgeError, match="--detector must be one of auto, "):
        Classifier(detector="blazefac")
    with pytest.raises(FerEdgeError, match="--threads must be a whole number >= 1, not 0"):
        Classifier(threads=0)


def test_the_example_api_script_runs_as_written():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(ROOT / "examples" / "api.py")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("photo [") and lines[0].split()[-2] == "happy"
    assert [line.split()[:2] for line in lines[1:]] == [["batch", "0"], ["batch", "1"]]
    assert all(line.split()[-2] == "happy" for line in lines)
