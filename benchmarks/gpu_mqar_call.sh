#!/usr/bin/env bash
# Lab sweeps in one device call on one GPU, every shard at once. SWEEPS lists name:shards (configs/lab/<name>.toml),
# or name:shards:seeds to run only those seeds (comma-separated) of the sweep (its sweep.json then lists those
# seeds alone: keep the committed one, which lists the config's);
# the cells already in benchmarks/results/lab/<name>/ are copied in, so only the missing ones run. Device call 184:
#   OUT=... CALL=184 SWEEPS="h200_mqar_timescales:6 h200_mqar_wide:8 h200_mqar:1" LIMIT=280 bash benchmarks/gpu_mqar_call.sh
# and h200_mqar_wide's 18 missing cells (the mixers without timescales, added after call 184, among them); calls 185
# and 186 were refused, and device call 188 ran them in 18 shards (16 finished: two shards held two missing cells and
# started no second one after LIMIT; a cell a shard needs as many shards as the sweep has cells, 28):
#   OUT=... CALL=187 SWEEPS="h200_mqar_wide:18" LIMIT=30 WAIT=500 bash benchmarks/gpu_mqar_call.sh
# Each shard starts no cell after LIMIT seconds (one then running has WAIT s more); the new cells land in
# $OUT/call<CALL>/<name>/cells-*.jsonl beside the shards' logs, all in $OUT/call<CALL>.tgz; on the development
# machine they are committed as the folder's cells-call<CALL>.jsonl, and `glr lab report` (with sweep.json and
# machine.json) reads them.
set -uo pipefail
cd "$(dirname "$0")/.."
ln -sfn ../kernels glrtheory/kernels
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
LIMIT=${LIMIT:-280} WAIT=${WAIT:-240} DEST=$OUT/call$CALL
S=$(date +%s)
for entry in $SWEEPS; do
  IFS=: read -r name shards seeds extra <<< "$entry"
  if [[ -n "$extra" || ! "$shards" =~ ^[1-9][0-9]*$ ]]; then
    echo "SWEEPS entry '$entry' is not name:shards or name:shards:seeds" >&2; exit 2
  fi
  out=$DEST/$name
  mkdir -p "$out"
  cat benchmarks/results/lab/"$name"/cells*.jsonl > "$out/cells-done.jsonl" 2>/dev/null
  for ((i = 0; i < shards; i++)); do
    timeout $((LIMIT + WAIT)) python -m glrtheory.lab run "configs/lab/$name.toml" --out "$out" --shard "$i/$shards" \
      --time-limit "$LIMIT" --quiet --no-report ${seeds:+--seeds "$seeds"} > "$out/shard$i.log" 2>&1 &
  done
done
wait
rm -rf "$DEST"/*/cells-done.jsonl "$DEST"/*/checkpoints
echo "sweeps took $(( $(date +%s) - S )) s"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
for d in "$DEST"/*/; do echo "$d: $(cat "$d"/cells*.jsonl 2>/dev/null | wc -l) new cells"; done
tar -C "$OUT" -czf "$OUT/call$CALL.tgz" "call$CALL" && rm -rf "$DEST"
