#!/usr/bin/env bash
# One device call for issue 12, about BUDGET seconds of compute on one H200, everything into $OUT:
#   OUT=/some/folder bash benchmarks/gpu_session.sh
# Parts, in order, each in its own process under a hard time cap (timeout -s INT, then KILL 5 s later; every
# part saves its JSON after each row, so a cut part keeps what it measured), none stopping the others:
#   tune    the Triton scan's launch settings (gpu_tune.py), unless TUNE=0 (then results/gpu_tune.json);
#   scan    SPECS (default power2, ssm, fenwick, blocks, quadratic) forward and forward + backward at
#           B2 T16384 H16 D128 bf16, with the copy, causal SDPA and fla's chunk_simple_gla (gpu_bench.py with the
#           tune's best setting), then fla's shapes (FLA_SHAPES=0 skips) and the length sweep (SWEEP=0 skips);
#           fla rows say "not installed" where fla is missing (wheels in .whl/, carried, are installed first);
#   layer   GLRMixer(readout=True) B8 T2048 d_model 1024 8 heads vs nn.MultiheadAttention (gpu_layer.py);
#   decode  GLRMixer.step latency at contexts 2^10, 2^14, 2^17, 2^20 (gpu_decode.py; rows predicted past its
#           budget are skipped and listed);
#   pytest  the CUDA tests (-m gpu), verbose, into $OUT/pytest.txt, with whatever time is left: glr_readout at
#           T = 4097 vs the float64 reference (test_gpu_bench_readout.py, never run on a GPU before), then the
#           Triton scan's full-size tests (n = 65536 only for ssm, power2, fenwick), then any in test_readout*.py.
# Then gpu_session.py folds the parts into $OUT/gpu_session.json. Files in $OUT: gpu_session.json,
# pytest.txt, session.log (every part's output).
# The image's pip cannot install the package editable, so glrtheory.kernels is imported from source through a
# symlink glrtheory/kernels -> ../kernels (pyproject.toml maps the package glrtheory.kernels to kernels/).
# A smoke run on a CPU: SCAN_ARGS="--device cpu --shape 1,16,2,4" LAYER_ARGS="--device cpu --shape 1,16,8,2"
#   DECODE_ARGS="--device cpu --contexts 4,6 --steps 4" PYTEST_FILES=tests/test_gpu_bench.py OUT=/tmp/s \
#   bash benchmarks/gpu_session.sh
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PY:-python3}
OUT=${OUT:-gpu_session_out}
BUDGET=${BUDGET:-150}          # seconds of compute for the whole script
TUNE=${TUNE:-1}
CAP_TUNE=${CAP_TUNE:-$(( BUDGET * 15 * TUNE / 100 ))} # the caps scale with the budget,
CAP_SCAN=${CAP_SCAN:-$(( BUDGET * 27 / 100 ))}
CAP_LAYER=${CAP_LAYER:-$(( BUDGET * 15 / 100 ))}
CAP_DECODE=${CAP_DECODE:-$(( BUDGET * 15 / 100 ))}    # pytest gets what is left
SPECS=${SPECS:-power2,ssm,fenwick,blocks,quadratic}
SCAN_FLAGS=$( [ "${FLA_SHAPES:-1}" = 1 ] && echo --fla-shapes; [ "${SWEEP:-1}" = 1 ] || echo --skip-sweep )
PYTEST_K=${PYTEST_K:-"not (65536 and (quadratic or blocks))"}
READOUT_TESTS=$(ls tests/test_readout*.py | tr '\n' ' ')
PYTEST_FILES=${PYTEST_FILES:-"tests/test_gpu_bench_readout.py tests/test_kernels_triton.py $READOUT_TESTS"}
mkdir -p "$OUT"
LOG="$OUT/session.log"
: > "$OUT/parts.txt"
if [ ! -e glrtheory/kernels ]; then
  ln -sfn ../kernels glrtheory/kernels
  trap 'rm -f glrtheory/kernels' EXIT
fi
left() { echo $(( BUDGET - SECONDS )); }
# cap T: T seconds, or what is left of the budget less 10 (the KILL margin and the merge), at least 1
cap() { local t=$1 l=$(( $(left) - 10 )); [ "$l" -lt "$t" ] && t=$l; [ "$t" -lt 1 ] && t=1; echo "$t"; }
# part NAME CAP OUTPUT_FILE COMMAND...: run under the cap, record "NAME EXIT_STATUS SECONDS" in parts.txt
part() {
  case " ${SKIP:-} " in *" $1 "*) return;; esac     # SKIP="decode layer": parts not to run
  local name=$1 t s rc; t=$(cap "$2"); local file=$3; shift 3
  s=$SECONDS
  echo "== $name: cap ${t} s, $(left) s of the budget left: $*" >> "$LOG"
  timeout -s INT -k 5 "$t" "$@" >> "$file" 2>&1
  rc=$?
  echo "$name $rc $(( SECONDS - s ))" >> "$OUT/parts.txt"
  echo "== $name: exit $rc after $(( SECONDS - s )) s" >> "$LOG"
}
nvidia-smi -L >> "$LOG" 2>&1
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl >> "$LOG" 2>&1
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

SETTINGS=benchmarks/results/gpu_tune.json
if [ "$TUNE" = 1 ]; then
  part tune "$CAP_TUNE" "$LOG" $PY benchmarks/gpu_tune.py --out "$OUT/part_tune.json"
  [ -s "$OUT/part_tune.json" ] && cp "$OUT/part_tune.json" "$OUT/tune_settings.json" && SETTINGS="$OUT/tune_settings.json"
fi
part scan "$CAP_SCAN" "$LOG" $PY benchmarks/gpu_bench.py --settings "$SETTINGS" $SCAN_FLAGS \
  --specs "$SPECS" --out "$OUT/part_scan.json" ${SCAN_ARGS:-}
rm -f "$OUT/tune_settings.json"
part layer "$CAP_LAYER" "$LOG" $PY benchmarks/gpu_layer.py --out "$OUT/part_layer.json" ${LAYER_ARGS:-}
part decode "$CAP_DECODE" "$LOG" $PY benchmarks/gpu_decode.py --budget $(( $(cap "$CAP_DECODE") - 8 )) \
  --out "$OUT/part_decode.json" ${DECODE_ARGS:-}
part pytest "$BUDGET" "$OUT/pytest.txt" $PY -m pytest -m "${PYTEST_MARK:-gpu}" -v -p no:cacheprovider -k "$PYTEST_K" $PYTEST_FILES
$PY benchmarks/gpu_session.py "$OUT" "$BUDGET" 2>&1 | tee -a "$LOG"     # folds the parts, prints a digest
echo "total ${SECONDS} s" | tee -a "$LOG"
