#!/usr/bin/env bash
# Claim 7's seed spread on the CPU: configs/lm/cpu_seeds.toml (ssm, power2, fenwick; d_model 64, 2 layers,
# T = 256, 1000 steps of 16 x 256 bytes, cosine to lr / 10) for the learning rates 1e-3, 3e-3, 1e-2, 3e-2 and the
# seeds 0, 1, 2: the same grid for every pattern. Two processes at a time on the 2-core machine, one torch
# thread each; a run whose result.json exists is not run again. One bundle per (lr, seed) beside this script.
#   bash benchmarks/results/lm/cpu_seeds.sh
# With TIMESCALES=lo,hi the gates start at 1 - 1/tau (model.timescales = [lo, hi]), into runs and bundles tagged
# _ts<lo>-<hi>; LRS="1e-2" runs part of the grid:
#   TIMESCALES=4,256 LRS="3e-3 1e-2" bash benchmarks/results/lm/cpu_seeds.sh
# With LAG_BIAS=1 the mixers' scores get a learned bias per lag bucket (model.lag_bias), tagged _lagbias:
#   LAG_BIAS=1 bash benchmarks/results/lm/cpu_seeds.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PY:-python}
read -r -a LRS <<< "${LRS:-1e-3 3e-3 1e-2 3e-2}"
TAG= SETS=()
if [ -n "${TIMESCALES:-}" ]; then TAG="_ts${TIMESCALES/,/-}" SETS=(--set "model.timescales=[$TIMESCALES]"); fi
if [ -n "${LAG_BIAS:-}" ]; then TAG="${TAG}_lagbias" SETS+=(--set model.lag_bias=true); fi
train() {  # lr seed pattern
  local out="runs/lm/cpu_seeds$TAG/lr$1/seed$2"
  [ -f "$out/$3/result.json" ] && return 0
  OMP_NUM_THREADS=1 $PY -m glrtheory.lm train --config configs/lm/cpu_seeds.toml --pattern "$3" \
    --set train.lr="$1" --set train.min_lr="$($PY -c "print($1 / 10)")" --set train.seed="$2" \
    --set log.out_dir="$out" "${SETS[@]}" --no-progress
}
jobs=()
for lr in "${LRS[@]}"; do for s in 0 1 2; do for p in ssm power2 fenwick; do jobs+=("$lr $s $p"); done; done; done
for ((i = 0; i < ${#jobs[@]}; i += 2)); do
  train ${jobs[i]} & a=$!
  if (( i + 1 < ${#jobs[@]} )); then train ${jobs[i + 1]}; fi
  wait $a
done
for lr in "${LRS[@]}"; do for s in 0 1 2; do
  $PY -m glrtheory.lm collect --runs "runs/lm/cpu_seeds$TAG/lr$lr/seed$s" \
    --out "benchmarks/results/lm/lm_cpu${TAG}_lr${lr}_seed$s.json"
done; done
