"""Fold a BatchNormalization that follows a ReLU into the layers around it, before conversion.

TFLite folds the usual Conv -> BN -> ReLU into the convolution, but not Conv -> ReLU -> BN (the
seed CNN's order). Left in, that BN is a per-channel multiply by gamma / sqrt(var + eps) (10-32
in the seed CNN) and the converter quantizes the convolution's small output on the scale of the
multiply's large one: 8 levels where 256 were available, and the seed CNN lost 3.2 points of
top-1 in full int8 (65.87% -> 62.64% on PrivateTest).

With a = gamma / sqrt(var + eps) > 0 and c = beta - mean * a, BN(relu(z)) = relu(a * z) + c: `a`
goes into the kernel and bias of the layer before, and the shift `c` passes unchanged through
max pooling, dropout and flatten into the bias of the next convolution ('valid' padding, so no
zero-padded border sees it) or dense layer. The result computes the same function; only linear
chains (every layer with one input) are rewritten, and a model without the pattern is returned
as it is.
"""

from __future__ import annotations

import numpy as np

_SCALED = ("Conv2D", "Dense")          # layers whose output channels `a` can scale
_PASS_SHIFT = ("MaxPooling2D", "Dropout", "Flatten")   # c + x commutes with these


def kind(layer) -> str:
    return type(layer).__name__


def chain_layers(model) -> list | None:
    """The layers after the input of a model that is one linear chain (every layer takes one
    input), in order; None for any other model."""
    if not all(len(node.input_tensors) <= 1 for layer in model.layers
               for node in getattr(layer, "_inbound_nodes", [])):
        return None
    return [layer for layer in model.layers if kind(layer) != "InputLayer"]


def clone(layer):
    """A new layer of the same class and configuration, without weights (to rebuild a chain)."""
    return layer.__class__.from_config(layer.get_config())


def _relu(layer) -> bool:
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", "") == "relu"


def _plan(layers) -> dict[int, int]:
    """{index of a foldable BN: index of the layer that absorbs its shift}."""
    plan = {}
    for i, layer in enumerate(layers):
        if kind(layer) != "BatchNormalization" or i == 0:
            continue
        before = layers[i - 1]
        if kind(before) not in _SCALED or not _relu(before) or not before.use_bias:
            continue
        gamma, _, _, var = layer.get_weights()
        if np.any(gamma / np.sqrt(var + layer.epsilon) <= 0):
            continue
        j = i + 1
        while j < len(layers) and kind(layers[j]) in _PASS_SHIFT:
            j += 1
        after = layers[j] if j < len(layers) else None
        if after is not None and after.use_bias and (
                kind(after) == "Dense" or (kind(after) == "Conv2D"
                                            and after.padding == "valid")):
            plan[i] = j
    return plan


def fold_batchnorm_after_relu(model):
    """`model` with every foldable post-ReLU BatchNormalization folded away (see module doc)."""
    import keras

    layers = chain_layers(model)
    if layers is None:
        return model
    plan = _plan(layers)
    if not plan:
        return model
    weights = {i: [w.copy() for w in layer.get_weights()] for i, layer in enumerate(layers)}
    for i, j in plan.items():
        bn = layers[i]
        gamma, beta, mean, var = weights[i]
        a = gamma / np.sqrt(var + bn.epsilon)
        c = beta - mean * a
        kernel, bias = weights[i - 1]
        weights[i - 1] = [kernel * a, bias * a]           # a scales the output channels
        kernel, bias = weights[j]
        if kind(layers[j]) == "Conv2D":                   # (kh, kw, in, out): every tap sees c
            shift = np.einsum("hwio,i->o", kernel, c)
        else:                                              # after Flatten: c tiled per position
            shift = np.tile(c, kernel.shape[0] // c.size) @ kernel
        weights[j] = [kernel, bias + shift]
    x = inputs = keras.Input(model.input_shape[1:], name=model.inputs[0].name.split(":")[0])
    kept = []
    for i, layer in enumerate(layers):
        if i in plan:
            continue
        fresh = clone(layer)
        x = fresh(x)
        kept.append((fresh, weights[i]))
    folded = keras.Model(inputs, x, name=model.name)
    for fresh, w in kept:
        fresh.set_weights(w)
    return folded
