"""fer-edge: facial-emotion CNNs from FER2013 training to TFLite on edge devices.

Importing this package is cheap on purpose: TensorFlow is only imported by the modules that
train, export or evaluate Keras models, never by the edge runtime (`fer_edge.edge`).
"""

__version__ = "0.1.0"

__all__ = ["Classifier", "__version__"]


def __getattr__(name):
    # `from fer_edge import Classifier` loads the edge runtime (numpy, OpenCV, LiteRT) only when
    # asked for, so `import fer_edge` stays cheap for the CLI and the training side.
    if name == "Classifier":
        from .edge.classify import Classifier

        return Classifier
    raise AttributeError(f"module 'fer_edge' has no attribute {name!r}")
