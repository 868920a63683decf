#!/usr/bin/env bash
# test_graph_actor.sh GARBAGE — the graph actor end to end with real
# processes: llmos-graph loads UMLS, `llmosd --graph DB` serves it on a free
# port, and `llmos --endpoint E graph query|link` must print exactly what the
# local `llmos-graph query|link DB` prints (TSV and JSON, several queries,
# link at hops 0..2).  A SPARQL syntax error comes back with line and column
# and the node still answers ping; a query past its timeout answers
# ETIMEDOUT; GARBAGE (garbage.c) sends undecodable payloads and checks the
# error replies; the node exits cleanly on SIGTERM.
set -euo pipefail

GARBAGE=${1:?usage: test_graph_actor.sh GARBAGE}
BIN=${LLMOS_BIN:?LLMOS_BIN not set}
DATA=${LLMOS_DATA:?LLMOS_DATA not set}
T=$(mktemp -d /tmp/llmos-graph-actor-XXXXXX)
NODE_PID=
cleanup() {
    if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then kill -9 "$NODE_PID"; fi
    rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/node.log" ] && cat "$T/node.log" >&2; exit 1; }
step() { echo "--- $*"; }

"$BIN/llmos-graph" load "$T/db" "$DATA/kg/umls/train.txt" --quiet

step "start llmosd --graph"
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
E="tcp://127.0.0.1:$PORT"
"$BIN/llmosd" --listen "$E" --graph "$T/db" >"$T/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 100); do
    "$BIN/llmos" --endpoint "$E" --timeout 200 ping >/dev/null 2>&1 && break
    kill -0 "$NODE_PID" 2>/dev/null || fail "llmosd exited"
    sleep 0.1
done
"$BIN/llmos" --endpoint "$E" ping >/dev/null || fail "node does not answer ping"

K='PREFIX k: <http://llmos.local/kg/> '
queries=(
    'SELECT * WHERE { ?s ?p ?o } LIMIT 50'
    "${K}SELECT ?x WHERE { ?x k:isa k:event }"
    "${K}SELECT DISTINCT ?p WHERE { k:cell_function ?p ?o }"
    "${K}SELECT ?a ?b WHERE { ?a k:affects ?b . ?b k:isa ?c . ?c k:isa k:event } LIMIT 200 OFFSET 7"
    "${K}SELECT ?a WHERE { ?a k:isa ?c . FILTER(?c != k:event) } LIMIT 100"
    "${K}ASK { k:cell_function k:isa k:event }"
    "${K}ASK { k:event k:isa k:cell_function }"
)
n=0
for q in "${queries[@]}"; do
    for fmt in tsv json; do
        n=$((n + 1))
        "$BIN/llmos-graph" query "$T/db" "$q" --format $fmt >"$T/local" || fail "local query $n"
        "$BIN/llmos" --endpoint "$E" graph query "$q" --format $fmt >"$T/remote" || fail "remote query $n: $q"
        [ -s "$T/local" ] || fail "empty local result $n"
        cmp -s "$T/local" "$T/remote" || { diff "$T/local" "$T/remote" | head; fail "query $n ($fmt) differs: $q"; }
    done
done
step "$n queries equal local"

texts=('cell function and experimental model of disease' 'A Virus causes Disease in a mammal' 'nothing here')
n=0
for t in "${texts[@]}"; do
    for h in 0 1 2; do
        for fmt in text json; do
            n=$((n + 1))
            "$BIN/llmos-graph" link "$T/db" "$t" --hops $h --max-facts 30 --format $fmt >"$T/local" || fail "local link $n"
            "$BIN/llmos" --endpoint "$E" graph link "$t" --hops $h --max-facts 30 --format $fmt >"$T/remote" ||
                fail "remote link $n"
            cmp -s "$T/local" "$T/remote" || { diff "$T/local" "$T/remote" | head; fail "link $n differs: $t"; }
        done
    done
done
grep -q '^fact' <("$BIN/llmos" --endpoint "$E" graph link 'cell function' --hops 1) || fail "link found no facts"
step "$n links equal local"

n=0
for args in "cell_function" "cell_function --hops 2" "event --dir in" "event --dir out --hops 2" \
    "cell_function --hops 2 --max-edges 40" "<http://llmos.local/kg/virus> --hops 1"; do
    n=$((n + 1))
    # shellcheck disable=SC2086
    "$BIN/llmos-graph" neighbors "$T/db" $args >"$T/local" 2>/dev/null || fail "local neighbors $args"
    # shellcheck disable=SC2086
    "$BIN/llmos" --endpoint "$E" graph neighbors $args >"$T/remote" || fail "remote neighbors $args"
    [ -s "$T/local" ] || fail "no neighbors for $args"
    cmp -s "$T/local" "$T/remote" || { diff "$T/local" "$T/remote" | head; fail "neighbors $args differ"; }
done
for args in "cell_function event" "virus mammal" "virus mammal --dir out" "cell_function virus --max-hops 3"; do
    n=$((n + 1))
    # shellcheck disable=SC2086
    "$BIN/llmos-graph" path "$T/db" $args >"$T/local" 2>/dev/null || fail "local path $args"
    # shellcheck disable=SC2086
    "$BIN/llmos" --endpoint "$E" graph path $args >"$T/remote" || fail "remote path $args"
    cmp -s "$T/local" "$T/remote" || { diff "$T/local" "$T/remote" | head; fail "path $args differs"; }
done
if "$BIN/llmos" --endpoint "$E" graph neighbors no_such_node >/dev/null 2>"$T/err"; then fail "unknown node"; fi
grep -q ENOTFOUND "$T/err" || fail "unknown node: not ENOTFOUND"
step "$n walks equal local"

for args in "" "--distinct"; do
    # shellcheck disable=SC2086
    "$BIN/llmos-graph" stats "$T/db" $args >"$T/local" || fail "local stats"
    # shellcheck disable=SC2086
    "$BIN/llmos" --endpoint "$E" graph stats $args >"$T/remote" || fail "remote stats $args"
    grep -q '^triples	5216$' "$T/remote" || fail "stats: not 5216 triples"
    cmp -s "$T/local" "$T/remote" || { diff "$T/local" "$T/remote" | head; fail "stats $args differ"; }
done
step "stats equal local"

step "syntax error"
if "$BIN/llmos" --endpoint "$E" graph query $'SELECT ?x\nWHERE { ?x ' >"$T/out" 2>"$T/err"; then fail "bad query succeeded"; fi
cat "$T/err"
grep -q 'line 2, column' "$T/err" || fail "no line/column in the error"
grep -q EFORMAT "$T/err" || fail "not EFORMAT"
"$BIN/llmos" --endpoint "$E" ping >/dev/null || fail "node died after a bad query"

step "deadline"
start=$(date +%s%N)
if "$BIN/llmos" --endpoint "$E" --timeout 20000 graph query 'SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }' \
    --query-timeout 300 >/dev/null 2>"$T/err"; then fail "huge query did not time out"; fi
ms=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$T/err"
grep -q ETIMEDOUT "$T/err" || fail "not ETIMEDOUT"
[ "$ms" -lt 10000 ] || fail "the deadline was not honoured (${ms} ms)"
"$BIN/llmos" --endpoint "$E" ping >/dev/null || fail "node died after a timed-out query"

step "a long query does not hold the others up (several readers)"
"$BIN/llmos" --endpoint "$E" --timeout 20000 graph query 'SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }' \
    --query-timeout 10000 >/dev/null 2>"$T/long.err" &
LONG_PID=$!
sleep 0.5
start=$(date +%s%N)
for i in 1 2 3 4 5 6; do
    "$BIN/llmos" --endpoint "$E" --timeout 20000 graph stats >/dev/null || fail "stats during a long query"
done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
kill -0 "$LONG_PID" 2>/dev/null || fail "the long query ended before the short ones were asked"
echo "6 stats answered in ${ms} ms while a long query ran"
[ "$ms" -lt 8000 ] || fail "short queries waited for the long one (${ms} ms)"
wait "$LONG_PID" && fail "the long query did not time out"
grep -q ETIMEDOUT "$T/long.err" || fail "the long query: $(cat "$T/long.err")"

step "garbage payloads and broken loads"
"$BIN/llmos-graph" dump "$T/db" | sort > "$T/before.nt"
"$GARBAGE" "$E" || fail "garbage payloads"
"$BIN/llmos-graph" dump "$T/db" | sort | cmp -s - "$T/before.nt" || fail "a refused load changed the store"

step "local dispatch unchanged without --endpoint"
LLMOS_ENDPOINT="$E" "$BIN/llmos" graph query "$T/db" 'ASK { ?s ?p ?o }' | grep -q true || fail "llmos graph query DB"

kill -TERM "$NODE_PID"
wait "$NODE_PID" || fail "llmosd exited with $?"
NODE_PID=
echo "OK"
