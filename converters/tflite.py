"""Keras -> TFLite: float32, float16, dynamic-range int8 and full-integer int8.

Path: `model.export()` to a SavedModel, then `TFLiteConverter.from_saved_model` (the Keras-3-safe
route). Augmentation never lives in our models, so the inference graph has no random ops. Every
file gets the fer-edge metadata record, so the edge runtime needs no side file.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager

import numpy as np

from fer_edge import __version__, defaults
from fer_edge.edge import tflite_meta
from fer_edge.errors import FerEdgeError
from fer_edge.edge.preprocessing import (COLOR_MODE, IMG_SIZE, NORMALIZATION, batch_to_float,
                                         labels_for)


def _quant_params(buf: bytes) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=buf)
    out = {}
    for key, det in (("input", it.get_input_details()[0]), ("output", it.get_output_details()[0])):
        scale, zero = det["quantization"]
        out[key] = {"dtype": np.dtype(det["dtype"]).name, "scale": float(scale),
                    "zero_point": int(zero)}
    return out


@contextmanager
def saved_model_converter(model):
    """A TFLiteConverter over `model` as fer-edge converts it: the seed CNN's Conv -> ReLU -> BN
    folded (fold.py), through a SavedModel. A quantization-aware model is converted as its plain
    twin (`fer_edge.training.qat.plain`, which the caller applies: converters know no training)."""
    import tensorflow as tf

    from .fold import fold_batchnorm_after_relu

    with tempfile.TemporaryDirectory() as tmp:
        fold_batchnorm_after_relu(model).export(tmp, format="tf_saved_model",
                                                       verbose=False)
        yield tf.lite.TFLiteConverter.from_saved_model(tmp)


def calibrate_full_integer(conv, calib_images: np.ndarray) -> None:
    """Full-integer int8 on `conv`: every op int8, activation ranges from the calibration
    images (uint8 faces)."""
    import tensorflow as tf

    if calib_images is None or not len(calib_images):
        raise FerEdgeError("int8 needs calibration images")
    x = batch_to_float(calib_images)

    def representative():
        for i in range(len(x)):
            yield [x[i:i + 1]]

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def base_record(model, mode: str) -> dict:
    """What every exported file says of itself, a .tflite and a .onnx alike (the runtime reads
    it): its labels, input size, colour mode, normalisation, quantization and architecture."""
    return {"labels": list(labels_for(model.output_shape[-1])), "input_size": [IMG_SIZE, IMG_SIZE],
            "color_mode": COLOR_MODE, "normalization": NORMALIZATION, "quantize": mode,
            "arch": model.name, "fer_edge_version": __version__}


def convert(model, mode: str, calib_images: np.ndarray | None = None, extra: dict | None = None) -> bytes:
    """Convert a Keras model to TFLite bytes (with metadata) in `mode`."""
    import tensorflow as tf

    if mode not in defaults.QUANTIZE_MODES:
        raise FerEdgeError(f"unknown quantization '{mode}' "
                           f"(known: {', '.join(defaults.QUANTIZE_MODES)}, all)")
    with saved_model_converter(model) as conv:
        if mode != "float32":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "float16":
            conv.target_spec.supported_types = [tf.float16]
        if mode == "int8":
            calibrate_full_integer(conv, calib_images)
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        buf = conv.convert()
    record = {**base_record(model, mode), "tensors": _quant_params(buf), **(extra or {})}
    from .metadata import add as add_standard_metadata

    # fer-edge's own record (what classify reads), then the standard LiteRT metadata (what
    # mobile toolchains read), which must come last: it appends labels.txt after the flatbuffer
    return add_standard_metadata(tflite_meta.write(buf, record), record)
