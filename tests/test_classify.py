"""`fer-edge classify`: inputs of every kind, bad inputs, output formats, exit codes, detectors and
the no-TensorFlow rule. Synthetic data only (an untrained `tiny` model from conftest); the real
photos are used when present (FER_EDGE_PHOTOS or ../shared/photos), skipped otherwise."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.edge import classify as fclassify
from fer_edge import defaults
from fer_edge.edge import detect
from cli_helpers import json_lines, run_classify
from fer_edge.edge.preprocessing import LABELS, margin_crop

REPO = Path(__file__).resolve().parents[1]
PHOTOS = Path(os.environ.get("FER_EDGE_PHOTOS", REPO.parent / "shared" / "photos"))


# ------------------------------------------------------------------------------------ helpers

def _face_like(h=96, w=80, seed=0) -> np.ndarray:
    """A BGR uint8 picture with some structure (not a real face)."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 170, np.uint8)
    cv2.ellipse(img, (w // 2, h // 2), (w // 3, h // 2 - 4), 0, 0, 360, (120, 140, 200), -1)
    cv2.circle(img, (w // 3, h // 2 - 8), 5, (20, 20, 20), -1)
    cv2.circle(img, (2 * w // 3, h // 2 - 8), 5, (20, 20, 20), -1)
    cv2.ellipse(img, (w // 2, 2 * h // 3), (w // 6, 5), 0, 0, 180, (30, 30, 90), 2)
    return np.clip(img + rng.integers(0, 10, img.shape), 0, 255).astype(np.uint8)


def _variant(img: np.ndarray, kind: str) -> np.ndarray:
    if kind == "gray":
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    if kind == "rgba":
        out = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
        out[:, :, 3] = 200
        return out
    if kind == "gray16":
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    if kind == "rgb16":
        return img.astype(np.uint16) * 257
    return img


def _write(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, img)
    assert ok, path
    path.write_bytes(buf.tobytes())
    return path


# The image kinds each format can hold (as OpenCV writes them).
KINDS = {
    ".jpg": ["gray", "rgb"],
    ".png": ["gray", "rgb", "rgba", "gray16", "rgb16"],
    ".bmp": ["gray", "rgb"],
    ".webp": ["rgb", "rgba"],
    ".tiff": ["gray", "rgb", "rgba", "gray16", "rgb16"],
}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("images")
    base = _face_like()
    out = {}
    for ext, kinds in KINDS.items():
        for kind in kinds:
            out[f"{kind}{ext}"] = _write(root / f"{kind}{ext}", _variant(base, kind))
    return out


# ------------------------------------------------------------------------------------- inputs

def test_every_image_kind(images, tiny_tflite, capsys):
    rc, out, err = run_classify(capsys, *images.values(), "--model", tiny_tflite, "--no-detect",
                        "--format", "json")
    assert rc == 0, err
    rows = json_lines(out)
    assert [r["file"] for r in rows] == [str(p) for p in images.values()]
    for r in rows:
        assert len(r["faces"]) == 1, r["file"]
        assert r["faces"][0]["box"] == [0, 0, 80, 96], r["file"]
    # 8- and 16-bit versions of the same picture give (nearly) the same scores
    by = {r["file"].rsplit("/", 1)[-1]: r["faces"][0]["scores"] for r in rows}
    for a, b in [("gray.png", "gray16.png"), ("rgb.png", "rgb16.png"), ("rgb.png", "rgba.png")]:
        assert np.allclose(list(by[a].values()), list(by[b].values()), atol=0.02), (a, b)


def test_folder_recursive_sorted_and_glob(tmp_path, tiny_tflite, capsys):
    face = _face_like()
    for rel in ["b/z.png", "a/y.jpg", "a/deep/x.png", "c.bmp", "notes.txt"]:
        if rel.endswith(".txt"):
            (tmp_path / rel).write_text("not an image")
        else:
            _write(tmp_path / rel, face)
    rc, out, err = run_classify(capsys, tmp_path, "--model", tiny_tflite, "--no-detect",
                        "--format", "json")
    assert rc == 0, err
    names = [Path(r["file"]).relative_to(tmp_path).as_posix() for r in json_lines(out)]
    assert names == ["a/deep/x.png", "a/y.jpg", "b/z.png", "c.bmp"]

    rc, out, err = run_classify(capsys, tmp_path, "--glob", "*.png", "--model", tiny_tflite,
                        "--no-detect", "--format", "json")
    assert rc == 0, err
    names = [Path(r["file"]).relative_to(tmp_path).as_posix() for r in json_lines(out)]
    assert names == ["a/deep/x.png", "b/z.png"]


VIDEO_FPS = 10


def _write_video(path: Path, frames: int = 10) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), VIDEO_FPS, (80, 96))
    assert vw.isOpened()
    for i in range(frames):
        vw.write(_face_like(seed=i))
    vw.release()
    return path


def test_video_every_nth_frame(tmp_path, tiny_tflite, capsys):
    clip = _write_video(tmp_path / "clip.avi")
    rc, out, err = run_classify(capsys, clip, "--every", 3, "--model", tiny_tflite, "--no-detect",
                        "--format", "json")
    assert rc == 0, err
    rows = json_lines(out)
    assert [r["file"] for r in rows] == [str(clip)] * 4
    assert [r["frame"] for r in rows] == [0, 3, 6, 9]
    assert [r["time"] for r in rows] == pytest.approx([i / VIDEO_FPS for i in (0, 3, 6, 9)])
    assert all(len(r["faces"]) == 1 and r["faces"][0]["box"] == [0, 0, 80, 96] for r in rows)
    assert {r["faces"][0]["track"] for r in rows} == {1}


def test_stdin(images, tiny_tflite, capsys, monkeypatch):
    data = images["rgb.jpg"].read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    rc, out, err = run_classify(capsys, "-", "--model", tiny_tflite, "--no-detect", "--format", "json")
    assert rc == 0, err
    (row,) = json_lines(out)
    assert row["file"] == "-" and row["faces"][0]["box"] == [0, 0, 80, 96]


def test_no_detect_flag_before_paths(images, tiny_tflite, capsys):
    # python-fire would take the path as the flag's value; the CLI takes it back
    rc, out, err = run_classify(capsys, "--no-detect", images["rgb.png"], "--model", tiny_tflite,
                        "--format", "json")
    assert rc == 0, err
    (row,) = json_lines(out)
    assert row["file"] == str(images["rgb.png"]) and len(row["faces"]) == 1


# ---------------------------------------------------------------------------------- bad inputs

def test_bad_inputs_reported_and_rest_processed(tmp_path, images, tiny_tflite, capfd):
    capsys = capfd   # file-descriptor level: C libraries' own messages (libpng...) count too
    good = images["rgb.jpg"]
    missing = tmp_path / "missing.jpg"
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    (empty_dir / "readme.txt").write_text("no images here")
    text = tmp_path / "text.jpg"
    text.write_text("this is not a JPEG\n")
    full = good.read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(full[: len(full) // 2])
    zero = tmp_path / "zero.png"
    zero.write_bytes(b"")
    bad_video = tmp_path / "bad.mp4"
    bad_video.write_text("not a video")
    bad = [missing, empty_dir, text, truncated, zero, bad_video]
    rc, out, err = run_classify(capsys, missing, good, empty_dir, text, truncated, zero, bad_video,
                        images["gray.png"], "--model", tiny_tflite, "--no-detect",
                        "--format", "json")
    assert rc == 1
    assert [r["file"] for r in json_lines(out)] == [str(good), str(images["gray.png"])]
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert len(lines) == len(bad) + 1, err        # one line per bad input + the summary
    for path, line in zip(bad, lines):
        assert line.startswith("fer-edge: error: ") and str(path) in line, line
    assert "6 of 8 inputs" in lines[-1]


def test_tiny_image(tmp_path, tiny_tflite, capsys):
    one = _write(tmp_path / "one.png", np.full((1, 1, 3), 128, np.uint8))
    for extra in ([], ["--no-detect"]):
        rc, out, err = run_classify(capsys, one, "--model", tiny_tflite, "--format", "json", *extra)
        assert rc == 0, err
        assert json_lines(out) == [{"file": str(one), "faces": []}]
        assert "1x1" in err and str(one) in err


def test_huge_image_is_downscaled_with_bounded_memory(tmp_path, tiny_tflite):
    big = tmp_path / "big.png"
    img = np.zeros((10000, 10000), np.uint8)
    cv2.rectangle(img, (2000, 2000), (8000, 8000), 255, -1)
    _write(big, img)
    del img
    code = (
        "import json, sys\n"
        "from fer_edge.cli import main\n"
        f"rc = main(['classify', {str(big)!r}, {str(big)!r}, '--model', {str(tiny_tflite)!r},"
        " '--format', 'json', '--no-detect'])\n"
        # VmHWM: this process's peak RSS (ru_maxrss would carry pytest's own peak over exec)
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
        "peak = int(hwm[0].split()[1]) / 1024 if hwm else 0\n"
        "print(json.dumps({'rc': rc, 'peak_mb': peak}), file=sys.stderr)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    stats = json.loads(p.stderr.strip().splitlines()[-1])
    assert stats["rc"] == 0, p.stderr
    rows = json_lines(p.stdout)
    assert [r["faces"][0]["box"] for r in rows] == [[0, 0, 10000, 10000]] * 2
    # one 100 MB decode plus the libraries; several full-size copies would exceed this
    assert stats["peak_mb"] < 500, stats


class _FixedDetector:
    def __init__(self, boxes):
        self.boxes = boxes

    def detect(self, image):
        return detect.Detections.build(self.boxes, np.ones(len(self.boxes)))


def test_boxes_reported_in_original_pixels(tiny_tflite):
    clf = fclassify.Classifier(tiny_tflite, no_detect=True)
    clf.no_detect, clf.detector = False, _FixedDetector([[10, 20, 30, 40]])
    clf.margin = defaults.FACE_MARGIN
    faces = clf._image_faces(np.zeros((100, 100), np.uint8), 2.5, (250, 250))
    assert faces[0]["box"] == [25, 50, 75, 100]
    # a box running over the border is clipped to the original image
    clf.detector = _FixedDetector([[90, -5, 30, 30]])
    faces = clf._image_faces(np.zeros((100, 100), np.uint8), 1.0, (100, 100))
    assert faces[0]["box"] == [90, 0, 10, 25]


def test_margin_crop_clipped_at_border():
    gray = np.arange(100 * 80, dtype=np.uint32).reshape(100, 80).astype(np.uint8)
    assert margin_crop(gray, (0, 0, 40, 40), 0.1).shape == (44, 44)
    assert margin_crop(gray, (60, 90, 40, 40), 0.1).shape == (14, 24)
    assert margin_crop(gray, (10, 10, 20, 20), 0.1).shape == (24, 24)


# -------------------------------------------------------------------------------------- models

def test_model_errors(tmp_path, images, capsys, monkeypatch):
    img = images["rgb.jpg"]
    keras_file = tmp_path / "m.keras"
    keras_file.write_bytes(b"PK\x03\x04 not really")
    rc, out, err = run_classify(capsys, img, "--model", keras_file)
    assert rc == 2 and out == ""
    assert ".tflite" in err and "fer-edge export" in err and len(err.splitlines()) == 1

    text = tmp_path / "m.tflite"
    text.write_text("hello")
    rc, out, err = run_classify(capsys, img, "--model", text)
    assert rc == 2 and "not a TFLite model" in err and len(err.splitlines()) == 1

    rc, out, err = run_classify(capsys, img, "--model", tmp_path / "nope.tflite")
    assert rc == 2 and "not found" in err

    # an install whose models folder lacks the file (the one lookup, defaults.shipped_model)
    monkeypatch.setattr(defaults, "package_path", lambda part: tmp_path)
    rc, out, err = run_classify(capsys, img)
    assert rc == 2 and "no default model is shipped" in err and "--model" in err


def test_not_an_emotion_model(tmp_path, images, tiny_tflite, capsys):
    tf = pytest.importorskip("tensorflow", reason="making a foreign .tflite needs TensorFlow")

    from fer_edge.edge import tflite_meta

    @tf.function(input_signature=[tf.TensorSpec([1, 10], tf.float32)])
    def f(x):
        return tf.nn.softmax(x[:, :3])

    buf = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f).convert()
    foreign = tmp_path / "foreign.tflite"
    foreign.write_bytes(buf)
    rc, out, err = run_classify(capsys, images["rgb.jpg"], "--model", foreign)
    assert rc == 2 and "no fer-edge metadata" in err and len(err.splitlines()) == 1

    tagged = tmp_path / "tagged.tflite"
    tagged.write_bytes(tflite_meta.write(buf, {"labels": list(LABELS)}))
    for args in (["--model", tagged], ["--model", foreign, "--labels", ",".join(LABELS)]):
        rc, out, err = run_classify(capsys, images["rgb.jpg"], *args)
        assert rc == 2 and "input shape" in err and len(err.splitlines()) == 1


def test_labels_for_a_model_without_metadata(tmp_path, images, tiny_tflite, capsys):
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(tiny_tflite.read_bytes(), 0))
    model.metadata = [m for m in model.metadata or [] if m.name not in (b"fer_edge", "fer_edge")]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(bytes(builder.Output()))
    rc, out, err = run_classify(capsys, images["rgb.jpg"], "--model", bare, "--no-detect")
    assert rc == 2 and "--labels" in err
    names = ["anger", "disgusted", "fearful", "happiness", "sadness", "surprised", "neutral"]
    rc, out, err = run_classify(capsys, images["rgb.jpg"], "--model", bare, "--no-detect",
                        "--format", "json", "--labels", ",".join(names))
    assert rc == 0, err
    (row,) = json_lines(out)
    assert list(row["faces"][0]["scores"]) == list(LABELS)   # canonical spellings


def test_int8_model(images, tiny_tflite_int8, capsys):
    rc, out, err = run_classify(capsys, images["rgb.png"], images["gray.jpg"], "--model",
                        tiny_tflite_int8, "--no-detect", "--format", "json", "--threads", 2)
    assert rc == 0, err
    for row, name in zip(json_lines(out), ("rgb.png", "gray.jpg")):
        (face,) = row["faces"]
        assert list(face["scores"].values()) == pytest.approx(
            _model_scores(tiny_tflite_int8, images[name]), abs=1e-4)


# ------------------------------------------------------------------------------------- outputs

def test_json_schema(images, tiny_tflite, capsys):
    rc, out, err = run_classify(capsys, images["rgb.jpg"], "--model", tiny_tflite, "--no-detect",
                        "--format", "json")
    assert rc == 0
    (row,) = json_lines(out)
    assert set(row) == {"file", "faces"}
    (face,) = row["faces"]
    assert set(face) == {"box", "emotion", "confidence", "scores"}
    assert all(isinstance(v, int) for v in face["box"]) and len(face["box"]) == 4
    assert list(face["scores"]) == list(LABELS)
    assert face["emotion"] == max(face["scores"], key=face["scores"].get)
    assert face["confidence"] == face["scores"][face["emotion"]]
    assert list(face["scores"].values()) == pytest.approx(
        _model_scores(tiny_tflite, images["rgb.jpg"]), abs=1e-4)


def _model_scores(model_path, image_path) -> list[float]:
    """The model's own scores for a whole image as the face (what --no-detect classifies),
    read and converted here by the shared preprocessing, rounded as classify prints them."""
    from fer_edge.edge.preprocessing import face_to_input, to_gray
    from fer_edge.edge.runtime import EmotionModel
    from fer_edge.edge.sources import read_image

    face = face_to_input(to_gray(read_image(image_path)))
    return [round(float(v), 4) for v in EmotionModel(model_path).predict(face[None])[0]]


def test_tta_averages_the_face_and_its_mirror(tmp_path, tiny_tflite, capsys):
    from fer_edge.edge.preprocessing import face_to_input
    from fer_edge.edge.runtime import EmotionModel

    img = np.tile(np.linspace(0, 255, 48, dtype=np.uint8), (48, 1))  # a mirror differs
    path = _write(tmp_path / "ramp.png", img)
    rc, out, err = run_classify(capsys, path, "--model", tiny_tflite, "--no-detect", "--tta",
                        "--format", "json")
    assert rc == 0, err
    (face,) = json_lines(out)[0]["faces"]
    crop = face_to_input(img)[None]
    model = EmotionModel(tiny_tflite)
    want = (model.predict(crop) + model.predict(crop[:, :, ::-1]))[0] / 2
    assert np.allclose(list(face["scores"].values()), want, atol=1e-4)
    assert not np.allclose(want, model.predict(crop)[0], atol=1e-3)  # the mirror changed it


def test_csv_and_table(tmp_path, images, tiny_tflite, capsys):
    blank = _write(tmp_path / "blank.png", np.full((120, 160), 255, np.uint8))
    rc, out, err = run_classify(capsys, images["rgb.jpg"], blank, "--model", tiny_tflite,
                        "--detector", "haar", "--format", "csv")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["file", "frame", "time", "face", "track", "x", "y", "w", "h",
                             "emotion", "confidence", *LABELS]
    assert rows[-1]["file"] == str(blank) and rows[-1]["emotion"] == ""

    rc, out, err = run_classify(capsys, images["rgb.jpg"], "--model", tiny_tflite, "--no-detect")
    assert rc == 0
    header, line = out.splitlines()
    # photos: no time or track column; the file last, so a long path keeps the columns in line
    assert header.split() == ["emotion", "confidence", "face", "box", "(x,y,w,h)", "file"]
    assert line.endswith(str(images["rgb.jpg"])) and "0,0,80,96" in line
    assert line.index("0,0,80,96") == header.index("face box")
    long = _write(tmp_path / ("a" * 60) / "face.png", np.full((96, 80), 128, np.uint8))
    rc, out, err = run_classify(capsys, long, images["rgb.jpg"], "--model", tiny_tflite,
                                "--no-detect")
    header, *lines = out.splitlines()
    assert len({ln.rindex(" ") for ln in lines}) == 1     # the file column starts in one place


def test_save_annotated(tmp_path, images, tiny_tflite, capsys):
    src = tmp_path / "in"
    _write(src / "sub" / "a.png", _face_like())
    _write(src / "b.jpg", _face_like(seed=1))
    _write(src / "c16.tiff", _variant(_face_like(), "rgb16"))
    clip = _write_video(src / "clip.avi", frames=4)
    ann = tmp_path / "annotated"
    args = [src, "--model", tiny_tflite, "--no-detect", "--every", 2, "--save-annotated", ann]
    rc, out, err = run_classify(capsys, *args)
    assert rc == 0, err
    written = sorted(p.relative_to(ann).as_posix() for p in ann.rglob("*"))
    assert written == ["b.jpg", "c16.tiff", "clip_annotated.mp4", "sub", "sub/a.png"]
    assert clip.exists()
    video = cv2.VideoCapture(str(ann / "clip_annotated.mp4"))
    assert video.get(cv2.CAP_PROP_FRAME_COUNT) == 4      # every frame, not only those classified
    assert video.get(cv2.CAP_PROP_FPS) == VIDEO_FPS
    a = cv2.imread(str(ann / "sub" / "a.png"))
    assert a.shape == (96, 80, 3) and a.dtype == np.uint8

    rc, out, err = run_classify(capsys, *args)          # no overwrite without --force
    assert rc == 1 and "exists; pass --force" in err
    assert out.strip().splitlines()[1:] == []          # no result printed before the refusal
    rc, out, err = run_classify(capsys, *args, "--force")
    assert rc == 0, err


def test_bad_options(images, tiny_tflite, capsys):
    for extra in (["--format", "xml"], ["--every", 0], ["--detector", "nope"],
                  ["--threads", 0]):
        rc, out, err = run_classify(capsys, images["rgb.jpg"], "--model", tiny_tflite, *extra)
        assert rc == 2 and err.startswith("fer-edge: error:"), extra


# ----------------------------------------------------------------------------------- detectors

@pytest.mark.parametrize("name", list(detect.DETECTORS))
def test_detector_blank_and_tiny_images(name):
    det = detect.get(name)
    for img in (np.full((480, 640, 3), 200, np.uint8), np.zeros((300, 200), np.uint8),
                np.zeros((5, 7, 4), np.uint8)):
        boxes = det(img)
        assert boxes.shape == (0, 4)


def test_blank_image_exit_zero(tmp_path, tiny_tflite, capsys):
    blank = _write(tmp_path / "blank.jpg", np.full((240, 320, 3), 90, np.uint8))
    rc, out, err = run_classify(capsys, blank, "--model", tiny_tflite, "--format", "json")
    assert rc == 0, err
    assert json_lines(out) == [{"file": str(blank), "faces": []}]


@pytest.mark.skipif(not (PHOTOS / "labels.csv").exists(),
                    reason=f"real photos not found at {PHOTOS} (set FER_EDGE_PHOTOS)")
@pytest.mark.parametrize("name", ["auto", "haar_alt2"])
def test_detector_counts_on_photos(name, tiny_tflite, capsys):
    rows = list(csv.DictReader(open(PHOTOS / "labels.csv", newline="")))
    files = [PHOTOS / r["file"] for r in rows]
    rc, out, err = run_classify(capsys, *files, "--model", tiny_tflite, "--detector", name,
                        "--format", "json")
    assert rc == 0, err
    found = {Path(r["file"]).name: len(r["faces"]) for r in json_lines(out)}
    assert found == {r["file"]: int(r["faces"]) for r in rows}


# ------------------------------------------------------------------------------ no TensorFlow

def test_classify_never_imports_tensorflow(tmp_path, images, tiny_tflite):
    """The edge path (CLI + library, detection, stdin, video) runs without TensorFlow/Keras."""
    clip = _write_video(tmp_path / "clip.avi", frames=2)
    code = (
        "import sys\n"
        "from fer_edge.cli import main\n"
        f"rc = main(['classify', '-', {str(images['rgb.png'])!r}, {str(clip)!r}, "
        f"'--model', {str(tiny_tflite)!r}, '--format', 'json'])\n"
        "assert rc == 0, rc\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
        "assert not bad, bad[:5]\n"
        "print('NO-TF-OK')\n"
    )
    p = subprocess.run([sys.executable, "-c", code], input=images["gray.png"].read_bytes(),
                       capture_output=True, timeout=120)
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    assert out.strip().endswith("NO-TF-OK")
    files = [json.loads(line)["file"] for line in out.splitlines()[:-1]]
    assert files == ["-", str(images["rgb.png"]), str(clip), str(clip)]


def test_help_documents_options():
    exe = Path(sys.executable).with_name("fer-edge")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fer_edge.cli"]
    p = subprocess.run([*cmd, "classify", "--help"], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "PAGER": "cat"})
    text = p.stdout
    assert p.returncode == 0 and p.stderr == "", p.stderr
    for word in ("--model", "--detector", "--no-detect", "--glob", "--every", "--threads",
                 "--format", "--save-annotated", "--force", "stdin"):
        assert word in text, word
    assert "--no_detect" not in text and "--save_annotated" not in text   # one spelling
