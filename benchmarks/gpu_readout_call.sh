# One device call for the Triton matrix-state readout (issue 12), everything into $OUT:
#   OUT=/some/folder bash benchmarks/gpu_readout_call.sh
# READOUT_FLAGS (default "--skip-tune --fla-shapes") go to gpu_readout.py (e.g. "--tune-backward", or none to
# sweep the forward's settings); BACKENDS=triton times only the Triton rows; PYTEST_K picks tests (set but empty:
# all; PYTEST_FILES: other test files than the readout's and the scan's Triton tests; PYTEST_ARGS: more of pytest's,
# e.g. "-n 6" with pytest-xdist and execnet carried in .whl/); LAYER=1 then also runs gpu_layer.py (the
# GLRMixer(readout=True) layer against nn.MultiheadAttention) into layer.json, LAYER_FLAGS going to it (e.g.
# "--specs ssm,fenwick,blocks"); SCAN=1 first runs gpu_tune.py (the vector-state scan: power2 and ssm,
# per-kernel profile) into tune.json, SCAN_FLAGS (e.g. "--inverses") going to it. CAP_READOUT, CAP_TESTS,
# CAP_LAYER, CAP_SCAN: each part's seconds (default 330, 200, 150, 100; together over one 600 s command).
# Since call137 fla's log-linear attention runs (2-32 ms a call): gpu_readout.py with --fla-shapes then runs past
# the cap (call137, cut at 450 s after four of the six shapes); time fla's shapes apart with
# `python benchmarks/gpu_fla.py` (409 s in call138).
# gpu_readout.py (torch vs Triton forward and forward + backward at B2 T16384 H16 D128 bf16, fla's
# chunk_simple_gla, per-kernel profiles, fla's shapes), then the readout's CUDA tests and the scan's
# full-size CUDA tests for ssm and fenwick (the scan shares chunk_inverse). Wheels in .whl/ (fla-core) are
# installed first; glrtheory.kernels is imported from source through a symlink, as in gpu_session.sh.
set -x
ln -sfn ../kernels glrtheory/kernels
python -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl > /dev/null 2>&1
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi -L
if [ "${SCAN:-0}" = 1 ]; then
  timeout ${CAP_SCAN:-100} python benchmarks/gpu_tune.py ${SCAN_FLAGS:-} --out $OUT/tune.json > $OUT/tune.log 2>&1; echo "scan rc $?"
  grep -v Warn $OUT/tune.log | cut -c1-400
fi
timeout ${CAP_READOUT:-330} python benchmarks/gpu_readout.py ${READOUT_FLAGS---skip-tune --fla-shapes} \
  --backends "${BACKENDS:-torch,triton}" \
  --out $OUT/readout.json > $OUT/readout.log 2>&1; echo "readout rc $?"
timeout ${CAP_TESTS:-200} python -m pytest -p no:cacheprovider -q -m "gpu or not gpu" ${PYTEST_ARGS:-} \
  ${PYTEST_FILES:-tests/test_readout_triton.py tests/test_kernels_triton.py} -k "${PYTEST_K-test_readout_triton or (full_size and (ssm or fenwick))}" > $OUT/pytest.txt 2>&1
echo "pytest rc $?"
tail -5 $OUT/pytest.txt; tail -30 $OUT/readout.log
if [ "${LAYER:-0}" = 1 ]; then
  timeout ${CAP_LAYER:-150} python benchmarks/gpu_layer.py ${LAYER_FLAGS:-} --out $OUT/layer.json > $OUT/layer.log 2>&1; echo "layer rc $?"
  tail -12 $OUT/layer.log
fi
