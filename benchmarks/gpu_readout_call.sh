# One device call for the Triton matrix-state readout (issue 12), everything into $OUT:
#   OUT=/some/folder bash benchmarks/gpu_readout_call.sh
# READOUT_FLAGS (default "--skip-tune --fla-shapes") go to gpu_readout.py (e.g. "--tune-backward", or none to
# sweep the forward's settings); BACKENDS=triton times only the Triton rows; PYTEST_K picks tests; LAYER=1 then
# also runs gpu_layer.py (the GLRMixer(readout=True) layer against nn.MultiheadAttention) into layer.json.
# gpu_readout.py (torch vs Triton forward and forward + backward at B2 T16384 H16 D128 bf16, fla's
# chunk_simple_gla, per-kernel profiles, fla's shapes), then the readout's CUDA tests and the scan's
# full-size CUDA tests for ssm and fenwick (the scan shares chunk_inverse). Wheels in .whl/ (fla-core) are
# installed first; glrtheory.kernels is imported from source through a symlink, as in gpu_session.sh.
set -x
ln -sfn ../kernels glrtheory/kernels
python -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl > /dev/null 2>&1
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi -L
timeout 330 python benchmarks/gpu_readout.py ${READOUT_FLAGS---skip-tune --fla-shapes} \
  --backends "${BACKENDS:-torch,triton}" \
  --out $OUT/readout.json > $OUT/readout.log 2>&1; echo "readout rc $?"
timeout 200 python -m pytest -p no:cacheprovider -q -m "gpu or not gpu" tests/test_readout_triton.py \
  tests/test_kernels_triton.py -k "${PYTEST_K:-test_readout_triton or (full_size and (ssm or fenwick))}" > $OUT/pytest.txt 2>&1
echo "pytest rc $?"
tail -5 $OUT/pytest.txt; tail -30 $OUT/readout.log
if [ "${LAYER:-0}" = 1 ]; then
  timeout 150 python benchmarks/gpu_layer.py --out $OUT/layer.json > $OUT/layer.log 2>&1; echo "layer rc $?"
  tail -12 $OUT/layer.log
fi
