# Nsight Compute on the walks of issue 12 (one device call), each report into $OUT as text:
#   OUT=/some/folder bash benchmarks/gpu_ncu.sh
# For each (op, spec, kernel) of RUNS, ncu reads one launch (the third) of the kernel with the sections that say
# whether it waits on memory (throughput of DRAM / L2 / L1 against their peaks, L2 hit rate) or on latency
# (warp stall reasons). Clocks are left alone (--clock-control none).
set -x
ln -sfn ../kernels glrtheory/kernels
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1)
RUNS=${RUNS:-"scan-forward:power2:forward_walk scan-forward:ssm:forward_walk scan-forward:power2:chunk_inverse scan-backward:power2:backward_walk readout-forward:ssm:boundary_walk readout-forward:ssm:chunk_output"}
for r in $RUNS; do
  IFS=: read op spec kernel <<< "$r"
  timeout ${CAP_EACH:-90} $NCU --clock-control none -k regex:"^$kernel\$" --launch-skip 2 --launch-count 1 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy \
    --section LaunchStats --section SchedulerStats \
    python benchmarks/gpu_ncu.py $op $spec --repeat 3 > $OUT/ncu_${op}_${spec}_${kernel}.txt 2>&1
  echo "$r rc $?"
  grep -E "Duration|Throughput|Hit Rate|Registers|Achieved Occupancy|Stall|Warp Cycles Per Issued|Issued Warp" \
    $OUT/ncu_${op}_${spec}_${kernel}.txt | head -30
done
