#!/usr/bin/env bash
# test_node_cli.sh — llmos-test-node and tests/lib/node.sh against real
# llmosd processes: llmos_node_start gives llmosd's own pid (so `wait`
# returns llmosd's exit status) and an endpoint that answers; llmos_node_stop
# returns 0 for a clean stop and 137 for a node deaf to SIGTERM; a node that
# exits at once is reported at once with its reason; --np 2 under mpirun
# with --all; usage errors exit 2.
set -euo pipefail
BIN=${LLMOS_BIN:?}
. "$(dirname "$0")/node.sh"
. "$(dirname "$0")/tmp.sh"
NODE_PID=
cleanup() { [ -n "${NODE_PID:-}" ] && kill -9 "$NODE_PID" 2>/dev/null || true; }
llmos_tmp llmos-node-cli cleanup
fail() { echo "FAIL: $*" >&2; [ -f "$T/node.log" ] && tail -5 "$T/node.log" >&2; exit 1; }
step() { echo "--- $*"; }

step "start, answer, the pid is llmosd's, a clean stop"
llmos_node_start "$T/node.out" "$T/node.log" --workers 1 --log-level warn || fail "llmosd did not start"
case "$E" in tcp://127.0.0.1:[1-9]*) ;; *) fail "endpoint '$E'" ;; esac
[ "$(cat /proc/$NODE_PID/comm)" = llmosd ] || fail "NODE_PID $NODE_PID is $(cat /proc/$NODE_PID/comm), not llmosd"
"$BIN/llmos" --endpoint "$E" ping >/dev/null || fail "ping $E"
grep -q "listening on $E" "$T/node.out" || fail "OUT does not hold the endpoint line"
st=0
llmos_node_stop || st=$?
[ "$st" = 0 ] || fail "llmos_node_stop returned $st"
[ -z "$NODE_PID" ] || fail "NODE_PID not cleared"
llmos_node_stop || fail "a second stop is not a no-op"

step "--listen: back on the same port"
llmos_node_start --listen "$E" --timeout 20000 "$T/node.out" "$T/node.log" --workers 1 --log-level warn ||
    fail "llmosd did not start on $E"
[ "$E" = "$(grep -o 'tcp://[0-9.:]*' "$T/node.out")" ] || fail "not on the same port: $E"
llmos_node_stop || fail "stop"

step "the script waits for llmosd itself: kill -9 gives 137"
llmos_node_start "$T/node.out" "$T/node.log" --workers 1 --log-level warn || fail "llmosd did not start"
kill -9 "$NODE_PID"
st=0
wait "$NODE_PID" || st=$?
[ "$st" = 137 ] || fail "wait after kill -9: $st"
NODE_PID=

step "deaf to SIGTERM (stopped): killed after the grace time"
llmos_node_start "$T/node.out" "$T/node.log" --workers 1 --log-level warn || fail "llmosd did not start"
kill -STOP "$NODE_PID"
st=0
llmos_node_stop 300 2>"$T/stop.err" || st=$?
[ "$st" = 137 ] || fail "stop of a stopped node: $st"
grep -q "did not exit within 300 ms of SIGTERM: killed" "$T/stop.err" || fail "stop message: $(cat "$T/stop.err")"

step "an llmosd that exits at once: its status and reason, at once"
start=$(date +%s)
if llmos_node_start --timeout 20000 "$T/bad.out" "$T/bad.log" --no-such-flag 2>"$T/start.err"; then
    fail "started with a bad flag"
fi
[ $(($(date +%s) - start)) -lt 10 ] || fail "an early exit took the whole timeout"
grep -q "exited before it served" "$T/start.err" || fail "message: $(cat "$T/start.err")"
grep -q "unknown option '--no-such-flag'" "$T/start.err" || fail "no stderr quoted: $(cat "$T/start.err")"
st=0
wait "$NODE_PID" || st=$?
[ "$st" = 2 ] || fail "its exit status: $st"
NODE_PID=

step "mpirun -np 2: two endpoints, each answers; SIGTERM to the ranks: mpirun exits 0"
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" # Open MPI's own leaks (tests/cluster/test_mpirun.py)
llmos_node_start --np 2 "$T/mpi.out" "$T/node.log" --workers 1 --log-level warn || fail "mpirun did not start"
"$BIN/llmos-test-node" wait --pid "$NODE_PID" --out "$T/mpi.out" --np 2 --all >"$T/eps" || fail "wait --all"
[ "$(sort -u "$T/eps" | wc -l)" = 2 ] || fail "endpoints: $(cat "$T/eps")"
grep -qx "$E" "$T/eps" || fail "E=$E is not one of $(cat "$T/eps")"
while read -r ep; do "$BIN/llmos" --endpoint "$ep" ping >/dev/null || fail "ping $ep"; done <"$T/eps"
st=0
llmos_node_stop || st=$?
[ "$st" = 0 ] || fail "mpirun exited $st"

step "usage"
for args in "" "nope" "wait --out x" "wait --pid 1" "wait --pid x --out y" "stop" "exec --np 0" "exec --np 9" \
    "wait --pid 1 --out y --bogus"; do
    st=0
    # shellcheck disable=SC2086
    "$BIN/llmos-test-node" $args >/dev/null 2>&1 || st=$?
    [ "$st" = 2 ] || fail "llmos-test-node $args: exit $st, want 2"
done
"$BIN/llmos-test-node" --help | grep -q "llmos-test-node exec" || fail "--help"
echo "ok"
