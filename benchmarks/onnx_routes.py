"""Which int8 ONNX to export: each route's answers against the int8 .tflite's on real faces (choose
on val, report on test). JSON out.

    python benchmarks/onnx_routes.py --keras models/fer.keras --tflite models/fer_int8.tflite \
        --data ../shared/fer2013 --split val [--out F.json]

Routes, all on onnxruntime (CPU, 1 thread):
  ort_static      what `export --target onnx --quantize int8` writes: tf2onnx's float model,
                  onnxruntime's pre-processing, then its static QDQ quantization (per-channel
                  int8 weights, int8 activations, min-max) calibrated on the committed
                  manifest's faces, the .tflite's calibration
  ort_static_raw  the same without the pre-processing (the dense layer's MatMul and bias Add
                  quantized apart)
  ort_per_tensor  the same as ort_static with one scale per weight tensor
  tf2onnx_tflite  tf2onnx reading the int8 .tflite itself (its scales; int8 input and output)
  float32         tf2onnx's float model (what int8 costs, for scale)
For each: top-1 agreement with the int8 .tflite (LiteRT) on FER2013's 7 labels, top-1 on FER2013's
labels, the FER+ majority, the largest score difference to the .tflite's, and the op types
onnxruntime runs after fusing the graph (int8 kernels or float ops).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = 1, 1, 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _fused(path: Path) -> dict:
    """The op types onnxruntime runs for the model after its graph optimisations (its CPU
    provider, default level): QLinearConv / QGemm / QLinearSoftmax are int8 kernels, a Conv,
    Gemm or Softmax left over is float."""
    import collections

    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.optimized_model_filepath = str(path.with_suffix(".optimised.onnx"))
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    graph = onnx.load(opts.optimized_model_filepath).graph
    return dict(sorted(collections.Counter(n.op_type for n in graph.node).items()))


def _scores(path: Path, faces: np.ndarray, batch: int = 256) -> np.ndarray:
    """A route's scores for uint8 faces: float input (raw grey levels) or, for a model with int8
    input and output (tf2onnx from the .tflite), pixel - 128 in and (q + 128) / 256 out."""
    from fer_edge.edge.preprocessing import batch_to_float

    s = _session(path)
    inp, out = s.get_inputs()[0], s.get_outputs()[0]
    int8_in, int8_out = "int8" in inp.type, "int8" in out.type
    rows = []
    for i in range(0, len(faces), batch):
        x = batch_to_float(faces[i:i + batch])
        if int8_in:
            x = (x - 128).astype(np.int8)
        y = s.run([out.name], {inp.name: x})[0].astype(np.float32)
        rows.append((y + 128) / 256 if int8_out else y)
    return np.concatenate(rows)


def main(keras: str, tflite: str, data: str, split: str = "val", out: str = None):
    import onnx
    import tf2onnx

    from fer_edge import data as fdata, votes
    from fer_edge.converters import onnx_export
    from fer_edge.edge.preprocessing import fer2013_answers
    from fer_edge.edge.runtime import EmotionModel
    from fer_edge.edge.sources import quiet_native_stderr
    from fer_edge.export import calibration_images
    from fer_edge.machine import host
    from fer_edge.training.keras_io import load_keras
    from fer_edge.training.qat import plain

    ds = fdata.load(data)
    sp = ds.split(split)
    calib, calib_info = calibration_images(data)
    with quiet_native_stderr(always=True):
        lite = EmotionModel(tflite).predict(sp.x)
    model = plain(load_keras(keras))
    result = {"command": " ".join(["python", "benchmarks/onnx_routes.py", *sys.argv[1:]]),
              "keras": keras, "tflite": tflite, "split": split, "n": int(len(sp)),
              "calibration": calib_info["calibration"], "host": host(), "routes": {}}
    with tempfile.TemporaryDirectory() as tmp, quiet_native_stderr(always=True):
        tmp = Path(tmp)
        proto = onnx_export.float_model(model)
        onnx.save(proto, tmp / "float32.onnx")
        onnx.save(onnx_export.quantize_int8(proto, calib), tmp / "ort_static.onnx")
        onnx.save(onnx_export.quantize_int8(proto, calib, pre_process=False),
                  tmp / "ort_static_raw.onnx")
        onnx.save(onnx_export.quantize_int8(proto, calib, per_channel=False),
                  tmp / "ort_per_tensor.onnx")
        from_tflite, _ = tf2onnx.convert.from_tflite(tflite, opset=onnx_export.OPSET)
        onnx.save(from_tflite, tmp / "tf2onnx_tflite.onnx")
        for name in ("ort_static", "ort_static_raw", "ort_per_tensor", "tf2onnx_tflite",
                     "float32"):
            scores = _scores(tmp / f"{name}.onnx", sp.x)
            row = {"agreement_with_tflite": float((fer2013_answers(scores)
                                                   == fer2013_answers(lite)).mean()),
                   "top1": float((fer2013_answers(scores) == sp.y).mean()),
                   "max_score_difference": float(np.abs(scores - lite).max()),
                   "size_bytes": os.path.getsize(tmp / f"{name}.onnx"),
                   "onnxruntime_runs": _fused(tmp / f"{name}.onnx")}
            if sp.votes is not None:
                row["ferplus_top1"] = votes.majority_summary(sp.votes, scores)["top1"]
            result["routes"][name] = row
    result["tflite_row"] = {"top1": float((fer2013_answers(lite) == sp.y).mean()),
                        **({"ferplus_top1": votes.majority_summary(sp.votes, lite)["top1"]}
                           if sp.votes is not None else {})}
    print(json.dumps(result, indent=1))
    if out:
        from fer_edge.edge.fileio import write_json

        write_json(Path(out), result)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
