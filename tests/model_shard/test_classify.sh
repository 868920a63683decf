#!/usr/bin/env bash
# test_classify.sh — a fine-tuned classifier served by llmosd --classifier
# answers like llmos-eval --ckpt on the same texts.
#
# Trains two tiny classifiers on 4 BANKING77 intents (stories260K, a few
# seconds each): LoRA with mean pooling (served as a merged body) and head
# only with last-token pooling (served on the base file).  Then, for
# llmosd --classifier at T = 1 and (LoRA) under mpirun -np 2 --tp 2, the CLI's
# `classify --json` must give llmos-eval's predicted label for every test
# text exactly and its probability within 1e-4; --top K returns the K most
# probable; a classify job through the scheduler (no labels) returns the same
# label; `model stats` names the classifier; `model load --classifier` swaps
# it at run time; without a classifier a Score without labels is EINVAL with
# a clear message; an empty text is EINVAL; a garbage checkpoint is refused
# (at start-up: llmosd exits non-zero; by `model load`: an error) and the node lives.
# Long texts (>= 100 tokens) through a mean-pooled classifier served with
# --token-budget 64: llmos-eval's probabilities within 1e-4, and the stats
# show the text took ceil(tokens / 64) iterations (prefill chunks pooled
# whole), not one per token; the same at T = 2.
set -euo pipefail
. "$(dirname "$0")/../lib/cls.sh" llmos-classify

# Data: 4 intents, 40 training and 12 test texts each (texts with line breaks left out of the test file).
cls_subset "$T/train.csv" 0 4 train 40
cls_subset "$T/test.csv" 0 4 test 12
"$BIN/llmos-train" "${MODEL[@]}" --train "$T/train.csv" --out "$T/lora" --mode lora --pool mean --steps 20 \
  --batch 16 --seq 48 --lr 3e-3 --quiet >"$T/train1.log" 2>&1 || fail "train lora: $(tail -3 "$T/train1.log")"
"$BIN/llmos-train" "${MODEL[@]}" --train "$T/train.csv" --out "$T/head" --mode head --pool last --steps 20 \
  --batch 16 --seq 32 --lr 1e-2 --quiet >"$T/train2.log" 2>&1 || fail "train head: $(tail -3 "$T/train2.log")"
# Long texts: 5-8 test texts of one intent joined (>= 100 tokens each), for a mean-pooled head with seq 256.
"$PY" - "$T/test.csv" "$T/long.csv" <<'PYEOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline='')))
by = {}
for r in rows[1:]:
    by.setdefault(r[1], []).append(r[0])
with open(sys.argv[2], 'w', newline='') as f:
    w = csv.writer(f); w.writerow(rows[0])
    for l, ts in sorted(by.items()):
        for k in range(2):
            text = ' '.join(ts[k * 4:k * 4 + 8])
            while len(text) < 450: text += ' ' + ts[len(text) % len(ts)]
            w.writerow([text, l])
PYEOF
"$BIN/llmos-train" "${MODEL[@]}" --train "$T/train.csv" --out "$T/long" --mode head --pool mean --steps 10 \
  --batch 16 --seq 256 --lr 1e-2 --quiet >"$T/train3.log" 2>&1 || fail "train long: $(tail -3 "$T/train3.log")"
"$BIN/llmos-eval" --ckpt "$T/long" --data "$T/long.csv" --predictions "$T/long.eval.jsonl" >/dev/null 2>&1 || fail "eval long"
"$PY" -c "import json,sys; [print(json.loads(l)['text']) for l in open(sys.argv[1])]" "$T/long.eval.jsonl" >"$T/long.txt"
for k in lora head; do
  "$BIN/llmos-eval" --ckpt "$T/$k" --data "$T/test.csv" --predictions "$T/$k.eval.jsonl" >"$T/$k.eval.txt" 2>/dev/null \
    || fail "eval $k"
done
"$PY" -c "import json,sys; [print(json.loads(l)['text']) for l in open(sys.argv[1])]" "$T/lora.eval.jsonl" >"$T/texts.txt"
[ "$(wc -l <"$T/texts.txt")" -ge 40 ] || fail "too few test texts"

# Compares classify --json output ($1) with llmos-eval's predictions ($2).
compare() {
  "$PY" - "$1" "$2" <<'PYEOF' || fail "served predictions differ from llmos-eval's ($3)"
import json, sys
srv = [json.loads(l) for l in open(sys.argv[1])]
ev = [json.loads(l) for l in open(sys.argv[2])]
assert len(srv) == len(ev), (len(srv), len(ev))
worst = 0
for s, e in zip(srv, ev):
    assert s['text'] == e['text'], (s['text'], e['text'])
    assert s['best'] == e['pred'] == s['labels'][0], (s, e)
    worst = max(worst, abs(s['probs'][0] - e['prob']))
    assert abs(sum(s['probs']) - 1) < 1e-4 and s['probs'] == sorted(s['probs'], reverse=True), s
assert worst < 1e-4, worst
print('%d texts, labels equal, max |dp| %.2e' % (len(srv), worst))
PYEOF
}

start_node() { # llmosd flags (MPI=1: under mpirun -np 2, E = the rank that serves `model`); sets PID and E
  local fx=()
  [ "$MPI" = 1 ] && fx=(--np 2 --actor model)
  : >"$T/node.log"
  llmos_node_start "${fx[@]}" "$T/node.out" "$T/node.log" "$@" || {
    PID=$NODE_PID
    fail "llmosd did not start: $(cat "$T/node.out" "$T/node.log")"
  }
  PID=$NODE_PID
  for _ in $(seq 300); do "$BIN/llmos" --endpoint "$E" model stats >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "the model actor on $E does not answer: $(cat "$T/node.out")"
}
L() { "$BIN/llmos" --endpoint "$E" "$@"; }

# ---- T = 1, LoRA (merged body), with the job path
start_node --log-level info --classifier "$T/lora" --data-dir "$T/data"
L classify --json --file "$T/texts.txt" >"$T/srv.jsonl" || fail "classify"
compare "$T/srv.jsonl" "$T/lora.eval.jsonl" "lora, T=1"
L classify --top 2 "$(head -1 "$T/texts.txt")" >"$T/top2.txt" || fail "classify --top 2"
[ "$(wc -l <"$T/top2.txt")" -eq 2 ] || fail "--top 2 gave: $(cat "$T/top2.txt")"
first=$("$PY" -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['pred'])" "$T/lora.eval.jsonl")
[ "$(head -1 "$T/top2.txt" | cut -f1)" = "$first" ] || fail "--top 2 does not start with the best label"
L model stats >"$T/stats.txt" || fail "model stats"
grep -q "^classifier .*lora (version [0-9]*, 4 classes)" "$T/stats.txt" || fail "stats: $(cat "$T/stats.txt")"
body=$(sed -n 's/.*body from \(.*llmos-cls-[A-Za-z0-9]*\).*/\1/p' "$T/node.log" | head -1)
[ -n "$body" ] || fail "the log names no merged body file"
[ ! -e "$body" ] || fail "the temporary body file $body is left on disk"
# a classify job without labels goes through the scheduler to the classifier
text=$(sed -n 5p "$T/texts.txt")
want=$(sed -n 5p "$T/lora.eval.jsonl" | "$PY" -c "import json,sys; print(json.loads(sys.stdin.read())['pred'])")
"$PY" -c "import json,sys; print(json.dumps({'id':'cls-1','kind':'classify','text':sys.argv[1]}))" "$text" \
  | L submit - --wait >"$T/job.json" 2>"$T/job.err" || fail "classify job: $(cat "$T/job.err" "$T/job.json")"
"$PY" - "$T/job.json" "$want" <<'PYEOF' || fail "the job's label differs: $(cat "$T/job.json")"
import json, sys
j = json.loads(open(sys.argv[1]).read())
assert j['state'] == 'done' and j['tasks'][0]['best'] == sys.argv[2], (j, sys.argv[2])
PYEOF
# bad requests: payloads that are no ScoreRequest, a huge top_k, bad bytes; an empty text; the node lives
"$BIN/cls_garbage" "$E" 4 || fail "bad Classify requests"
# bad requests: an empty text; the node lives
if L classify "" 2>"$T/empty.err"; then fail "an empty text was classified"; fi
grep -q "EINVAL" "$T/empty.err" || fail "empty text: $(cat "$T/empty.err")"
# a garbage checkpoint at run time is refused (the old model is unloaded first, as for any LOAD); the node lives
mkdir -p "$T/garbage"; head -c 65536 /dev/urandom >"$T/garbage/ckpt.lmdb"
if L model load "" --classifier "$T/garbage" >"$T/gload.out" 2>"$T/gload.err"; then fail "a garbage checkpoint loaded"; fi
grep -q "classifier .*garbage" "$T/gload.err" || fail "garbage load: $(cat "$T/gload.err")"
# swap in the head-only classifier (last pooling, base body) at run time
L model load "" --classifier "$T/head" >/dev/null || fail "model load --classifier head"
L classify --json --file "$T/texts.txt" >"$T/srv_head.jsonl" || fail "classify (head)"
compare "$T/srv_head.jsonl" "$T/head.eval.jsonl" "head, last pooling, T=1"
stop_node

# ---- long texts, mean pooling, 64 rows per iteration: chunks pooled whole
stat() { L model stats | awk -v k="$1" '$1 == k {print $2}'; }
long_case() { # $1: what
  L classify --json --file "$T/long.txt" >"$T/srv_long.jsonl" || fail "classify long ($1)"
  compare "$T/srv_long.jsonl" "$T/long.eval.jsonl" "long texts, mean pooling, $1"
  it0=$(stat iterations); pt0=$(stat prompt_tokens)
  L classify "$(head -1 "$T/long.txt")" >/dev/null || fail "classify one long text ($1)"
  it=$(( $(stat iterations) - it0 )); pt=$(( $(stat prompt_tokens) - pt0 ))
  echo "one long text ($1): $pt tokens in $it iterations"
  [ "$pt" -ge 100 ] || fail "the long text has only $pt tokens"
  [ "$it" -eq $(( (pt + 63) / 64 )) ] || fail "$pt tokens took $it iterations at 64 rows per iteration ($1)"
}
start_node --log-level warn --classifier "$T/long" --token-budget 64 \
  --data-dir "$T/data5"
long_case "T=1"
stop_node

# ---- no classifier: a Score without labels is EINVAL, clearly
start_node --log-level warn "${MODEL[@]}" --data-dir "$T/data2"
if L classify "hello" 2>"$T/nocls.err"; then fail "classified without a classifier"; fi
grep -q "no classifier is loaded.*--classifier" "$T/nocls.err" || fail "no classifier: $(cat "$T/nocls.err")"
grep -q "EINVAL" "$T/nocls.err" || fail "no classifier: $(cat "$T/nocls.err")"
L model stats >/dev/null || fail "the node died"
stop_node

# ---- a garbage checkpoint at start-up: llmosd exits non-zero with the reason
if "$BIN/llmosd" --listen tcp://127.0.0.1:0 --classifier "$T/garbage" --data-dir "$T/data3" >"$T/g.out" 2>"$T/g.err"; then
  fail "llmosd started with a garbage checkpoint"
fi
grep -q "classifier .*garbage" "$T/g.err" || fail "garbage start: $(cat "$T/g.err")"

# ---- T = 2 (tensor parallel), LoRA: every rank merges the same body and loads its slices; then head-only by LOAD
if command -v mpirun >/dev/null; then
  MPI=1
  export OMPI_MCA_mpi_yield_when_idle=1
  start_node --log-level info --classifier "$T/lora" --tp 2 --data-dir "$T/data4"
  L classify --json --file "$T/texts.txt" >"$T/srv2.jsonl" || fail "classify (T=2)"
  compare "$T/srv2.jsonl" "$T/lora.eval.jsonl" "lora, T=2"
  L model stats | grep -q "^tp *2" || fail "not a T=2 group"
  # LOAD over messages: the leader asks the follower to load the same classifier's body first
  L model load "" --classifier "$T/head" >/dev/null || fail "model load --classifier head (T=2)"
  L classify --json --file "$T/texts.txt" >"$T/srv2_head.jsonl" || fail "classify (head, T=2)"
  compare "$T/srv2_head.jsonl" "$T/head.eval.jsonl" "head, last pooling, T=2"
  stop_node
  # long texts in chunks of 64 rows: the followers pool nothing but run the flagged chunks alike
  start_node --log-level info --classifier "$T/long" --tp 2 --token-budget 64 --data-dir "$T/data6"
  long_case "T=2"
  stop_node
fi
echo "ok"
