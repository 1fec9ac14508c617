"""`fer-edge export --target web`: the page's files (no TensorFlow), the int8 model's float
ends, and the page itself in headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium): with ?image= its JSON equals the CLI's classify on the same image (face count,
emotion, boxes within a few pixels, scores close), and on a fake camera it draws a face's box
and label within 10 s. The browser tests skip, saying why, where Chromium is absent."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.cli import main
from fer_edge.edge.classify import Classifier
from fer_edge.edge.runtime import EmotionModel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import headless_page  # noqa: E402
from synth import moving_faces_video  # noqa: E402

BOX_PX = 3            # the page's boxes within this many pixels of classify's
SCORE_TOLERANCE = 0.03  # and each score within this (a few int8 steps of 1/256)
_skip_without_browser = pytest.mark.skipif(headless_page.missing() is not None,
                                           reason=str(headless_page.missing()))


def needs_browser(test):
    """A test in a real headless Chromium (slow, as setup.cfg's marker says)."""
    return pytest.mark.slow(_skip_without_browser(test))


def export_web(model: Path, out: Path, *more) -> int:
    return main(["export", "--target", "web", "--model", str(model), "--out", str(out), *more])


# ------------------------------------------------------------------------ the page's files

def test_float_ends_score_exactly_as_the_int8_model(tiny_tflite_int8):
    """The int8 model with QUANTIZE/DEQUANTIZE ends (what LiteRT.js can feed) gives the int8
    model's own scores, on LiteRT, to the last bit."""
    from ai_edge_litert.interpreter import Interpreter

    from fer_edge.web.float_io import for_page, needs_float_io

    buf = tiny_tflite_int8.read_bytes()
    wrapped = for_page(buf)
    assert needs_float_io(buf) and not needs_float_io(wrapped)
    faces = np.random.default_rng(0).integers(0, 256, (6, 48, 48), dtype=np.uint8)
    expected = EmotionModel(tiny_tflite_int8).predict(faces)
    interpreter = Interpreter(model_content=wrapped)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert inp["dtype"] == np.float32 and out["dtype"] == np.float32
    assert list(inp["shape_signature"]) == [1, 48, 48, 1]    # batch 1: LiteRT.js's tensors
    got = []
    for face in faces:
        interpreter.set_tensor(inp["index"], face.reshape(1, 48, 48, 1).astype(np.float32))
        interpreter.invoke()
        got.append(interpreter.get_tensor(out["index"])[0])
    np.testing.assert_array_equal(np.array(got), expected)
    assert interpreter.get_signature_list()["serving_default"]["inputs"] == ["image"]


def test_export_writes_the_page_and_keeps_what_exists(tmp_path, tiny_tflite_int8, capsys):
    out = tmp_path / "web"
    assert export_web(tiny_tflite_int8, out) == 0
    written = capsys.readouterr().out.split()
    assert {Path(p).relative_to(out).as_posix() for p in written} >= {
        "index.html", "fer-web.js", "pipeline.js", "imageops.js", "fer-web.json",
        "model.tflite", "face_detection_full_range.tflite", "face_detection_short_range.tflite",
        "litert/litert.js", "litert/litert_wasm_internal.wasm", "NOTICE",
        "litert/LICENSE-Apache-2.0.txt"}
    config = json.loads((out / "fer-web.json").read_text())
    assert config["labels"] == EmotionModel(tiny_tflite_int8).labels
    assert config["detectors"]["full"]["side"] == 192 and config["margin"] == 0.1
    before = (out / "index.html").stat().st_mtime_ns
    assert export_web(tiny_tflite_int8, out) == 2
    assert "index.html exists; pass --force" in capsys.readouterr().err
    assert (out / "index.html").stat().st_mtime_ns == before
    assert export_web(tiny_tflite_int8, out, "--force") == 0


def test_export_refuses_what_the_page_cannot_run(tmp_path, capsys):
    keras = tmp_path / "m.keras"
    keras.write_bytes(b"not used")
    assert export_web(keras, tmp_path / "a") == 2
    assert "--target web takes an exported .tflite model" in capsys.readouterr().err
    fake = tmp_path / "m.tflite"
    fake.write_bytes(b"\0" * 64)
    assert export_web(fake, tmp_path / "b") == 2
    assert capsys.readouterr().err.strip().endswith("is not a TFLite model")
    assert not (tmp_path / "b").exists()


def test_the_other_targets_refuse_a_tflite(tmp_path, tiny_tflite_int8, capsys):
    if importlib.util.find_spec("keras") is None:
        pytest.skip("the other targets need the train extra (Keras)")
    assert main(["export", "--model", str(tiny_tflite_int8), "--out", str(tmp_path)]) == 2
    assert "a .tflite is for --target web" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_the_vendored_litert_is_the_pinned_one():
    from fer_edge.web import HERE, vendor_litert

    pin = json.loads((HERE / "litert" / "PIN.json").read_text())
    assert pin["packages"]["@litertjs/core"]["license"] == "Apache-2.0"
    assert set(pin["files"]) == set(vendor_litert.FILES.values())
    for name, digest in pin["files"].items():
        assert hashlib.sha256((HERE / "litert" / name).read_bytes()).hexdigest() == digest


def test_the_page_loads_nothing_from_elsewhere():
    """Every URL in the page's own files is relative: it works offline, from any server."""
    from fer_edge.web import HERE, PAGE

    for name in PAGE:
        text = (HERE / "assets" / name).read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, name


# ------------------------------------------------------------------------ in the browser

def _tilted(tile: np.ndarray, degrees: float) -> np.ndarray:
    h, w = tile.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(tile, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def site(tmp_path_factory, face_tile):
    """The pages of both tiny models (int8 and float32) and the test images, served."""
    root = tmp_path_factory.mktemp("site")
    for kind, model in (("int8", "tiny_int8.tflite"), ("float", "tiny.tflite")):
        assert export_web(REPO / "tests" / "data" / model, root / kind) == 0
    (root / "img").mkdir()
    scene = np.full((400, 640, 3), 150, np.uint8)
    scene[100:270, 40:210] = cv2.resize(face_tile, (170, 170), interpolation=cv2.INTER_AREA)
    scene[120:250, 380:510] = cv2.resize(_tilted(cv2.flip(face_tile, 1), 20), (130, 130),
                                         interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(root / "img" / "two_faces.png"), scene)
    (root / "img" / "astronaut.jpg").write_bytes((REPO / "examples" / "astronaut.jpg").read_bytes())
    cv2.imwrite(str(root / "img" / "no_face.png"), np.full((120, 160, 3), 90, np.uint8))
    with headless_page.static_server(root) as base:
        yield root, base


@pytest.fixture(scope="module")
def browser():
    if headless_page.missing():
        pytest.skip(headless_page.missing())
    with headless_page.chromium() as b:
        yield b


@needs_browser
@pytest.mark.parametrize("kind,model", [("int8", "tiny_int8.tflite"), ("float", "tiny.tflite")])
def test_image_mode_answers_as_classify(site, browser, kind, model):
    root, base = site
    with Classifier(REPO / "tests" / "data" / model) as clf:
        for name, faces in (("two_faces.png", 2), ("astronaut.jpg", 1), ("no_face.png", 0)):
            expected = clf.faces(root / "img" / name)
            assert len(expected) == faces, name          # what the comparison is about
            browser.get(f"{base}{kind}/index.html?image=../img/{name}")
            got = headless_page.wait_result(browser)
            assert "error" not in got, got
            assert len(got["faces"]) == len(expected), (name, got)
            for mine, theirs in zip(got["faces"], expected):
                assert mine["emotion"] == theirs["emotion"], name
                assert max(abs(a - b) for a, b in zip(mine["box"], theirs["box"])) <= BOX_PX
                assert set(mine["scores"]) == set(theirs["scores"])
                for label, score in theirs["scores"].items():
                    assert abs(mine["scores"][label] - score) <= SCORE_TOLERANCE, (name, label)
    # every file the page fetched came from the one static server
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched and all(url.startswith(base) for url in fetched), fetched


@needs_browser
def test_image_mode_reports_an_image_it_cannot_read(site, browser):
    _, base = site
    browser.get(f"{base}int8/index.html?image=../img/missing.png")
    assert headless_page.wait_state(browser, {"done"}, 60) == "error"
    got = json.loads(browser.find_element("id", "result").text)
    assert got == {"error": "../img/missing.png: HTTP 404"}


def _drawn(browser) -> dict:
    """The last frame's faces, and whether the view shows each one's box and label in its
    emotion's colour (a box edge pixel, the label's background, dark text in the label)."""
    return browser.execute_script("""
        const s = window.ferWeb, c = document.getElementById('view');
        const ctx = c.getContext('2d');
        const hex = (x, y) => '#' + Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3))
            .map(v => v.toString(16).padStart(2, '0')).join('');
        return (s.faces || []).map(f => {
            const [x, y, w, h] = f.box, want = s.colours[f.emotion];
            const line = Math.max(2, Math.round(Math.min(c.width, c.height) / 200));
            const th = 8 * line, ty = y >= th ? y - th : y + h;
            const label = ctx.getImageData(x, ty, Math.min(40, c.width - x), th).data;
            let dark = 0;
            for (let i = 0; i < label.length; i += 4) if (label[i] + label[i + 1] + label[i + 2] < 150) dark++;
            return {emotion: f.emotion, box: f.box, edge: hex(x, y + (h >> 1)) === want,
                    label: hex(x, ty + 1) === want, text: dark};
        });""")


@needs_browser
def test_camera_mode_draws_a_face_and_its_label_within_10_s(site, tmp_path, face_tile):
    root, base = site
    clip = moving_faces_video(tmp_path / "camera.avi", [face_tile], [(60, 40, 120, 60)],
                              frames=20, fps=10, size=(320, 240), side=130)
    y4m = headless_page.y4m_from_video(clip, tmp_path / "camera.y4m")
    with headless_page.chromium(camera_clip=y4m) as b:
        t0 = time.monotonic()
        b.get(f"{base}int8/index.html")
        drawn = []
        while time.monotonic() - t0 < 10 and not (drawn and all(
                d["edge"] and d["label"] and d["text"] > 0 for d in drawn)):
            drawn = _drawn(b)
            time.sleep(0.1)
        state = headless_page.page_state(b)
    assert state["error"] is None
    assert len(drawn) == 1, (drawn, state["frames"])
    face = drawn[0]
    assert face["emotion"] in state["labels"]
    assert face["edge"] and face["label"] and face["text"] > 0, face
    x, y, w, h = face["box"]
    assert 40 <= x <= 200 and 20 <= y <= 120 and 80 <= w <= 180, face   # where the clip has it
    assert state["frames"] >= 1


@needs_browser
def test_camera_mode_finds_a_face_that_comes_in_by_the_motion_trigger(site, tmp_path, face_tile):
    """A face still from the start, a second that appears half-way (the camera loops the clip):
    with the periodic full detection pushed out of reach (detect_every 1000 in the page's
    fer-web.json), only the newcomer test (video._motion_outside's, in the page) can find it."""
    root, base = site
    page = root / "slow_keyframes"
    assert export_web(REPO / "tests" / "data" / "tiny_int8.tflite", page) == 0
    config = json.loads((page / "fer-web.json").read_text())
    config["video"]["detect_every"] = 1000
    (page / "fer-web.json").write_text(json.dumps(config))
    clip = moving_faces_video(tmp_path / "comes_in.avi", [face_tile, cv2.flip(face_tile, 1)],
                              [(20, 60, 20, 60), (190, 60, 190, 60, 20, 39)],
                              frames=40, fps=10, size=(320, 240), side=110)
    y4m = headless_page.y4m_from_video(clip, tmp_path / "comes_in.y4m")
    counts = []
    with headless_page.chromium(camera_clip=y4m) as b:
        b.get(f"{base}slow_keyframes/index.html")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 12:
            state = headless_page.page_state(b)
            if state["faces"] is not None:
                counts.append(len(state["faces"]))
            if 1 in counts and 2 in counts[counts.index(1):]:
                break
            time.sleep(0.05)
    assert state["error"] is None
    # one face, then two: the newcomer found while the first was followed
    assert 1 in counts and 2 in counts[counts.index(1):], counts[-20:]
