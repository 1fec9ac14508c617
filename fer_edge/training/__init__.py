"""Training: one engine (engine.py) on every Keras 3 backend, with its input pipeline, recipes,
callbacks, distillation, SWA, QAT, slimming, optimizers, the architecture registry and the
multi-machine adapter. Nothing here is imported by the edge runtime."""
