#!/usr/bin/env bash
# test_cli.sh — `llmos --endpoint E generate` against a real llmosd --model
# prints byte for byte what the local `llmos generate` (llmos-generate)
# prints: greedy (the llama2.c reference), sampled with a seed, a prompt with
# a stop string, streamed; `model stats` answers; `model unload|load` (GGUF,
# --q8 equal to the local --quantize q8) control it; --graph links the prompt
# through the node's graph actor and reports the triples; a bad flag value
# is refused with a message; --tp without MPI, --tp not dividing the ranks
# and a missing model stop llmosd at start-up with the reason; the node
# exits cleanly on SIGTERM.
set -euo pipefail
BIN=${LLMOS_BIN:?LLMOS_BIN not set}
M=${LLMOS_MODELS:?LLMOS_MODELS not set}
DATA=${LLMOS_DATA:?LLMOS_DATA not set}
. "$(dirname "$0")/../lib/node.sh"
. "$(dirname "$0")/../lib/tmp.sh"
llmos_tmp llmos-serve-cli cleanup
PID=
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -9 "$PID"; fi
}
fail() { echo "FAIL: $*" >&2; [ -f "$T/node.log" ] && cat "$T/node.log" >&2; exit 1; }

"$BIN/llmos-graph" load "$T/db" "$DATA/kg/umls/train.txt" --quiet
MODEL=(--model "$M/stories260K.bin" --tokenizer "$M/tok512.bin")
llmos_node_start "$T/node.out" "$T/node.log" --log-level warn "${MODEL[@]}" --graph "$T/db" || {
    PID=$NODE_PID
    fail "llmosd did not start"
}
PID=$NODE_PID
L() { "$BIN/llmos" --endpoint "$E" "$@"; }

L generate -n 200 --temperature 0 >"$T/greedy.txt" 2>"$T/greedy.err"
cmp "$T/greedy.txt" "$M/stories260K.greedy.txt" || fail "greedy text differs from the reference"
grep -q "200 tokens (1 prompt).*length" "$T/greedy.err" || fail "no summary: $(cat "$T/greedy.err")"
L generate -n 200 --temperature 0 --stream >"$T/stream.txt" 2>/dev/null
cmp "$T/stream.txt" "$M/stories260K.greedy.txt" || fail "streamed text differs from the reference"

cases=(
  "--prompt|The cat|-n|120|--temperature|0.8|--seed|5"
  "--prompt|Lily and Tom|-n|90|--temperature|1.0|--top-p|0.9|--seed|11"
  "--prompt|One day|-n|80|--temperature|0.7|--top-k|20|--seed|3"
  "--prompt|Once upon a time, Tom|-n|200|--temperature|0|--stop|."
  "-n|200|--temperature|0|--stop|Lily"
)
for c in "${cases[@]}"; do
  IFS='|' read -r -a args <<<"$c"
  "$BIN/llmos-generate" "${MODEL[@]}" "${args[@]}" >"$T/local.txt" 2>/dev/null
  L generate "${args[@]}" >"$T/remote.txt" 2>/dev/null
  cmp "$T/local.txt" "$T/remote.txt" || fail "remote differs from local for: ${args[*]}"
  L generate "${args[@]}" --stream >"$T/remote_s.txt" 2>/dev/null
  cmp "$T/local.txt" "$T/remote_s.txt" || fail "streamed remote differs from local for: ${args[*]}"
done

L model stats >"$T/stats.txt" || fail "model stats"
grep -q "^available *yes" "$T/stats.txt" || fail "stats: $(cat "$T/stats.txt")"
grep -q "^kv_blocks_used *0" "$T/stats.txt" || fail "KV blocks left in use: $(cat "$T/stats.txt")"

L generate --graph --prompt "The cell function and abnormality" -n 40 --temperature 0 --max-facts 5 \
  >"$T/graph.txt" 2>"$T/graph.err" || fail "--graph: $(cat "$T/graph.err")"
grep -q "triples used" "$T/graph.err" || fail "--graph printed no triples: $(cat "$T/graph.err")"
[ "$(grep -c '^  <http://llmos.local/kg/' "$T/graph.err")" = 5 ] || fail "--graph: not 5 triples"
head -c 33 "$T/graph.txt" | grep -q "^The cell function and abnormality" || fail "--graph: prompt not echoed"
grep -q "([0-9]* prompt)" "$T/graph.err" && ! grep -q "(9 prompt)" "$T/graph.err" || fail "--graph: facts not in the prompt"

if L generate --temperature 200 2>"$T/bad.err"; then fail "temperature 200 accepted"; fi
grep -q "temperature" "$T/bad.err" || fail "unclear error: $(cat "$T/bad.err")"

# Control: unload, reload from GGUF (same text), int8 at load, back to the llama2.c file.
L model unload >"$T/unload.txt" || fail "model unload"
grep -q "^available *no" "$T/unload.txt" || fail "unload: $(cat "$T/unload.txt")"
if L generate -n 20 2>"$T/unl.err"; then fail "generate after unload"; fi
grep -q "no model is loaded" "$T/unl.err" || fail "unclear: $(cat "$T/unl.err")"
L model load "$M/stories260K.gguf" >/dev/null || fail "model load gguf"
L generate -n 200 --temperature 0 2>/dev/null | cmp - "$M/stories260K.greedy.txt" || fail "text after reload differs"
L model load "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --q8 >/dev/null || fail "model load --q8"
"$BIN/llmos-generate" "${MODEL[@]}" --quantize q8 -n 120 --temperature 0 >"$T/q8l.txt" 2>/dev/null
L generate -n 120 --temperature 0 >"$T/q8r.txt" 2>/dev/null
cmp "$T/q8l.txt" "$T/q8r.txt" || fail "q8 remote differs from local --quantize q8"
if L model load "$T/none.bin" 2>"$T/load.err"; then fail "loading a missing file succeeded"; fi
grep -q "none.bin" "$T/load.err" || fail "unclear load error: $(cat "$T/load.err")"
L model load "$M/stories260K.bin" --tokenizer "$M/tok512.bin" >/dev/null || fail "model load bin"

# Start-up refusals: a clear message and a non-zero exit, never a half-served model.
if "$BIN/llmosd" --listen tcp://127.0.0.1:0 "${MODEL[@]}" --tp 2 >/dev/null 2>"$T/tp.err"; then fail "--tp 2 without MPI started"; fi
grep -q "needs MPI" "$T/tp.err" || fail "unclear --tp error: $(cat "$T/tp.err")"
if mpirun --allow-run-as-root --oversubscribe -np 3 "$BIN/llmosd" --listen tcp://127.0.0.1:0 "${MODEL[@]}" --tp 2 \
    >/dev/null 2>"$T/tp3.err"; then fail "--tp 2 on 3 ranks started"; fi
grep -q "does not divide the 3 MPI ranks" "$T/tp3.err" || fail "unclear --tp error: $(cat "$T/tp3.err")"
if "$BIN/llmosd" --listen tcp://127.0.0.1:0 --model "$T/nonexistent.bin" >/dev/null 2>"$T/nofile.err"; then
  fail "a missing model started"; fi
grep -q "nonexistent.bin" "$T/nofile.err" || fail "unclear missing-model error: $(cat "$T/nofile.err")"

kill -TERM "$PID"
for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then fail "llmosd did not exit on SIGTERM"; fi
wait "$PID" || fail "llmosd exited with status $?"
PID=
echo "model_shard_cli: passed"
