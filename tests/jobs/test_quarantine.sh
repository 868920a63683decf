#!/usr/bin/env bash
# test_quarantine.sh — jobs that crash a node do not crash it for good.
#
#   1. The poison pill of issue 21, for real: `llmosd --model … --graph umls.db`
#      and a link task that mentions nothing ("Lily saw"), then the README's
#      short form with "graph": true — both finish (0 facts), the node serves on.
#   2. A node killed inside a task on purpose (LLMOS_TEST_CRASH_ON_ECHO makes
#      the echo actor abort on one text): restarted on the same --data-dir it
#      runs the job again and dies again, twice; at the third restart the job
#      is quarantined (state quarantined, the reason in its error), the node
#      stays up, `llmos jobs --state quarantined` lists it, every other job is
#      intact and new jobs run.
#   3. Results larger than a frame: a node with --max-frame 1M answers a job
#      whose texts add up to ~3.5 MB; `llmos status` and `llmos wait` print
#      them whole (the client fetches the parts), byte for byte.
set -euo pipefail

BIN=${LLMOS_BIN:?LLMOS_BIN not set}
MODELS=${LLMOS_MODELS:?LLMOS_MODELS not set}
DATA=${LLMOS_DATA:?LLMOS_DATA not set}
. "$(dirname "$0")/../lib/node.sh"
T=$(mktemp -d /tmp/llmos-quarantine-XXXXXX)
NODE_PID=
cleanup() {
    [ -n "$NODE_PID" ] && kill -9 "$NODE_PID" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$T/node.log" >&2 2>/dev/null || true; exit 1; }
step() { echo "--- $*"; }
ulimit -c 0 # the aborts are on purpose: no core files

L() { "$BIN/llmos" --endpoint "$E" "$@"; }

step "the poison pill: a link task that mentions nothing, through the scheduler"
"$BIN/llmos" graph load "$T/umls.db" "$DATA/kg/umls/train.txt" >/dev/null
llmos_node_start "$T/node.out" "$T/node.log" --data-dir "$T/d1" --graph "$T/umls.db" \
    --model "$MODELS/stories260K.bin" --tokenizer "$MODELS/tok512.bin" || fail "llmosd did not start"
out=$(echo '{"id":"g3","kind":"link","text":"Lily saw"}' | timeout 30 "$BIN/llmos" --endpoint "$E" submit - --wait) ||
    fail "link job: $out"
echo "$out" | grep -q '"state":"done"' || fail "link job not done: $out"
echo "$out" | grep -q '"facts":0' || fail "link job found facts in 'Lily saw': $out"
out=$(echo '{"id":"g4","kind":"generate","prompt":"Lily saw","max_tokens":20,"temperature":0,"graph":true}' |
    timeout 30 "$BIN/llmos" --endpoint "$E" submit - --wait) || fail "graph:true generation: $out"
echo "$out" | grep -q '"state":"done"' || fail "graph:true generation not done: $out"
# facts that do not fit the model's context are dropped, not an error
out=$(echo '{"id":"g5","kind":"generate","prompt":"A virus, a bacterium, a mammal, a plant, a fungus and a cell","max_tokens":20,"temperature":0,"graph":true,"hops":2,"max_facts":2000}' |
    timeout 30 "$BIN/llmos" --endpoint "$E" submit - --wait) || fail "a generation with too many facts: $out"
echo "$out" | grep -q '"state":"done"' || fail "a generation with too many facts is not done: $out"
kill -0 "$NODE_PID" || fail "llmosd died"
L ping >/dev/null || fail "the node does not answer after the link jobs"
kill "$NODE_PID"
wait "$NODE_PID" || fail "llmosd exited $? on SIGTERM"
NODE_PID=

step "a node killed inside a task, three times: the job is quarantined"
export LLMOS_TEST_CRASH_ON_ECHO=boom
D="$T/d2"
llmos_node_start "$T/node.out" "$T/node.log" --data-dir "$D" || fail "llmosd did not start"
L submit - --wait >/dev/null <<<'{"id":"keep-1","kind":"echo","text":"kept"}' || fail "keep-1"
L submit - --wait >/dev/null <<<'{"id":"keep-2","tasks":[{"name":"a","kind":"echo","text":"x"},{"name":"b","kind":"echo","text":"y","input_from":["a"]}]}' ||
    fail "keep-2"
# (the node may die before its acknowledgement leaves: the job is logged first either way)
"$BIN/llmos" --endpoint "$E" --timeout 2000 submit - >/dev/null 2>&1 <<<'{"id":"poison","kind":"echo","text":"boom"}' || true
for crash in 1 2 3; do
    set +e
    wait "$NODE_PID"
    rc=$?
    set -e
    NODE_PID=
    [ "$rc" -eq 134 ] || fail "crash $crash: llmosd exited $rc, not by SIGABRT (134)"
    grep -q "LLMOS_TEST_CRASH_ON_ECHO matched" "$T/node.log" || fail "crash $crash: not the injected fault"
    : >"$T/node.log"
    llmos_node_start "$T/node.out" "$T/node.log" --data-dir "$D" || fail "restart $crash: llmosd did not start"
done
sleep 1
kill -0 "$NODE_PID" || fail "the node died a fourth time: the job was not quarantined"
grep -q "job poison quarantined" "$T/node.log" || fail "no quarantine in the log"
st=$(L status poison 2>&1 || true)
echo "$st" | grep -q '"state":"quarantined"' || fail "poison status: $st"
echo "$st" | grep -q 'in flight during 3 consecutive crashes' || fail "poison error: $st"
list=$(L jobs --state quarantined)
echo "$list" | grep -q poison || fail "jobs --state quarantined does not list poison: $list"
[ "$(echo "$list" | grep -c .)" -ge 1 ] || fail "empty list"
echo "$list" | grep -q keep- && fail "jobs --state quarantined lists a healthy job: $list"
st=$(L status keep-1)
echo "$st" | grep -q '"state":"done"' || fail "keep-1 lost: $st"
echo "$st" | grep -q '"text":"kept"' || fail "keep-1 result lost: $st"
st=$(L status keep-2)
echo "$st" | grep -q '"text":"x\\ny"' || fail "keep-2 result lost: $st"
out=$(L submit - --wait <<<'{"id":"after","kind":"echo","text":"fine"}') || fail "new job after quarantine: $out"
echo "$out" | grep -q '"state":"done"' || fail "new job not done: $out"
stats=$(L jobs --stats)
echo "$stats" | grep -q '"quarantined":1' || fail "stats: $stats"

step "restarting again changes nothing: still quarantined, nothing runs"
kill "$NODE_PID"
wait "$NODE_PID" || fail "llmosd exited $? on SIGTERM"
NODE_PID=
llmos_node_start "$T/node.out" "$T/node.log" --data-dir "$D" || fail "llmosd did not start"
sleep 0.5
kill -0 "$NODE_PID" || fail "the node died after a clean restart"
L status poison | grep -q '"state":"quarantined"' || fail "poison not quarantined after restart"
kill "$NODE_PID"
wait "$NODE_PID" || fail "llmosd exited $? on SIGTERM"
NODE_PID=
unset LLMOS_TEST_CRASH_ON_ECHO

step "results larger than a frame come back whole, in parts"
llmos_node_start "$T/node.out" "$T/node.log" --data-dir "$T/d3" --max-frame 1M || fail "llmosd did not start"
python3 - "$T/big.json" <<'PY'
import json, sys
a = "".join(chr(ord("a") + i % 26) for i in range(600000))
b = "B" * 300000
job = {"id": "big", "tasks": [{"name": "a", "kind": "echo", "text": a},
                              {"name": "b", "kind": "echo", "text": b, "input_from": ["a"]},
                              {"name": "c", "kind": "echo", "text": "end", "input_from": ["a", "b"]}]}
json.dump(job, open(sys.argv[1], "w"))
PY
L submit "$T/big.json" >/dev/null || fail "big job not accepted"
L wait big --timeout 30000 >"$T/wait.json" || fail "wait big: $(head -c 300 "$T/wait.json")"
L status big >"$T/status.json" || fail "status big: $(head -c 300 "$T/status.json")"
python3 - "$T/wait.json" "$T/status.json" <<'PY' || fail "big results differ"
import json, sys
a = "".join(chr(ord("a") + i % 26) for i in range(600000))
want = {"a": a, "b": a + "\n" + "B" * 300000, "c": a + "\n" + a + "\n" + "B" * 300000 + "\nend"}
for path in sys.argv[1:]:
    st = json.loads(open(path).read())
    assert st["state"] == "done", st["state"]
    got = {t["task"]: t["text"] for t in st["tasks"]}
    for k, v in want.items():
        assert got[k] == v, (path, k, len(got[k]), len(v))
print("big: %d bytes of results, whole" % sum(len(v) for v in want.values()))
PY
echo "quarantine: ok"
