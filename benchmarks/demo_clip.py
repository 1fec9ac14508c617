"""A synthetic clip for trying the video path by hand: two faces from ../shared/photos side by
side in a 640x480 frame, moving apart to the edges; the left face's expression changes half-way
(happy.jpg's face, then surprise.jpg's), the right one stays sad.jpg's. Prints the clip's path.

    python benchmarks/demo_clip.py --out /tmp/demo/apart.mp4 [--frames 40] [--fps 10]
    fer-edge classify /tmp/demo/apart.mp4 --format json > /tmp/demo/apart.jsonl
    fer-edge timeline /tmp/demo/apart.jsonl --out /tmp/demo/timeline
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from synthetic_video import moving_faces_video  # noqa: E402
from fer_edge.edge import detect  # noqa: E402
from fer_edge.edge.sources import read_image  # noqa: E402


def face(photo: Path):
    img = read_image(photo)
    x, y, w, h = detect.get("auto")(img)[0]
    m = w // 4
    return img[max(0, y - m):y + h + m, max(0, x - m):x + w + m]


def main(out: str, photos=str(REPO.parent / "shared" / "photos"), frames: int = 40,
         fps: float = 10.0):
    photos = Path(photos)
    names = ("happy.jpg", "surprise.jpg", "sad.jpg")
    missing = [n for n in names if not (photos / n).is_file()]
    if missing:
        sys.exit(f"demo_clip: {photos / missing[0]} not found: pass --photos DIR, a folder "
                 f"holding {', '.join(names)} (one face each)")
    faces = [face(photos / n) for n in names]
    half = frames // 2
    left, right = (180, 170, 20, 170), (330, 170, 490, 170)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    moving_faces_video(path, faces, [(*left, 0, half - 1), (*left, half, frames - 1), right],
                       frames=frames, fps=fps, side=130)
    print(path)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
