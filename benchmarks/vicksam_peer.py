"""vicksam/fer-model (a public Keras repository with no licence file: measured here, never copied
or committed), the best small public FER+ model we know: 0.17M parameters, ten 3x3
depthwise-separable convolutions with BatchNorm and LeakyReLU, a 1x1 convolution to the classes
and global average pooling (its models.py, `get_performance_model`), trained from scratch.

Its weights come from a snapshot or clone of the repository (`--repo`: a work tree, or a bare git
folder read with `git show`), copied into a temporary folder when a benchmark runs. Keras 3 cannot
read its Keras 2 `.h5` configs (SeparableConv2D), so `keras_model` rebuilds the network from
models.py's layout and loads the weights by topology, layer by layer in the order of the file's own
`model_config`. `tflite` wraps it so it takes what fer-edge's models take (grey levels 0..255;
the repository's pipeline rescales by 1/255) and answers in fer-edge's label order (its FER+
model answers in FER+'s column order, reordered into LABELS8 by a gather), and exports it with
fer-edge's converter (float32, or full int8 calibrated on the committed manifest's Training
faces), so `fer-edge evaluate`, the peer benchmarks and the outside sets score it as ours.

    python benchmarks/vicksam_peer.py export --repo /path/to/fer-model --data ../shared/fer2013 \
        --out /tmp/vicksam            # vicksam_ferplus_{float32,int8}.tflite, vicksam_fer2013_float32.tflite
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NAME = "vicksam/fer-model"
# the repository's weights: (file, classes, the order of its outputs)
FERPLUS_ORDER = ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt")
WEIGHTS = {"ferplus": ("model/ferplus_model_pd_best.h5", FERPLUS_ORDER),
           "fer2013": ("model/fer_model_best.h5", None)}   # None: FER2013's own order
WIDTHS = (48, 48, 48, 96, 96, 96, 192, 192, 384)
POOL_AFTER = {2, 5, 7, 8}        # the convolutions (0-based) followed by pool + spatial dropout
LEAKY_SLOPE = 0.02


def fetch(repo: str | Path, which: str, folder: Path) -> Path:
    """One weights file of the repository, copied into `folder`."""
    repo, rel = Path(repo).expanduser(), WEIGHTS[which][0]
    out = folder / Path(rel).name
    if (repo / rel).is_file():
        shutil.copy(repo / rel, out)
    else:                                       # a bare snapshot: read it from git
        blob = subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{rel}"],
                              capture_output=True, check=True).stdout
        out.write_bytes(blob)
    return out


def _h5_layers(path: Path) -> list[tuple[str, dict]]:
    """(class name, {weight name: array}) of each layer with weights, in the model's order."""
    import h5py

    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        weights = f["model_weights"]
        out = []
        for layer in config["config"]["layers"]:
            name = layer["config"]["name"]
            if name not in weights or not len(weights[name].keys()):
                continue
            group = weights[name][name]
            out.append((layer["class_name"], {k.split(":")[0]: group[k][()] for k in group}))
        return out


def keras_model(path: Path):
    """The network of models.py's get_performance_model with the .h5's weights: (N, 48, 48, 1)
    in 0..1, softmax out in the file's own class order."""
    import keras
    from keras import layers

    stored = _h5_layers(path)
    classes = stored[-1][1]["bias"].shape[0]
    inputs = keras.Input((48, 48, 1))
    x = inputs
    for i, width in enumerate(WIDTHS):
        x = layers.SeparableConv2D(width, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        if i in POOL_AFTER:
            x = layers.MaxPooling2D(2)(x)
            x = layers.SpatialDropout2D(0.1)(x)
        x = layers.LeakyReLU(negative_slope=LEAKY_SLOPE)(x)
    x = layers.SeparableConv2D(classes, 1, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Softmax()(x))
    mine = [layer for layer in model.layers if layer.weights]
    if [type(m).__name__ for m in mine] != [kind for kind, _ in stored]:
        raise ValueError(f"{path}: its layers are not get_performance_model's")
    for layer, (kind, w) in zip(mine, stored):
        names = (("depthwise_kernel", "pointwise_kernel", "bias") if kind == "SeparableConv2D"
                 else ("gamma", "beta", "moving_mean", "moving_variance"))
        layer.set_weights([w[n] for n in names])
    return model


def edge_model(path: Path, order):
    """The peer as fer-edge's models are: grey levels 0..255 in, scores in LABELS / LABELS8
    order out."""
    import keras

    from fer_edge.edge.preprocessing import LABELS8

    net = keras_model(path)
    inputs = keras.Input((48, 48, 1), name="image")
    y = net(keras.layers.Rescaling(1 / 255)(inputs))
    if order is not None:
        perm = [order.index(lab) for lab in LABELS8[:len(order)]]
        y = keras.layers.Lambda(lambda t: keras.ops.take(t, perm, axis=-1), name="reorder")(y)
    return keras.Model(inputs, y, name=f"vicksam_{Path(path).stem}")


def tflite(repo, which: str, folder: Path, mode: str = "float32", data=None) -> Path:
    """The peer's `which` model ("ferplus" or "fer2013") as a fer-edge .tflite in `folder`;
    int8 is calibrated on the committed manifest's faces of `data` (FER2013)."""
    from fer_edge.converters.tflite import convert

    model = edge_model(fetch(repo, which, folder), WEIGHTS[which][1])
    calib = None
    if mode == "int8":
        from fer_edge import data as fdata, defaults
        from fer_edge.calibration import manifest

        calib = manifest.images(manifest.load(defaults.calib_manifest()), fdata.load(data))
    out = folder / f"vicksam_{which}_{mode}.tflite"
    out.write_bytes(convert(model, mode, calib_images=calib))
    return out


def export(repo: str, out: str, data: str = None):
    """Write the peer's FER+ model (float32, and int8 with --data) and its FER2013 model
    (float32) as fer-edge .tflite files into `out` (a temporary folder: never commit them)."""
    folder = Path(out).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    paths = [tflite(repo, "ferplus", folder), tflite(repo, "fer2013", folder)]
    if data:
        paths.append(tflite(repo, "ferplus", folder, "int8", data))
    for p in paths:
        print(p)


if __name__ == "__main__":
    import fire

    fire.Fire({"export": export})
