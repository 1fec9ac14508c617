"""Distillation teachers, scored before choosing: val (PublicTest) and test (PrivateTest) top-1 of
each model and of the ensemble (mean of probabilities), each with and without averaging over the
mirror image. The choice is made on val; test is reported. Prints JSON.

    python benchmarks/teachers.py --models A.keras,B.keras [--data ../shared/fer2013]
        [--on fer2013|ferplus] [--out F.json]

--on ferplus scores the FER+ majority benchmark (votes.py: the faces with a majority; a contempt
face counts as an error) instead of FER2013's labels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_edge import data as fdata  # noqa: E402
from fer_edge.training.distill import ensemble_rows  # noqa: E402
from fer_edge.edge.fileio import write_json  # noqa: E402
from fer_edge.training.keras_io import KerasPredictor, load_keras  # noqa: E402


def scored(split: fdata.Split, on: str):
    """(the faces scored, their true labels): every face on FER2013's labels, or the faces with
    a FER+ majority and that majority (contempt, 7, is never a prediction)."""
    if on == "fer2013":
        return split, split.y
    from fer_edge import votes

    truth = votes.majority(split.votes)
    keep = np.flatnonzero(truth >= 0)
    return split.subset(keep), truth[keep]


def main(models, data=str(REPO.parent / "shared" / "fer2013"), on: str = "fer2013",
         out: str = None):
    if on not in ("fer2013", "ferplus"):
        sys.exit("--on must be fer2013 or ferplus")
    paths = models.split(",") if isinstance(models, str) else list(models)
    ds = fdata.load(data)
    picked = {name: scored(ds.split(name), on) for name in ("val", "test")}
    splits = {name: sp for name, (sp, _) in picked.items()}
    probs = {}                       # model -> split -> (plain, mirrored) probabilities
    for p in paths:
        predict = KerasPredictor(load_keras(p))
        probs[p] = {name: (predict(sp.x), predict(sp.x[:, :, ::-1])) for name, sp in splits.items()}
    rows = ensemble_rows(probs, {name: y for name, (_, y) in picked.items()})
    best = max(rows, key=lambda r: r["val"])
    result = {"data": str(data), "on": on, "rows": rows, "chosen_on_val": best}
    print(json.dumps(result, indent=1))
    if out:
        write_json(Path(out), result)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
