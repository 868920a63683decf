# node.sh — sourced by the integration test scripts: a real llmosd on a
# system-chosen port.
#
# llmos_node_start OUT ERR [ARGS...]
#   starts "$BIN/llmosd --listen tcp://127.0.0.1:0 ARGS..." in the background
#   of the calling shell (so the script can `wait` for it), stdout to OUT,
#   stderr appended to ERR; sets NODE_PID and E (the endpoint it printed).
#   Returns 1 with a message on stderr when llmosd exits or prints no
#   endpoint within 15 s (NODE_PID stays set, for the script's clean-up).
llmos_node_start() {
    local out=$1 err=$2
    shift 2
    "$BIN/llmosd" --listen tcp://127.0.0.1:0 "$@" >"$out" 2>>"$err" &
    NODE_PID=$!
    E=
    local _
    for _ in $(seq 300); do
        E=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$out" 2>/dev/null | head -1)
        [ -n "$E" ] && return 0
        if ! kill -0 "$NODE_PID" 2>/dev/null; then
            echo "llmosd exited: $(tail -20 "$err")" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "llmosd did not print its endpoint in 15 s" >&2
    return 1
}
