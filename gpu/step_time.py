"""Where a lent machine's training time goes, one process, on synthetic faces: the input
pipeline's time per batch (augmentation and, with --teacher, distillation: pipeline.py) and the
compiled train step's, on the Keras backend given. Measured before planning a device call.

    python gpu/step_time.py --backend jax [--arch edge_fast] [--batch 128] [--steps 40]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(backend: str = "jax", arch: str = "edge_fast", batch: int = 128, steps: int = 40,
         augment: str = "edge", erasing: float = 0.25):
    os.environ["KERAS_BACKEND"] = backend
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import numpy as np

    from fer_edge.data import Split
    from fer_edge.training import archs, optim
    from fer_edge.training.engine import device, resolve_options
    from fer_edge.training.pipeline import TrainStream

    rng = np.random.default_rng(0)
    n = batch * steps
    split = Split(rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n),
                  np.arange(n).astype(str))
    opts = resolve_options(arch, {"batch_size": batch, "augment": augment, "erasing": erasing})
    stream = TrainStream(split, opts)
    t0 = time.perf_counter()
    batches = [stream[i] for i in range(len(stream))]
    pipeline_ms = (time.perf_counter() - t0) / len(batches) * 1e3
    model = archs.build(arch)
    model.compile(optimizer=optim.make(opts, steps), loss="categorical_crossentropy")
    model.train_on_batch(*batches[0])    # compiles
    t0 = time.perf_counter()
    for x, y, w in batches:
        model.train_on_batch(x, y, sample_weight=w)
    step_ms = (time.perf_counter() - t0) / len(batches) * 1e3
    print(json.dumps({"backend": backend, "device": device(), "arch": arch, "batch": batch,
                      "pipeline_ms_per_batch": round(pipeline_ms, 2),
                      "step_ms": round(step_ms, 2),
                      "faces_per_s": round(batch * 1e3 / max(step_ms, pipeline_ms / 2), 1)}))


if __name__ == "__main__":
    import fire

    fire.Fire(main)
