#!/usr/bin/env bash
# Runs every benchmark in build/bin (*_bench) and prints their JSON lines.
set -euo pipefail
build=${1:-build}
status=0
for b in "$build"/bin/*_bench; do
  [ -x "$b" ] || continue
  echo "# $(basename "$b")" >&2
  case "$(basename "$b")" in
    tp_bench) run=(mpirun --allow-run-as-root -np 2 "$b") ;; # tensor parallelism needs its 2 ranks
    *) run=("$b") ;;
  esac
  "${run[@]}" || { echo "bench: $(basename "$b") failed" >&2; status=1; }
done
exit $status
