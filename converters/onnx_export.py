"""`fer-edge export --target onnx`: Keras -> ONNX, float32 and int8 (QDQ), for onnxruntime,
OpenVINO and the other ONNX runtimes (`pip install 'fer-edge[onnx]'`).

float32: tf2onnx converts the Keras model (the seed CNN's Conv -> ReLU -> BN folded first, as for
TFLite: fold.py) at opset OPSET; the input is the .tflite's, (N, 48, 48, 1) float32 raw grey
levels (NHWC, the model rescales inside), the output the softmax scores.

int8: onnxruntime's static quantization of that float model, in QDQ form (QuantizeLinear /
DequantizeLinear around float ops, which onnxruntime fuses into int8 kernels): int8 weights per
output channel (symmetric), int8 activations whose ranges are the min-max over the calibration
images, the same faces as the .tflite's int8 (the committed manifest unless --calib says
otherwise). onnxruntime's pre-processing runs first: without it the dense layer's MatMul and bias
Add are quantized apart (its output rounded before the bias is added) and the answers moved away
from the int8 .tflite's (99.4-99.6% agreement on val, against 100% with it). The other route,
tf2onnx reading the int8 .tflite, agreed as often but leaves the first convolution, the dense
layer and the softmax in float after onnxruntime's fusion, with int8 input and output:
reports/onnx/README.md.

Every file carries the record the .tflite carries (labels, input size, colour mode,
normalisation, quantization, calibration) as JSON in metadata_props[METADATA_KEY].
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from fer_edge.errors import FerEdgeError

OPSET = 17
METADATA_KEY = "fer_edge"         # metadata_props key of the record (the .tflite's entry name)
INPUT_NAME, OUTPUT_NAME = "image", "scores"
MODES = ("float32", "int8")
TOOLCHAIN = ("tf2onnx", "onnx", "onnxruntime")   # what the export imports (the onnx extra)


def check_toolchain() -> None:
    """One line naming the extra when tf2onnx, onnx or onnxruntime is not installed."""
    import importlib.util

    missing = [m for m in TOOLCHAIN if importlib.util.find_spec(m) is None]
    if missing:
        raise FerEdgeError(f"--target onnx needs {', '.join(missing)}: "
                           f"pip install 'fer-edge[onnx]'")


def float_model(model):
    """The Keras model as a float32 ONNX ModelProto (input IMAGE, output SCORES)."""
    import tensorflow as tf
    import tf2onnx

    from .fold import fold_batchnorm_after_relu

    spec = (tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name=INPUT_NAME),)
    proto, _ = tf2onnx.convert.from_keras(fold_batchnorm_after_relu(model),
                                          input_signature=spec, opset=OPSET)
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [OUTPUT_NAME if o == old else o for o in node.output]
    proto.graph.output[0].name = OUTPUT_NAME
    return proto


class _Faces:
    """onnxruntime's CalibrationDataReader over the calibration faces, one a batch."""

    def __init__(self, x: np.ndarray):
        self.x, self.i = x, 0

    def get_next(self):
        if self.i >= len(self.x):
            return None
        self.i += 1
        return {INPUT_NAME: self.x[self.i - 1:self.i]}


def quantize_int8(proto, calib_images: np.ndarray, pre_process: bool = True,
                  per_channel: bool = True, float_ops=()):
    """The float ModelProto quantized to int8 QDQ on `calib_images` (uint8 faces). The other
    arguments are the variants the benchmarks compare, never the export's:
    `pre_process=False` skips onnxruntime's pre-processing and `per_channel=False` gives one
    scale per weight tensor (benchmarks/onnx_routes.py); `float_ops` names op types left in
    float (benchmarks/onnx_float_ops.py)."""
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from fer_edge.edge.preprocessing import batch_to_float

    if calib_images is None or not len(calib_images):
        raise FerEdgeError("int8 needs calibration images")
    with tempfile.TemporaryDirectory() as tmp:
        plain, pre, out = (Path(tmp) / n for n in ("float.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(proto, plain)
        # shape inference and onnxruntime's basic fusions (MatMul + Add -> Gemm); the symbolic
        # pass (sympy) is not needed: every shape but the batch is fixed
        if pre_process:
            quant_pre_process(str(plain), str(pre), skip_symbolic_shape=True)
        source = pre if pre_process else plain
        quantized = None        # onnxruntime's own list of the op types it quantizes
        if float_ops:
            quantized = sorted({n.op_type for n in onnx.load(source).graph.node}
                               - set(float_ops))
        quantize_static(str(source), str(out), _Faces(batch_to_float(calib_images)),
                        quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        op_types_to_quantize=quantized)
        return onnx.load(out)


def convert(model, mode: str, calib_images: np.ndarray | None = None,
            extra: dict | None = None) -> bytes:
    """A Keras model as ONNX bytes in `mode` (float32 or int8), with the fer-edge record."""
    import onnx
    import onnxruntime

    from .tflite import base_record
    from fer_edge.edge.tflite_meta import FORMAT

    if mode not in MODES:
        raise FerEdgeError(f"--target onnx writes {' or '.join(MODES)}, not {mode}")
    proto = float_model(model)
    how = {"opset": OPSET, "input": INPUT_NAME, "output": OUTPUT_NAME, "layout": "NHWC"}
    if mode == "int8":
        proto = quantize_int8(proto, calib_images)
        how["quantization"] = (f"QDQ (onnxruntime {onnxruntime.__version__} quantize_static): "
                               "int8 weights per channel, int8 activations, min-max calibration")
    onnx.checker.check_model(proto)
    record = {"format": FORMAT, **base_record(model, mode),
              "tensors": {"input": {"dtype": "float32"}, "output": {"dtype": "float32"}},
              "onnx": how, **(extra or {})}
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(record, sort_keys=True)
    proto.doc_string = f"fer-edge facial emotion ({model.name}, {mode})"
    return proto.SerializeToString()


def onnx_paths(out_dir: Path, modes: list[str]) -> dict[str, Path]:
    """fer_float32.onnx / fer_int8.onnx in `out_dir`."""
    from fer_edge import defaults

    return {m: out_dir / Path(defaults.EXPORT_NAMES[m]).with_suffix(".onnx").name for m in modes}
