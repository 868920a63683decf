# node.sh — sourced by the integration test scripts: a real llmosd on a
# system-chosen port, started and stopped by the node fixture's command
# ($BIN/llmos-test-node, tests/lib/node_fixture.h), the same way C and
# Python tests start theirs.
#
# llmos_node_start [--np N] [--recovery] [--listen EP] [--actor NAME]
#                  [--probe-type T] [--timeout MS] OUT ERR [LLMOSD_ARGS...]
#   starts "llmosd --listen tcp://127.0.0.1:0 LLMOSD_ARGS..." (--np N > 1:
#   under mpirun -np N, --recovery: with --enable-recovery) in the
#   background of the calling shell, stdout to OUT, stderr appended to ERR,
#   and waits until it serves: every rank printed its "listening on" line,
#   which llmosd prints once every actor is started (--actor: and the rank
#   that answers as NAME is the one used).  Sets NODE_PID (llmosd's own pid,
#   or mpirun's: the script may `wait` for it and `kill` it) and E (the
#   endpoint).  Returns 1 with the reason on stderr when llmosd exits first
#   (its status and ERR's last lines) or does not serve within MS (default
#   30000); NODE_PID stays set for the script's clean-up.
#
# llmos_node_stop [MS]
#   SIGTERM to $NODE_PID (under --np: to each rank), SIGKILL to its process
#   group when it has not exited after MS (default 10000); waits for it and
#   returns its exit status (0 = a clean shutdown); clears NODE_PID.
llmos_node_start() {
    local fx=() wx=()
    NODE_NP=1
    while [ $# -gt 0 ]; do
        case $1 in
        --np) fx+=(--np "$2"); wx+=(--np "$2"); NODE_NP=$2; shift 2 ;;
        --recovery) fx+=(--recovery); shift ;;
        --listen) fx+=(--listen "$2"); shift 2 ;;
        --actor | --probe-type | --timeout) wx+=("$1" "$2"); shift 2 ;;
        *) break ;;
        esac
    done
    local out=$1 err=$2
    shift 2
    # Emptied here, before the background start: else the wait below could
    # read a previous node's line from OUT before the new process truncates it.
    : >"$out"
    "$BIN/llmos-test-node" exec "${fx[@]}" -- "$@" >>"$out" 2>>"$err" &
    NODE_PID=$!
    E=$("$BIN/llmos-test-node" wait --pid "$NODE_PID" --out "$out" --err "$err" --timeout 30000 "${wx[@]}") || {
        E=
        return 1
    }
}

llmos_node_stop() {
    local st=0
    [ -n "${NODE_PID:-}" ] || return 0
    "$BIN/llmos-test-node" stop --pid "$NODE_PID" --np "${NODE_NP:-1}" ${1:+--timeout "$1"} || true
    wait "$NODE_PID" 2>/dev/null || st=$?
    NODE_PID=
    return $st
}
