"""Loading Keras models with one-line errors for files that are not Keras models."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from .errors import FerEdgeError


def load_keras(path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    path = Path(path)
    if not path.exists():
        raise FerEdgeError(f"model not found: {path}")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise FerEdgeError(f"{path} is not a Keras .keras model file")
    import keras

    from . import optim  # noqa: F401  registers fer-edge's optimizer and schedule for loading

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as e:
        raise FerEdgeError(f"{path}: cannot load it as a Keras model "
                           f"({str(e).splitlines()[0][:200]})") from None
