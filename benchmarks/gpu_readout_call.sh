set -x
ln -sfn ../kernels glrtheory/kernels
python -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl > /dev/null 2>&1
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi -L
timeout 330 python benchmarks/gpu_readout.py --skip-tune --fla-shapes --out $OUT/readout.json > $OUT/readout.log 2>&1; echo "readout rc $?"
timeout 150 python -m pytest -p no:cacheprovider -q -m "gpu or not gpu" tests/test_readout_triton.py > $OUT/pytest.txt 2>&1; echo "pytest rc $?"
tail -5 $OUT/pytest.txt; tail -30 $OUT/readout.log
