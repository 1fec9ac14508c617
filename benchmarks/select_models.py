"""Apply the selection rule of reports/ferplus/README.md: each candidate's mean of one FER2013
val figure and the two decisive outside-FER2013 figures, from the JSON that
`fer-edge evaluate --split val --format json` and `benchmarks/outside_faces.py score` wrote.

    python benchmarks/select_models.py --val val.json --outside outside.json --on ferplus
        [--only A.tflite,B.tflite] [--out rule.json]

--on ferplus: the val figure is the FER+ majority top-1 (rules 1 and 3); --on fer2013: FER2013's
label top-1 (rule 2). --only: the rule's candidates among the files' models (default: all).
Models are matched by path; each must be in both files. Prints the candidates best first, and
JSON (to --out too).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_edge.edge.fileio import write_json  # noqa: E402

DECISIVE = ("ckplus", "muxspace")   # the outside sets the rule uses (outside_faces.md)


def val_figure(row: dict, on: str) -> float:
    return row["ferplus"]["top1"] if on == "ferplus" else row["top1"]


def rank(val: dict, outside: dict, on: str, only=None) -> list[dict]:
    """Rows {model, val, ckplus, muxspace, mean}, best mean first (plain rows, no TTA)."""
    rows = []
    for v in val["variants"]:
        if v.get("tta") or (only and v["model"] not in only):
            continue
        out = outside["results"].get(v["model"])
        if out is None:
            sys.exit(f"{v['model']} is not in the outside-faces results")
        figures = [val_figure(v, on)] + [out[s]["score"] for s in DECISIVE]
        rows.append({"model": v["model"], f"val_{on}": round(figures[0], 4),
                     **{s: out[s]["score"] for s in DECISIVE},
                     "mean": round(sum(figures) / len(figures), 4)})
    return sorted(rows, key=lambda r: -r["mean"])


def main(val: str, outside: str, on: str = "ferplus", only=None, out: str = None):
    if on not in ("ferplus", "fer2013"):
        sys.exit("--on must be ferplus or fer2013")
    only = [m.strip() for m in only.split(",")] if isinstance(only, str) else only
    rows = rank(json.loads(Path(val).read_text()), json.loads(Path(outside).read_text()), on,
                only)
    for r in rows:
        print(f"{r['mean']:.2%}  val {on} {r[f'val_{on}']:.2%}  ckplus {r['ckplus']:.2%}  "
              f"muxspace {r['muxspace']:.2%}  {r['model']}", file=sys.stderr)
    result = {"on": on, "val": val, "outside": outside, "only": only, "ranked": rows}
    print(json.dumps(result, indent=1))
    if out:
        write_json(Path(out), result)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
