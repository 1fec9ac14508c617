#!/usr/bin/env bash
# One checkpoint through reports/ferplus8/RULE.md, each step the command the rule
# names: full-int8 export (the committed calibration manifest), val report of it, its float
# twin and the current default, the outside sets, per-face time beside fer's (run it with
# nothing else on the CPU: gate 2 is a timing), then the rule's verdict.
#
#   benchmarks/score_candidate.sh CHECKPOINT.keras OUT [DATA] [SETS]
#   ON=fer2013 benchmarks/score_candidate.sh ...   # the FER2013-label model's rule, against
#                                                  # models/fer_int8.tflite
#
# OUT must not exist (export refuses to overwrite); DATA defaults to ../shared/fer2013, SETS
# (benchmarks/outside_faces.md, "Reproduce") to ~/fer-edge-outside. Writes OUT/val.json,
# OUT/outside.json, OUT/latency.json and OUT/rule.json; prints the verdict.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 CHECKPOINT.keras OUT [DATA] [SETS]" >&2; exit 2; }
ckpt=$1 out=$2 data=${3:-../shared/fer2013} sets=${4:-$HOME/fer-edge-outside}
on=${ON:-ferplus}
case $on in
    ferplus) current=models/ferplus_int8.tflite ;;
    fer2013) current=models/fer_int8.tflite ;;
    *) echo "ON must be ferplus or fer2013, not $on" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
[ -e "$out" ] && { echo "$out exists: give a new folder" >&2; exit 2; }
[ -d "$sets" ] || { echo "$sets: no outside sets (benchmarks/outside_faces.md, Reproduce)" >&2; exit 2; }

fer-edge export --model "$ckpt" --quantize all --out "$out" --data "$data"
fer-edge evaluate --data "$data" --split val --format json \
    --models "$current" "$out/fer_int8.tflite" "$out/fer_float32.tflite" > "$out/val.json"
python benchmarks/outside_faces.py score --sets "$sets" \
    --models "$current,$out/fer_int8.tflite" --out "$out/outside.json"
python benchmarks/peer_latency.py --models "$current,$out/fer_int8.tflite" \
    --out "$out/latency.json"
python benchmarks/rule_ferplus8.py --val "$out/val.json" --outside "$out/outside.json" \
    --latency "$out/latency.json" --current "$current" --on "$on" --out "$out/rule.json"
