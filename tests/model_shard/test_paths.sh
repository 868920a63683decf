#!/usr/bin/env bash
# test_paths.sh — model names are found the way every llmos program finds
# them (runtime/base/paths.h llmos_path_find): the name as given when it
# exists (absolute, or relative to the working directory), else in the
# models folder ($LLMOS_MODELS).  Against a real llmosd started in an empty
# folder with LLMOS_MODELS pointing at links to the shared models:
#   - llmosd --model stories260K.bin --tokenizer tok512.bin (bare names)
#     serves the llama2.c reference text;
#   - `llmos model load` with a bare name and with a relative one
#     (sub/x.gguf) loads from $LLMOS_MODELS; a file of that name in the
#     node's working directory wins (here a garbage one: refused, and the
#     old model keeps serving);
#   - a name found nowhere is refused with a message that lists the places
#     looked in, at start-up (--model, --tokenizer) and at load, and the
#     served model stays; a bad $LLMOS_MODELS is named;
#   - llmos-generate finds a relative name (sub/x.gguf) the same way.
set -euo pipefail
BIN=${LLMOS_BIN:?LLMOS_BIN not set}
M=${LLMOS_MODELS:?LLMOS_MODELS not set}
. "$(dirname "$0")/../lib/tmp.sh"
llmos_tmp llmos-paths cleanup
PID=
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -9 "$PID" 2>/dev/null || true; fi
}
fail() { echo "FAIL: $*" >&2; [ -f "$T/node.log" ] && tail -20 "$T/node.log" >&2; exit 1; }
step() { echo "--- $*"; }
. "$(dirname "$0")/../lib/node.sh"

mkdir -p "$T/mods/sub" "$T/run" "$T/empty"
ln -s "$M/stories260K.bin" "$T/mods/stories260K.bin"
ln -s "$M/tok512.bin" "$T/mods/tok512.bin"
ln -s "$M/stories260K.gguf" "$T/mods/sub/x.gguf"
REF="$M/stories260K.greedy.txt"
export LLMOS_MODELS="$T/mods"
cd "$T/run"

step "llmosd --model and --tokenizer with bare names"
llmos_node_start "$T/node.out" "$T/node.log" --log-level warn --data-dir "$T/data" \
  --model stories260K.bin --tokenizer tok512.bin || fail "llmosd with bare names did not start"
PID=$NODE_PID
L() { "$BIN/llmos" --endpoint "$E" "$@"; }
greedy() { L generate -n 200 --temperature 0 2>/dev/null | cmp -s - "$REF" || fail "greedy text differs ($1)"; }
greedy "bare names at start-up"
L model stats | grep -q "^model *$T/mods/stories260K.bin" || fail "stats: $(L model stats)"

step "model load: a relative name, a bare one, from \$LLMOS_MODELS"
L model load sub/x.gguf >/dev/null || fail "model load sub/x.gguf"
L model stats | grep -q "^model *$T/mods/sub/x.gguf" || fail "stats after sub/x.gguf: $(L model stats)"
greedy "sub/x.gguf"
L model load stories260K.bin --tokenizer tok512.bin >/dev/null || fail "model load with bare names"
greedy "bare names at load"

step "a name found nowhere: the places looked in, and the model stays"
if L model load nope.bin 2>"$T/nope.err"; then fail "nope.bin loaded"; fi
for w in "'nope.bin' not found" "working directory $T/run" "models folder $T/mods" "LLMOS_MODELS" \
         "still serving $T/mods/stories260K.bin"; do
  grep -qF "$w" "$T/nope.err" || fail "the error does not say '$w': $(cat "$T/nope.err")"
done
if L model load stories260K.bin --tokenizer nope.bin 2>"$T/nope2.err"; then fail "a missing tokenizer loaded"; fi
grep -qF "tokenizer 'nope.bin' not found" "$T/nope2.err" || fail "unclear: $(cat "$T/nope2.err")"
greedy "after refused loads"

step "the working directory first: a garbage stories260K.bin there is what load reads (refused)"
head -c 4096 /dev/urandom >"$T/run/stories260K.bin"
if L model load stories260K.bin --tokenizer tok512.bin 2>"$T/garbage.err"; then fail "garbage loaded"; fi
grep -q "^llmos model load: .*stories260K.bin: .*still serving $T/mods/stories260K.bin" "$T/garbage.err" \
  || fail "unclear: $(cat "$T/garbage.err")"
rm "$T/run/stories260K.bin"
greedy "after the garbage file"

step "start-up refusals list the places looked in"
if "$BIN/llmosd" --listen tcp://127.0.0.1:0 --data-dir "$T/d2" --model nope.bin >/dev/null 2>"$T/s1.err"; then
  fail "llmosd --model nope.bin started"; fi
grep -qF "'nope.bin' not found: not in the working directory $T/run, not in the models folder $T/mods" "$T/s1.err" \
  || fail "unclear: $(cat "$T/s1.err")"
if "$BIN/llmosd" --listen tcp://127.0.0.1:0 --data-dir "$T/d3" --model stories260K.bin --tokenizer nope.bin \
    >/dev/null 2>"$T/s2.err"; then fail "llmosd --tokenizer nope.bin started"; fi
grep -qF "tokenizer 'nope.bin' not found" "$T/s2.err" || fail "unclear: $(cat "$T/s2.err")"
if LLMOS_MODELS="$T/none" "$BIN/llmosd" --listen tcp://127.0.0.1:0 --data-dir "$T/d4" --model stories260K.bin \
    >/dev/null 2>"$T/s3.err"; then fail "llmosd with a bad LLMOS_MODELS started"; fi
grep -qF "models folder '$T/none' does not exist" "$T/s3.err" || fail "unclear: $(cat "$T/s3.err")"

step "llmos-generate finds a relative name in \$LLMOS_MODELS too"
"$BIN/llmos-generate" --model sub/x.gguf -n 200 --temperature 0 2>/dev/null | cmp -s - "$REF" \
  || fail "llmos-generate --model sub/x.gguf"
if "$BIN/llmos-generate" --model nope.bin 2>"$T/g.err"; then fail "llmos-generate --model nope.bin ran"; fi
grep -qF "models folder $T/mods" "$T/g.err" || fail "unclear: $(cat "$T/g.err")"

kill -TERM "$PID"
st=0
wait "$PID" || st=$?
PID=
[ "$st" = 0 ] || fail "llmosd exited with status $st"
echo "model_shard_paths: passed"
