"""Run a fer-edge `.tflite` on the LiteRT interpreter (ai-edge-litert): no TensorFlow.

`EmotionModel` reads the model's embedded record (labels, input, quantization), checks that the
model is a 48x48x1 emotion model with as many outputs as labels (FER2013's 7, FER+'s 8, or a
foreign set given with --labels), and classifies uint8 face crops in batches, doing the
int8 (de)quantization itself. `OnnxModel` does the same for a fer-edge `.onnx` on onnxruntime
(`pip install 'fer-edge[onnx]'`), its int8 QDQ run by onnxruntime; `open_model` picks one by the
file's suffix, for classify, the Classifier API, serve, batch and evaluate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import tflite_meta
from ..errors import FerEdgeError
from .preprocessing import INPUT_SHAPE, LABELS, LABELS8, batch_to_float


def _load_bytes(path: Path) -> bytes:
    if not path.exists():
        raise FerEdgeError(f"model not found: {path}")
    if path.is_dir():
        raise FerEdgeError(f"{path} is a folder, not a .tflite model")
    if path.suffix in (".keras", ".h5"):
        raise FerEdgeError(f"{path} is a Keras model; classify takes a .tflite or .onnx: run "
                           f"`fer-edge export --model {path} --quantize int8` first")
    buf = path.read_bytes()
    if not tflite_meta.is_tflite(buf):
        raise FerEdgeError(f"{path} is not a TFLite model")
    return buf


def open_model(path, threads: int | None = 1, labels=None):
    """The emotion model in `path`: an OnnxModel for a .onnx, else an EmotionModel (LiteRT). The
    one place a model file's kind is chosen."""
    if Path(path).suffix.lower() == ".onnx":
        return OnnxModel(path, threads=threads, labels=labels)
    return EmotionModel(path, threads=threads, labels=labels)


class _Labelled:
    """What both runtimes share: the labels (the record's, or --labels) and their order."""

    def _labels(self, labels) -> None:
        if self.meta is None and labels is None:
            raise FerEdgeError(f"{self.path} carries no fer-edge metadata (not exported by "
                               f"fer-edge); pass --labels with its 7 class names in output order "
                               f"to use it anyway")
        self.labels = list(labels or self.meta["labels"])

    def canonical_scores(self, scores: np.ndarray) -> np.ndarray:
        """Scores re-ordered into fer-edge's label order, LABELS, then contempt when the model
        has it (LABELS8), for foreign label orders."""
        if self.labels in (list(LABELS), list(LABELS8)):
            return scores
        from .preprocessing import canonical_label

        names = [canonical_label(lab) or lab.strip().lower() for lab in self.labels]
        wanted = LABELS8 if "contempt" in names else LABELS
        return scores[:, [names.index(lab) for lab in wanted]]


# LiteRT's kernel sets by name: its default (the XNNPack delegate, what classify runs), its
# builtin kernels without a delegate, and its reference kernels (whose arithmetic TFLite Micro
# and Vela's Ethos-U ports follow); benchmarks/int8_kernels.py compares their answers
KERNELS = {"xnnpack": None, "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "reference": "BUILTIN_REF"}


class EmotionModel(_Labelled):
    def __init__(self, path, threads: int | None = 1, labels=None, kernels: str = "xnnpack"):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.path = Path(path)
        buf = _load_bytes(self.path)
        try:
            self.meta = tflite_meta.read(buf)
        except Exception:
            raise FerEdgeError(f"{self.path} is not a readable TFLite model") from None
        self._labels(labels)
        if kernels not in KERNELS:
            raise FerEdgeError(f"unknown kernels {kernels!r}: one of {', '.join(KERNELS)}")
        resolver = {} if KERNELS[kernels] is None else {
            "experimental_op_resolver_type": getattr(OpResolverType, KERNELS[kernels])}
        try:
            self.interpreter = Interpreter(model_content=buf, num_threads=threads, **resolver)
        except Exception as e:
            raise FerEdgeError(f"{self.path}: LiteRT cannot load it ({str(e).splitlines()[0]})") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        shape = tuple(int(s) for s in self.input["shape"][1:])
        if shape != INPUT_SHAPE:
            raise FerEdgeError(f"{self.path}: input shape is {tuple(int(s) for s in self.input['shape'])}, "
                               f"an emotion model here takes (N, 48, 48, 1)")
        n_out = int(self.output["shape"][-1])
        if n_out != len(self.labels):
            raise FerEdgeError(f"{self.path}: {n_out} outputs but {len(self.labels)} labels")
        self.kind = (self.meta or {}).get("quantize", "tflite")
        self._batch = None
        self.interpreter.allocate_tensors()

    def _resize(self, n: int) -> None:
        if self._batch != n:
            self.interpreter.resize_tensor_input(self.input["index"], [n, *INPUT_SHAPE])
            self.interpreter.allocate_tensors()
            self._batch = n

    def quantize(self, x: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if dtype == np.float32:
            return x
        scale, zero = self.input["quantization"]
        q = np.round(x / scale + zero)
        info = np.iinfo(dtype)
        return np.clip(q, info.min, info.max).astype(dtype)

    def dequantize(self, y: np.ndarray) -> np.ndarray:
        if self.output["dtype"] == np.float32:
            return y
        scale, zero = self.output["quantization"]
        return (y.astype(np.float32) - zero) * scale

    def predict(self, faces_u8: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Scores (N, labels) in the model's label order for uint8 (N, 48, 48) faces."""
        faces_u8 = np.asarray(faces_u8)
        out = np.zeros((len(faces_u8), len(self.labels)), np.float32)
        for i in range(0, len(faces_u8), batch_size):
            chunk = batch_to_float(faces_u8[i:i + batch_size])
            self._resize(len(chunk))
            self.interpreter.set_tensor(self.input["index"], self.quantize(chunk))
            self.interpreter.invoke()
            out[i:i + len(chunk)] = self.dequantize(
                self.interpreter.get_tensor(self.output["index"]))
        return out


ONNX_KEY = "fer_edge"     # the record's metadata_props key (converters/onnx_export.py writes it)


def onnxruntime():
    """onnxruntime (the onnx extra), or one line saying how to install it."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise FerEdgeError("a .onnx model needs onnxruntime: pip install 'fer-edge[onnx]'") \
            from None
    return ort


class OnnxModel(_Labelled):
    """A fer-edge .onnx on onnxruntime's CPU provider, with EmotionModel's interface: labels from
    the record in metadata_props, predict(faces_u8) -> scores. An int8 model is QDQ inside (float
    input and output): onnxruntime runs its int8 kernels, nothing is quantized here. `threads`
    is onnxruntime's intra-op thread count (None: its default, every core)."""

    def __init__(self, path, threads: int | None = 1, labels=None):
        ort = onnxruntime()
        self.path = Path(path)
        if not self.path.exists():
            raise FerEdgeError(f"model not found: {self.path}")
        if self.path.is_dir():
            raise FerEdgeError(f"{self.path} is a folder, not a .onnx model")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3                 # errors only (no optimiser warnings)
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:
            raise FerEdgeError(f"{self.path}: onnxruntime cannot load it "
                               f"({(str(e).splitlines() or ['not an ONNX model'])[0]})") from None
        props = self.session.get_modelmeta().custom_metadata_map
        try:
            self.meta = json.loads(props[ONNX_KEY]) if ONNX_KEY in props else None
        except ValueError:
            raise FerEdgeError(f"{self.path}: its fer-edge record is not JSON") from None
        self._labels(labels)
        self.input, self.output = self.session.get_inputs()[0], self.session.get_outputs()[0]
        shape = tuple(self.input.shape[1:])
        if shape != INPUT_SHAPE or self.input.type != "tensor(float)":
            raise FerEdgeError(f"{self.path}: input is {self.input.type} {tuple(self.input.shape)}"
                               f", an emotion model here takes float (N, 48, 48, 1)")
        n_out = self.output.shape[-1]
        if n_out != len(self.labels):
            raise FerEdgeError(f"{self.path}: {n_out} outputs but {len(self.labels)} labels")
        self.kind = "onnx-" + (self.meta or {}).get("quantize", "model")

    def predict(self, faces_u8: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Scores (N, labels) in the model's label order for uint8 (N, 48, 48) faces."""
        faces_u8 = np.asarray(faces_u8)
        out = np.zeros((len(faces_u8), len(self.labels)), np.float32)
        for i in range(0, len(faces_u8), batch_size):
            chunk = batch_to_float(faces_u8[i:i + batch_size])
            out[i:i + len(chunk)] = self.session.run([self.output.name],
                                                     {self.input.name: chunk})[0]
        return out
