#!/usr/bin/env bash
# test_ensemble.sh — llmosd --ensemble (actors/cls_ensemble.c) answers like
# llmos-eval's weighted average of the same members.
#
# Trains three tiny members on 5 BANKING77 intents: a LoRA mean-pooled and a
# head-only last-pooled stories260K classifier (different seeds, a few
# steps) and an n-gram classifier.  llmosd --ensemble a,b,ng:2 must give, for
# ~50 test texts through `llmos classify --json`, llmos-eval --ckpt a --ckpt b
# --ckpt ng --weight 2 --all-probs's probabilities for every class within
# 1e-5 and its argmax; 8 concurrent clients get the same answers; garbage
# payloads get EINVAL and the node lives (cls_garbage); generate is refused
# with a message naming what the node serves; the config key works; with
# --classifier too, `model` is the classifier and --actor classify/ensemble
# the ensemble; members and --classifier given as bare names are found in
# $LLMOS_MODELS (a missing one is named with the places looked in); bad
# specs stop llmosd at start-up with a message naming the member and the
# problem.
set -euo pipefail
. "$(dirname "$0")/../lib/cls.sh" llmos-ensemble

# Data: 5 intents, 40 training and 10 test texts each (no line breaks in test texts);
# other.csv: 3 other intents (a member with a different label set).
cls_subset "$T/train.csv" 0 5 train 40
cls_subset "$T/test.csv" 0 5 test 10
cls_subset "$T/other.csv" 5 3 train 40
train() { # name, then llmos-train options
  local name=$1; shift
  "$BIN/llmos-train" --train "$T/${TRAIN_FILE:-train.csv}" --out "$T/$name" --quiet "$@" >"$T/train_$name.log" 2>&1 \
    || fail "train $name: $(tail -3 "$T/train_$name.log")"
}
train a "${MODEL[@]}" --mode lora --pool mean --steps 12 --batch 16 --seq 48 --lr 3e-3 --seed 1
train b "${MODEL[@]}" --mode head --pool last --steps 12 --batch 16 --seq 32 --lr 1e-2 --seed 2
train ng --mode ngram
TRAIN_FILE=other.csv train ng_other --mode ngram
train lm "${MODEL[@]}" --mode pretrain --steps 2 --batch 4 --seq 32
"$BIN/llmos-eval" --ckpt "$T/a" --ckpt "$T/b" --ckpt "$T/ng" --weight 2 --data "$T/test.csv" --all-probs \
  --predictions "$T/eval.jsonl" >"$T/eval.txt" 2>&1 || fail "llmos-eval: $(tail -3 "$T/eval.txt")"
"$PY" -c "import json,sys; [print(json.loads(l)['text']) for l in open(sys.argv[1])]" "$T/eval.jsonl" >"$T/texts.txt"
[ "$(wc -l <"$T/texts.txt")" -ge 45 ] || fail "too few test texts"

# Compares classify --json output ($1, every class) with llmos-eval's --all-probs predictions.
compare() {
  "$PY" - "$1" "$T/eval.jsonl" <<'PYEOF' || fail "served probabilities differ from llmos-eval's ($2)"
import json, sys
srv = [json.loads(l) for l in open(sys.argv[1])]
ev = [json.loads(l) for l in open(sys.argv[2])]
assert len(srv) == len(ev), (len(srv), len(ev))
labels = sorted(srv[0]['labels'])  # the checkpoints' label set: the training file's sorted names
worst = 0
for s, e in zip(srv, ev):
    assert s['text'] == e['text'], (s['text'], e['text'])
    assert len(s['labels']) == len(labels) == len(e['probs']), (s, e)
    assert labels[max(range(len(labels)), key=lambda c: e['probs'][c])] == e['pred'], e
    assert s['best'] == e['pred'] == s['labels'][0], (s, e)
    got = dict(zip(s['labels'], s['probs']))
    worst = max([worst] + [abs(got[l] - e['probs'][c]) for c, l in enumerate(labels)])
    assert s['probs'] == sorted(s['probs'], reverse=True), s
assert worst < 1e-5, worst
print('%d texts, argmax equal, max |dp| over all classes %.2e' % (len(srv), worst))
PYEOF
}

. "$(dirname "$0")/../lib/node.sh"
start_node() { # llmosd options; sets PID and E
  : >"$T/node.log"
  llmos_node_start "$T/node.out" "$T/node.log" "$@" || fail "llmosd did not start: $(cat "$T/node.out" "$T/node.log")"
  PID=$NODE_PID
}
L() { "$BIN/llmos" --endpoint "$E" "$@"; }
SPEC="$T/a,$T/b,$T/ng:2"

# ---- the ensemble alone: registered as `model` too
start_node --log-level info --ensemble "$SPEC" --data-dir "$T/data1"
L classify --json --file "$T/texts.txt" >"$T/srv.jsonl" || fail "classify"
compare "$T/srv.jsonl" "one client"
# 8 concurrent clients, each the whole file: batches of several requests, the same answers
CLIENTS=()
for k in 1 2 3 4 5 6 7 8; do
  L classify --json --file "$T/texts.txt" >"$T/srv$k.jsonl" 2>"$T/srv$k.err" &
  CLIENTS+=($!)
done
for p in "${CLIENTS[@]}"; do wait "$p" || fail "a concurrent client failed"; done
for k in 1 2 3 4 5 6 7 8; do
  [ -s "$T/srv$k.jsonl" ] || fail "client $k: $(cat "$T/srv$k.err")"
  compare "$T/srv$k.jsonl" "client $k of 8" >/dev/null
done
L model stats >"$T/stats.txt" || fail "model stats"
grep -q "^classifier *$T/a,.*ng:2 (version 0, 5 classes)" "$T/stats.txt" || fail "stats: $(cat "$T/stats.txt")"
done_n=$(awk '$1 == "requests_done" {print $2}' "$T/stats.txt")
batches=$(awk '$1 == "iterations" {print $2}' "$T/stats.txt")
n=$(wc -l <"$T/texts.txt")
[ "$done_n" -eq $((9 * n)) ] || fail "requests_done $done_n, want $((9 * n))"
echo "$done_n requests in $batches batches"
[ "$batches" -lt "$done_n" ] || fail "no request was batched with another ($done_n requests, $batches batches)"
# --top K and the explicit actor name
L classify --top 2 --actor classify/ensemble "$(head -1 "$T/texts.txt")" >"$T/top2.txt" || fail "classify --top 2"
[ "$(wc -l <"$T/top2.txt")" -eq 2 ] || fail "--top 2 gave: $(cat "$T/top2.txt")"
[ "$(head -1 "$T/top2.txt" | cut -f1)" = "$(head -1 "$T/srv.jsonl" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['best'])")" ] \
  || fail "--top 2 does not start with the best label"
# garbage payloads, a huge top_k, bad bytes: EINVAL / answered; the node lives
"$BIN/cls_garbage" "$E" 5 || fail "bad Classify requests"
if L classify "" 2>"$T/empty.err"; then fail "an empty text was classified"; fi
grep -q "EINVAL" "$T/empty.err" || fail "empty text: $(cat "$T/empty.err")"
if L generate --prompt hello -n 4 >"$T/gen.out" 2>"$T/gen.err"; then fail "the ensemble generated text"; fi
grep -q "classifier ensemble of 3 members.*generate is not supported" "$T/gen.err" || fail "generate: $(cat "$T/gen.err")"
L classify "$(head -1 "$T/texts.txt")" >/dev/null || fail "the node stopped serving"
stop_node

# ---- config key; with --classifier, `model` is the classifier and classify/ensemble the ensemble
printf 'ensemble = %s\n' "$SPEC" >"$T/node.conf"
start_node --config "$T/node.conf" --classifier "$T/b" --data-dir "$T/data2"
L model stats | grep -q "^classifier *$T/b (version" || fail "model is not the classifier: $(L model stats)"
L classify --json --actor classify/ensemble --file "$T/texts.txt" >"$T/srv_cfg.jsonl" || fail "classify (config)"
compare "$T/srv_cfg.jsonl" "config key, --actor classify/ensemble"
stop_node
# the flag wins over the config key
printf 'ensemble = %s\n' "$T/missing" >"$T/bad.conf"
start_node --config "$T/bad.conf" --ensemble "$SPEC" --data-dir "$T/data3"
L classify "$(head -1 "$T/texts.txt")" >/dev/null || fail "classify (flag over config)"
stop_node

# ---- bare names: members and --classifier found in $LLMOS_MODELS when not in the working directory
mkdir -p "$T/elsewhere"
cd "$T/elsewhere"
LLMOS_MODELS="$T" start_node --ensemble "a,b,ng:2" --classifier b --data-dir "$T/data5"
L model stats | grep -q "^classifier *$T/b (version" || fail "--classifier b: $(L model stats)"
L classify --json --actor classify/ensemble --file "$T/texts.txt" >"$T/srv_bare.jsonl" || fail "classify (bare names)"
compare "$T/srv_bare.jsonl" "bare member names"
stop_node
if LLMOS_MODELS="$T" "$BIN/llmosd" --listen tcp://127.0.0.1:0 --data-dir "$T/data6" --ensemble "a,nope" \
    >/dev/null 2>"$T/bare.err"; then fail "an ensemble with a missing bare member started"; fi
grep -qF "ensemble member 2 (nope): 'nope' not found: not in the working directory $T/elsewhere, not in the models folder $T" \
  "$T/bare.err" || fail "unclear: $(cat "$T/bare.err")"
if LLMOS_MODELS="$T" "$BIN/llmosd" --listen tcp://127.0.0.1:0 --data-dir "$T/data7" --classifier nope \
    >/dev/null 2>"$T/bare2.err"; then fail "a missing bare --classifier started"; fi
grep -qF "classifier 'nope' not found: not in the working directory $T/elsewhere" "$T/bare2.err" \
  || fail "unclear: $(cat "$T/bare2.err")"
cd "$T"

# ---- bad specs: llmosd exits non-zero at start-up, naming the member and the problem
bad() { # expected stderr pattern, then llmosd options
  local want=$1; shift
  if "$BIN/llmosd" --listen tcp://127.0.0.1:0 --data-dir "$T/data4" "$@" >"$T/bad.out" 2>"$T/bad.err"; then
    fail "llmosd started with $*"
  fi
  echo "refused: $(grep "^llmosd:" "$T/bad.err" | head -c 300)"
  grep -q -- "$want" "$T/bad.err" || fail "llmosd $*: expected '$want', got: $(cat "$T/bad.err")"
}
bad "ensemble member 2 ($T/missing): " --ensemble "$T/a,$T/missing"
bad "ensemble member 2 ($T/missing): " --config "$T/bad.conf" --ensemble "$T/a,$T/missing"
bad "ensemble member 1 ($T/missing): " --config "$T/bad.conf"
bad "ensemble member 3 ($T/ng): weight '-1' is not a number >= 0" --ensemble "$T/a,$T/b,$T/ng:-1"
bad "ensemble member 1 ($T/a): weight 'x2' is not a number >= 0" --ensemble "$T/a:x2"
bad "ensemble member 2: empty entry" --ensemble "$T/a,,$T/b"
bad "the weights sum to 0" --ensemble "$T/a:0,$T/ng:0"
bad "ensemble member 2 ($T/lm): .*not a classifier" --ensemble "$T/a,$T/lm"
bad "ensemble member 3 ($T/ng_other): its 3 labels differ from member 1's" --ensemble "$T/a,$T/b,$T/ng_other"
mkdir -p "$T/garbage"; head -c 65536 /dev/urandom >"$T/garbage/ckpt.lmdb"
bad "ensemble member 1 ($T/garbage): " --ensemble "$T/garbage,$T/a"
echo "ok"
