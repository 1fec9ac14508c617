#!/usr/bin/env bash
# One device call (issue 12's seed run, issue 15's teachers and students), run from the repo root
# on a machine with PyTorch but no TensorFlow; outputs under $OUT. Prepared here beforehand:
#   python gpu/pack.py --data ../shared/fer2013 --out .gpu/data
#   pip download keras==3.15.1 namex==0.1.0 optree==0.20.0 fire==0.7.1 termcolor==3.3.0 -> .whl
# and called with carry [.gpu, .whl]. Phase A: the seed recipe beside four teachers; phase B:
# the students, distilled from the teachers' ensemble, beside the same student without teacher.
set -u
OUT=${OUT:-/tmp/out}
W=/tmp/runs
mkdir -p "$W" "$OUT"
T0=$(date +%s)
left() { echo $(( $1 - ($(date +%s) - T0) )); }   # seconds left until script second $1
# A dry run elsewhere: DRY=1 (no wheels, 256 images a split, a 150 s timeline)
TEACH_END=200 END=530
if [ -n "${DRY:-}" ]; then TEACH_END=50 END=130; LIMIT="--limit 256"; else
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site; nvidia-smi -L; fi
export KERAS_BACKEND=torch PYTHONUNBUFFERED=1
nproc
T="python3 gpu/train.py run --packed .gpu/data ${LIMIT:-}"

collect() {   # small outputs only: histories, configs, probabilities, students' weights, logs
  tar -C "$W" -czf "$OUT/runs.tgz.tmp" --exclude='t_resnet*/best.keras' --exclude='t_vgg_xl/best.keras' --exclude='seed/best.keras' . \
    && mv "$OUT/runs.tgz.tmp" "$OUT/runs.tgz"
}
( while sleep 30; do collect; done ) &
COLLECTOR=$!

# Phase A (teachers until second TEACH_END, the seed run until END)
$T --arch seed --out $W/seed --time-budget $(left $END) > $W/seed.log 2>&1 &
SEED=$!
$T --arch teacher_resnet --out $W/t_resnet --time-budget $(left $TEACH_END) > $W/t_resnet.log 2>&1 &
$T --arch teacher_resnet --seed 1 --out $W/t_resnet1 --time-budget $(left $TEACH_END) > $W/t_resnet1.log 2>&1 &
$T --arch teacher_vgg_xl --out $W/t_vgg_xl --time-budget $(left $TEACH_END) > $W/t_vgg_xl.log 2>&1 &
$T --arch teacher_vgg --batch-size 128 --out $W/t_vgg --time-budget $(left $TEACH_END) > $W/t_vgg.log 2>&1 &
for j in $(jobs -p); do [ "$j" = "$SEED" ] || [ "$j" = "$COLLECTOR" ] || wait "$j"; done
echo "teachers done at $(( $(date +%s) - T0 )) s"; tail -n 2 $W/t_*.log
TEACHERS=$W/t_resnet/best.keras,$W/t_resnet1/best.keras,$W/t_vgg_xl/best.keras,$W/t_vgg/best.keras

# Phase B (students until second END; the ensemble report beside them)
B=$(left $END)
$T --arch edge_fast --batch-size 128 --teacher $TEACHERS --out $W/s_fast_kd --time-budget $B > $W/s_fast_kd.log 2>&1 &
S1=$!
$T --arch edge_fast --batch-size 128 --teacher $TEACHERS --distill-weight 0.9 --temperature 4 --out $W/s_fast_kd9 --time-budget $B > $W/s_fast_kd9.log 2>&1 &
S2=$!
$T --arch edge_fast_s --batch-size 128 --teacher $TEACHERS --out $W/s_small_kd --time-budget $B > $W/s_small_kd.log 2>&1 &
S3=$!
$T --arch edge_fast --batch-size 128 --match-epochs $W/s_fast_kd --out $W/s_fast_plain > $W/s_fast_plain.log 2>&1 &
S4=$!
python3 gpu/train.py ensemble --packed .gpu/data ${LIMIT:-} --runs $W/t_resnet,$W/t_resnet1,$W/t_vgg_xl,$W/t_vgg \
    --out $W/teachers_ensemble.json > $W/ensemble.log 2>&1
wait $S1 $S2 $S3 $S4 $SEED
echo "all done at $(( $(date +%s) - T0 )) s"
[ -f $W/seed/best.keras ] && python3 gpu/train.py seed-weights $W/seed $OUT/seed_weights
kill $COLLECTOR; collect
tail -n 3 $W/*.log
ls -la "$OUT"
