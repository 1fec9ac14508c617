"""Per-face latency of several .tflite models measured in one process, fairly: LiteRT, batch 1,
1 thread, rounds in which every model runs `runs` invokes, the order rotating from round to
round so that a noisy neighbour or a clock change hits all models alike. A model's p50 is the
median over rounds of its per-round median; compare models only as ratios from one call."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np


class Timed:
    """One .tflite on LiteRT (1 thread) with an input of its own shape and type."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

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


def interleaved_ms(paths: dict[str, Path], rounds: int, runs: int, warmup: int = 50
                   ) -> tuple[dict[str, float], dict[str, list[float]]]:
    """(p50 per name, per-round medians per name) for the models `paths` names."""
    timed = {k: Timed(p) for k, p in paths.items()}
    for t in timed.values():
        for _ in range(warmup):
            t.once()
    per_round = {k: [] for k in timed}
    order = list(timed)
    for r in range(rounds):
        for k in order[r % len(order):] + order[:r % len(order)]:
            per_round[k].append(statistics.median(timed[k].once() for _ in range(runs)))
    return {k: statistics.median(v) for k, v in per_round.items()}, per_round
