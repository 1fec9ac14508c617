"""The README's measured figures, generated from the committed reports so they cannot disagree
with them. Each block sits between its markers in README.md:

- `results`: the shipped models' PrivateTest rows of models/eval/report.json (written by
  `fer-edge evaluate`), their faces from outside FER2013 (benchmarks/outside_faces.py), the
  peers' figures (benchmarks/peer_accuracy.py), the per-face time beside `fer`
  (benchmarks/peer_latency.py) and the per-photo time (benchmarks/e2e_speed.py);
- `detectors`: benchmarks/detectors.py's counts and times;
- `alignment`: benchmarks/alignment.py's table;
- `batch`: benchmarks/batch_throughput.py's two runs and what they project;
- `targets`: where the default model runs: the int8 .tflite, its ONNX files on onnxruntime and
  OpenVINO (reports/onnx: `fer-edge evaluate` and benchmarks/onnx_speed.py), the Ethos-U
  NPUs (reports/ethos_u: Vela's own estimates) and the browser (reports/web:
  benchmarks/web_photos.py and web_fps.py).

    python benchmarks/readme_results.py            # rewrite the blocks in README.md
    python benchmarks/readme_results.py --check    # exit 1 if a block of README.md is stale
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
# each peer: how the table names it, and its benchmarks/peer_accuracy.py JSON
PEERS = {
    "fer": ("`fer` {version} (its tflite)", REPO / "reports" / "ferplus" / "peer_accuracy.json"),
    "facial-emotion-recognition": (
        "`facial-emotion-recognition` {version} (its PyTorch CNN, float32 on LiteRT)",
        REPO / "reports" / "ferplus" / "peer_accuracy_facial_emotion_recognition.json"),
}
PEER_LATENCY = REPO / "models" / "eval" / "peer_latency.json"
E2E = REPO / "models" / "eval" / "e2e_speed.json"
DETECTORS = REPO / "reports" / "benchmark_detectors.json"
ALIGNMENT = REPO / "reports" / "alignment.json"
BATCH = REPO / "reports" / "batch" / "throughput.json"
BATCH_CLUSTER = REPO / "reports" / "batch" / "throughput_cluster.json"
KERNELS = REPO / "reports" / "onnx" / "kernels_ferplus_val.json"
ONNX_EVAL = REPO / "reports" / "onnx" / "eval_ferplus" / "report.json"
ONNX_SPEED = REPO / "reports" / "onnx" / "speed.json"
ETHOS_U = REPO / "reports" / "ethos_u" / "ferplus_int8_summary.json"
WEB_PHOTOS = REPO / "reports" / "web" / "photos.json"
WEB_FPS = REPO / "reports" / "web" / "fps.json"


def start(name: str) -> str:
    return (f"<!-- {name}: written by `python benchmarks/readme_results.py` from the reports; "
            f"do not edit -->")


def end(name: str) -> str:
    return f"<!-- {name} end -->"


START, END = start("results"), end("results")
LEARNED = {"fer": "FER2013's labels", "ferplus": "FER+'s votes"}


def _pct(v) -> str:
    return "—" if v is None else f"{v:.1%}"


def _size(n) -> str:
    if n is None:
        return "—"
    return f"{n / 1024:.0f} KB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.1f} MB"


def _accuracy_cells(top1, ferplus: dict, outside: dict) -> str:
    """FER2013 labels | FER+ majority | CK+ | in the wild, as the table shows them."""
    return (f"{_pct(top1)} | {_pct(ferplus.get('top1'))} | "
            f"{_pct(outside.get('ckplus', {}).get('score'))} | "
            f"{_pct(outside.get('muxspace', {}).get('score'))}")


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
            f"{_size(row['size_bytes'])} | "
            f"{_accuracy_cells(row['top1'], row.get('ferplus', {}), out)} | "
            f"{'—' if ratio is None else f'{ratio:.2f}x'} |")
    return rows


def _peer_rows(latency: dict) -> list[str]:
    rows = []
    fer_ms = latency.get("p50_ms", {}).get("fer")
    for key, (label, path) in PEERS.items():
        if not path.exists():
            continue
        peer = json.loads(path.read_text())
        ms = latency.get("p50_ms", {}).get(key)
        size = latency.get("size_bytes", {}).get(key)
        version = latency.get("peers", {}).get(key, key).rsplit(" ", 1)[-1]
        scores = _accuracy_cells(peer["fer2013"]["top1"], peer.get("ferplus", {}),
                                 peer.get("outside", {}))
        rows.append(f"| {label.format(version=version)} | — | FER2013's labels | "
                    f"{_size(size)} | {scores} | "
                    f"{'—' if ms is None or not fer_ms else f'{ms / fer_ms:.2f}x'} |")
    return rows


def _majority_n(report: dict) -> int:
    return next((v["ferplus"]["n"] for v in report["variants"] if "ferplus" in v), 0)


def _photo_line() -> list[str]:
    """The per-photo time (detect + classify) and video frame rate beside each peer's whole
    pipeline, from e2e_speed.py's JSON."""
    if not E2E.exists():
        return []
    e2e = json.loads(E2E.read_text())
    photos, video = e2e["photos"], e2e["video"]
    ours_ms, ours_fps = photos["ms_per_photo_fer_edge"], video["fps_fer_edge"]
    # each peer: (its name, its ms per photo, its frames per second)
    peers = [("fer", photos["ms_per_photo_fer"], video["fps_fer"]),
             *((n, p["ms_per_photo"], p["fps"]) for n, p in e2e.get("peers", {}).items())]
    times = " and ".join(f"{ours_ms / ms:.2f}x `{n}`'s" for n, ms, _ in peers)
    rates = " and ".join(f"{ours_fps / fps:.1f}x `{n}`'s" for n, _, fps in peers)
    return ["", f"Detect + classify, the whole photo (`{e2e['fer_edge']['model']}`, "
                f"{e2e['fer_edge']['detector']}, eyes levelled, against each package's own "
                f"detector and model): {times} time per photo ({photos['images']} photos), and "
                f"{rates} frames per second on a {video['size'][0]}x{video['size'][1]} clip"
                f"{_video_path_words(video)}; "
                f"{e2e['threads']} thread, interleaved rounds in one process, on "
                f"`{e2e.get('host', {}).get('cpu', '?')}` (`{e2e['command']}`, "
                f"`{E2E.relative_to(REPO)}`)."]


def _video_path_words(video: dict) -> str:
    """What the default video path costs and gives beside detection on every frame."""
    agree, full = video.get("default_vs_full_detection"), video.get("full_detection")
    if not agree or not full:
        return ""
    itself = video.get("full_detection_vs_itself_moved", {}).values()
    floor = (f"; detection on every frame agrees with itself on the clip moved by a pixel on "
             f"{min(a['same_emotion'] for a in itself):.1%} to "
             f"{max(a['same_emotion'] for a in itself):.1%}") if itself else ""
    others = video.get("default_vs_full_detection_random_clips")
    more = (f" ({others['same_emotion']:.1%} on {others['clips']} clips drawn at random, what "
            f"the settings were chosen on)") if others else ""
    rounds = video.get("fps_ratio_each_round")
    spread = (f" ({min(rounds):.1f}x to {max(rounds):.1f}x round by round)") if rounds else ""
    return (f"{spread} with the default video path (the full detector every "
            f"{video['detect_every']}th "
            f"frame, newcomers searched for by BlazeFace in a crop around the motion, faces "
            f"followed by optical flow and checked by BlazeFace in crops between: "
            f"{agree['faces_matched']:.1%} of faces matched and "
            f"{agree['same_emotion']:.1%} the same emotion as detection on every frame{more}, "
            f"which runs at {full['fps_ratio']:.1f}x"
            f"{floor}; a face that enters found on its frame {video['new_face_frames']})")


def table() -> str:
    report = json.loads(REPORT.read_text())
    outside = json.loads(OUTSIDE.read_text())["results"] if OUTSIDE.exists() else {}
    latency = json.loads(PEER_LATENCY.read_text()) if PEER_LATENCY.exists() else {}
    lines = [START, "",
             "| `--model` | file | learned | size | FER2013 labels | FER+ majority | CK+ (posed) "
             "| in the wild | time per face |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|",
             *_shipped_rows(report, outside, latency),
             *_peer_rows(latency)]
    host = latency.get("host", {})
    lines += ["",
              f"FER2013 labels and FER+ majority: PrivateTest ({report['n']:,} faces; the FER+ "
              f"majority, the {_majority_n(report):,} where one emotion holds more than half of "
              f"the votes), one pass, our models in int8. CK+ and in the wild: faces from "
              f"outside FER2013 "
              f"(`benchmarks/outside_faces.md`: CK+ accuracy over 6 posed emotions, LFW and film "
              f"stills as mean recall over 5 classes); they also took part in choosing the "
              f"models, so they are not held out. Time per face: the model alone (no detection), "
              f"batch 1, {latency.get('threads', 1)} thread, as a ratio to `fer`'s tflite timed "
              f"in the same interleaved run on `{host.get('cpu', '?')}` "
              f"({', '.join(host.get('simd', [])) or '?'}); ratios move with the CPU's int8 "
              f"instructions. Sources: `models/eval/report.json`, "
              f"`{OUTSIDE.relative_to(REPO)}`, "
              + ", ".join(f"`{path.relative_to(REPO)}`" for _, path in PEERS.values())
              + f", `{PEER_LATENCY.relative_to(REPO)}`.",
              *_photo_line(),
              "", END]
    return "\n".join(lines)


def _host(report: dict) -> str:
    host = report.get("host") or {"cpu": report.get("cpu")}
    return f"`{host.get('cpu') or 'a CPU it did not record'}`"


DETECTOR_NOTES = {"blazeface_dual": " (default)", "blazeface": " (short-range)"}


def detectors() -> str:
    bench = json.loads(DETECTORS.read_text())
    rows = []
    for name, d in bench["detectors"].items():
        scenes, closeups = d["by_kind"]["scenes"], d["by_kind"]["closeups"]
        label = f"`{name}`{DETECTOR_NOTES.get(name, '')}"
        rows.append(f"| {label} | {scenes['exact']} / {scenes['images']} | "
                    f"{round(closeups['found_share'] * closeups['images'])} / "
                    f"{closeups['images']} | {d['ms_per_photo_median']:.1f} |")
    kinds = next(iter(bench["detectors"].values()))["by_kind"]
    return "\n".join([
        start("detectors"), "",
        f"`{DETECTORS.relative_to(REPO)}` (from "
        f"`{bench.get('command', 'benchmarks/detectors.py')}`) counts "
        f"faces on {kinds['scenes']['images']} scene images (the photos and variants) and "
        f"{kinds['closeups']['images']} close-ups (every face of the photos cut at its box and "
        f"resized to 40-400 px), and the milliseconds per photo (the median over the photos of "
        f"each one's median of {bench['repeat']} runs, {bench['threads']} thread, on "
        f"{_host(bench)}):", "",
        "| detector | scenes: exact count | close-ups: face found | ms per photo |",
        "|---|---:|---:|---:|", *rows, "", end("detectors")])


def alignment() -> str:
    bench = json.loads(ALIGNMENT.read_text())
    cols = ("+0/no_align", "+0/align", "tilted/no_align", "tilted/align")
    val, photos = bench["fer2013_val"], bench["photos"]
    n = photos["faces"]
    photo_cells = [f"{round(photos['table'][c]['correct'] * n)} / {n}" if c.startswith("+0")
                   else _pct(photos["table"][c]["correct"]) for c in cols]
    tilts = "/".join(f"{a:+d}" for a in bench["angles"] if a)
    agree = val["table"]
    return "\n".join([
        start("alignment"), "",
        f"Measured by `python benchmarks/alignment.py --out {ALIGNMENT.relative_to(REPO)}` "
        f"(detect + classify with `{bench['model']}` and `{bench['detector']}`; the share of "
        f"faces given the right emotion; tilted: {tilts} degrees):", "",
        "| faces | upright, no alignment | upright, aligned | tilted, no alignment | "
        "tilted, aligned |", "|---|---:|---:|---:|---:|",
        f"| {val['faces']} FER2013 PublicTest faces (upscaled to 192 px) | "
        + " | ".join(_pct(val["table"][c]["correct"]) for c in cols) + " |",
        f"| the {n} labelled photos | " + " | ".join(photo_cells) + " |", "",
        f"Aligned, a tilt also changes the answer less (agreement with the upright face's "
        f"emotion {_pct(agree['tilted/align']['agree_with_upright'])} vs "
        f"{_pct(agree['tilted/no_align']['agree_with_upright'])} on the FER2013 faces), so "
        f"alignment is on by default.", "", end("alignment")])


def batch() -> str:
    own, cluster = json.loads(BATCH.read_text()), json.loads(BATCH_CLUSTER.read_text())
    s, first, ips = own["seconds"], own["seconds_for_1_image"], own["images_per_second"]
    started = own["images_per_second_once_started"]
    c_first = cluster["seconds_for_1_image"]
    per_worker = started["batch_1_worker"]
    return "\n".join([
        start("batch"), "",
        f"**Throughput** (`{own['command']}`: {own['images']:,} photos of one face each on "
        f"{_host(own)}, {own['cores']} cores, each command's best of {own['rounds']} interleaved "
        f"rounds): `classify` takes {min(s['classify']):.1f} s ({ips['classify']:.0f} images/s), "
        f"`batch` with one worker {min(s['batch_1_worker']):.1f} s and with two "
        f"{min(s['batch_2_workers']):.1f} s. Ray's start-up (the embedded cluster, the actors "
        f"loading the model, its shutdown) is a fixed cost (a batch of one image: "
        f"{min(first['batch_1_worker']):.1f} s, classify: {min(first['classify']):.1f} s), so "
        f"here batch is {own['batch_1_worker_vs_classify']:.2f}x classify end to end and two "
        f"workers {own['batch_2_vs_1_worker']:.2f}x one. Once started, one worker classifies "
        f"{per_worker:.0f} images/s ({own['once_started']['batch_1_worker_vs_classify']:.2f}x "
        f"classify's {started['classify']:.0f}) and two {started['batch_2_workers']:.0f} "
        f"({own['once_started']['batch_2_vs_1_worker']:.2f}x one worker): the fixed start-up is "
        f"what a job of minutes does not notice. Joining a cluster that is already running "
        f"(`{cluster['command']}`: `ray start --head` first) the fixed cost falls to "
        f"{min(c_first['batch_1_worker']):.1f} s: one worker is "
        f"{cluster['batch_1_worker_vs_classify']:.2f}x classify end to end "
        f"({cluster['once_started']['batch_1_worker_vs_classify']:.2f}x once started) and two "
        f"workers {cluster['batch_2_vs_1_worker']:.2f}x one "
        f"({cluster['once_started']['batch_2_vs_1_worker']:.2f}x once started: the head's own "
        f"processes share the {cluster['cores']} cores). Projected from that, a node runs one "
        f"worker a core at about {per_worker:.0f} such images a second, so a 16-core node "
        f"classifies about {round(16 * per_worker, -2):,.0f} images/s.", "", end("batch")])


# how each kind of the ONNX report runs, and the command that makes its file
_TARGETS = {
    "int8": ("LiteRT, CPU (Raspberry Pi, phones, laptops)",
             "fer-edge export --model models/ferplus.keras --quantize int8"),
    "onnx-int8": ("onnxruntime, CPU", "fer-edge export --model models/ferplus.keras "
                  "--target onnx --quantize int8"),
    "openvino-int8": ("OpenVINO, CPU (the same .onnx)", None),
    "onnx-float32": ("onnxruntime, CPU", "fer-edge export --model models/ferplus.keras "
                     "--target onnx --quantize float32"),
}


def targets() -> str:
    report, speed = json.loads(ONNX_EVAL.read_text()), json.loads(ONNX_SPEED.read_text())
    ethos = json.loads(ETHOS_U.read_text())
    runtime = {"int8": "LiteRT", "onnx-int8": "onnxruntime", "onnx-float32": "onnxruntime",
               "openvino-int8": "OpenVINO"}
    lines = [start("targets"), "",
             "| target | file | size | same answer as the int8 .tflite | FER+ majority | time "
             "per face | command |", "|---|---|---:|---:|---:|---:|---|"]
    for v in report["variants"]:
        if v["kind"] not in _TARGETS:
            continue
        where, command = _TARGETS[v["kind"]]
        ratio = speed["ratio_to_first"].get(f"{v['model']} ({runtime[v['kind']]})")
        command = f"`{command}`" if command else "the onnx-int8 file (evaluate runs it on " \
            "OpenVINO where `openvino` is installed)"
        lines.append(f"| {where} | `{Path(v['model']).name}` | {_size(v['size_bytes'])} | "
                     f"{_pct(v['agreement_with_reference'])} | {_pct(v['ferplus']['top1'])} | "
                     f"{'—' if ratio is None else f'{ratio:.2f}x'} | {command} |")
    for npu in ethos["npus"]:
        lines.append(f"| Arm {npu['npu']} NPU ({npu['clock_hz'] / 1e6:.0f} MHz, "
                     f"{npu['npu_share']:.0%} of operators on it) | `{npu['model']}` | "
                     f"{_size(npu['model_bytes'])} | (the int8 .tflite compiled) | — | "
                     f"{npu['inference_ms']:.2f} ms, Vela's estimate | `fer-edge export --model "
                     f"models/ferplus.keras --quantize int8 --target ethos-u` |")
    web = _web_row()
    lines += web[:1]
    kernels = _kernels_note()
    lines += ["", f"Answers and FER+ majority: PrivateTest ({report['n']:,} faces; "
              f"`{ONNX_EVAL.relative_to(REPO)}`, written by `fer-edge evaluate`). Time per face: "
              f"the model alone, 1 thread, batch 1, as a ratio to the int8 .tflite on LiteRT in "
              f"one interleaved run on {_host(speed)} (`{speed['command']}`); the NPUs' times are "
              f"Vela {ethos['vela']}'s estimates for its default system configuration of each "
              f"(`{ETHOS_U.relative_to(REPO)}`), not measured on a board.{kernels}", *web[1:], "",
              end("targets")]
    return "\n".join(lines)


def _kernels_note() -> str:
    """Why the int8 .onnx answers differ from the .tflite (benchmarks/int8_kernels.py), when
    its report is there."""
    if not KERNELS.exists():
        return ""
    pairs = json.loads(KERNELS.read_text())["pairs"]
    own = pairs["litert_xnnpack | litert_builtin"]["agreement"]
    return (f" The int8 .tflite itself gives the same answer under LiteRT's XNNPack and its "
            f"builtin kernels on {_pct(own)} of val faces (`{KERNELS.relative_to(REPO)}`): "
            f"int8 runtimes round a few activations a step apart, and that, not the export, is "
            f"what the .onnx's agreement measures (reports/onnx/README.md).")


def _web_row() -> list[str]:
    """The browser's row (benchmarks/web_photos.py and web_fps.py) and its note."""
    if not (WEB_PHOTOS.exists() and WEB_FPS.exists()):
        return []
    photos, fps = json.loads(WEB_PHOTOS.read_text()), json.loads(WEB_FPS.read_text())
    faces = sum(r["faces_classify"] for r in photos["results"].values())
    same = sum(r["faces_classify"] for r in photos["results"].values()
               if r["same_count"] and r["same_emotions"])
    runs = fps["results"].values()
    ratio = max(r["model_page_over_litert"] for r in runs)
    rates = ", ".join(f"{n} face{'s' if n != '1' else ''}: {r['fps']:.0f}"
                      for n, r in fps["results"].items())
    row = (f"| the browser: LiteRT.js {photos['litert_js']} on WebAssembly (any phone or laptop, "
           f"nothing installed) | `web/model.tflite` | {_size(photos.get('model_bytes'))} | "
           f"{same} / {faces} faces of {photos['photos']} photos (classify's count, emotion "
           f"and box) | (the int8 .tflite, float ends) | {ratio:.2f}x | `fer-edge export "
           f"--model models/ferplus_int8.tflite --target web` |")
    note = ("", f"The browser: the page `export --target web` writes, in "
            f"{photos['browser']}: each photo of `../shared/photos` through `index.html?image=` "
            f"against `fer-edge classify` (`{photos['command']}`, "
            f"`{WEB_PHOTOS.relative_to(REPO)}`: boxes within {photos['max_box_px']} px, scores "
            f"within {photos['max_score_diff']}); time per face is the model alone in the page "
            f"against LiteRT in Python, interleaved (the slowest of the runs). Frames per second "
            f"on a fake camera ({fps['camera']}), the page finding, classifying and drawing "
            f"every face: {rates} (goal {fps['goal_fps']}; {fps['frame_loop']}; `{fps['command']}`, "
            f"`{WEB_FPS.relative_to(REPO)}`, on {_host(fps)}{_shared_note(fps)}).")
    return [row, *note]


def _shared_note(report: dict) -> str:
    """What a run on a shared CPU says: its rate per CPU second of the browser's processes."""
    per_cpu = [r.get("fps_per_cpu_second") for r in report["results"].values()]
    if not report.get("shared_cpu") or None in per_cpu:
        return ""
    return (f", its CPU shared with a training: {min(per_cpu):.0f}-{max(per_cpu):.0f} frames per "
            f"second of Chromium's own CPU time")


BLOCKS = {"results": table, "detectors": detectors, "alignment": alignment, "batch": batch,
          "targets": targets}


def rewrite(text: str, block: str, name: str = "results") -> str:
    first, last = start(name), end(name)
    if first not in text or last not in text:
        raise SystemExit(f"{README}: no {name} markers ({first} ... {last})")
    head, rest = text.split(first, 1)
    return head + block + rest.split(last, 1)[1]


def rewrite_all(text: str) -> str:
    for name, make in BLOCKS.items():
        text = rewrite(text, make(), name)
    return text


def main(check: bool = False):
    text = README.read_text()
    new = rewrite_all(text)
    if check:
        if new != text:
            sys.exit("README.md's measured figures are stale: run "
                     "python benchmarks/readme_results.py")
        return
    README.write_text(new)


if __name__ == "__main__":
    import fire

    fire.Fire(main)
