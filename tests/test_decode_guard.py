"""One guarded decode for every entry point (edge/sources.decode): an image's width and height
are read from its header (edge/imagesize.py) and an image over --max-pixels is refused before a
byte of it is decoded, in classify, the Python API, batch and serve alike; multi-frame files
count their largest frame; EXIF orientation is honoured. The header reader and the guard are
fuzzed with mutated, truncated and lying headers of every format (hypothesis)."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.edge import imagesize, sources

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.jpg"
BIN = Path(sys.executable).parent


# the command, then its own peak memory in KB: VmHWM, which (unlike ru_maxrss) starts afresh
# at exec and so holds nothing of the forking pytest process
PEAK_OF_MAIN = ("import sys\nfrom fer_edge.cli import main\ncode = main(sys.argv[1:])\n"
                "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
                "print('PEAK', hwm.split()[1], file=sys.stderr)\nsys.exit(code)")


def fer_edge(*args) -> list[str]:
    exe = BIN / "fer-edge"
    return ([str(exe)] if exe.exists() else [sys.executable, "-m", "fer_edge.cli"]) + \
        [str(a) for a in args]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + \
        struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_bomb(side: int) -> bytes:
    """A valid grey PNG of side x side zero pixels, compressed row by row (never in memory)."""
    z = zlib.compressobj(9)
    row = bytes(side + 1)                      # filter byte 0, then the row
    body = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body)
            + _png_chunk(b"IEND", b""))


def webp_header(w: int, h: int) -> bytes:
    """A lossless WebP header (VP8L) claiming w x h, with a little noise behind it."""
    bits = (w - 1) | ((h - 1) << 14)
    payload = b"\x2f" + bits.to_bytes(4, "little") + bytes(range(200)) * 5000
    return b"RIFF" + struct.pack("<I", len(payload) + 12) + b"WEBPVP8L" + \
        struct.pack("<I", len(payload)) + payload


def tiff_pages(sizes) -> bytes:
    """A little-endian TIFF whose IFDs claim these (width, height) pages (no pixel data)."""
    out = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for k, (w, h) in enumerate(sizes):
        at = len(out)
        nxt = at + 2 + 2 * 12 + 4 if k + 1 < len(sizes) else 0
        out += struct.pack("<H", 2)
        out += struct.pack("<HHII", 256, 4, 1, w) + struct.pack("<HHII", 257, 4, 1, h)
        out += struct.pack("<I", nxt)
    return bytes(out)


def gif_with_frame(screen, frame) -> bytes:
    """A GIF whose logical screen is `screen` and whose one frame descriptor is `frame`."""
    head = b"GIF89a" + struct.pack("<HHBBB", *screen, 0, 0, 0)
    desc = b"\x2c" + struct.pack("<HHHHB", 0, 0, *frame, 0) + b"\x02\x02\x44\x01\x00"
    return head + desc + b"\x3b"


def write_bombs(folder: Path) -> Path:
    """The bombs, one file each (benchmarks/bombs.py times the first three)."""
    (folder / "bomb.png").write_bytes(png_bomb(30000))
    header = bytearray(png_bomb(64))
    header[16:24] = struct.pack(">II", 60000, 60000)       # a lying header
    (folder / "header60000.png").write_bytes(bytes(header))
    (folder / "bomb.webp").write_bytes(webp_header(16383, 16383))
    (folder / "pages.tiff").write_bytes(tiff_pages([(64, 64), (40000, 40000)]))
    (folder / "frame.gif").write_bytes(gif_with_frame((10, 10), (30000, 30000)))
    return folder


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    return write_bombs(tmp_path_factory.mktemp("bombs"))


def test_the_header_gives_every_format_its_size(bombs):
    ok, astronaut = cv2.imencode(".png", cv2.imread(str(ASTRONAUT)))
    assert imagesize.image_size(ASTRONAUT.read_bytes()) == (512, 512)
    for ext in (".png", ".bmp", ".webp", ".tiff", ".pgm", ".ppm"):
        ok, data = cv2.imencode(ext, np.zeros((37, 53, 3 if ext != ".pgm" else 1), np.uint8))
        assert imagesize.image_size(data.tobytes()) == (53, 37), ext
    assert imagesize.image_size((bombs / "bomb.png").read_bytes()) == (30000, 30000)
    assert imagesize.image_size((bombs / "bomb.webp").read_bytes()) == (16383, 16383)
    assert imagesize.image_size((bombs / "pages.tiff").read_bytes()) == (40000, 40000)
    assert imagesize.image_size((bombs / "frame.gif").read_bytes()) == (30000, 30000)
    assert imagesize.image_size(b"P5\n# a comment\n640 480\n255\n") == (640, 480)
    assert imagesize.image_size(b"not an image at all") is None


@pytest.mark.parametrize("turn", range(1, 9))
def test_exif_orientation_is_honoured(turn):
    pytest.importorskip("PIL", reason="Pillow writes the EXIF files (the train extra has it)")
    from PIL import Image, ImageOps

    img = np.zeros((40, 80, 3), np.uint8)
    img[:10, :20] = (255, 128, 0)                       # a mark in one corner
    exif = Image.Exif()
    exif[0x0112] = turn
    buf = io.BytesIO()
    Image.fromarray(img[:, :, ::-1]).save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    data = buf.getvalue()
    assert imagesize.orientation(data) == turn
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))[:, :, ::-1]
    image, _, size = sources.decode(np.frombuffer(data, np.uint8))
    assert image.shape == upright.shape and size == (upright.shape[1], upright.shape[0])
    assert np.abs(image.astype(int) - upright.astype(int)).max() <= 1


def test_classify_refuses_each_bomb_in_one_line_and_goes_on(bombs):
    files = sorted(bombs.iterdir())
    t = time.perf_counter()
    # the command in a process that reports its own peak memory when it ends
    r = subprocess.run([sys.executable, "-c", PEAK_OF_MAIN, "classify", *map(str, files),
                        str(ASTRONAUT), "--format", "json"],
                       capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - t
    peak_mb = int(r.stderr.rsplit("PEAK ", 1)[1]) / 1024
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("fer-edge: ")]
    refused = [line for line in errors if "over the limit of 200,000,000 (--max-pixels)" in line]
    assert len(refused) == len(files), r.stderr
    assert "30000 x 30000 pixels" in r.stderr and "60000 x 60000 pixels" in r.stderr
    (row,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert row["faces"][0]["emotion"] == "happy"            # the photo after them, classified
    assert seconds < 20 and peak_mb < 200, (seconds, peak_mb)
    # a limit of its own: the 512 x 512 photo passes 262,144 and fails one pixel less
    ok = subprocess.run(fer_edge("classify", ASTRONAUT, "--max-pixels", 262144),
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "happy" in ok.stdout
    no = subprocess.run(fer_edge("classify", ASTRONAUT, "--max-pixels", 262143),
                        capture_output=True, text=True, timeout=60)
    assert no.returncode == 1 and "512 x 512 pixels, over the limit of 262,143" in no.stderr


def test_the_api_refuses_a_bomb_and_its_bytes(bombs):
    from fer_edge import Classifier
    from fer_edge.errors import FerEdgeError

    with Classifier() as clf:
        with pytest.raises(FerEdgeError, match="30000 x 30000 pixels, over the limit"):
            clf.faces(str(bombs / "bomb.png"))
        with pytest.raises(FerEdgeError, match="16383 x 16383 pixels, over the limit"):
            clf.faces((bombs / "bomb.webp").read_bytes())
    with Classifier(max_pixels=1000) as small, pytest.raises(FerEdgeError, match="over the "
                                                                                 "limit of 1,000"):
        small.faces(str(ASTRONAUT))


def test_batch_puts_the_bombs_in_its_errors_table(bombs, tmp_path):
    pytest.importorskip("ray", reason="pip install 'fer-edge[ray]' (the test extra has it)")
    pd = pytest.importorskip("pandas")

    r = subprocess.run(fer_edge("batch", bombs, ASTRONAUT, "--out", tmp_path / "out", "--workers",
                                1, "--quiet"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    errors = pd.read_parquet(tmp_path / "out" / "errors")
    from fer_edge.edge.fileio import IMAGE_EXTS

    # a folder's images are the files with image suffixes (.gif is not one: OpenCV 4's
    # headless wheels decode GIF only in their newest versions)
    assert sorted(Path(f).name for f in errors["file"]) == sorted(
        p.name for p in bombs.iterdir() if p.suffix in IMAGE_EXTS)
    assert errors["reason"].str.contains("over the limit of 200,000,000").all()
    faces = pd.read_parquet(tmp_path / "out" / "faces")
    assert faces["emotion"].tolist() == ["happy"]


def test_serve_refuses_a_bomb_with_413(bombs):
    from test_serve import Running, post_image

    running = Running(workers=1)
    try:
        for name in ("bomb.png", "pages.tiff", "frame.gif"):
            status, _, body = post_image(running.url, (bombs / name).read_bytes(),
                                         content_type="application/octet-stream")
            assert status == 413 and b"over --max-pixels" in body, (name, body)
    finally:
        running.close()


# ------------------------------------------------------------------------------ fuzzing

def _seeds() -> list[bytes]:
    img = cv2.imread(str(ASTRONAUT))[:64, :64]
    out = [cv2.imencode(ext, img)[1].tobytes() for ext in (".jpg", ".png", ".bmp", ".webp",
                                                           ".tiff", ".ppm")]
    out += [cv2.imencode(".pgm", img[:, :, 0])[1].tobytes(), tiff_pages([(8, 8), (9, 9)]),
            gif_with_frame((8, 8), (4, 4)), ASTRONAUT.read_bytes()[:4096]]
    return out


SEEDS = _seeds()


def _mutated(draw_seed, cuts, flips):
    data = bytearray(SEEDS[draw_seed % len(SEEDS)])
    for at, value in flips:
        data[at % len(data)] = value
    return bytes(data[:max(1, len(data) - cuts)])


def _fuzzed(cases: int):
    """hypothesis over (a seed file, bytes cut from its end, bytes overwritten), `cases` of
    them, no example database (CI starts afresh)."""
    pytest.importorskip("hypothesis", reason="pip install hypothesis (test extra)")
    from hypothesis import given, settings, strategies as st

    mutations = (st.integers(0, 10**6), st.integers(0, 5000),
                 st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=12))
    return lambda fn: settings(max_examples=cases, deadline=None, database=None)(
        given(*mutations)(fn))


@pytest.mark.slow               # 10,000 cases: about a minute
def test_fuzz_the_header_reader():
    @_fuzzed(10_000)
    def reads_or_says_none(seed, cuts, flips):
        data = _mutated(seed, cuts, flips)
        size = imagesize.image_size(data)
        assert size is None or (len(size) == 2 and all(isinstance(v, int) and v >= 0
                                                       for v in size))
        assert imagesize.orientation(data) in range(1, 9)

    reads_or_says_none()


@pytest.mark.slow
def test_fuzz_the_guarded_decode():
    @_fuzzed(2_000)
    def decodes_or_refuses(seed, cuts, flips):
        data = _mutated(seed, cuts, flips)
        try:
            image, scale, (w, h) = sources.decode(np.frombuffer(data, np.uint8),
                                                  max_pixels=1_000_000)
        except ValueError:
            return                                # one reason, never another exception
        assert image.dtype == np.uint8 and w * h <= 1_000_000 and scale >= 1.0

    decodes_or_refuses()
