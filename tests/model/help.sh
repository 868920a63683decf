#!/usr/bin/env bash
# help.sh — the local model tools answer --help (and -h) with their usage on
# stdout, nothing on stderr, exit 0: llmos-generate, llmos-train (and its
# --mode ngram page), llmos-eval, llmos-ckpt and each of its commands, also
# with --help after other arguments.  A wrong command line is still an
# error: usage on stderr, exit 2.
set -euo pipefail
BIN=${LLMOS_BIN:?LLMOS_BIN not set}
. "$(dirname "$0")/../lib/tmp.sh"
llmos_tmp llmos-help
fail() { echo "FAIL: $*" >&2; exit 1; }

helps=(
  "llmos-generate --help" "llmos-generate -h" "llmos-generate --model x.bin --help"
  "llmos-train --help" "llmos-train -h" "llmos-train --mode ngram --help"
  "llmos-eval --help" "llmos-eval -h" "llmos-eval --ckpt x --help"
  "llmos-ckpt --help" "llmos-ckpt -h" "llmos-ckpt help"
  "llmos-ckpt ls --help" "llmos-ckpt show --help" "llmos-ckpt export --help" "llmos-ckpt show DIR 3 -h"
)
for h in "${helps[@]}"; do
  read -r -a cmd <<<"$h"
  st=0
  "$BIN/${cmd[0]}" "${cmd[@]:1}" >"$T/out" 2>"$T/err" || st=$?
  [ "$st" = 0 ] || fail "'$h' exited $st: $(cat "$T/err")"
  grep -q "^usage" "$T/out" || fail "'$h' printed no usage on stdout: $(head -3 "$T/out")"
  [ ! -s "$T/err" ] || fail "'$h' wrote on stderr: $(cat "$T/err")"
done
"$BIN/llmos-ckpt" show --help | grep -q "show DIR \[VERSION\]" || fail "llmos-ckpt show --help is not show's usage"

bad=("llmos-ckpt" "llmos-ckpt nosuch DIR" "llmos-ckpt ls" "llmos-ckpt export DIR" "llmos-ckpt ls A B"
     "llmos-generate --nosuch 1")
for b in "${bad[@]}"; do
  read -r -a cmd <<<"$b"
  st=0
  "$BIN/${cmd[0]}" "${cmd[@]:1}" >"$T/out" 2>"$T/err" || st=$?
  [ "$st" = 2 ] || fail "'$b' exited $st, not 2"
  grep -q "usage" "$T/err" || fail "'$b' printed no usage on stderr: $(cat "$T/err")"
done
if "$BIN/llmos-ckpt" show "$T/none" x 2>"$T/err"; then fail "show with a bad VERSION succeeded"; fi
grep -q "no checkpoint store\|not a version number" "$T/err" || fail "unclear: $(cat "$T/err")"
echo "model_help: passed"
