#!/usr/bin/env bash
# test_context.sh — GenerateRequest.context through a real llmosd --model
# (sent by gen_context): droppable lines in front of the prompt that are
# dropped whole from the end to fit the model's window, never an error.
#   - with max_positions (llama2.c's -n) the served answer equals the local
#     `llmos-generate --graph DB -n N --json` on the same facts: the same
#     facts kept and dropped, the same prompt and context token counts, the
#     same greedy text (the one rule in model/prompt.c serves both);
#   - with max_tokens and 200 context lines: lines are dropped, what is kept
#     plus the generation fits seq_len and one more line would not (checked
#     with the node's own token counts), and the text equals the local
#     llmos-generate's on the kept text and the node's own answer to that
#     text sent as the prompt;
#   - empty lines are ignored, no context = the prompt alone, echo gives
#     the user's prompt only, non-ASCII lines, max_tokens 0;
#   - a prompt too long alone is ETOOBIG with the numbers; a NUL in the
#     context and context with prompt_tokens are EINVAL (test_model_shard).
set -euo pipefail
BIN=${LLMOS_BIN:?LLMOS_BIN not set}
M=${LLMOS_MODELS:?LLMOS_MODELS not set}
PY=/usr/bin/python3
. "$(dirname "$0")/../lib/tmp.sh"
llmos_tmp llmos-context cleanup
PID=
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -9 "$PID" 2>/dev/null || true; fi
}
fail() { echo "FAIL: $*" >&2; [ -f "$T/node.log" ] && tail -20 "$T/node.log" >&2; exit 1; }
step() { echo "--- $*"; }
. "$(dirname "$0")/../lib/node.sh"

GC="$BIN/gen_context"
LOCAL=("$BIN/llmos-generate" --model "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --temperature 0 --json)
printf 'lily\towns\ttom\nlily\tlikes\tball\ntom\tis_a\tcat\ncat\teats\tfish\nsun\tis\thot\nfish\tswims_in\tthe sea\n' >"$T/g.tsv"
"$BIN/llmos-graph" load "$T/db" "$T/g.tsv" --quiet
llmos_node_start "$T/node.out" "$T/node.log" --log-level warn --data-dir "$T/data" \
  --model "$M/stories260K.bin" --tokenizer "$M/tok512.bin" || fail "llmosd did not start"
PID=$NODE_PID
# j FILE KEY: a JSON field
j() { "$PY" -c 'import json,sys; v=json.load(open(sys.argv[1])); [v := v[k] for k in sys.argv[2].split(".")]; print(v)' "$1" "$2"; }

step "max_positions: the node keeps and drops the facts llmos-generate --graph keeps and drops"
kept_some=0 dropped_some=0
for c in "Lily saw Tom in the garden|500" "Lily saw Tom in the garden|80" "Lily saw Tom in the garden|505" \
         "The sun is hot and the cat eats fish|495" "Tom was happy|508" "Once upon a time|200"; do
  P=${c%|*} N=${c#*|}
  "${LOCAL[@]}" -n "$N" --prompt "$P" --graph "$T/db" >"$T/l.json" 2>"$T/l.err" || fail "local: $(cat "$T/l.err")"
  "$BIN/llmos-graph" link "$T/db" "$P" --format json >"$T/link.json"
  "$PY" -c 'import json,sys; [print(f["sentence"]) for f in json.load(open(sys.argv[1]))["facts"]]' "$T/link.json" >"$T/ctx.txt"
  "$GC" "$E" --prompt "$P" --context-file "$T/ctx.txt" --max-positions "$N" >"$T/r.json" 2>"$T/r.err" \
    || fail "served ($P, $N): $(cat "$T/r.err")"
  "$PY" - "$T/l.json" "$T/r.json" "$T/ctx.txt" "$P|$N" <<'EOF' || fail "served differs from local for '$P' -n $N"
import json, sys
l, r = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
lines = open(sys.argv[3]).read().splitlines()
g = l["graph"]
assert g["linked"] == len(lines), (g["linked"], len(lines))
assert r["kept"] == g["used"] and r["dropped"] == g["linked"] - g["used"], (r, g)
assert r["context_tokens"] == g["prefix_tokens"], (r, g)
assert r["prompt_tokens"] == l["prompt_tokens"], (r, l)
assert r["text"] == l["text"], (sys.argv[4], r["text"], l["text"])
print("%s: %d of %d lines kept, %d context tokens, %d prompt tokens" % (sys.argv[4], r["kept"], g["linked"], r["context_tokens"], r["prompt_tokens"]))
EOF
  [ "$(j "$T/r.json" kept)" -gt 0 ] && kept_some=1
  [ "$(j "$T/r.json" dropped)" -gt 0 ] && dropped_some=1
done
[ "$kept_some" = 1 ] && [ "$dropped_some" = 1 ] || fail "the cases never kept or never dropped a line"

step "max_tokens: 200 lines, the most that fit with room for the generation"
"$PY" -c '
for i in range(200): print("Fact %d: the little %s liked to play with a red ball." % (i, ["cat", "dog", "bird", "fish"][i % 4]))' >"$T/long.txt"
P="Once upon a time, Lily"
for MT in 20 300; do
  "$GC" "$E" --prompt "$P" --context-file "$T/long.txt" --max-tokens "$MT" >"$T/m.json" 2>"$T/m.err" || fail "$(cat "$T/m.err")"
  K=$(j "$T/m.json" kept) D=$(j "$T/m.json" dropped) PT=$(j "$T/m.json" prompt_tokens) G=$(j "$T/m.json" tokens)
  [ $((K + D)) = 200 ] && [ "$D" -gt 0 ] && [ "$K" -gt 0 ] || fail "max_tokens $MT: kept $K dropped $D"
  [ $((PT + MT - 1)) -le 512 ] || fail "max_tokens $MT: $PT prompt tokens leave no room for $MT"
  [ "$G" -le "$MT" ] && [ "$G" -ge 1 ] || fail "max_tokens $MT: generated $G"
  # The kept text, as the node saw it: the lines, an empty line, the prompt.
  { head -n "$K" "$T/long.txt"; echo; printf '%s' "$P"; } >"$T/kept.txt"
  { head -n $((K + 1)) "$T/long.txt"; echo; printf '%s' "$P"; } >"$T/more.txt"
  "$GC" "$E" --prompt "$(cat "$T/kept.txt")" --max-tokens "$MT" >"$T/k.json" 2>"$T/k.err" || fail "$(cat "$T/k.err")"
  [ "$(j "$T/k.json" prompt_tokens)" = "$PT" ] || fail "the kept text is $(j "$T/k.json" prompt_tokens) tokens, not $PT"
  [ "$(j "$T/k.json" text)" = "$(j "$T/m.json" text)" ] || fail "max_tokens $MT: context and its kept text as prompt differ"
  # One more line: over seq_len alone (ETOOBIG), or no room left for max_tokens.
  if "$GC" "$E" --prompt "$(cat "$T/more.txt")" --max-tokens "$MT" >"$T/k1.json" 2>"$T/k1.err"; then
    [ $(($(j "$T/k1.json" prompt_tokens) + MT - 1)) -gt 512 ] || fail "max_tokens $MT: one more line would have fit"
  else
    grep -q "more than seq_len 512" "$T/k1.err" || fail "$(cat "$T/k1.err")"
  fi
  # llmos-generate -n counts positions: prompt + generated - 1 gives the same number of tokens.
  "${LOCAL[@]}" -n $((PT + G - 1)) --prompt "$(cat "$T/kept.txt")" >"$T/lk.json" 2>"$T/lk.err" || fail "$(cat "$T/lk.err")"
  [ "$(j "$T/lk.json" text)" = "$(j "$T/m.json" text)" ] || fail "max_tokens $MT: the local text on the kept lines differs"
  echo "max_tokens $MT: $K kept, $D dropped, $PT prompt tokens, $G generated"
done

step "max_tokens 0: the context may fill seq_len, one token at least"
"$GC" "$E" --prompt "$P" --context-file "$T/long.txt" >"$T/z.json" 2>"$T/z.err" || fail "$(cat "$T/z.err")"
[ "$(j "$T/z.json" prompt_tokens)" -le 512 ] && [ "$(j "$T/z.json" tokens)" -ge 1 ] || fail "max_tokens 0: $(cat "$T/z.json")"
[ "$(j "$T/z.json" prompt_tokens)" -gt 490 ] || fail "max_tokens 0: the context did not fill the window: $(cat "$T/z.json")"

step "empty lines, no context, echo, non-ASCII"
"$GC" "$E" --prompt "$P" --max-tokens 30 >"$T/n.json"
printf '\n\n\n' >"$T/blank.txt"
"$GC" "$E" --prompt "$P" --max-tokens 30 --context-file "$T/blank.txt" >"$T/b.json"
"$PY" -c 'import json,sys; a,b=[json.load(open(f)) for f in sys.argv[1:]]; assert a==b and b["kept"]==0 and b["dropped"]==0, (a,b)' \
  "$T/n.json" "$T/b.json" || fail "blank lines changed the answer"
printf '\nlily owns tom.\n\n\nlily likes ball.\n' >"$T/gaps.txt"
printf 'lily owns tom.\nlily likes ball.\n' >"$T/nogaps.txt"
"$GC" "$E" --prompt "$P" --max-tokens 30 --context-file "$T/gaps.txt" >"$T/g1.json"
"$GC" "$E" --prompt "$P" --max-tokens 30 --context-file "$T/nogaps.txt" >"$T/g2.json"
"$PY" -c 'import json,sys; a,b=[json.load(open(f)) for f in sys.argv[1:]]; assert a==b and a["kept"]==2, (a,b)' \
  "$T/g1.json" "$T/g2.json" || fail "empty lines between lines counted"
"$GC" "$E" --prompt "$P" --max-tokens 30 --context-file "$T/nogaps.txt" --echo >"$T/e.json"
"$PY" -c 'import json,sys; a,b=[json.load(open(f)) for f in sys.argv[1:3]]; assert b["text"] == sys.argv[3] + a["text"], b' \
  "$T/g2.json" "$T/e.json" "$P" || fail "echo with context is not the user prompt + text"
printf 'Lily aimait le caf\xc3\xa9 \xe2\x98\x95.\n\xf0\x9f\x90\x88 Tom \xc3\xa9tait un chat.\n' >"$T/utf8.txt"
"$GC" "$E" --prompt "$P" --max-tokens 10 --context-file "$T/utf8.txt" >"$T/u.json" || fail "non-ASCII context"
[ "$(j "$T/u.json" kept)" = 2 ] || fail "non-ASCII lines not kept: $(cat "$T/u.json")"

step "a prompt that does not fit alone: ETOOBIG with the numbers, whatever the context"
"$PY" -c 'print("Lily and Tom went to the park. " * 100, end="")' >"$T/big.txt"
if "$GC" "$E" --prompt "$(cat "$T/big.txt")" --context-file "$T/nogaps.txt" 2>"$T/big.err"; then fail "a too long prompt was served"; fi
grep -q "the prompt is [0-9]* tokens, more than seq_len 512" "$T/big.err" || fail "unclear: $(cat "$T/big.err")"
if "$GC" "$E" --prompt "$P" --context-file "$T/nogaps.txt" --max-positions 3 2>"$T/mp.err"; then fail "max_positions 3 served"; fi
grep -q "more than max_positions 3" "$T/mp.err" || fail "unclear: $(cat "$T/mp.err")"

"$BIN/llmos" --endpoint "$E" model stats >"$T/stats.txt" || fail "stats"
grep -q "^kv_blocks_used *0" "$T/stats.txt" || fail "KV blocks left in use: $(cat "$T/stats.txt")"
kill -TERM "$PID"
st=0
wait "$PID" || st=$?
PID=
[ "$st" = 0 ] || fail "llmosd exited with status $st"
echo "model_shard_context: passed"
