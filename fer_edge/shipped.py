"""The models that ship in `models/`, with the figures their `fer-edge evaluate` report
(models/eval/report.json, written by evaluate, never typed in) gives for them, and their time
per face beside `fer`'s from the one latency benchmark (models/eval/peer_latency.json, written by
benchmarks/peer_latency.py), the figure the README and the cards show too; and the registered
architectures with their parameter counts, read from architectures.json so that listing them
needs no Keras (`python -m fer_edge.shipped > fer_edge/architectures.json` measures them again;
a test keeps the file equal to Keras's counts)."""

from __future__ import annotations

import json
from pathlib import Path

from . import defaults

ARCHITECTURES = Path(__file__).with_name("architectures.json")


def timing() -> dict:
    """What the shipped rows' time per face measures and where: the latency benchmark's threads,
    batch and host CPU (ratios to fer move with the CPU's int8 instructions)."""
    path = defaults.package_path("models") / defaults.SHIPPED_LATENCY
    if not path.exists():
        return {}
    bench = json.loads(path.read_text())
    return {"measures": "the model alone (no detection), as a ratio to fer's tflite timed in "
                        "the same interleaved run", "threads": bench.get("threads"),
            "batch": bench.get("batch"), "host": bench.get("host", {}),
            "source": f"models/{defaults.SHIPPED_LATENCY}"}


def shipped_rows() -> list[dict]:
    """name, file, size, PrivateTest top-1 (FER2013 labels and the FER+ majority) and p50
    latency (no TTA) of each shipped model that exists; figures are None where the report has
    no row for the file."""
    folder = defaults.package_path("models")
    report = folder / defaults.SHIPPED_REPORT
    result = json.loads(report.read_text()) if report.exists() else {"variants": []}
    latency = folder / defaults.SHIPPED_LATENCY
    ratios = json.loads(latency.read_text()).get("ratio_to_fer", {}) if latency.exists() else {}
    rows = []
    for name, fname in defaults.SHIPPED_MODELS.items():
        path = folder / fname
        if not path.exists():
            continue
        row = next((v for v in result["variants"]
                    if v["model"].endswith("/" + fname) and not v.get("tta")), None)
        rows.append({"name": name, "file": fname, "path": str(path.resolve()),
                     "size_bytes": path.stat().st_size,
                     "top1": row["top1"] if row else None,
                     "ferplus_top1": row["ferplus"]["top1"] if row and "ferplus" in row else None,
                     "time_vs_fer": next((r for m, r in ratios.items()
                                          if m.endswith("/" + fname)), None),
                     "split": result.get("split") if row else None})
    return rows


def architecture_rows() -> list[dict]:
    """name, parameters (the 7-class model) and description of each registered architecture;
    parameters None for one that architectures.json does not hold yet."""
    from .training import archs

    params = json.loads(ARCHITECTURES.read_text())
    return [{"name": a, "params": params.get(a), "description": archs.get(a).description}
            for a in archs.names()]


def measured_params() -> dict[str, int]:
    """Each registered architecture's parameter count, from the Keras model it builds."""
    from .training import archs

    return {a: int(archs.build(a).count_params()) for a in archs.names()}


if __name__ == "__main__":
    print(json.dumps(measured_params(), indent=1))
