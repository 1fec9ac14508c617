"""Per-face time of the same model on LiteRT (.tflite) and onnxruntime (.onnx), and on OpenVINO
when it is installed, in one process, interleaved: 1 thread, batch 1, each call the model's
predictor as classify and evaluate call it (the uint8 face's conversion included, no detection).
Each round times `runs` calls of every model, the order rotating from round to round; a model's
p50 is the median over rounds of its per-round median. Prints JSON.

    python benchmarks/onnx_speed.py --models models/fer_int8.tflite,out/fer_int8.onnx \
        [--openvino out/fer_int8.onnx] [--rounds 7] [--runs 300] [--out F.json]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _split(value) -> list[str]:
    if not value:
        return []
    return value.split(",") if isinstance(value, str) else [str(v) for v in value]


def main(models, openvino=None, rounds: int = 7, runs: int = 300, warmup: int = 50,
         out: str = None):
    from fer_edge.edge.runtime import open_model
    from fer_edge.edge.sources import quiet_native_stderr
    from fer_edge.evaluate import _EdgeVariant, _OpenVINOVariant
    from fer_edge.machine import host

    predictors, kinds, sizes = {}, {}, {}
    with quiet_native_stderr(always=True):
        for path in _split(models):
            m = open_model(path, threads=1)
            name = f"{path} ({'onnxruntime' if path.endswith('.onnx') else 'LiteRT'})"
            predictors[name], kinds[name] = m.predict, m.kind
            sizes[name] = Path(path).stat().st_size
        for path in _split(openvino):
            v = _OpenVINOVariant(Path(path), 1, _EdgeVariant(Path(path), 1))
            name = f"{path} (OpenVINO)"
            predictors[name], kinds[name] = v.predict, v.kind
            sizes[name] = Path(path).stat().st_size
    face = np.random.default_rng(0).integers(0, 256, (1, 48, 48), dtype=np.uint8)

    def once(predict) -> float:
        t = time.perf_counter()
        predict(face, 1)
        return (time.perf_counter() - t) * 1000

    for predict in predictors.values():
        for _ in range(warmup):
            once(predict)
    order = list(predictors)
    per_round = {k: [] for k in order}
    for r in range(rounds):
        for k in order[r % len(order):] + order[:r % len(order)]:
            per_round[k].append(statistics.median(once(predictors[k]) for _ in range(runs)))
    p50 = {k: statistics.median(v) for k, v in per_round.items()}
    first = order[0]
    result = {
        "command": " ".join(["python", "benchmarks/onnx_speed.py", *sys.argv[1:]]),
        "host": host(), "threads": 1, "batch": 1, "rounds": rounds, "runs": runs,
        "kind": kinds, "size_bytes": sizes,
        "p50_ms": {k: round(v, 4) for k, v in p50.items()},
        "ratio_to_first": {k: round(v / p50[first], 3) for k, v in p50.items()},
        "rounds_ms": {k: [round(x, 4) for x in v] for k, v in per_round.items()},
    }
    print(json.dumps(result, indent=1))
    if out:
        from fer_edge.edge.fileio import write_json

        write_json(Path(out), result)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
