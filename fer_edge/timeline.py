"""`fer-edge timeline`: a picture of a video's emotions over time, from `classify --format json`
lines. One PNG per video and track (each emotion's score over time, the winning emotion as a band
along the top), and the per-track summary table. Needs matplotlib (the `plot` extra); `classify`
never does."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from .edge import fileio, track
from .errors import FerEdgeError
from .edge.preprocessing import LABELS
from .edge.outputs import print_summary, summary_rows

# One colour per emotion, the same in every picture and on serve's live page (a test keeps
# fer_edge/serve/assets/index.html's COLOURS equal to these).
EMOTION_COLOURS = {"angry": "#d62728", "disgust": "#8c564b", "fear": "#9467bd",
                   "happy": "#2ca02c", "sad": "#1f77b4", "surprise": "#ff7f0e",
                   "neutral": "#7f7f7f", "contempt": "#e377c2"}


def read_records(path) -> list[dict]:
    """classify's JSON lines ('-' for stdin); one clear error for a line that is not one."""
    stream = sys.stdin if str(path) == "-" else None
    try:
        lines = (stream or open(path, encoding="utf-8")).read().splitlines()
    except OSError as e:
        raise FerEdgeError(f"cannot read {path}: {e.strerror or e}") from None
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            rec["file"], rec["faces"]  # noqa: B018 (both keys must be there)
        except (ValueError, KeyError, TypeError):
            raise FerEdgeError(f"{path}:{n} is not a line of `fer-edge classify --format json`")\
                from None
        records.append(rec)
    return records


def track_series(records) -> dict[tuple[str, int], list[tuple[float, dict]]]:
    """(video, track) -> [(time, scores)] in time order."""
    series = defaultdict(list)
    for rec in records:
        if rec.get("frame") is None:
            continue
        for face in rec["faces"]:
            series[(rec["file"], face.get("track"))].append((rec["time"], face["scores"]))
    return {k: sorted(v, key=lambda p: p[0]) for k, v in series.items()}


def plot_track(points, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [t for t, _ in points]
    labels = [lab for lab in points[0][1]]
    fig, (band, ax) = plt.subplots(2, 1, figsize=(9, 3.6), sharex=True,
                                   gridspec_kw={"height_ratios": [1, 6]})
    winners = [max(s, key=s.get) for _, s in points]
    step = min((b - a for a, b in zip(times, times[1:]) if b > a), default=1.0)
    for t, w in zip(times, winners):
        band.axvspan(t - step / 2, t + step / 2, color=EMOTION_COLOURS.get(w, "black"), lw=0)
    band.set_yticks([])
    band.set_ylabel("top", rotation=0, ha="right", va="center")
    for lab in labels:
        ax.plot(times, [s[lab] for _, s in points], label=lab, lw=1.5,
                color=EMOTION_COLOURS.get(lab))
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("score")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    band.set_title(title, fontsize=10)
    fig.tight_layout()
    with fileio.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _png_names(keys) -> list[str]:
    """clip_track1.png for (clip.mp4, 1); the whole name (clip.mp4_track1.png) only where two
    videos share a stem."""
    stems = {v: Path(v).stem.replace(":", "_") or "video" for v, _ in keys}
    shared = {s for s in stems.values() if list(stems.values()).count(s) > 1}
    return [f"{Path(v).name.replace(':', '_') if stems[v] in shared else stems[v]}_track{tid}.png"
            for v, tid in keys]


def timeline(results, out, force: bool = False, summary_out=None) -> list[Path]:
    """Write a timeline PNG per (video, track) of `results` (classify's JSON lines) into `out`
    with the summary (summary.json, and printed as a table); returns the PNG paths."""
    from . import options

    options.check("timeline", {"results": results, "out": out, "force": force})
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise FerEdgeError("timeline needs matplotlib: pip install 'fer-edge[plot]'") from None
    records = read_records(results)
    series = track_series(records)
    if not series:
        raise FerEdgeError(f"{results} has no video frame with a face (run classify on a video "
                           f"with --format json)")
    out = Path(out)
    paths = [out / name for name in _png_names(series)]
    summary_path = out / "summary.json"
    for p in (*paths, summary_path):      # every name checked before the first is written
        fileio.check_writable(p, force)
    groups = track.summarize(records)
    for ((video, tid), points), path in zip(series.items(), paths):
        g = next(g for g in groups if g.file == video and g.track == tid)
        mostly = f"mostly {g.dominant}" if g.dominant else "no dominant emotion"
        plot_track(points, f"{video}  track {tid}: {g.frames} frames, {mostly}", path)
    names = list(next(iter(series.values()))[0][1]) or list(LABELS)
    fileio.write_json(summary_path, summary_rows(groups, names))
    print_summary(groups, names, summary_out or sys.stdout)
    return paths
