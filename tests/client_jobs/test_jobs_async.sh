#!/usr/bin/env bash
# test_jobs_async.sh JOBS_ASYNC_LIVE [README_ASYNC] — asynchronous
# submission end to end: starts llmosd with a fresh --data-dir (log without
# fsync, a queue that holds 10 000 jobs) on a system-chosen port, runs
# README.md's async example (built from the README by CMake: 10 000 echo
# jobs, must report none failed), then jobs_async_live, whose last test
# SIGKILLs the node.
set -euo pipefail

LIVE=${1:?usage: test_jobs_async.sh JOBS_ASYNC_LIVE [README_ASYNC]}
README_ASYNC=${2:-}
BIN=${LLMOS_BIN:?LLMOS_BIN not set}
. "$(dirname "$0")/../lib/node.sh"
. "$(dirname "$0")/../lib/tmp.sh"
llmos_tmp llmos-jobs-async cleanup
NODE_PID=
cleanup() {
    if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then kill -9 "$NODE_PID"; fi
}
fail() { echo "FAIL: $*" >&2; [ -f "$T/node.log" ] && tail -30 "$T/node.log" >&2; exit 1; }

cat >"$T/node.conf" <<CONF
queue_limit = 100000
sync = 0
CONF
llmos_node_start "$T/node.out" "$T/node.log" --config "$T/node.conf" --data-dir "$T/data" || fail "llmosd did not start"
if [ -n "$README_ASYNC" ]; then
    "$README_ASYNC" "$E" >"$T/readme.out" || fail "README example: $(tail -3 "$T/readme.out")"
    grep -q '^10000 jobs, 0 failed$' "$T/readme.out" || fail "README example said: $(tail -3 "$T/readme.out")"
    grep -q '^echo-[0-9]*: hello$' "$T/readme.out" || fail "README example printed no result"
fi
"$LIVE" "$E" "$NODE_PID" || fail "jobs_async_live"
wait "$NODE_PID" 2>/dev/null || true
NODE_PID=
echo "ok"
