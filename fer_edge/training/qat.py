"""Quantization-aware fine-tuning (`fer-edge train --init MODEL.keras --qat`).

Full-integer export rounds every folded weight to 8 bits per output channel and every activation
to 8 bits per tensor. Measured layer by layer (`benchmarks/int8_layers.py`), every tensor of the
default model is within rounding noise of its float value (RMS 0.10-0.37 quantization steps, where
rounding alone gives 0.29): no layer is broken, the models are sensitive to 8 bits of noise, and
it costs them 0.2-0.7 points of top-1. Fine-tuning with the rounding in the forward pass teaches
the weights to tolerate it.

`wrap` turns a trained Conv-BN-ReLU chain (the edge architectures) into the same network as
TFLite will run it: each BatchNormalization folded into its convolution with its moving
statistics frozen (as the converter folds it), the folded kernel fake-quantized per output channel
(symmetric, [-127, 127]), and every activation fake-quantized per tensor on the range the int8
calibration would give it, measured on the calibration images (`calibrate`, again every epoch).
Gradients pass straight through the rounding. The wrapped model trains, saves and evaluates like
any Keras model (its `evaluate` is then the int8 simulation); `to_plain` rebuilds the ordinary
float network (convolutions with bias, no BatchNormalization) that `export` converts, and the
converter's own calibration lands on the ranges trained here.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..converters.fold import chain_layers, clone, kind as _kind
from ..errors import FerEdgeError

_PACKAGE = "fer_edge_qat"
_PASS = ("MaxPooling2D", "Dropout", "SpatialDropout2D", "Rescaling")   # copied as they are
# Activations whose int8 output is rounded on its own range. ReLU is fused into the convolution
# before it (one rounding); LeakyReLU is an op of its own in TFLite, so the convolution's output
# is rounded first, then the activation's.
_ROUNDED_AFTER = ("ReLU", "LeakyReLU", "GlobalAveragePooling2D")


def _fake_quant_per_channel(w):
    """Symmetric int8 per output channel (the last axis), as TFLite stores weights."""
    axes = list(range(len(w.shape) - 1))
    m = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(w), axis=axes), 1e-8))
    return tf.quantization.fake_quant_with_min_max_vars_per_channel(w, -m, m, num_bits=8,
                                                                     narrow_range=True)


@keras.saving.register_keras_serializable(_PACKAGE)
class FakeQuant(keras.layers.Layer):
    """Per-tensor int8 rounding of an activation on a fixed range [lo, hi] (set by `calibrate`)."""

    def build(self, input_shape):
        self.lo = self.add_weight(name="lo", shape=(), initializer="zeros", trainable=False)
        self.hi = self.add_weight(name="hi", shape=(), initializer="ones", trainable=False)

    def call(self, x):
        return tf.quantization.fake_quant_with_min_max_vars(x, self.lo, self.hi, num_bits=8)


@keras.saving.register_keras_serializable(_PACKAGE)
class QConv(keras.layers.Layer):
    """Conv2D (no bias) + BatchNormalization folded as the converter folds them, the folded kernel
    fake-quantized. gamma and beta train; the moving statistics stay frozen."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="same", epsilon=1e-3,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size = int(filters), tuple(kernel_size)
        self.strides, self.padding, self.epsilon = tuple(strides), padding, float(epsilon)

    def build(self, input_shape):
        shape = (*self.kernel_size, int(input_shape[-1]), self.filters)
        self.kernel = self.add_weight(name="kernel", shape=shape)
        self.gamma = self.add_weight(name="gamma", shape=(self.filters,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(self.filters,), initializer="zeros")
        self.mean = self.add_weight(name="moving_mean", shape=(self.filters,),
                                    initializer="zeros", trainable=False)
        self.var = self.add_weight(name="moving_variance", shape=(self.filters,),
                                   initializer="ones", trainable=False)

    def folded(self):
        """(kernel, bias) of the convolution with the BatchNormalization folded in."""
        a = self.gamma * tf.math.rsqrt(self.var + self.epsilon)
        return self.kernel * a, self.beta - self.mean * a

    def call(self, x):
        kernel, bias = self.folded()
        y = tf.nn.conv2d(x, _fake_quant_per_channel(kernel), strides=self.strides,
                         padding=self.padding.upper())
        return y + bias

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(_PACKAGE)
class QConvBias(keras.layers.Layer):
    """Conv2D with a bias and no BatchNormalization (a 1x1 convolution to the classes), its
    kernel fake-quantized per output channel."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size = int(filters), tuple(kernel_size)
        self.strides, self.padding = tuple(strides), padding

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.kernel_size, int(input_shape[-1]), self.filters))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def folded(self):
        return self.kernel, self.bias

    def call(self, x):
        y = tf.nn.conv2d(x, _fake_quant_per_channel(self.kernel), strides=self.strides,
                         padding=self.padding.upper())
        return y + self.bias

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding}


@keras.saving.register_keras_serializable(_PACKAGE)
class QDense(keras.layers.Layer):
    """Dense with its kernel fake-quantized per output unit; logits out (softmax follows)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(int(input_shape[-1]), self.units))
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, x):
        return tf.matmul(x, _fake_quant_per_channel(self.kernel)) + self.bias

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def is_qat(model) -> bool:
    return any(isinstance(layer, FakeQuant) for layer in model.layers)


def plain(model):
    """`model` as `export` converts it: a quantization-aware model's plain float twin (the
    network whose int8 it trained for), any other model as it is."""
    return to_plain(model) if is_qat(model) else model


def _chain(model) -> list:
    """The model's layers after its input, checked to be one linear chain."""
    layers = chain_layers(model)
    if layers is None:
        raise FerEdgeError(f"--qat needs a model that is one chain of layers; "
                           f"'{model.name}' branches")
    return layers


def _softmax_dense(layer) -> bool:
    return _kind(layer) == "Dense" and getattr(layer.activation, "__name__", "") == "softmax"


def _linear(layer) -> bool:
    return getattr(layer.activation, "__name__", "") == "linear"


def wrap(model):
    """The quantization-aware twin of a trained Conv-BN-(Leaky)ReLU chain (module doc), with
    its weights; activation ranges still to be set by `calibrate`. Two heads: a softmax Dense
    (the edge architectures) or a 1x1 convolution to the classes, global average pooling and a
    Softmax layer (conv_ferplus and its kin)."""
    layers = _chain(model)
    x = inputs = keras.Input(model.input_shape[1:], name="image")
    weights, i = [], 0
    while i < len(layers):
        layer, nxt = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        kind = _kind(layer)
        if kind == "Conv2D" and not layer.use_bias and _kind(nxt) == "BatchNormalization" \
                and _linear(layer):
            q = QConv(layer.filters, layer.kernel_size, layer.strides, layer.padding,
                      nxt.epsilon, name=f"q_{layer.name}")
            x = q(x)
            weights.append((q, [layer.get_weights()[0], *nxt.get_weights()]))
            i += 2
            if i < len(layers) and _kind(layers[i]) == "LeakyReLU":   # not fused: rounded here
                x = FakeQuant(name=f"fq_{layer.name}")(x)
            continue
        if kind == "Conv2D" and layer.use_bias and _linear(layer):
            q = QConvBias(layer.filters, layer.kernel_size, layer.strides, layer.padding,
                          name=f"q_{layer.name}")
            x = FakeQuant(name=f"fq_{layer.name}")(q(x))
            weights.append((q, layer.get_weights()))
        elif kind in _ROUNDED_AFTER:
            x = FakeQuant(name=f"fq_{layer.name}")(clone(layer)(x))
        elif kind in _PASS:
            x = clone(layer)(x)
        elif _softmax_dense(layer) and nxt is None:
            q = QDense(layer.units, name=f"q_{layer.name}")
            x = FakeQuant(name="fq_logits")(q(x))
            weights.append((q, layer.get_weights()))
            x = keras.layers.Softmax(name="softmax")(x)
        elif kind == "Softmax" and nxt is None:    # its int8 output is fixed: steps of 1/256
            x = keras.layers.Softmax(name="softmax")(x)
        else:
            raise FerEdgeError(f"--qat handles Conv-BatchNorm-(Leaky)ReLU chains ending in a "
                               f"softmax Dense or a 1x1 convolution, pooling and softmax; "
                               f"'{model.name}' has {kind} '{layer.name}' here")
        i += 1
    qat = keras.Model(inputs, x, name=model.name)
    for q, w in weights:
        q.set_weights(w)
    return qat


def calibrate(qat, faces: np.ndarray, batch_size: int = 256) -> None:
    """Set every FakeQuant range to the min/max of its input over `faces` (float inputs: the
    calibration images). The converter measures the float graph on the same images; these
    ranges differ from its only by the rounding upstream."""
    fqs = [layer for layer in qat.layers if isinstance(layer, FakeQuant)]
    # One range at a time, in graph order: each is measured through the rounding of the ranges
    # set before it (a single pass over all of them would see the stale upstream ranges).
    for fq in fqs:
        probe = keras.Model(qat.input, fq.input)
        lo, hi = np.inf, -np.inf
        for start in range(0, len(faces), batch_size):
            y = np.asarray(probe(faces[start:start + batch_size], training=False))
            lo, hi = min(lo, float(y.min())), max(hi, float(y.max()))
        fq.set_weights([np.float32(min(lo, 0.0)), np.float32(max(hi, lo + 1e-6, 0.0))])


def from_int8(path, arch: str):
    """The quantization-aware `arch` model holding the weights of a full-integer fer-edge
    .tflite (`--init model_int8.tflite --qat`): each int8 kernel times its per-channel scale,
    each int32 bias times its input and kernel scales, with BatchNorm as the identity (the file's
    convolutions have it folded in already). So a shipped int8 model whose float model is not at
    hand can still be fine-tuned, starting from exactly what it computes."""
    from pathlib import Path

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from . import archs
    from ..edge import tflite_meta
    from ..edge.preprocessing import NORMALIZATION

    buf = Path(path).read_bytes()
    record = tflite_meta.read(buf) or {}
    if record.get("quantize") != "int8":
        raise FerEdgeError(f"--init {path}: not a full-integer int8 fer-edge model (its "
                           f"record says quantize={record.get('quantize')})")
    if record.get("arch") != arch:
        raise FerEdgeError(f"--init {path}: a '{record.get('arch')}' model, not '{arch}'")
    it = Interpreter(model_content=buf,   # the plain graph: a delegate would hide its ops
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    tensors = {d["index"]: d for d in it.get_tensor_details()}
    graph_input = it.get_input_details()[0]["index"]
    weighted = [op for op in it._get_ops_details()   # (LiteRT's only listing of a graph's ops)
                if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED")]
    model = wrap(archs.build(arch))
    layers = [layer for layer in model.layers if isinstance(layer, (QConv, QConvBias, QDense))]
    if len(weighted) != len(layers):
        raise FerEdgeError(f"--init {path}: {len(weighted)} convolution/dense ops where "
                           f"'{arch}' has {len(layers)} layers")
    for op, layer in zip(weighted, layers):
        x, w, b = op["inputs"][:3]
        q = it.get_tensor(w).astype(np.float32)
        kernel_scales = tensors[w]["quantization_parameters"]["scales"].astype(np.float32)
        kernel = q * kernel_scales.reshape((-1,) + (1,) * (q.ndim - 1))   # output axis first
        # the converter drops an all-zero bias (index -1)
        bias = (it.get_tensor(b) * kernel_scales * tensors[x]["quantization_parameters"][
            "scales"][0]) if b >= 0 else np.zeros(len(kernel_scales), np.float32)
        if isinstance(layer, QDense):
            layer.set_weights([kernel.T, bias])
            continue
        kernel = kernel.transpose(1, 2, 3, 0)   # TFLite's (out, h, w, in) -> Keras' (h, w, in, out)
        if isinstance(layer, QConvBias):
            layer.set_weights([kernel, bias])
            continue
        if x == graph_input:   # the converter folded the input Rescaling into this kernel
            kernel = kernel / NORMALIZATION["in_model_scale"]
        n = layer.filters
        layer.set_weights([kernel, np.ones(n), bias, np.zeros(n), np.full(n, 1 - layer.epsilon)])
    return model


class Recalibrate(keras.callbacks.Callback):
    """Re-measure the activation ranges at the start of every epoch: the weights move them."""

    def __init__(self, faces: np.ndarray):
        super().__init__()
        self.faces = faces

    def on_epoch_begin(self, epoch, logs=None):
        calibrate(self.model, self.faces)


def to_plain(qat):
    """The ordinary float network a quantization-aware model stands for: folded convolutions
    with bias, (Leaky)ReLU, pooling, a softmax Dense or Softmax layer (what `export`
    converts)."""
    x = inputs = keras.Input(qat.input_shape[1:], name="image")
    weights = []
    # a softmax Dense takes the Softmax back in; a convolution head keeps its Softmax layer
    head_softmax = not any(isinstance(layer, QDense) for layer in qat.layers)
    for layer in _chain(qat):
        if isinstance(layer, FakeQuant) or (_kind(layer) == "Softmax" and not head_softmax):
            continue
        if isinstance(layer, (QConv, QConvBias)):
            conv = keras.layers.Conv2D(layer.filters, layer.kernel_size, strides=layer.strides,
                                       padding=layer.padding, name=layer.name[2:])
            x = conv(x)
            weights.append((conv, [np.asarray(w) for w in layer.folded()]))
        elif isinstance(layer, QDense):
            dense = keras.layers.Dense(layer.units, activation="softmax", name=layer.name[2:])
            x = dense(x)
            weights.append((dense, layer.get_weights()))
        else:
            x = clone(layer)(x)
    plain = keras.Model(inputs, x, name=qat.name)
    for layer, w in weights:
        layer.set_weights(w)
    return plain
