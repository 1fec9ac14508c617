"""fer-edge's Python API on the example photo, as an app embeds it (no TensorFlow: LiteRT, numpy
and OpenCV). Run it from a clone after `pip install .`:

    python examples/api.py [PHOTO] [VIDEO]

It prints each face of the photo (box, emotion, confidence), the same photo as a numpy array and
mirrored in one model batch, and, given a video, each classified frame's tracks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2

from fer_edge import Classifier

HERE = Path(__file__).resolve().parent


def main(photo: str = str(HERE / "astronaut.jpg"), video: str | None = None) -> None:
    with Classifier() as clf:                     # the shipped default model; or a name, a path
        for face in clf.faces(photo):             # a path, a numpy image or a PIL image
            print("photo", face["box"], face["emotion"], f"{face['confidence']:.2f}")
        image = cv2.imread(photo)                 # BGR, as OpenCV gives it
        for i, faces in enumerate(clf.faces_batch([image, cv2.flip(image, 1)])):
            for face in faces:
                print("batch", i, face["box"], face["emotion"], f"{face['confidence']:.2f}")
        if video:
            with clf.video(video, every=2) as frames:   # a file, a camera index (0), a URL
                for frame in frames:
                    for face in frame["faces"]:
                        print("video", frame["frame"], f"{frame['time']:.2f}", face["track"],
                              face["emotion"])


if __name__ == "__main__":
    main(*sys.argv[1:3])
