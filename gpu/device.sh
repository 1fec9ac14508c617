#!/usr/bin/env bash
# One device call for issues 12 and 15, run from the repo root on a lent GPU machine (PyTorch and
# JAX, no TensorFlow); outputs under $OUT. Prepared here beforehand:
#   python gpu/pack.py --data ../shared/fer2013 --out .gpu/data
#   pip download keras==3.15.1 namex==0.1.0 optree==0.20.0 fire==0.7.1 termcolor==3.3.0 -> .whl
# and called with carry [.gpu, .whl]. Keras on JAX (compiled steps: gpu/README.md's step times).
# Phase A: the seed recipe's 60 epochs beside three teachers; phase B: students distilled from
# the teachers' ensemble, beside the same student without a teacher (the same time budget).
# Every training is `fer-edge train` (python3 -m fer_edge.cli: nothing is installed there).
# The first call's version (five Keras-on-torch processes, too slow to use) is in git history.
set -u
OUT=${OUT:-/tmp/out}
W=/tmp/runs
mkdir -p "$W" "$OUT"
T0=$(date +%s)
left() { echo $(( $1 - ($(date +%s) - T0) )); }   # seconds left until script second $1
# A dry run elsewhere: DRY=1 (no wheels, 256 images a split, a timeline for a 2-core CPU)
TEACH_END=240 END=500
if [ -n "${DRY:-}" ]; then TEACH_END=300 END=540; LIMIT="--limit 256"; else
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site; nvidia-smi -L; fi
# every process allocates GPU memory as it needs it, instead of 75% of the card each
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
T="python3 -m fer_edge.cli train --data .gpu/data --verbose 2 ${LIMIT:-}"

collect() {   # small outputs only (a call returns 64 MiB): reports, logs, students' best.keras;
  # not the teachers' or the seed's weights (seed-weights below), nor any run's resume state
  tar -C "$W" -czf "$OUT/runs.tgz.tmp" --exclude='t_*/*.keras' --exclude='seed/*.keras' \
      --exclude='*/last.keras' --exclude='*/swa_*.npz' --exclude='*/logs' . \
    && mv "$OUT/runs.tgz.tmp" "$OUT/runs.tgz"
}
( while sleep 30; do collect; done ) &
COLLECTOR=$!

# Phase A
$T --arch seed --out $W/seed --time-budget $(left $END) > $W/seed.log 2>&1 &
SEED=$!
$T --arch teacher_resnet --out $W/t_resnet --time-budget $(left $TEACH_END) > $W/t_resnet.log 2>&1 &
$T --arch teacher_resnet --seed 1 --out $W/t_resnet1 --time-budget $(left $TEACH_END) > $W/t_resnet1.log 2>&1 &
$T --arch teacher_vgg_xl --out $W/t_vgg_xl --time-budget $(left $TEACH_END) > $W/t_vgg_xl.log 2>&1 &
for j in $(jobs -p); do [ "$j" = "$SEED" ] || [ "$j" = "$COLLECTOR" ] || wait "$j"; done
echo "teachers done at $(( $(date +%s) - T0 )) s"
TEACHERS=$W/t_resnet/best.keras,$W/t_resnet1/best.keras,$W/t_vgg_xl/best.keras

# Phase B
B=$(left $END)
$T --arch edge_fast --epochs 300 --teacher $TEACHERS --out $W/s_fast_kd --time-budget $B > $W/s_fast_kd.log 2>&1 &
S1=$!
$T --arch edge_fast --epochs 300 --out $W/s_fast_plain --time-budget $B > $W/s_fast_plain.log 2>&1 &
S2=$!
$T --arch edge_fast_s --epochs 300 --teacher $TEACHERS --out $W/s_small_kd --time-budget $B > $W/s_small_kd.log 2>&1 &
S3=$!
python3 benchmarks/teachers.py --data .gpu/data --models $TEACHERS \
    --out $W/teachers_ensemble.json > $W/ensemble.log 2>&1
wait $S1 $S2 $S3 $SEED
echo "all done at $(( $(date +%s) - T0 )) s"
[ -f $W/seed/best.keras ] && python3 gpu/weights.py seed-weights $W/seed $OUT/seed_weights
kill $COLLECTOR; collect
for f in $W/*.log; do echo "== $f"; grep -v '^{"epoch"' "$f" | tail -n 3; done
ls -la "$OUT"
