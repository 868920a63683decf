#!/usr/bin/env bash
# test_jobs_live.sh JOBS_LIVE — jobs end to end through real processes:
#   1. llmosd --data-dir (fresh) with a small queue_limit; jobs_live (C,
#      the library) runs submit/wait/status/stream/cancel/list/overload/
#      gateway checks against it (with a model when llmosd has --model);
#   2. the CLI: llmos submit|wait|status|cancel|jobs on the same node;
#   2b. the CLI's edges: a 1024-task job (the gateway's limit, also the
#      client's), ids holding a NUL, a trailing comma's message, every
#      remote command honouring --endpoint then $LLMOS_ENDPOINT, graph
#      subcommands with no remote form, a host name that does not exist,
#      node ids in 16 hex digits;
#   3. llmos batch run: every kind of line, malformed lines (error records
#      with their line number), duplicate and missing ids, blank lines;
#      exit 3 when records are errors (counted also when resumed); a second
#      run submits nothing and changes nothing; a changed line is run again;
#      a dead node: exit 1 at once, nothing written.
# The crash/resume test is test_batch_crash.sh.
set -euo pipefail

LIVE=${1:?usage: test_jobs_live.sh JOBS_LIVE}
BIN=${LLMOS_BIN:?LLMOS_BIN not set}
. "$(dirname "$0")/../lib/node.sh"
MODELS=${LLMOS_MODELS:?LLMOS_MODELS not set}
PY=/usr/bin/python3
. "$(dirname "$0")/../lib/tmp.sh"
llmos_tmp llmos-jobs-live cleanup
NODE_PID=
cleanup() {
    if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then kill -9 "$NODE_PID"; fi
}
fail() { echo "FAIL: $*" >&2; [ -f "$T/node.log" ] && tail -30 "$T/node.log" >&2; exit 1; }
step() { echo "--- $*"; }

# start_node NAME ARGS...: llmosd on a system-chosen port (tests/lib/node.sh); sets E and NODE_PID.
start_node() {
    local log=$1; shift
    : >"$T/node.log"
    llmos_node_start "$log.out" "$T/node.log" "$@" || fail "llmosd did not start"
}

cat >"$T/node.conf" <<EOF
queue_limit = 30
sync = 0
EOF
MODEL_ARGS=()
HAVE_MODEL=0
if "$BIN/llmosd" --help 2>&1 | grep -q -- '--model'; then
    MODEL_ARGS=(--model "$MODELS/stories260K.bin" --tokenizer "$MODELS/tok512.bin")
    HAVE_MODEL=1
fi

step "1. the library against llmosd --data-dir (model: $HAVE_MODEL)"
start_node "$T/n1" --config "$T/node.conf" --data-dir "$T/data" "${MODEL_ARGS[@]}"
"$LIVE" "$E" "$HAVE_MODEL" || fail "jobs_live"
[ -d "$T/data/jobs.lmdb" ] || [ -f "$T/data/jobs.lmdb" ] || fail "no jobs.lmdb in the data dir"

step "2. the CLI"
L=("$BIN/llmos" --endpoint "$E")
echo '{"id":"cli-1","kind":"echo","text":"from the cli"}' >"$T/job.json"
"${L[@]}" submit "$T/job.json" >"$T/sub.out" || fail "llmos submit"
grep -q '"id":"cli-1"' "$T/sub.out" || fail "submit output: $(cat "$T/sub.out")"
"${L[@]}" wait cli-1 --timeout 5000 >"$T/wait.out" || fail "llmos wait"
grep -q '"state":"done"' "$T/wait.out" && grep -q '"text":"from the cli"' "$T/wait.out" || fail "wait: $(cat "$T/wait.out")"
"${L[@]}" status cli-1 | grep -q '"state":"done"' || fail "llmos status ID"
"${L[@]}" status | grep -q '^node' || fail "llmos status (node) changed"
echo '{"id":"cli-1","kind":"echo","text":"again"}' | "${L[@]}" submit - | grep -q '"existing":true' || fail "resubmit"
echo '{"id":"cli-2","kind":"echo","text":"x","bogus":1}' >"$T/bad.json"
if "${L[@]}" submit "$T/bad.json" 2>"$T/bad.err"; then fail "a bad job was accepted"; fi
grep -q 'bogus: unknown field' "$T/bad.err" || fail "bad job message: $(cat "$T/bad.err")"
echo '{"id":"cli-3","kind":"echo","text":"stuck","target":"sink"}' | "${L[@]}" submit - >/dev/null
"${L[@]}" cancel cli-3 >/dev/null || fail "llmos cancel"
"${L[@]}" wait cli-3 --timeout 5000 >"$T/c.out" && fail "a cancelled job waits with exit 0"
grep -q '"state":"cancelled"' "$T/c.out" || fail "cancelled: $(cat "$T/c.out")"
"${L[@]}" jobs --state cancelled --limit 100 | grep -q '^cli-3 ' || fail "llmos jobs --state cancelled"
"${L[@]}" jobs --stats | grep -q '"cancelled":' || fail "llmos jobs --stats"
"${L[@]}" submit "$T/job.json" --wait | grep -q '"state":"done"' || fail "submit --wait"

step "2b. the CLI's edges"
# as many tasks as the gateway takes (1024), and one more refused by the client, by its place
$PY - "$T" <<'EOF'
import json, sys
for n in (1024, 1025):
    tasks = [{"kind": "echo", "text": str(i)} for i in range(n)]
    json.dump({"id": f"many-{n}", "tasks": tasks}, open(f"{sys.argv[1]}/many{n}.json", "w"))
EOF
"${L[@]}" submit "$T/many1024.json" --wait >"$T/many.out" 2>"$T/many.err" || fail "1024 tasks: $(cat "$T/many.err")"
$PY -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["state"]=="done" and len(s["tasks"])==1024, s["state"]' \
    "$T/many.out" || fail "1024 tasks: $(head -c 300 "$T/many.out")"
if "${L[@]}" submit "$T/many1025.json" 2>"$T/many.err"; then fail "1025 tasks accepted"; fi
grep -qF "tasks[1024]: a job holds at most 1024 tasks" "$T/many.err" || fail "1025 tasks: $(cat "$T/many.err")"
# "a\u0000b" is refused, not cut into job "a"
echo '{"id":"nul\u0000b","kind":"echo","text":"x"}' >"$T/nul.json"
if "${L[@]}" submit "$T/nul.json" 2>"$T/nul.err"; then fail "an id with a NUL was accepted"; fi
grep -q "id: contains a NUL character" "$T/nul.err" || fail "NUL id: $(cat "$T/nul.err")"
if echo '{"id":"nul2","tenant":"t\u0000","kind":"echo","text":"x"}' | "${L[@]}" submit - 2>"$T/nul.err"; then
    fail "a tenant with a NUL was accepted"
fi
grep -q "tenant: contains a NUL" "$T/nul.err" || fail "NUL tenant: $(cat "$T/nul.err")"
if "${L[@]}" status nul 2>/dev/null; then fail "job 'nul' exists"; fi
# a trailing comma: where, what is around it, what is wrong
printf '{"id":"tc",\n "kind":"echo",\n "text":"x",\n}\n' >"$T/tc.json"
if "${L[@]}" submit "$T/tc.json" 2>"$T/tc.err"; then fail "a trailing comma was accepted"; fi
grep -qF "(line 4, column 1), after '" "$T/tc.err" && grep -qF "\"text\":\"x\",\\n' and before '}\\n' (JSON allows no comma before '}')" "$T/tc.err" ||
    fail "trailing comma: $(cat "$T/tc.err")"
# --endpoint, then $LLMOS_ENDPOINT, then the default, for every remote command
DEAD=tcp://127.0.0.1:9
LLMOS_ENDPOINT="$E" "$BIN/llmos" ping >/dev/null || fail "ping with LLMOS_ENDPOINT"
LLMOS_ENDPOINT="$E" "$BIN/llmos" status cli-1 | grep -q '"state":"done"' || fail "status ID with LLMOS_ENDPOINT"
LLMOS_ENDPOINT="$E" "$BIN/llmos" jobs --stats >/dev/null || fail "jobs with LLMOS_ENDPOINT"
LLMOS_ENDPOINT="$DEAD" "$BIN/llmos" --endpoint "$E" wait cli-1 >/dev/null || fail "--endpoint does not win over LLMOS_ENDPOINT"
if LLMOS_ENDPOINT="$DEAD" "$BIN/llmos" --timeout 300 ping 2>"$T/dead.err"; then fail "ping a dead LLMOS_ENDPOINT"; fi
grep -q "no answer from $DEAD" "$T/dead.err" || fail "dead endpoint: $(cat "$T/dead.err")"
for cmd in "model stats" "generate -n 5" "classify hello"; do # the same rule, whatever the node serves
    if LLMOS_ENDPOINT="$DEAD" "$BIN/llmos" --timeout 300 $cmd >/dev/null 2>"$T/m.err"; then fail "llmos $cmd: a dead node answered"; fi
    grep -q "$DEAD" "$T/m.err" || fail "llmos $cmd does not use LLMOS_ENDPOINT: $(cat "$T/m.err")"
done
# a graph subcommand with no remote form: an error, not the local tool on a path named like the query
if "${L[@]}" graph dump "$T/nodb" >"$T/g.out" 2>"$T/g.err"; then fail "graph dump with --endpoint ran"; fi
grep -q "graph dump: has no remote form" "$T/g.err" || fail "graph dump: $(cat "$T/g.err")"
[ ! -e "$T/nodb" ] || fail "graph dump with --endpoint ran the local tool"
# a host that does not exist: a name error at once, not a 5 s timeout (glibc refuses this name
# without asking DNS: nothing leaves the machine)
start=$(date +%s%N)
if "$BIN/llmos" --endpoint 'tcp://no-such-host!invalid:7070' ping 2>"$T/host.err"; then fail "no-such-host answered"; fi
[ $((($(date +%s%N) - start) / 1000000)) -lt 1000 ] || fail "the unknown host took a timeout"
grep -qF "no host named 'no-such-host!invalid'" "$T/host.err" || fail "unknown host: $(cat "$T/host.err")"
if unshare -rn true 2>/dev/null; then # a real name, looked up where there is no network: still at once
    start=$(date +%s%N)
    if unshare -rn "$BIN/llmos" --endpoint tcp://no-such-host.invalid:7070 ping 2>"$T/host.err"; then fail "answered"; fi
    [ $((($(date +%s%N) - start) / 1000000)) -lt 1000 ] || fail "no-such-host.invalid took a timeout"
    grep -q "host 'no-such-host.invalid'" "$T/host.err" || fail "unknown host: $(cat "$T/host.err")"
fi
# node ids: 16 hex digits, in the status and in the node's messages
"${L[@]}" status | grep -Eq '^node +[0-9a-f]{16} \([0-9a-f]{16}\)$' || fail "node id: $("${L[@]}" status | head -1)"
if "${L[@]}" classify x --actor nosuch 2>"$T/na.err"; then fail "actor nosuch answered"; fi
grep -Eq "node [0-9a-f]{16}\b" "$T/na.err" || fail "node id in an error: $(cat "$T/na.err")"

step "3. llmos batch run: kinds, malformed lines, ids"
# batch WANT ERRFILE ARGS...: llmos batch run ARGS, which must exit WANT (3: complete, with error records)
batch() {
    local want=$1 errf=$2 rc=0
    shift 2
    "${L[@]}" batch run "$@" 2>"$errf" || rc=$?
    [ "$rc" = "$want" ] || fail "batch run $*: exit $rc, want $want: $(cat "$errf")"
}
{
    echo '{"id":"a","kind":"echo","text":"alpha"}'
    echo '{"kind":"echo","text":"no id here"}'
    echo ''
    echo '{"id":"c","kind":"echo","text":"unterminated'
    echo 'not json at all'
    echo '{"id":"d","kind":"teleport","text":"x"}'
    echo '{"id":"a","kind":"echo","text":"duplicate of a"}'
    echo '{"id":7,"kind":"echo","text":"numeric id"}'
    echo '{"id":"f","kind":"generate","prompt":"x","max_tokens":-3}'
    echo '   '
    echo '{"id":"g","tasks":[{"name":"x","kind":"echo","text":"one"},{"name":"y","kind":"echo","text":"two","input_from":["x"]}]}'
    printf '{"id":"h","kind":"echo","text":"last line, no newline"}'
} >"$T/in.jsonl"
batch 3 "$T/batch.err" "$T/in.jsonl" -o "$T/out.jsonl" --concurrency 3
cat "$T/batch.err"
grep -q "10 lines, 0 from an earlier run; 5 ok, 5 errors in all" "$T/batch.err" || fail "summary: $(cat "$T/batch.err")"
$PY - "$T/out.jsonl" <<'EOF' || fail "batch output"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 10, len(recs)
lines = [r["line"] for r in recs]
assert lines == [1, 2, 4, 5, 6, 7, 8, 9, 11, 12], lines   # input order, blank lines skipped
by = {r["line"]: r for r in recs}
assert by[1]["status"] == "ok" and by[1]["text"] == "alpha" and by[1]["id"] == "a", by[1]
assert by[2]["id"] == "line-2" and by[2]["text"] == "no id here", by[2]
assert by[4]["status"] == "error" and "line 4: not valid JSON" in by[4]["error"], by[4]
assert by[5]["status"] == "error" and by[5]["id"] == "line-5" and "line 5" in by[5]["error"], by[5]
assert by[6]["status"] == "error" and "kind: 'teleport'" in by[6]["error"], by[6]
assert by[7]["status"] == "error" and "duplicate id 'a' (first on line 1)" in by[7]["error"], by[7]
assert by[8]["status"] == "ok" and by[8]["id"] == 7 and by[8]["text"] == "numeric id", by[8]
assert by[9]["status"] == "error" and "max_tokens" in by[9]["error"], by[9]
assert by[11]["status"] == "ok" and by[11]["text"] == "one\ntwo" and len(by[11]["tasks"]) == 1, by[11]
assert by[12]["status"] == "ok" and by[12]["text"] == "last line, no newline", by[12]
assert all(r["job"].startswith(str(r["id"]) + "@") for r in recs if r["status"] == "ok")
EOF
cp "$T/out.jsonl" "$T/out.first"
"${L[@]}" jobs --stats >"$T/stats1"
batch 3 "$T/batch2.err" "$T/in.jsonl" -o "$T/out.jsonl"
cmp -s "$T/out.jsonl" "$T/out.first" || fail "a second run changed the output"
grep -q "10 from an earlier run; 5 ok, 5 errors in all" "$T/batch2.err" || fail "second run: $(cat "$T/batch2.err")"
"${L[@]}" jobs --stats >"$T/stats2"
cmp -s "$T/stats1" "$T/stats2" || fail "a second run submitted jobs: $(cat "$T/stats1") -> $(cat "$T/stats2")"
if "${L[@]}" batch run "$T/missing.jsonl" -o "$T/o2.jsonl" 2>/dev/null; then fail "missing input accepted"; fi
# an interrupted run's leftovers: records in arrival order, a torn last line,
# a record of another input; the re-run completes to the same output
{ sed -n '6p;2p;9p;1p' "$T/out.first"; echo '{"id":"zzz","line":3,"status":"ok"}'; sed -n '4p' "$T/out.first" | head -c 40; } >"$T/out.jsonl"
batch 3 "$T/batch3.err" "$T/in.jsonl" -o "$T/out.jsonl"
grep -q "4 from an earlier run; 5 ok, 5 errors in all" "$T/batch3.err" || fail "resumed run: $(cat "$T/batch3.err")"
cmp -s "$T/out.jsonl" "$T/out.first" || { diff "$T/out.first" "$T/out.jsonl" | head; fail "the resumed output differs"; }
batch 3 "$T/batch4.err" "$T/in.jsonl" -o "$T/out.jsonl" --retry-errors
grep -q "5 from an earlier run" "$T/batch4.err" || fail "--retry-errors kept: $(cat "$T/batch4.err")"
cmp -s "$T/out.jsonl" "$T/out.first" || fail "--retry-errors changed the output"
"${L[@]}" jobs --stats >"$T/stats3"
cmp -s "$T/stats1" "$T/stats3" || fail "resumed runs ran jobs again: $(cat "$T/stats1") -> $(cat "$T/stats3")"

step "   a changed line keeps its id: run again as id@newhash, its record replaced; all ok: exit 0"
sed -i '1s/"alpha"/"alpha, changed"/' "$T/in.jsonl"
batch 3 "$T/batch5.err" "$T/in.jsonl" -o "$T/out.jsonl"
grep -q "line 1 (id 'a') changed since its record was written" "$T/batch5.err" || fail "changed line: $(cat "$T/batch5.err")"
grep -q "1 from an earlier run\|9 from an earlier run, 1 changed line run again" "$T/batch5.err" ||
    fail "changed line summary: $(cat "$T/batch5.err")"
$PY - "$T/out.first" "$T/out.jsonl" <<'EOF' || fail "changed line output"
import json, sys
old = [json.loads(l) for l in open(sys.argv[1])]
new = [json.loads(l) for l in open(sys.argv[2])]
assert len(new) == 10 and [r["line"] for r in new] == [r["line"] for r in old]
assert new[0]["text"] == "alpha, changed" and new[0]["status"] == "ok", new[0]
assert new[0]["job"].startswith("a@") and new[0]["job"] != old[0]["job"], (old[0]["job"], new[0]["job"])
assert new[1:] == old[1:], "other records changed"
assert all(r["job"].startswith(str(r["id"]) + "@") for r in new), "a record without its job id"
EOF
"${L[@]}" jobs --stats >"$T/stats4"
$PY -c 'import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:]); assert b["done"]==a["done"]+1, (a["done"],b["done"])' \
    "$T/stats1" "$T/stats4" || fail "the changed line did not run exactly once more"
grep -v '"id":"d"\|not json\|"id":"c"\|duplicate of a\|max_tokens' "$T/in.jsonl" >"$T/okonly.jsonl"
batch 0 "$T/batch6.err" "$T/okonly.jsonl" -o "$T/okonly.out"
grep -q "; 5 ok, 0 errors in all" "$T/batch6.err" || fail "all ok: $(cat "$T/batch6.err")"

step "   a dead node: said at once, exit 1, nothing written"
start=$(date +%s%N)
rc=0
"$BIN/llmos" --endpoint tcp://127.0.0.1:9 --timeout 500 batch run "$T/in.jsonl" -o "$T/dead.out" 2>"$T/dead.err" || rc=$?
[ "$rc" = 1 ] || fail "dead node: exit $rc: $(cat "$T/dead.err")"
[ $((($(date +%s%N) - start) / 1000000)) -lt 3000 ] || fail "dead node: not said at once"
grep -q "the node at tcp://127.0.0.1:9 could not be reached" "$T/dead.err" || fail "dead node: $(cat "$T/dead.err")"
grep -q "nothing submitted" "$T/dead.err" || fail "dead node: $(cat "$T/dead.err")"
grep -q "errors\|jobs in" "$T/dead.err" && fail "dead node: a misleading summary: $(cat "$T/dead.err")"
[ ! -e "$T/dead.out" ] || fail "dead node: $T/dead.out written"

step "   400 mutated lines (seeded): one record each, no crash"
$PY - "$T/in.jsonl" "$T/fuzz.jsonl" <<'EOF'
import random, sys
random.seed(6)
seeds = [l.rstrip("\n") for l in open(sys.argv[1]) if l.strip()]
seeds += ['{"id":"g%d","kind":"generate","prompt":"Once","max_tokens":4,"graph":true,"stop":["."]}',
          '{"id":"k","kind":"classify","text":"x","labels":["a","b"]}', '{"id":"q","kind":"query","query":"ASK {}"}']
out = []
for i in range(400):
    b = bytearray(random.choice(seeds).replace("%d", str(i)).encode())
    for _ in range(random.randint(1, 4)):
        op, k = random.randint(0, 3), random.randrange(len(b) or 1)
        if op == 0 and b: del b[k]
        elif op == 1: b.insert(k, random.choice(b'{}[]",:0123456789\\ ae\x00\xff\t'))
        elif op == 2 and b: b[k] = random.randrange(256)
        else: b[k:k] = random.choice([b'"id":', b'-1', b'1e999', b'null', b'[[[[', b'"\\u0000"'])
    out.append(bytes(b).replace(b"\n", b" ") + b"\n")
open(sys.argv[2], "wb").write(b"".join(out))
EOF
batch 3 "$T/fuzz.err" "$T/fuzz.jsonl" -o "$T/fuzz.out" --concurrency 4 --job-timeout 20000
$PY - "$T/fuzz.jsonl" "$T/fuzz.out" <<'EOF' || fail "fuzz batch output"
import json, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
want = [i + 1 for i, l in enumerate(lines) if l.rstrip(b"\r").strip(b" \t")]
recs = [json.loads(l) for l in open(sys.argv[2], "rb")]
assert [r["line"] for r in recs] == want, (len(recs), len(want))
assert all(r["status"] in ("ok", "error") for r in recs)
print(f"{len(recs)} records: {sum(r['status'] == 'ok' for r in recs)} ok, {sum(r['status'] == 'error' for r in recs)} errors")
EOF
"${L[@]}" ping >/dev/null || fail "the node died under mutated jobs"

if [ "$HAVE_MODEL" = 1 ]; then
    step "   generations, a classification and an embedding through batch run (stories260K)"
    for i in $(seq 1 12); do
        echo "{\"id\":\"s$i\",\"kind\":\"generate\",\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":0.8,\"seed\":$i}"
    done >"$T/gen.jsonl"
    echo '{"id":"c1","kind":"classify","text":"Once upon a time there was a","labels":["girl","dog","car"]}' >>"$T/gen.jsonl"
    echo '{"id":"e1","kind":"embed","text":"Once upon a time"}' >>"$T/gen.jsonl"
    "${L[@]}" batch run "$T/gen.jsonl" -o "$T/gen.out" --concurrency 4 2>"$T/gen.err" || fail "generate batch: $(cat "$T/gen.err")"
    cat "$T/gen.err"
    $PY - "$T/gen.out" <<'EOF' || fail "generate batch output"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 14 and all(r["status"] == "ok" for r in recs), [r for r in recs if r["status"] != "ok"]
gen, (c, e) = recs[:12], recs[12:]
assert all(r["kind"] == "generate" and 0 < r["tokens"] <= 24 and r["text"] for r in gen)
assert len({r["text"] for r in gen}) > 1, "different seeds, same text"
assert c["kind"] == "classify" and c["labels"] == ["girl", "dog", "car"] and c["best"] in c["labels"], c
assert abs(sum(c["probs"]) - 1) < 1e-3 and c["probs"][c["labels"].index(c["best"])] == max(c["probs"]), c
assert e["kind"] == "embed" and len(e["vector"]) == 64 and any(x != 0 for x in e["vector"]), e
EOF
fi

if [ "$HAVE_MODEL" = 1 ]; then
    step "   llmos model with LLMOS_ENDPOINT; a node's error said once, in user words"
    M=(env LLMOS_ENDPOINT="$E" "$BIN/llmos")
    "${M[@]}" model stats | grep -q '^available *yes' || fail "model stats with LLMOS_ENDPOINT"
    "${M[@]}" model unload >/dev/null || fail "model unload with LLMOS_ENDPOINT"
    if "${M[@]}" generate -n 5 2>"$T/unl.err"; then fail "generate with no model"; fi
    grep -q "no model is loaded" "$T/unl.err" || fail "no model: $(cat "$T/unl.err")"
    grep -q "model: model:\|MODEL_MSG" "$T/unl.err" && fail "doubled prefix or protocol jargon: $(cat "$T/unl.err")"
    "${M[@]}" model load "$MODELS/stories260K.bin" --tokenizer "$MODELS/tok512.bin" >/dev/null || fail "model load"
    "${M[@]}" generate -n 5 >/dev/null 2>&1 || fail "generate after the load"
fi

step "node stops cleanly"
kill -TERM "$NODE_PID"
wait "$NODE_PID" || fail "llmosd exited with $?"
NODE_PID=
echo "PASS"
