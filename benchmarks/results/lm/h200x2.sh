#!/usr/bin/env bash
# The configs/lm/h200x2.toml run on one machine with 2 H200s, shortened to fit one device call of
# about 5 minutes (every pattern gets the same number of steps, computed from the measured speed):
#   OUT=/some/folder bash benchmarks/results/lm/h200x2.sh
# 1. scaling: power2, SCALE_STEPS=30 steps of the same global batch on 1 GPU and on 2 GPUs (tokens/s over the second half);
# 2. each pattern for STEPS steps on 2 GPUs (torchrun, NCCL, bf16 autocast), one torchrun per pattern,
#    each cut at PER_PATTERN seconds (a cut run keeps the evaluations it logged, marked "stopped");
# 3. decoding from each checkpoint with the cache at context 1024 (GLRMixer.step), cache vs cache_peak;
# 4. one JSON bundle of everything in $OUT (figures and tables: python -m glrtheory.lm report).
set -u
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
PY=${PY:-python3}
OUT=${OUT:-lm_out}
BUDGET=${BUDGET:-300}            # seconds for the whole script
PER_PATTERN=${PER_PATTERN:-33}   # seconds per pattern, torchrun start-up included
TRAIN_S=${TRAIN_S:-15}           # seconds of training per pattern the step count aims at
PATTERNS=${PATTERNS:-"ssm power2 fenwick blocks window:128 attention"}
SCALE_STEPS=${SCALE_STEPS:-30}   # steps of each scaling run (tokens/s over the second half)
MIN_STEPS=${MIN_STEPS:-40}
EXTRA=${EXTRA:-}                 # more --set options for every command (a small smoke test on the CPU)
CFG=configs/lm/h200x2.toml
mkdir -p "$OUT"
left() { echo $(( BUDGET - SECONDS )); }
# cap T [RESERVE]: T seconds, or what is left of the budget after RESERVE seconds, at least 1
cap() { local t=$1; local l=$(( $(left) - ${2:-0} )); [ "$l" -lt "$t" ] && t=$l; [ "$t" -lt 1 ] && t=1; echo "$t"; }
TRUN="$PY -m torch.distributed.run --standalone --nproc_per_node=2 -m glrtheory.lm"
nvidia-smi -L; $PY -c 'import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.device_count())'

S="$EXTRA --set train.steps=$SCALE_STEPS --set train.warmup=$(( SCALE_STEPS / 6 )) --set eval.every=$(( SCALE_STEPS / 2 )) --set eval.windows=16 --set log.checkpoint_every=1000"
timeout "$(cap 75)" $PY -m glrtheory.lm train --config $CFG --pattern power2 $S --set 'log.out_dir="runs/scale1"' --no-progress
timeout "$(cap 75)" $TRUN train --config $CFG --pattern power2 $S --set 'log.out_dir="runs/scale2"' --no-progress

STEPS=$($PY - "$TRAIN_S" "$MIN_STEPS" <<'PY'
import json, sys
try:
    last = json.loads(open("runs/scale2/power2/log.jsonl").read().splitlines()[-1])
    steps = float(sys.argv[1]) * last["tokens_per_s"] / (last["tokens"] / last["step"])
    print(max(int(sys.argv[2]), min(600, int(steps) // 10 * 10)))
except Exception:
    print(60)
PY
)
WARM=$(( STEPS / 10 )); EVERY=$(( STEPS / 4 ))
SET="$EXTRA --set train.steps=$STEPS --set train.warmup=$WARM --set eval.every=$EVERY --set log.checkpoint_every=$STEPS"
echo "steps per pattern: $STEPS (warmup $WARM, eval every $EVERY); $(left) s left"
for p in $PATTERNS; do
  timeout "$(cap $PER_PATTERN 45)" $TRUN train --config $CFG --pattern $p $SET --no-progress || echo "$p: exit $?"
done
timeout "$(cap 60)" $PY -m glrtheory.lm generate --config $CFG $SET --skip-missing --contexts 1024 --tokens 200 \
  > "$OUT/generate.jsonl" || echo "generate: exit $?"
$PY -m glrtheory.lm collect --runs runs/lm/h200x2 --scaling runs/scale1 runs/scale2 --out "$OUT/lm_h200x2.json"
echo "STEPS=$STEPS SET=$SET; total ${SECONDS}s"
