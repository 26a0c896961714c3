#!/usr/bin/env bash
# Claim 7 at the H200 scale with three seeds: configs/lm/h200x2.toml (about 22.4M parameters, T = 1024, global
# batch 32 x 1024 bytes, lr 1.5e-3 for every pattern) for ssm, power2 and fenwick, seeds 0, 1, 2, each STEPS steps
# (380, as the one-seed run of h200x2.sh) on ONE GPU (micro-batches of 16, so the same global batch), seed by
# seed so that a cut run loses the last seed first; each run cut at PER_RUN seconds, all at BUDGET. One bundle per
# seed in $OUT (lm_h200_seed<S>.json):
#   OUT=/some/folder bash benchmarks/results/lm/h200_seeds.sh
# With the lag bias on every mixer (model.lag_bias), run folders and bundles tagged _lagbias:
#   OUT=/some/folder TAG=_lagbias EXTRA="--set model.lag_bias=true" bash benchmarks/results/lm/h200_seeds.sh
set -uo pipefail
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
PY=${PY:-python3}
OUT=${OUT:-lm_out}
BUDGET=${BUDGET:-450}
PER_RUN=${PER_RUN:-75}
STEPS=${STEPS:-380}
EXTRA=${EXTRA:-}                 # more --set options for every command (a small smoke test on the CPU)
TAG=${TAG:-}                     # a suffix of the run folders and bundles
CFG=configs/lm/h200x2.toml
mkdir -p "$OUT"
nvidia-smi -L 2>/dev/null; $PY -c 'import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.device_count())'
SET="$EXTRA --set train.steps=$STEPS --set train.warmup=$(( STEPS / 10 )) --set eval.every=$(( STEPS / 4 ))"
SET="$SET --set log.checkpoint_every=$STEPS"
for s in 0 1 2; do
  for p in ssm power2 fenwick; do
    left=$(( BUDGET - SECONDS )); [ "$left" -lt 5 ] && break 2
    t=$PER_RUN; [ "$left" -lt "$t" ] && t=$left
    timeout "$t" $PY -m glrtheory.lm train --config $CFG --pattern $p $SET --set train.seed=$s \
      --set "log.out_dir=\"runs/lm/h200${TAG}_seed$s\"" --no-progress | tail -1 || echo "$p seed $s: exit ${PIPESTATUS[0]}"
  done
  $PY -m glrtheory.lm collect --runs "runs/lm/h200${TAG}_seed$s" --out "$OUT/lm_h200${TAG}_seed$s.json"
done
echo "STEPS=$STEPS SET=$SET; total ${SECONDS}s"
