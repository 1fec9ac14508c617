"""One registry of model architectures (timm-style): name -> builder, plus its training recipe.

Every builder takes the 48x48x1 input tensor (already rescaled to 0..1) and the number of classes
(7: FER2013's labels; 8: FER+'s emotions, `edge.preprocessing.labels_for`) and returns the
softmax output. `build()` adds the shared input layer and the in-model rescaling, so every
architecture sees inputs from `edge/preprocessing.py` the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..errors import FerEdgeError
from ..edge.preprocessing import INPUT_SHAPE, NORMALIZATION, NUM_CLASSES


@dataclass(frozen=True)
class Arch:
    name: str
    builder: Callable
    description: str
    recipe: dict = field(default_factory=dict)  # training defaults that differ from the base


_REGISTRY: dict[str, Arch] = {}


def register(name: str, description: str, **recipe):
    """Register an architecture with its training recipe, checked against train's option table
    here (a misspelt or out-of-range recipe option fails at import, never silently keeping the
    base default)."""
    check_recipe(name, recipe)

    def deco(fn):
        _REGISTRY[name] = Arch(name, fn, description, recipe)
        return fn
    return deco


def check_recipe(name: str, recipe: dict) -> None:
    from .. import options

    unknown = sorted(set(recipe) - set(options.TRAIN_BASE) - {"arch"})
    if unknown:
        raise FerEdgeError(f"architecture '{name}': {', '.join(unknown)} is not a training "
                           f"option (fer-edge train --help)")
    try:
        options.check("train", recipe, partial=True)
    except FerEdgeError as e:
        raise FerEdgeError(f"architecture '{name}': its recipe's {e}") from None


def get(name: str) -> Arch:
    if name not in _REGISTRY:
        raise FerEdgeError(f"unknown architecture '{name}' (known: {', '.join(_REGISTRY)})")
    return _REGISTRY[name]


def names() -> list[str]:
    return list(_REGISTRY)


def build(name: str, classes: int = NUM_CLASSES):
    """The Keras model for `name`: float32 grey levels 0..255 in, `classes` softmax scores
    out."""
    return _model(get(name).builder, name, classes)


def build_edge_fast_widths(widths: tuple[int, ...]):
    """edge_fast's layout at other channel counts, built as `build` builds a registered model:
    for probing a width's cost (benchmarks/arch_speed.py) before registering it."""
    return _model(lambda x, classes: _edge_fast_layout(x, widths, classes),
                  "edge_fast_" + "-".join(str(w) for w in widths), NUM_CLASSES)


def _model(builder: Callable, name: str, classes: int):
    import keras

    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = keras.layers.Rescaling(NORMALIZATION["in_model_scale"], name="rescale")(inputs)
    return keras.Model(inputs, builder(x, classes), name=name)


# ---------------------------------------------------------------- the seed CNN

@register("seed", "The reference CNN of the Keras FER2013 tutorial this project started from, "
          "kept exact.",
          epochs=60, batch_size=64, learning_rate=1e-4, decay=1e-6, schedule="decay",
          augment="seed", label_smoothing=0.0, class_weight="none", erasing=0.0)
def seed(x, classes):
    from keras import layers, regularizers

    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Conv2D(128, 3, activation="relu", kernel_regularizer=regularizers.l2(0.01))(x)
    x = layers.Conv2D(256, 3, activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(1024, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    return layers.Dense(classes, activation="softmax")(x)


# ---------------------------------------------------------------- edge architectures

def _cbr(x, filters, kernel=3, strides=1, name=None):
    """Conv -> BN -> ReLU, bias-free so BN folds into the conv at export."""
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=name)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def _head(x, dropout, classes):
    from keras import layers

    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    return layers.Dense(classes, activation="softmax")(x)


def _vgg(x, widths, convs_per_stage, dropout, classes):
    from keras import layers

    for i, (w, n) in enumerate(zip(widths, convs_per_stage)):
        for _ in range(n):
            x = _cbr(x, w)
        if i < len(widths) - 1:
            x = layers.MaxPooling2D(2)(x)
    return _head(x, dropout, classes)


_EDGE_RECIPE = dict(epochs=40, batch_size=64, learning_rate=2e-3, schedule="cosine",
                    warmup_epochs=2, weight_decay=0.02, augment="edge", erasing=0.25,
                    label_smoothing=0.1, class_weight="sqrt")


@register("edge_vgg", "Compact VGG-style CNN for int8 edge use: Conv-BN-ReLU stages "
          "32-48-96-192 at 48/24/12/6 px, global average pooling.",
          **_EDGE_RECIPE)
def edge_vgg(x, classes):
    return _vgg(x, widths=(32, 48, 96, 192), convs_per_stage=(1, 2, 2, 1), dropout=0.3,
                classes=classes)


@register("edge_vgg_s", "Smaller, faster edge CNN: stages 24-48-96-128.",
          **_EDGE_RECIPE)
def edge_vgg_s(x, classes):
    return _vgg(x, widths=(24, 48, 96, 128), convs_per_stage=(1, 2, 2, 1), dropout=0.2,
                classes=classes)


@register("edge_fast", "Edge CNN for int8 on one core: a 16-channel stem at 48 px (the "
          "full-size map dominates latency), one conv at 24 px, two at 12 px, a wide 256 at 6 px, "
          "global average pooling.",
          **{**_EDGE_RECIPE, "epochs": 70})
def edge_fast(x, classes):
    return _edge_fast_layout(x, (16, 48, 96, 256), classes)


def _edge_fast_layout(x, widths, classes):
    """One conv at 48, 24 and 6 px, two at 12 px: edge_fast and its narrower variants."""
    return _vgg(x, widths=widths, convs_per_stage=(1, 1, 2, 1), dropout=0.3, classes=classes)


@register("tiny", "A very small CNN for tests and smoke runs (seconds an epoch).",
          epochs=5, batch_size=32, learning_rate=3e-3, schedule="cosine", warmup_epochs=0,
          augment="none", erasing=0.0, label_smoothing=0.0, class_weight="none")
def tiny(x, classes):
    return _vgg(x, widths=(8, 16), convs_per_stage=(1, 1), dropout=0.0,
                classes=classes)


# ---------------------------------------------------------------- distillation teachers

@register("teacher_vgg", "Wider VGG-style CNN used as a distillation teacher, not for the edge: "
          "stages 32-64-128-256 with two convs from 24 px down.",
          **{**_EDGE_RECIPE, "epochs": 40, "weight_decay": 0.05})
def teacher_vgg(x, classes):
    return _vgg(x, widths=(32, 64, 128, 256), convs_per_stage=(1, 2, 2, 2), dropout=0.4,
                classes=classes)


_TEACHER_RECIPE = {**_EDGE_RECIPE, "epochs": 60, "batch_size": 128, "weight_decay": 0.05,
                   "label_smoothing": 0.0, "class_weight": "none"}


@register("teacher_vgg_xl", "Large VGG-style teacher for accelerator machines: two 3x3 convs at "
          "each of 48/24/12/6 px, 64-128-256-512 channels.",
          **_TEACHER_RECIPE)
def teacher_vgg_xl(x, classes):
    return _vgg(x, widths=(64, 128, 256, 512), convs_per_stage=(2, 2, 2, 2), dropout=0.5,
                classes=classes)


def _basic_block(x, filters, strides):
    from keras import layers

    shortcut = x
    y = _cbr(x, filters, strides=strides)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                      kernel_initializer="he_normal")(y)
    y = layers.BatchNormalization()(y)
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.ReLU()(layers.Add()([y, shortcut]))


@register("teacher_resnet", "ResNet-18-style teacher for accelerator machines: a 3x3 stem at "
          "48 px, two basic blocks at each of 48/24/12/6 px, 64-128-256-512 channels.",
          **_TEACHER_RECIPE)
def teacher_resnet(x, classes):
    x = _cbr(x, 64)
    for i, w in enumerate((64, 128, 256, 512)):
        x = _basic_block(x, w, 1 if i == 0 else 2)
        x = _basic_block(x, w, 1)
    return _head(x, 0.3, classes)


@register("edge_fast_s", "An earlier fast-model candidate: edge_fast at about half its MACs, "
          "stages 16-32-64-192.",
          **{**_EDGE_RECIPE, "epochs": 70})
def edge_fast_s(x, classes):
    return _edge_fast_layout(x, (16, 32, 64, 192), classes)


# Per-face int8 time is not proportional to MACs: with LiteRT on one core, edge_fast_s (half the
# MACs) and this model (only the 12-px stage narrowed, 96 -> 64) took about the same time, 0.80x
# and 0.82x edge_fast's, while 72 or 80 channels there cost as much as 96 (reports/fast_model/).
@register("edge_fast_slim", "The fast model: edge_fast with its two 12-px convolutions at 64 "
          "channels instead of 96, where LiteRT's int8 time steps down (benchmarks/arch_speed.py); "
          "slimmed from a trained edge_fast (--init).",
          **{**_EDGE_RECIPE, "epochs": 70})
def edge_fast_slim(x, classes):
    return _edge_fast_layout(x, (16, 48, 64, 256), classes)


# On CPUs whose int8 kernels lack VNNI (AVX2 only), edge_fast_slim's 16-channel stem at 48 px
# costs ~15% of its int8 time and 8 channels save it, where 12 cost more than 16
# (reports/fast_model/arch_speed_avx2.json). Slimmed from the fast model's float run and
# distilled, it lost 0.8 points of val: measured, not shipped (reports/fast_model/).
@register("edge_fast_slim8", "A fast-model candidate for AVX2-only CPUs: edge_fast_slim with an "
          "8-channel stem at 48 px, faster there (reports/fast_model/arch_speed_avx2.json); "
          "slimmed from a trained edge_fast_slim (--init).",
          **{**_EDGE_RECIPE, "epochs": 70})
def edge_fast_slim8(x, classes):
    return _edge_fast_layout(x, (8, 48, 64, 256), classes)


# ---------------------------------------------------------------- FER+ architectures

def _sep_block(x, filters, slope, l2, separable=True):
    """3x3 convolution (depthwise-separable, or full) -> BatchNorm -> LeakyReLU (ReLU when
    `slope` is None). L2 on the kernels, and a bias-free convolution (BN's shift replaces it
    and folds at export)."""
    from keras import layers, regularizers

    reg = regularizers.l2(l2) if l2 else None
    if separable:
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                   depthwise_regularizer=reg, pointwise_regularizer=reg)(x)
    else:
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_regularizer=reg,
                          kernel_initializer="he_normal")(x)
    x = layers.BatchNormalization()(x)
    if slope is None:
        return layers.ReLU()(x)
    return layers.LeakyReLU(negative_slope=slope)(x)


def _stages(x, stages, classes, slope=0.02, l2=1e-2, dropout=0.1, separable_from=1):
    """Stages of (width, convolutions) at 48, 24, 12 and 6 px, each but the last ending in a 2x2
    max-pool and 2D spatial dropout; then a 1x1 convolution to the classes and global average
    pooling (no dense layer: fewer weights, and class maps that int8 keeps well). Convolutions
    from the `separable_from`-th on are depthwise-separable; the first ones are full (a
    separable 3x3 of one grey channel is a rank-one filter)."""
    from keras import layers

    k = 0
    for i, (width, n) in enumerate(stages):
        for _ in range(n):
            x = _sep_block(x, width, slope, l2, separable=k >= separable_from)
            k += 1
        if i < len(stages) - 1:
            x = layers.MaxPooling2D(2)(x)
            x = layers.SpatialDropout2D(dropout)(x)
    x = layers.Conv2D(classes, 1, name="classes")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return layers.Softmax()(x)


# The long recipe of small FER+ models trained from scratch: Barsoum et al.'s vote
# distributions over 8 emotions, batch 128, strong augmentation (the small public model's facts,
# reports/ferplus8/), a warm-up + cosine over 120 epochs (its plateau schedule ran 222; no early
# stop: the low-lr end is where a cosine gains). Its Adam at 5e-3 with L2 1e-2 in every full
# convolution collapsed here (conv_ferplus predicted one class for 18 epochs: the L2 term, 5x the
# cross-entropy at the start, drove the kernels to zero under BatchNorm), so the full
# convolutions train with our edge recipe's AdamW (decoupled decay) at 2e-3 instead.
_FERPLUS_RECIPE = dict(epochs=120, batch_size=128, learning_rate=2e-3, schedule="cosine",
                       warmup_epochs=3, early_stopping_patience=0, augment="strong",
                       erasing=0.0, label_smoothing=0.0, class_weight="none",
                       target="ferplus8", weight_decay=0.02, decay=0.0)


@register("sep_ferplus", "Depthwise-separable CNN for FER+'s 8 emotions: Conv-BN-LeakyReLU "
          "widths 48x3 at 48 px, 96x3 at 24, 192x2 at 12, 384 at 6, spatial dropout, a 1x1 "
          "convolution to the classes and global average pooling; the layout of the small "
          "public FER+ models, trained by fer-edge's long recipe.",
          **{**_FERPLUS_RECIPE, "learning_rate": 5e-3, "weight_decay": 0.0})
def sep_ferplus(x, classes):
    return _stages(x, ((48, 3), (96, 3), (192, 2), (384, 1)), classes)


_CONV_FERPLUS_STAGES = ((24, 2), (48, 2), (96, 2), (192, 1))   # (width, convolutions) a stage


@register("conv_ferplus", "Full-convolution CNN for FER+'s 8 emotions at fewer channels: "
          "Conv-BN-LeakyReLU widths 24x2 at 48 px, 48x2 at 24, 96x2 at 12, 192 at 6, spatial "
          "dropout, a 1x1 convolution to the classes, global average pooling.",
          **_FERPLUS_RECIPE)
def conv_ferplus(x, classes):
    return _stages(x, _CONV_FERPLUS_STAGES, classes, l2=0.0, separable_from=99)


# The same network with ReLU: TFLite fuses a ReLU into the convolution before it, where a
# LeakyReLU is an op of its own whose int8 arithmetic each runtime does its own way. With
# LeakyReLU the int8 file's answers differ by 0.6-2% of faces between LiteRT's XNNPack, builtin
# and reference kernels and onnxruntime; with ReLU fused, builtin and reference are identical and
# onnxruntime agrees with XNNPack on 99.9% (benchmarks/int8_kernels.py, reports/onnx/README.md).
# It starts from a trained conv_ferplus (--init: same weights).
@register("conv_ferplus_relu", "conv_ferplus with ReLU in place of LeakyReLU, fused into each "
          "convolution at export: one int8 rounding a layer, so that int8 runtimes agree on its "
          "answers (onnxruntime with LiteRT on 99.9% of faces).", **_FERPLUS_RECIPE)
def conv_ferplus_relu(x, classes):
    return _stages(x, _CONV_FERPLUS_STAGES, classes, slope=None, l2=0.0, separable_from=99)


# The FER2013-label model (issue 32's 70%): conv_ferplus's network and long recipe on FER2013's
# own one-annotator labels. Label smoothing 0.1 because those labels are noisy: FER+'s crowd
# disagrees with about a third of them (our FER+ default scores 61% on them).
@register("conv_fer2013", "conv_ferplus's network on FER2013's 7 labels: the same long recipe "
          "(strong augmentation, warm-up + cosine over 120 epochs), one-hot targets with label "
          "smoothing 0.1.", **{**_FERPLUS_RECIPE, "target": "fer2013", "label_smoothing": 0.1})
def conv_fer2013(x, classes):
    return conv_ferplus(x, classes)
