"""The README's results table, generated from the committed reports so it cannot disagree with
them: the shipped models' PrivateTest rows of models/eval/report.json (written by `fer-edge
evaluate`), their faces from outside FER2013 (benchmarks/outside_faces.py), `fer`'s figures
(benchmarks/peer_accuracy.py) and the per-face time beside `fer` (benchmarks/peer_latency.py).

    python benchmarks/readme_results.py            # rewrite the table in README.md
    python benchmarks/readme_results.py --check    # exit 1 if README.md's table is stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_edge import defaults  # noqa: E402

README = REPO / "README.md"
REPORT = REPO / "models" / "eval" / "report.json"
OUTSIDE = REPO / "reports" / "ferplus" / "outside_shipped.json"
PEER_ACCURACY = REPO / "reports" / "ferplus" / "peer_accuracy.json"
PEER_LATENCY = REPO / "models" / "eval" / "peer_latency.json"
E2E = REPO / "models" / "eval" / "e2e_speed.json"
START = "<!-- results: written by `python benchmarks/readme_results.py` from the reports; do not edit -->"
END = "<!-- results end -->"
LEARNED = {"fer": "FER2013's labels", "ferplus": "FER+'s votes"}


def _pct(v) -> str:
    return "—" if v is None else f"{v:.1%}"


def _shipped_rows(report: dict, outside: dict, latency: dict) -> list[str]:
    by_file = {Path(v["model"]).name: v for v in report["variants"] if not v.get("tta")}
    names: dict[str, list[str]] = {}
    for name, fname in defaults.SHIPPED_MODELS.items():
        names.setdefault(fname, []).append(name)
    rows = []
    for fname, known in names.items():
        row = by_file.get(fname)
        if row is None:
            continue
        out = outside.get(row["model"], {})   # by path: another folder's file may share a name
        ratio = next((r for m, r in latency.get("ratio_to_fer", {}).items()
                      if Path(m).name == fname), None)
        family = "ferplus" if fname.startswith("ferplus") else "fer"
        rows.append(
            f"| {' = '.join(f'`{k}`' for k in known)} | `{fname}` | {LEARNED[family]} | "
            f"{row['size_bytes'] / 1024:.0f} KB | {_pct(row['top1'])} | "
            f"{_pct(row.get('ferplus', {}).get('top1'))} | "
            f"{_pct(out.get('ckplus', {}).get('score'))} | "
            f"{_pct(out.get('muxspace', {}).get('score'))} | "
            f"{'—' if ratio is None else f'{ratio:.2f}x'} |")
    return rows


def _majority_n(report: dict) -> int:
    return next((v["ferplus"]["n"] for v in report["variants"] if "ferplus" in v), 0)


def _photo_line() -> list[str]:
    """The per-photo time (detect + classify) beside fer's pipeline, from e2e_speed.py's JSON."""
    if not E2E.exists():
        return []
    e2e = json.loads(E2E.read_text())
    photos, video = e2e["photos"], e2e["video"]
    ratio = photos["ms_per_photo_fer_edge"] / photos["ms_per_photo_fer"]
    return ["", f"Detect + classify, the whole photo (`{e2e['fer_edge']['model']}`, "
                f"{e2e['fer_edge']['detector']}, eyes levelled): {ratio:.2f}x `fer`'s pipeline's "
                f"time per photo ({photos['images']} photos) and {video['fps_ratio']:.1f}x its "
                f"frames per second on a {video['size'][0]}x{video['size'][1]} clip, 1 thread, "
                f"on `{e2e.get('host', {}).get('cpu', '?')}` (`{E2E.relative_to(REPO)}`)."]


def table() -> str:
    report = json.loads(REPORT.read_text())
    outside = json.loads(OUTSIDE.read_text())["results"] if OUTSIDE.exists() else {}
    latency = json.loads(PEER_LATENCY.read_text()) if PEER_LATENCY.exists() else {}
    peer = json.loads(PEER_ACCURACY.read_text()) if PEER_ACCURACY.exists() else None
    lines = [START, "",
             "| `--model` | file | learned | size | FER2013 labels | FER+ majority | CK+ (posed) "
             "| in the wild | time per face |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|",
             *_shipped_rows(report, outside, latency)]
    if peer:
        out = peer.get("outside", {})
        lines.append(f"| `fer` {latency.get('fer_version', '')} (its tflite, for comparison) | "
                     f"— | FER2013's labels | — | {_pct(peer['fer2013']['top1'])} | "
                     f"{_pct(peer.get('ferplus', {}).get('top1'))} | "
                     f"{_pct(out.get('ckplus', {}).get('score'))} | "
                     f"{_pct(out.get('muxspace', {}).get('score'))} | 1.00x |")
    host = latency.get("host", {})
    lines += ["",
              f"FER2013 labels and FER+ majority: PrivateTest ({report['n']:,} faces; the FER+ "
              f"majority, the {_majority_n(report):,} where one emotion holds more than half of "
              f"the votes), one pass, int8. CK+ and in the wild: faces from outside FER2013 "
              f"(`benchmarks/outside_faces.md`: CK+ accuracy over 6 posed emotions, LFW and film "
              f"stills as mean recall over 5 classes); they also took part in choosing the "
              f"models, so they are not held out. Time per face: the model alone (no detection), "
              f"batch 1, {latency.get('threads', 1)} thread, as a ratio to `fer`'s tflite timed "
              f"in the same interleaved run on `{host.get('cpu', '?')}` "
              f"({', '.join(host.get('simd', [])) or '?'}); ratios move with the CPU's int8 "
              f"instructions. Sources: `models/eval/report.json`, "
              f"`{OUTSIDE.relative_to(REPO)}`, `{PEER_ACCURACY.relative_to(REPO)}`, "
              f"`{PEER_LATENCY.relative_to(REPO)}`.",
              *_photo_line(),
              "", END]
    return "\n".join(lines)


def rewrite(text: str, block: str) -> str:
    if START not in text or END not in text:
        raise SystemExit(f"{README}: no results markers ({START} ... {END})")
    head, rest = text.split(START, 1)
    return head + block + rest.split(END, 1)[1]


def main(check: bool = False):
    text = README.read_text()
    new = rewrite(text, table())
    if check:
        if new != text:
            sys.exit("README.md's results table is stale: run python benchmarks/readme_results.py")
        return
    README.write_text(new)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
