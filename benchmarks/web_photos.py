"""The web page's answers against classify's on labelled photos (issue 36's goal: the same face
count and emotion on each of the 9 photos in ../shared/photos, in headless Chromium).

    python benchmarks/web_photos.py --photos ../shared/photos --out reports/web/photos.json

The page is built by `fer-edge export --target web` for --model (default: the shipped default
model), served on 127.0.0.1 with the photos beside it, and opened as index.html?image=PHOTO in
headless Chromium; classify's answer is the Classifier's (what `fer-edge classify --format json`
prints) with the same model. Per photo: both face counts and emotions, the largest box
difference in pixels and score difference; `labels.csv` (file, faces, expected_emotion) gives
the expected count and emotion beside them.
"""

from __future__ import annotations

import csv
import json
import platform
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import headless_page  # noqa: E402


def compare(page: list[dict], cli: list[dict]) -> dict:
    """How the page's faces of one image stand to classify's (faces in the same order)."""
    same_count = len(page) == len(cli)
    pairs = list(zip(page, cli)) if same_count else []
    return {"faces_page": len(page), "faces_classify": len(cli), "same_count": same_count,
            "emotions_page": [f["emotion"] for f in page],
            "emotions_classify": [f["emotion"] for f in cli],
            "same_emotions": same_count and all(a["emotion"] == b["emotion"] for a, b in pairs),
            "max_box_px": max((abs(x - y) for a, b in pairs for x, y in zip(a["box"], b["box"])),
                              default=0),
            "max_score_diff": round(max((abs(a["scores"][k] - b["scores"][k]) for a, b in pairs
                                         for k in b["scores"]), default=0.0), 4)}


def run(photos: str, model: str = "default", out: str | None = None) -> dict:
    from fer_edge import defaults
    from fer_edge.cli import main as cli
    from fer_edge.edge.classify import Classifier
    from fer_edge.machine import host

    why = headless_page.missing()
    if why:
        raise SystemExit(why)
    folder = Path(photos)
    rows = list(csv.DictReader(open(folder / "labels.csv")))
    model_path = defaults.shipped_model(model)
    site = Path(tempfile.mkdtemp(prefix="fer-edge-web-photos-"))
    try:
        if cli(["export", "--target", "web", "--model", str(model_path), "--out",
                str(site / "web")]) != 0:
            raise SystemExit("the export failed")
        model_bytes = (site / "web" / "model.tflite").stat().st_size
        (site / "photos").mkdir()
        for row in rows:
            shutil.copyfile(folder / row["file"], site / "photos" / row["file"])
        results = {}
        with Classifier(model_path) as clf, headless_page.static_server(site) as base, \
                headless_page.chromium() as browser:
            for row in rows:
                browser.get(f"{base}web/index.html?image=../photos/{row['file']}")
                page = headless_page.wait_result(browser)
                if "error" in page:
                    raise SystemExit(f"{row['file']}: the page says {page['error']}")
                r = compare(page["faces"], clf.faces(folder / row["file"]))
                r["expected_faces"] = int(row["faces"])
                r["expected_emotion"] = row["expected_emotion"] or None
                results[row["file"]] = r
                print(f"{row['file']}: page {r['faces_page']} {r['emotions_page']}, classify "
                      f"{r['faces_classify']} {r['emotions_classify']}, box {r['max_box_px']} px,"
                      f" scores {r['max_score_diff']}", file=sys.stderr)
            version = browser.capabilities.get("browserVersion")
    finally:
        shutil.rmtree(site, ignore_errors=True)
    report = {
        "command": "python benchmarks/web_photos.py --photos ../shared/photos"
                   + ("" if model == "default" else f" --model {model}")
                   + (f" --out {out}" if out else ""),
        "model": model_path.name, "model_bytes": model_bytes, "browser": f"Chromium {version} (headless, WebAssembly)",
        "litert_js": json.loads((REPO / "fer_edge" / "web" / "litert" / "PIN.json").read_text())
        ["packages"]["@litertjs/core"]["version"],
        "host": host(), "python": platform.python_version(), "photos": len(results),
        "same_count": sum(r["same_count"] for r in results.values()),
        "same_emotions": sum(r["same_emotions"] for r in results.values()),
        "max_box_px": max(r["max_box_px"] for r in results.values()),
        "max_score_diff": max(r["max_score_diff"] for r in results.values()),
        "results": results}
    print(f"{report['same_count']} / {report['photos']} photos with classify's face count, "
          f"{report['same_emotions']} / {report['photos']} with its emotions; boxes within "
          f"{report['max_box_px']} px, scores within {report['max_score_diff']}", file=sys.stderr)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(photos: str, model: str = "default", out: str | None = None) -> None:
    run(photos, model, out)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
