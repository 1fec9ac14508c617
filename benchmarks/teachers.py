"""Distillation teachers, scored before choosing: val (PublicTest) and test (PrivateTest) top-1 of
each model and of the ensemble (mean of probabilities), each with and without averaging over the
mirror image. The choice is made on val; test is reported. Prints JSON.

    python benchmarks/teachers.py --models A.keras,B.keras [--data ../shared/fer2013] [--out F.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_edge import data as fdata  # noqa: E402
from fer_edge.distill import ensemble_rows  # noqa: E402
from fer_edge.edge.fileio import write_json  # noqa: E402
from fer_edge.keras_io import KerasPredictor, load_keras  # noqa: E402


def main(models, data=str(REPO.parent / "shared" / "fer2013"), out: str = None):
    paths = models.split(",") if isinstance(models, str) else list(models)
    ds = fdata.load(data)
    splits = {name: ds.split(name) for name in ("val", "test")}
    probs = {}                       # model -> split -> (plain, mirrored) probabilities
    for p in paths:
        predict = KerasPredictor(load_keras(p))
        probs[p] = {name: (predict(sp.x), predict(sp.x[:, :, ::-1])) for name, sp in splits.items()}
    rows = ensemble_rows(probs, {name: sp.y for name, sp in splits.items()})
    best = max(rows, key=lambda r: r["val"])
    result = {"data": str(data), "rows": rows, "chosen_on_val": best}
    print(json.dumps(result, indent=1))
    if out:
        write_json(Path(out), result)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
