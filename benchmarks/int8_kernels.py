"""Do the int8 runtimes agree with each other? One int8 model file answers on a split under each
set of kernels that runs it: LiteRT's default (its XNNPack delegate, what classify uses), LiteRT's
builtin kernels without a delegate, LiteRT's reference kernels (the semantics TFLite Micro and
Vela's Ethos-U ports follow), and, for each `--onnx` file, onnxruntime. Printed and written as
JSON: each pair's top-1 agreement, the mean and 99th percentile of the largest score difference
per face, and each runtime's FER2013 top-1 and FER+ majority. For finding where an int8 export
"disagrees": if the runtimes of the same .tflite already disagree as much, the export is not
the cause.

    python benchmarks/int8_kernels.py --tflite models/ferplus_int8.tflite \
        --onnx runs/onnx/ferplus/fer_int8.onnx --data ../shared/fer2013 --split val \
        --out reports/onnx/kernels_ferplus_val.json
"""

from __future__ import annotations

import itertools
import json
import sys

import fire
import numpy as np

def litert_scores(path: str, kernels: str, faces: np.ndarray) -> np.ndarray:
    """The .tflite's scores under one of LiteRT's kernel sets (runtime.KERNELS), the same
    (de)quantization, one face a call as classify runs it."""
    from fer_edge.edge.runtime import EmotionModel

    model = EmotionModel(path, kernels=kernels)
    return model.canonical_scores(model.predict(faces, batch_size=1))


def onnx_scores(path: str, faces: np.ndarray) -> np.ndarray:
    from fer_edge.edge.runtime import OnnxModel

    model = OnnxModel(path)
    return model.canonical_scores(model.predict(faces))


def pair(a: np.ndarray, b: np.ndarray) -> dict:
    largest = np.abs(a - b).max(1)
    return {"agreement": round(float((a.argmax(1) == b.argmax(1)).mean()), 4),
            "mean_largest_score_difference": round(float(largest.mean()), 4),
            "p99_largest_score_difference": round(float(np.quantile(largest, 0.99)), 4)}


def main(tflite: str, data: str, onnx=(), split: str = "val", out: str | None = None):
    from fer_edge import data as fdata, votes
    from fer_edge.edge.preprocessing import fer2013_answers
    from fer_edge.edge.runtime import KERNELS
    from fer_edge.edge.sources import quiet_native_stderr
    from fer_edge.machine import host

    faces = fdata.load(data).split(split)
    onnx = [onnx] if isinstance(onnx, str) else list(onnx)
    scores = {}
    with quiet_native_stderr(always=True):
        for kernels in KERNELS:
            scores[f"litert_{kernels}"] = litert_scores(tflite, kernels, faces.x)
        for path in onnx:
            scores[f"onnxruntime:{path}"] = onnx_scores(path, faces.x)
    result = {"command": " ".join(["python", "benchmarks/int8_kernels.py", *sys.argv[1:]]),
              "tflite": tflite, "split": split, "faces": int(len(faces)), "host": host(),
              "runtimes": {}, "pairs": {}}
    for name, s in scores.items():
        row = {"fer2013_top1": round(float((fer2013_answers(s) == faces.y).mean()), 4)}
        if faces.votes is not None:
            row["ferplus_majority"] = round(votes.majority_summary(faces.votes, s)["top1"], 4)
        tops = np.sort(s, 1)
        row["tied_top_share"] = round(float((tops[:, -1] == tops[:, -2]).mean()), 4)
        result["runtimes"][name] = row
    for a, b in itertools.combinations(scores, 2):
        result["pairs"][f"{a} | {b}"] = pair(scores[a], scores[b])
    print(json.dumps(result, indent=1))
    if out:
        from fer_edge.edge.fileio import write_json

        write_json(out, result)


if __name__ == "__main__":
    fire.Fire(main)
