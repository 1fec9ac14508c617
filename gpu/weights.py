"""A trained model's weights through a lent machine's return channel, which carries files of at
most 16 MB: `seed-weights` (there) writes best.keras's weights as float16 chunks, and
`weights-to-keras` (here) rebuilds the model from them (reports/seed_gpu/README.md).

    python3 gpu/weights.py seed-weights RUN OUT/seed_weights                 # on the device
    python gpu/weights.py weights-to-keras OUT/seed_weights seed best.keras  # here
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _val_inputs(data):
    from fer_edge import data as fdata
    from fer_edge.edge.preprocessing import batch_to_float

    val = fdata.load(data).split("val")
    return batch_to_float(val.x), val.y


def seed_weights(run_dir: str, out_prefix: str, chunk_mb: float = 15.5,
                 data: str = ".gpu/data"):
    """best.keras's weights as float16 in chunks (a device call returns files of <= 16 MB), and
    its val probabilities (OUT_PREFIX.probs_val.npy) for weights-to-keras --check."""
    import keras

    m = keras.saving.load_model(Path(run_dir) / "best.keras", compile=False)
    arrays = [np.asarray(w, np.float16) for w in m.get_weights()]
    blob = b"".join(a.tobytes() for a in arrays)
    header = json.dumps([[list(a.shape), "float16"] for a in arrays]).encode()
    payload = len(header).to_bytes(8, "little") + header + blob
    size = int(chunk_mb * 2**20)
    for i in range(0, len(payload), size):
        Path(f"{out_prefix}.part{i // size}").write_bytes(payload[i:i + size])
    x, _ = _val_inputs(data)
    np.save(f"{out_prefix}.probs_val.npy", m.predict(x, batch_size=1024, verbose=0))
    print(f"{len(arrays)} arrays, {len(payload) / 2**20:.1f} MiB in "
          f"{-(-len(payload) // size)} parts", flush=True)


def read_weights(prefix: str) -> list[np.ndarray]:
    """The inverse of seed_weights (here, where TensorFlow is), as float32 arrays."""
    parts = sorted(Path(prefix).parent.glob(Path(prefix).name + ".part*"),
                   key=lambda p: int(p.suffix[5:]))
    payload = b"".join(p.read_bytes() for p in parts)
    n = int.from_bytes(payload[:8], "little")
    spec = json.loads(payload[8:8 + n])
    arrays, pos = [], 8 + n
    for shape, dtype in spec:
        count = int(np.prod(shape)) if shape else 1
        a = np.frombuffer(payload, dtype, count, pos).reshape(shape)
        arrays.append(a.astype(np.float32))
        pos += count * np.dtype(dtype).itemsize
    return arrays


def weights_to_keras(prefix: str, arch: str, out: str, check: str | None = None):
    """Rebuild `arch` with the weights `seed-weights` wrote (here, where TensorFlow is) and save
    it as .keras; with --check PROBS.npy (seed-weights' PREFIX.probs_val.npy), report how far
    the float16 weights move the val probabilities."""
    from fer_edge.training import archs

    model = archs.build(arch)
    model.set_weights(read_weights(prefix))
    model.save(out)
    if check:
        x, y = _val_inputs(Path(__file__).resolve().parents[1] / ".gpu/data")
        p, q = model.predict(x, batch_size=1024, verbose=0), np.load(check)
        print(json.dumps({"max_abs_diff": float(np.abs(p - q).max()),
                          "same_top1": float((p.argmax(1) == q.argmax(1)).mean()),
                          "val_accuracy": float((p.argmax(1) == y).mean())}), flush=True)


if __name__ == "__main__":
    import fire

    fire.Fire({"seed-weights": seed_weights, "weights-to-keras": weights_to_keras},
              serialize=lambda result: None)
