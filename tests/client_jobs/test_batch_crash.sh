#!/usr/bin/env bash
# test_batch_crash.sh — a 2000-line `llmos batch run` survives a killed node:
#   1. llmosd --data-dir D; the batch starts (echo jobs, and short
#      stories260K generations when llmosd serves a model);
#   2. after some results, SIGKILL llmosd (at T_kill), then Ctrl-C the batch;
#   3. llmosd restarts on the same D (at T_restart) and the same command
#      runs again (on the node's new port);
# then: OUT has 2000 lines in input order, each id once; every record the
# first run wrote is in the final output unchanged; every job the log listed
# as done just before the kill comes back with that same result (same
# finish time: not recomputed); each result finished either before T_kill
# or after T_restart, and the restarted scheduler ran exactly the latter
# (its `done` counter).
set -euo pipefail

BIN=${LLMOS_BIN:?LLMOS_BIN not set}
. "$(dirname "$0")/../lib/node.sh"
MODELS=${LLMOS_MODELS:?LLMOS_MODELS not set}
PY=/usr/bin/python3
N=${N:-2000}
. "$(dirname "$0")/../lib/tmp.sh"
llmos_tmp llmos-batch-crash cleanup # KEEP=1 keeps the folder
NODE_PID=
BATCH_PID=
cleanup() {
    for p in $NODE_PID $BATCH_PID; do kill -9 "$p" 2>/dev/null || true; done
}
fail() { echo "FAIL: $*" >&2; [ -f "$T/node.log" ] && tail -20 "$T/node.log" >&2; exit 1; }
step() { echo "--- $*"; }
now_ms() { date +%s%3N; }

MODEL_ARGS=()
HAVE_MODEL=0
if "$BIN/llmosd" --help 2>&1 | grep -q -- '--model'; then
    MODEL_ARGS=(--model "$MODELS/stories260K.bin" --tokenizer "$MODELS/tok512.bin")
    HAVE_MODEL=1
fi
start_node() {
    llmos_node_start "$T/node.out" "$T/node.log" --data-dir "$T/data" "${MODEL_ARGS[@]}" || fail "llmosd did not start"
}

$PY - "$T/in.jsonl" "$N" "$HAVE_MODEL" <<'EOF'
import json, sys
path, n, model = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
with open(path, "w") as f:
    for i in range(n):
        if model and i % 10 == 0:
            rec = {"id": f"j{i}", "kind": "generate", "prompt": "Once upon a time", "max_tokens": 8,
                   "temperature": 0.8, "seed": i}
        else:
            rec = {"id": f"j{i}", "kind": "echo", "text": f"line {i} " + "x" * (i % 50)}
        f.write(json.dumps(rec) + "\n")
EOF

step "1. batch of $N lines (model: $HAVE_MODEL) against llmosd --data-dir"
start_node
"$BIN/llmos" --endpoint "$E" batch run "$T/in.jsonl" -o "$T/out.jsonl" --concurrency 4 --retry-for 30 \
    2>"$T/batch1.err" &
BATCH_PID=$!
for _ in $(seq 600); do
    [ -f "$T/out.jsonl" ] && [ "$(wc -l <"$T/out.jsonl")" -ge 300 ] && break
    kill -0 "$BATCH_PID" 2>/dev/null || fail "the batch ended before the crash: $(cat "$T/batch1.err")"
    sleep 0.05
done

step "2. SIGKILL llmosd, then Ctrl-C the batch"
# what the log holds as done just before the crash (a lower bound)
"$BIN/llmos" --endpoint "$E" jobs --state done --all --json --limit 1000 >"$T/done_before" || fail "llmos jobs"
kill -KILL "$NODE_PID"
wait "$NODE_PID" 2>/dev/null || true
T_KILL=$(now_ms) # after its death: nothing it finished can be later
echo "$T_KILL" >"$T/t_kill"
NODE_PID=
kill -INT "$BATCH_PID"
rc=0
wait "$BATCH_PID" || rc=$?
BATCH_PID=
[ "$rc" = 130 ] || fail "interrupted batch exited $rc (want 130): $(cat "$T/batch1.err")"
cp "$T/out.jsonl" "$T/out.partial"
echo "first run: $(wc -l <"$T/out.partial") records before the crash"

step "3. restart llmosd on the same data dir; the same batch again"
T_RESTART=$(now_ms)
echo "$T_RESTART" >"$T/t_restart"
start_node
"$BIN/llmos" --endpoint "$E" batch run "$T/in.jsonl" -o "$T/out.jsonl" --concurrency 4 2>"$T/batch2.err" ||
    fail "second run: $(cat "$T/batch2.err")"
cat "$T/batch2.err"
"$BIN/llmos" --endpoint "$E" jobs --stats >"$T/stats"
cat "$T/stats"

$PY - "$T" "$N" "$T_KILL" "$T_RESTART" <<'EOF' || fail "checks"
import json, sys
d, n, t_kill, t_restart = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
final = [json.loads(l) for l in open(d + "/out.jsonl")]
assert len(final) == n, f"{len(final)} records, want {n}"
assert [r["line"] for r in final] == list(range(1, n + 1)), "not in input order"
assert len({r["id"] for r in final}) == n, "an id twice"
assert all(r["status"] == "ok" for r in final), [r for r in final if r["status"] != "ok"][:3]
partial = [l for l in open(d + "/out.partial") if l.endswith("\n")]
final_text = set(open(d + "/out.jsonl").read().splitlines())
for l in partial:
    assert l.rstrip("\n") in final_text, "a record of the first run changed: " + l[:200]
old = [r for r in final if r["job_finished_ms"] <= t_kill]
new = [r for r in final if r["job_finished_ms"] >= t_restart]
assert len(old) + len(new) == n, f"{n - len(old) - len(new)} results neither before the crash nor after the restart"
assert len(old) >= len(partial), f"{len(old)} results from before the crash, {len(partial)} records written then"
# jobs the log had finished before the crash come back with that result, not a new one
by_job = {r["job"]: r for r in final}
done_before = [json.loads(l) for l in open(d + "/done_before")]
assert len(done_before) >= 300, f"the log listed {len(done_before)} done jobs before the crash"
for j in done_before:
    r = by_job[j["id"]]
    assert r["job_finished_ms"] == j["finished_ms"], f"job {j['id']} finished at {j['finished_ms']} before the crash, recomputed at {r['job_finished_ms']}"
stats = json.loads(open(d + "/stats").read())
# every job the restarted node completed is one of `new`: nothing of `old` ran again
assert stats["done"] == len(new), f"scheduler done={stats['done']}, results computed after the restart={len(new)}"
print(f"{len(partial)} records written before the crash, {len(old) - len(partial)} more finished in the log "
      f"before it (served from the log), {len(new)} run after the restart "
      f"(recovered from the log: {stats['recovered']})")
EOF
kill -TERM "$NODE_PID"
wait "$NODE_PID" || fail "llmosd exited with $?"
NODE_PID=
echo "PASS"
