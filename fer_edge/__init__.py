"""fer-edge: facial-emotion CNNs from FER2013 training to TFLite on edge devices.

Importing this package is cheap on purpose: TensorFlow is only imported by the modules that
train, export or evaluate Keras models, never by the edge runtime (`fer_edge.classify`).
"""

__version__ = "0.1.0"
