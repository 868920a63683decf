#!/usr/bin/env bash
# test_cli_help.sh — every `llmos` command and subcommand answers --help
# with its usage on stdout and exit 0, at once and without a node: the
# commands that ask a node (pointed at a dead endpoint, so one that tried
# would fail or time out), the remote graph subcommands, and the local
# tools llmos dispatches to (llmos-generate, -graph, -train, -eval, -ckpt
# and their subcommands).  Also: `llmos help CMD [SUB]` is `llmos CMD [SUB]
# --help`, and every command `llmos --help` lists is walked here.
set -euo pipefail
BIN=${LLMOS_BIN:?LLMOS_BIN not set}
. "$(dirname "$0")/../lib/tmp.sh"
llmos_tmp llmos-cli-help
DEAD=tcp://127.0.0.1:9
export LLMOS_ENDPOINT=$DEAD
failures=0
walked=" "

# check WORDS...: `llmos WORDS` must print a usage on stdout and exit 0 within 3 s.
check() {
    local rc=0 start ms
    start=$(date +%s%N)
    timeout 10 "$BIN/llmos" "$@" >"$T/out" 2>"$T/err" || rc=$?
    ms=$((($(date +%s%N) - start) / 1000000))
    if [ "$rc" != 0 ]; then
        echo "FAIL: llmos $*: exit $rc: $(head -c 300 "$T/err")" >&2
        failures=$((failures + 1))
    elif ! grep -qi "usage" "$T/out"; then
        echo "FAIL: llmos $*: no usage on stdout (stdout: '$(head -c 200 "$T/out")', stderr: '$(head -c 200 "$T/err")')" >&2
        failures=$((failures + 1))
    elif [ "$ms" -gt 3000 ]; then
        echo "FAIL: llmos $*: $ms ms (it talked to a node?)" >&2
        failures=$((failures + 1))
    fi
}

# walk CMD [SUB...]: CMD --help, and CMD SUB --help for each SUB
walk() {
    local cmd=$1 sub
    shift
    walked="$walked$cmd "
    check "$cmd" --help
    for sub in "$@"; do check "$cmd" "$sub" --help; done
}

check --help
check -h
check help
# commands that ask a node
walk ping
walk status
check status --json --help
walk submit
walk wait
walk cancel
walk jobs
walk batch run
check batch help
walk classify
walk generate
walk model stats load unload
check model help
check --endpoint "$DEAD" graph --help
for sub in query link neighbors path stats load; do check --endpoint "$DEAD" graph "$sub" --help; done
# `llmos help CMD [SUB]`
check help ping
check help model load
check help batch run
# local tools (their --help is theirs; llmos passes it through)
walk graph load stats dump check neighbors path query link
walk train
walk eval
walk ckpt ls show export
check generate --model stories260K.bin --help
check help train

# every command the top-level usage lists is walked above
"$BIN/llmos" --help >"$T/top"
for word in ping status submit wait cancel jobs batch generate model classify graph train eval ckpt help; do
    grep -Eq "^  $word( |$)" "$T/top" || { echo "FAIL: llmos --help does not list $word" >&2; failures=$((failures + 1)); }
done
for word in $(sed -n 's/^  \([a-z][a-z-]*\).*/\1/p' "$T/top" | sort -u); do
    case "$walked" in *" $word "*) ;; *) [ "$word" = help ] || { echo "FAIL: '$word' (in llmos --help) is not walked" >&2; failures=$((failures + 1)); } ;; esac
done

# a help request never reaches a node: the error paths still say usage on stderr, exit 2
rc=0
"$BIN/llmos" ping --bogus >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q usage "$T/err" || { echo "FAIL: ping --bogus: exit $rc" >&2; failures=$((failures + 1)); }
rc=0
"$BIN/llmos" model bogus >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q usage "$T/err" || { echo "FAIL: model bogus: exit $rc" >&2; failures=$((failures + 1)); }
rc=0
"$BIN/llmos" no-such-command --help >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q "unknown command" "$T/err" || { echo "FAIL: an unknown command: exit $rc" >&2; failures=$((failures + 1)); }

[ "$failures" = 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo PASS
