"""Loading Keras models with one-line errors for files that are not Keras models, and the one
Keras predictor that train and evaluate share."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from ..errors import FerEdgeError


def load_keras(path, compile: bool = False):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    path = Path(path)
    if not path.exists():
        raise FerEdgeError(f"model not found: {path}")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise FerEdgeError(f"{path} is not a Keras .keras model file")
    import keras

    from . import optim  # noqa: F401  registers fer-edge's optimizer and schedule for loading

    if keras.backend.backend() == "tensorflow":
        from . import qat  # noqa: F401  its quantization-aware layers (TensorFlow ops)

    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as e:
        raise FerEdgeError(f"{path}: cannot load it as a Keras model "
                           f"({str(e).splitlines()[0][:200]})") from None


class KerasPredictor:
    """Softmax scores of a Keras model for uint8 (N, 48, 48) faces, in batches, inference mode
    (one traced function, so repeated calls do not retrace)."""

    def __init__(self, model):
        import keras

        self.model = model
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            self._call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        else:   # Keras compiles the predict step on the other backends
            self._call = model.predict_on_batch

    def __call__(self, faces_u8, batch_size: int = 256):
        import numpy as np

        from ..edge.preprocessing import batch_to_float

        out = [np.asarray(self._call(batch_to_float(faces_u8[i:i + batch_size])))
               for i in range(0, len(faces_u8), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.model.output_shape[-1]),
                                                        np.float32)
