"""Metrics and plots shared by `train` and `evaluate` (numpy + scikit-learn + seaborn)."""

from __future__ import annotations

import numpy as np

from .edge.fileio import atomic_path
from .edge.preprocessing import LABELS


def confusion(y_true, y_pred) -> np.ndarray:
    cm = np.zeros((len(LABELS), len(LABELS)), np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def summary(y_true, y_pred) -> dict:
    """top-1, macro-F1, per-class accuracy (recall) and the confusion matrix."""
    from sklearn.metrics import f1_score

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    cm = confusion(y_true, y_pred)
    support = cm.sum(1)
    recall = np.divide(np.diag(cm), support, out=np.zeros(len(LABELS)), where=support > 0)
    return {
        "n": int(len(y_true)),
        "top1": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=range(len(LABELS)), average="macro",
                                   zero_division=0)),
        "per_class_accuracy": {lab: float(r) for lab, r in zip(LABELS, recall)},
        "confusion_matrix": cm.tolist(),
    }


def classification_report(y_true, y_pred) -> str:
    from sklearn.metrics import classification_report as skl

    return skl(y_true, y_pred, labels=range(len(LABELS)), target_names=list(LABELS), digits=4,
               zero_division=0)


def can_plot() -> bool:
    """Whether the pictures can be drawn: matplotlib, seaborn and pandas are the training extra's,
    and an accelerator machine may lack them (the numbers are written all the same)."""
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("matplotlib", "seaborn", "pandas"))


def _savefig(fig, path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_confusion(cm, title: str, path) -> None:
    plt = _plt()
    import seaborn as sns

    cm = np.asarray(cm, float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    for ax, data, fmt, sub in ((axes[0], cm, ".0f", "counts"), (axes[1], norm, ".2f", "row-normalised")):
        sns.heatmap(data, annot=True, fmt=fmt, cmap="Blues", cbar=False, ax=ax,
                    xticklabels=LABELS, yticklabels=LABELS)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(sub)
    fig.suptitle(title)
    _savefig(fig, path)


def plot_history(history_csv, path) -> None:
    """Accuracy and loss curves (train, val and, when tracked, test) from CSVLogger's file."""
    import pandas as pd
    import seaborn as sns

    plt = _plt()
    df = pd.read_csv(history_csv)
    if df.empty:
        return
    df["epoch"] = df["epoch"] + 1
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        cols = [c for c in (metric, f"val_{metric}", f"test_{metric}") if c in df]
        long = df.melt(id_vars="epoch", value_vars=cols, var_name="split", value_name="value")
        long["split"] = long["split"].map(lambda c: c.split("_")[0] if "_" in c else "train")
        sns.lineplot(data=long, x="epoch", y="value", hue="split", marker="o", ax=ax)
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    _savefig(fig, path)


def plot_tradeoff(variants: list[dict], path) -> None:
    """Accuracy vs batch-1 latency, marker area proportional to file size."""
    from pathlib import Path as _P

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sizes = np.array([v["size_bytes"] for v in variants], float)
    area = 60 + 940 * sizes / max(sizes.max(), 1)
    for v, a in zip(variants, area):
        ax.scatter(v["latency_ms"]["p50"], v["top1"] * 100, s=a, alpha=0.6)
        ax.annotate(f"{_P(v['model']).name}{' +TTA' if v.get('tta') else ''}\n"
                    f"{v['size_bytes'] / 1024:.0f} KB",
                    (v["latency_ms"]["p50"], v["top1"] * 100), fontsize=8,
                    xytext=(6, 6), textcoords="offset points")
    ax.set_xlabel("p50 latency per face, batch 1 (ms)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("accuracy vs latency (marker area ~ file size)")
    ax.grid(alpha=0.3)
    _savefig(fig, path)
