"""The recall of the hard classes (fear, disgust, sad by default) of every model in one or more
`fer-edge evaluate --format json` reports, on FER2013's labels and on the FER+ majority, as a
Markdown table (issue 32: "per-class recall of fear, disgust and sad reported beside the peers'").

    fer-edge evaluate --data ../shared/fer2013 --split test --models A.tflite B.tflite \
        --format json > report.json
    python benchmarks/per_class_recall.py report.json [--classes fear,disgust,sad] [--out F.md]

Every figure comes from the reports: per_class_accuracy is each class's recall (its correct
answers over its faces), beside the class's number of faces.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_edge.edge.fileio import write_text  # noqa: E402


def rows(report: dict, classes: list[str]) -> list[list[str]]:
    out = []
    for v in report["variants"]:
        fer = v.get("per_class_accuracy", {})
        plus = (v.get("ferplus") or {}).get("per_class_accuracy", {})
        cells = [f"`{Path(v['model']).name}`" + (" (TTA)" if v.get("tta") else "")]
        for c in classes:
            cells.append(f"{fer[c]:.1%}" if c in fer else "–")
        for c in classes:
            cells.append(f"{plus[c]:.1%}" if c in plus else "–")
        out.append(cells)
    return out


def support(report: dict, classes: list[str]) -> tuple[list, list]:
    v = report["variants"][0]
    labels = v.get("labels") or list(v.get("per_class_accuracy", {}))
    cm = v.get("confusion_matrix") or []
    fer = {c: sum(cm[labels.index(c)]) for c in classes if c in labels and cm}
    plus = (v.get("ferplus") or {}).get("support", {})
    return [fer.get(c, "–") for c in classes], [plus.get(c, "–") for c in classes]


def table(reports: list[dict], classes: list[str]) -> str:
    head = (["model"] + [f"{c}, FER2013 labels" for c in classes]
            + [f"{c}, FER+ majority" for c in classes])
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for report in reports:
        lines += ["| " + " | ".join(r) + " |" for r in rows(report, classes)]
    fer, plus = support(reports[0], classes)
    lines.append("| faces | " + " | ".join(str(x) for x in fer + plus) + " |")
    return "\n".join(lines) + "\n"


def main(*reports: str, classes: str = "fear,disgust,sad", out: str = None):
    """A Markdown table of the recall of `classes` for every model of the evaluate reports."""
    names = [c for c in (classes.split(",") if isinstance(classes, str) else classes) if c]
    loaded = [json.loads(Path(r).read_text()) for r in reports]
    if not loaded:
        sys.exit("per_class_recall.py: give one or more `fer-edge evaluate --format json` reports")
    splits = {r["split"] for r in loaded}
    text = (f"Recall per class on {', '.join(sorted(splits))} "
            f"(`python benchmarks/per_class_recall.py {' '.join(reports)}`):\n\n"
            + table(loaded, names))
    print(text, end="")
    if out:
        write_text(Path(out), text)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
