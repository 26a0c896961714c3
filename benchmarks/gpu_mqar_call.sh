#!/usr/bin/env bash
# One device call of MQAR sweeps on one GPU, all shards at once (device call 184):
#   configs/lab/h200_mqar_timescales.toml (6 shards), configs/lab/h200_mqar_wide.toml (8 shards), and the cell that
#   configs/lab/h200_mqar.toml still lacks (attention at K = 64: its finished cells are copied in, so only that runs).
# Each shard starts no cell after LIMIT seconds (one then running has 240 s more); the cells land in
# $OUT/call184/<sweep>/cells-*.jsonl beside the shards' logs, all in $OUT/call184.tgz; on the development machine,
# `glr lab report` on each folder (with sweep.json and machine.json).
#   OUT=... LIMIT=280 bash benchmarks/gpu_mqar_call.sh
set -uo pipefail
cd "$(dirname "$0")/.."
ln -sfn ../kernels glrtheory/kernels
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
LIMIT=${LIMIT:-280} DEST=$OUT/call184
sweep() {  # name shards
  local out=$DEST/$1
  mkdir -p "$out"
  for ((i = 0; i < $2; i++)); do
    timeout $((LIMIT + 240)) python -m glrtheory.lab run "configs/lab/$1.toml" --out "$out" --shard "$i/$2" \
      --time-limit "$LIMIT" --quiet --no-report > "$out/shard$i.log" 2>&1 &
  done
}
mkdir -p "$DEST/h200_mqar"
cp benchmarks/results/lab/h200_mqar/cells.jsonl "$DEST/h200_mqar/cells-done.jsonl"
S=$(date +%s)
sweep h200_mqar_timescales 6
sweep h200_mqar_wide 8
sweep h200_mqar 1
wait
rm -f "$DEST/h200_mqar/cells-done.jsonl"
rm -rf "$DEST"/*/checkpoints
echo "sweeps took $(( $(date +%s) - S )) s"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
for d in "$DEST"/*/; do echo "$d: $(cat "$d"/cells-*.jsonl 2>/dev/null | wc -l) cells"; done
tar -C "$OUT" -czf "$OUT/call184.tgz" call184 && rm -rf "$DEST"
