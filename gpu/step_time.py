"""Step time of gpu/train.py's trainer, one process, on synthetic faces: with and without the
augmentation, on the backend given (torch runs eagerly; jax compiles the step with XLA).
Measured before planning a device call's training (gpu/README.md).

    python gpu/step_time.py --backend torch [--arch edge_fast] [--batch 128] [--steps 40]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(backend: str = "torch", arch: str = "edge_fast", batch: int = 128, steps: int = 40):
    os.environ["KERAS_BACKEND"] = backend
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import numpy as np

    import train as gt
    from fer_edge import archs, optim
    from fer_edge.train import resolve_options

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch * steps, 48, 48, 1)).astype(np.float32)
    y = np.eye(gt.OUTPUTS, dtype=np.float32)[rng.integers(0, gt.OUTPUTS, len(x))]
    gt._fast_math()
    for augment, erasing in (("edge", 0.25), ("none", 0.0)):
        opts = dict(resolve_options(arch, {"batch_size": batch, "augment": augment,
                                           "erasing": erasing}))
        trainer = gt.make_trainer(archs.build(arch), [], opts)
        trainer.compile(optimizer=optim.make(opts, steps), metrics=[gt.student_accuracy()],
                        jit_compile=backend == "jax")
        trainer.fit(x[:batch * 3], y[:batch * 3], batch_size=batch, epochs=1, verbose=0)
        t0 = time.time()
        trainer.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        ms = (time.time() - t0) / steps * 1000
        print(json.dumps({"backend": backend, "device": gt.device_name(), "arch": arch,
                          "batch": batch, "augment": augment, "ms_per_step": round(ms, 1),
                          "faces_per_s": round(batch / ms * 1000)}), flush=True)


if __name__ == "__main__":
    import fire

    fire.Fire(main, serialize=lambda result: None)
