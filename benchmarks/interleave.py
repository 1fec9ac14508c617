"""Per-face latency of several .tflite models measured in one process, fairly: LiteRT, batch 1,
1 thread, rounds in which every model runs `runs` invokes, the order rotating from round to
round so that a noisy neighbour or a clock change hits all models alike. A model's p50 is the
median over rounds of its per-round median; compare models only as ratios from one call."""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path

import numpy as np


# int8 kernels run several times faster with these (ratios to a float model change with them:
# our int8 default was 0.46x `fer`'s float tflite on one host and 1.4x on an AVX2-only one)
_SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def host() -> dict:
    """The CPU the timings were taken on: its model name and the SIMD features int8 needs."""
    cpu, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and cpu is None:
                cpu = value.strip()
            if key.strip() in ("flags", "Features"):
                flags |= set(value.split())
    except OSError:   # not Linux: the platform's name for the CPU is all we have
        pass
    return {"cpu": cpu or platform.processor() or platform.machine(),
            "simd": [f for f in _SIMD_FLAGS if f in flags]}


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
