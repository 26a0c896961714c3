# One device call that times and checks chunk_walk (fenwick's boundary states and chunk output in one walk over the
# chunks; readout_triton.GPU["chunk_walk"], off: 2.404 ms against 1.054 solved in call180) against the readout as
# it is, carrying .whl/:
#   OUT=/some/folder bash benchmarks/gpu_chunk_walk_call.sh
# gpu_readout.py times ssm and fenwick forward at nine settings of the walk (two of them split in two) between two
# rows of the defaults, keeps the fastest for the rows (fenwick's row checks it against float32 and times forward +
# backward, fla's chunk_simple_gla beside it) and profiles each kernel; then the chunk walk's tests run on the GPU
# (its settings against the torch path at n = 2048, 4097 and 16384, and the interpreter's cases on CUDA).
W='{"chunk_walk":true'
SETTINGS="[{},$W},$W,\"walk_chunk_own\":false},$W,\"walk_chunk_v\":16},\
$W,\"walk_chunk_v\":16,\"walk_chunk_own\":false},$W,\"walk_chunk_ahead\":true},$W,\"walk_chunk_slot16\":false},\
$W,\"walk_chunk_warps\":16,\"walk_chunk_v\":16,\"walk_chunk_own\":false},$W,\"walk_chunk_split\":true},\
$W,\"walk_chunk_split\":true,\"walk_chunk_own\":false},{}]"
mkdir -p "$OUT"
OUT=$OUT BACKENDS=triton READOUT_FLAGS="--skip-tune --specs ssm,fenwick --settings $SETTINGS" PYTEST_K='chunk_walk' \
  CAP_READOUT=${CAP_READOUT:-330} CAP_TESTS=${CAP_TESTS:-200} bash "$(dirname "$0")/gpu_readout_call.sh"
