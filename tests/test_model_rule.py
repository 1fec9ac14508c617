"""benchmarks/rule_ferplus8.py applies reports/ferplus8/RULE.md: its gates, its score, and the
current default holding its place where the best candidate is below it anywhere."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from rule_ferplus8 import MAX_BYTES, judge  # noqa: E402


def report(rows):
    return {"variants": [{"model": m, "kind": k, "size_bytes": size, "top1": t,
                          "ferplus": {"top1": fp}} for m, k, size, t, fp in rows]}


CURRENT = "models/ferplus_int8.tflite"
VAL = report([
    (CURRENT, "int8", 377_140, 0.61, 0.84),
    ("r/a_int8.tflite", "int8", 300_000, 0.62, 0.86), ("r/a.keras", "float32", 1, 0.62, 0.861),
    ("r/b_int8.tflite", "int8", 300_000, 0.60, 0.90), ("r/b.keras", "float32", 1, 0.60, 0.91),
    ("r/c_int8.tflite", "int8", MAX_BYTES + 1, 0.70, 0.95), ("r/c.keras", "float32", 1, 0.7, 0.95),
    ("r/d_int8.tflite", "int8", 300_000, 0.60, 0.85), ("r/d.keras", "float32", 1, 0.6, 0.85),
])
OUTSIDE = {"results": {m: {"ckplus": {"score": ck}, "muxspace": {"score": mx},
                           "jaffe": {"score": 0.99 if m == "r/a_int8.tflite" else 0.1}}
                       for m, ck, mx in ((CURRENT, 0.72, 0.69), ("r/a_int8.tflite", 0.74, 0.70),
                                         ("r/b_int8.tflite", 0.75, 0.70),
                                         ("r/c_int8.tflite", 0.80, 0.80),
                                         ("r/d_int8.tflite", 0.745, 0.70))}}
LATENCY = {"ratio_to_fer": {"r/a_int8.tflite": 0.9, "r/b_int8.tflite": 0.8,
                            "r/c_int8.tflite": 0.5, "r/d_int8.tflite": 0.7}}


def test_each_gate_keeps_a_candidate_out():
    got = {r["model"]: r for r in judge(VAL, OUTSIDE, LATENCY, CURRENT)["ranked"]}
    assert got["r/c_int8.tflite"]["gates"] == {"size": False, "time": True, "int8": True}
    assert got["r/b_int8.tflite"]["gates"]["int8"] is False       # 1 point lost in int8
    assert got["r/b_int8.tflite"]["int8_drop"] == 0.01
    assert got["r/a_int8.tflite"]["passes"] and got["r/d_int8.tflite"]["passes"]
    untimed = judge(VAL, OUTSIDE, {"ratio_to_fer": {}}, CURRENT)["ranked"]
    assert not any(r["gates"]["time"] for r in untimed)           # no timing: no pass


def test_the_score_is_half_val_half_the_deciding_outside_sets_and_ties_go_to_the_faster():
    result = judge(VAL, OUTSIDE, LATENCY, CURRENT)
    assert result["sets"] == ["ckplus", "muxspace"]               # jaffe decides nothing
    a = next(r for r in result["ranked"] if r["model"] == "r/a_int8.tflite")
    assert a["score"] == round(0.5 * 0.86 + 0.5 * (0.74 + 0.70) / 2, 4)
    # a scores 0.79, d 0.78625: 0.00375 apart, more than the tie of 0.002: a ships
    assert result["best_candidate"] == "r/a_int8.tflite" and result["ships"] == "r/a_int8.tflite"
    closer = judge(VAL, {"results": {**OUTSIDE["results"], "r/d_int8.tflite": {
        "ckplus": {"score": 0.75}, "muxspace": {"score": 0.708}}}}, LATENCY, CURRENT)
    assert closer["best_candidate"] == "r/d_int8.tflite"          # 0.7895 vs 0.79, faster


def test_the_current_default_stays_if_the_best_is_below_it_anywhere():
    outside = {"results": {**OUTSIDE["results"],
                           CURRENT: {"ckplus": {"score": 0.76}, "muxspace": {"score": 0.60}}}}
    result = judge(VAL, outside, LATENCY, CURRENT)
    assert result["best_candidate"] == "r/a_int8.tflite"
    assert result["held_back_by"] == ["ckplus"] and result["ships"] == CURRENT
