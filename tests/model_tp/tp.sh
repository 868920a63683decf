#!/bin/sh
# Runs tp_check under mpirun with 1, 2 and 4 ranks (4 oversubscribed on
# this 2-core machine), then checks that 2 and 4 ranks generate
# stories260K's greedy reference text byte for byte, as llmos-generate does.
set -eu
check=${1:?usage: tp.sh path/to/model_tp_check}
: "${LLMOS_MODELS:?}"
# Keep Open MPI's and PMIx's plugins loaded at exit and unwind exactly, so
# LeakSanitizer (ASan builds) attributes their leaks to them (suppressed by
# tests/lsan.supp); ours are still reported.
export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
# Ranks waiting in a collective yield the core (4 ranks share 2 cores here).
export OMPI_MCA_mpi_yield_when_idle=1
[ -n "${LSAN_OPTIONS:-}" ] && export LSAN_OPTIONS="$LSAN_OPTIONS:fast_unwind_on_malloc=0"
run() { mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$@"; }
for t in 1 2 4; do
  run $t "$check" || { echo "FAIL: tp_check with $t ranks"; exit 1; }
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for t in 2 4; do
  run $t "$check" --greedy 200 >"$out"
  cmp "$out" "$LLMOS_MODELS/stories260K.greedy.txt" ||
    { echo "FAIL: greedy text with $t ranks differs"; diff "$out" "$LLMOS_MODELS/stories260K.greedy.txt" | head; exit 1; }
done
echo "model_tp: T=1,2,4 logits match, refusals clear, greedy T=2 and T=4 match the reference"
