"""Keras's backend as the engine sees it: which one runs (KERAS_BACKEND), the options only
TensorFlow can honour (refused elsewhere in one line, before anything is written), the
tf.distribute strategy on TensorFlow, and what a run records of where it ran."""

from __future__ import annotations

import platform
import sys

import numpy as np

from .. import __version__
from ..errors import FerEdgeError


def backend() -> str:
    """Keras's backend in this process (KERAS_BACKEND): tensorflow, jax or torch."""
    import keras

    return keras.backend.backend()


# Options that exist on TensorFlow only, and why: refused on another backend before anything is
# written, never recorded and ignored.
TENSORFLOW_ONLY = {
    "qat": "its int8 simulation uses TensorFlow's fake-quantization ops",
    "strategy": "tf.distribute's strategies run on TensorFlow",
    "logical_cpus": "logical CPU devices are a TensorFlow setting",
}


def check_backend(opts: dict, given) -> None:
    """One line for an option this backend cannot honour."""
    name = backend()
    if name == "tensorflow":
        return
    asked = {"qat": bool(opts.get("qat")),
             "strategy": given.strategy not in (None, "default"),
             "logical_cpus": bool(given.logical_cpus)}
    for option, why in TENSORFLOW_ONLY.items():
        if asked[option]:
            raise FerEdgeError(f"--{option.replace('_', '-')} needs Keras's TensorFlow backend "
                               f"(this one is {name}): {why}")
    init = opts.get("init")
    if init and str(init).endswith(".tflite"):
        raise FerEdgeError(f"--init {init}: an int8 file starts only a --qat run, which needs "
                           f"Keras's TensorFlow backend (this one is {name})")


def strategy_for(name: str | None, logical_cpus: int | None):
    if backend() != "tensorflow":
        return None
    import tensorflow as tf

    if logical_cpus:
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(int(logical_cpus))])
    if not name or name == "default":
        return tf.distribute.get_strategy()
    if name == "multiworker":
        from . import multiworker

        return multiworker.strategy()
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    print(f"fer-edge: MirroredStrategy over {', '.join(devices)}", file=sys.stderr)
    return tf.distribute.MirroredStrategy(devices=devices)


def versions() -> dict:
    import importlib

    import keras

    name = backend()
    return {"fer_edge": __version__, "backend": name,
            name: importlib.import_module(name).__version__, "keras": keras.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def device() -> str:
    """What the training runs on: the accelerator's name, or the CPU's."""
    name = backend()
    if name == "jax":
        import jax

        first = jax.devices()[0]
        if first.platform != "cpu":
            return first.device_kind
    elif name == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    elif name == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    from ..machine import host

    return host()["cpu"]
