#!/usr/bin/env bash
# The Triton kernels' tests on the GPU under compute-sanitizer's memcheck: every out-of-bounds or misaligned global
# or shared access of a kernel (a masked-off lane read past a tensor included) is an error. PyTorch's caching
# allocator is switched off, so that each tensor is its own allocation and a read past its end is seen (inside a
# cached segment it would not be), and CUDA graphs with it (benchmarks/sanitize_plugin.py: a capture could not
# allocate). memcheck flags only addresses in no allocation, so each allocation gets PADDING bytes (default 4096)
# of padding after it: a read just past a tensor that ends where the next begins is seen too (call 241: a mutant's
# read of one 32 x 32 float32 block past its tensor gave 0 errors without padding, 130 with it).
# One sanitizer a test file, all at once; SELECT adds pytest arguments; SANITIZE_FROM=N skips each file's first N
# tests (those a run cut by its time limit cleared: sanitize_plugin.py); the GPU only (Firecracker machines).
#
#   PYTHONPATH=$PWD OUT=dir LIMIT=540 bash benchmarks/gpu_sanitize.sh tests/test_kernels_triton.py ...
# writes dir/<file>.sanitizer.txt (its ERROR SUMMARY last) and dir/<file>.pytest.txt.
set -u
OUT=${OUT:-sanitize}
mkdir -p "$OUT"
export PYTORCH_NO_CUDA_MEMORY_CACHING=1 PYTHONUNBUFFERED=1
for file in "$@"; do
  name=$(basename "$file" .py)
  timeout "${LIMIT:-540}" compute-sanitizer --tool memcheck --padding "${PADDING:-4096}" --print-limit 50 --log-file "$OUT/$name.sanitizer.txt" \
    python -m pytest -p no:cacheprovider -p benchmarks.sanitize_plugin -q -rfE "$file" ${SELECT:-} \
    > "$OUT/$name.pytest.txt" 2>&1 &
done
wait
for file in "$@"; do
  name=$(basename "$file" .py)
  echo "$name: $(tail -n 1 "$OUT/$name.pytest.txt"); $(grep -h 'ERROR SUMMARY' "$OUT/$name.sanitizer.txt" | tail -n 1)"
done
