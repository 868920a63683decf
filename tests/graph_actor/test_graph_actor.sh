#!/usr/bin/env bash
# test_graph_actor.sh GARBAGE LINK_REQ — the graph actor end to end with real
# processes: llmos-graph loads UMLS, `llmosd --graph DB` serves it on a free
# port, and `llmos --endpoint E graph query|link` must print exactly what the
# local `llmos-graph query|link DB` prints (TSV and JSON, several queries,
# link at hops 0..2).  A SPARQL syntax error comes back with line and column
# and the node still answers ping; a query past its timeout answers
# ETIMEDOUT; GARBAGE (garbage.c) sends undecodable payloads and checks the
# error replies.  Then the limits of issue 21:
#   - the 40-byte cross join over UMLS (27 M rows) is refused with ETOOBIG
#     naming graph_max_result_bytes within a second, the node's peak RSS
#     stays under 300 MB, the node answers afterwards; the cap comes from
#     --graph-max-result-bytes or the config file;
#   - a reply over the frame cap (a node with --max-frame 64K) reaches the
#     client as an error saying by how much, and `too_big` counts it;
#   - links: no hops (LINK_REQ sends a request without the field) is 1 hop,
#     hops 0 gives the facts between mentions, max_facts 4294967295 is
#     capped, a text without mention is an empty, valid answer;
#   - SIGTERM while a long query runs stops the node within seconds.
set -euo pipefail

GARBAGE=${1:?usage: test_graph_actor.sh GARBAGE LINK_REQ}
LINK_REQ=${2:?usage: test_graph_actor.sh GARBAGE LINK_REQ}
BIN=${LLMOS_BIN:?LLMOS_BIN not set}
DATA=${LLMOS_DATA:?LLMOS_DATA not set}
. "$(dirname "$0")/../lib/node.sh"
. "$(dirname "$0")/../lib/tmp.sh"
llmos_tmp llmos-graph-actor cleanup
NODE_PID=
cleanup() {
    if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then kill -9 "$NODE_PID"; fi
}
fail() { echo "FAIL: $*" >&2; [ -f "$T/node.log" ] && tail -30 "$T/node.log" >&2; exit 1; }
step() { echo "--- $*"; }
kib() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$NODE_PID/status"; }

"$BIN/llmos-graph" load "$T/db" "$DATA/kg/umls/train.txt" --quiet

step "start llmosd --graph"
llmos_node_start "$T/node.out" "$T/node.log" --graph "$T/db" --data-dir "$T/data" || fail "llmosd did not start"
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

step "link: hops absent = 1, hops 0 = the facts between mentions, huge max_facts, no mention"
two='Can a virus cause a disease or syndrome?'
for t in "$two" 'virus' 'cell function and experimental model of disease'; do
    "$BIN/llmos-graph" link "$T/db" "$t" --hops 1 >"$T/local"
    "$LINK_REQ" "$E" "$t" >"$T/remote" 2>"$T/err" || fail "link without hops: $(cat "$T/err")"
    cmp -s "$T/local" "$T/remote" || { diff "$T/local" "$T/remote" | head; fail "no hops is not 1 hop: $t"; }
    grep -q '^fact	1	' "$T/remote" || fail "no hop-1 fact without hops: $t"
    for fmt in text json; do
        "$BIN/llmos-graph" link "$T/db" "$t" --hops 0 --format $fmt >"$T/local"
        "$LINK_REQ" "$E" "$t" --hops 0 --format $fmt >"$T/remote" 2>"$T/err" || fail "link --hops 0: $(cat "$T/err")"
        cmp -s "$T/local" "$T/remote" || { diff "$T/local" "$T/remote" | head; fail "hops 0 differs: $t"; }
    done
done
"$LINK_REQ" "$E" "$two" --hops 0 >"$T/remote" 2>"$T/err"
grep -qx 'fact	0	<http://llmos.local/kg/virus> <http://llmos.local/kg/causes> <http://llmos.local/kg/disease_or_syndrome> .' \
    "$T/remote" || fail "hops 0: no fact between the mentions"
grep -q '^fact	[12]' "$T/remote" && fail "hops 0 gave facts beyond the mentions"
"$LINK_REQ" "$E" 'virus' --hops 0 >"$T/remote" 2>"$T/err"
grep -q '^fact' "$T/remote" && fail "hops 0 with one mention gave facts"
big='virus, bacterium, mammal, plant, fungus, bird, alga, cell and disease or syndrome'
"$BIN/llmos-graph" link "$T/db" "$big" --hops 2 --max-facts 4294967295 >"$T/local" || fail "local max_facts 2^32-1"
"$LINK_REQ" "$E" "$big" --hops 2 --max-facts 4294967295 >"$T/remote" 2>"$T/err" ||
    fail "max_facts 4294967295: $(cat "$T/err")"
cmp -s "$T/local" "$T/remote" || { diff "$T/local" "$T/remote" | head; fail "max_facts 2^32-1 differs"; }
[ "$(grep -c '^fact' "$T/remote")" -gt 100 ] || fail "max_facts 4294967295 gave $(grep -c '^fact' "$T/remote") facts"
for fmt in text json; do
    "$BIN/llmos-graph" link "$T/db" 'Lily saw' --format $fmt >"$T/local" || fail "local link 'Lily saw'"
    "$BIN/llmos" --endpoint "$E" graph link 'Lily saw' --format $fmt >"$T/remote" || fail "remote link 'Lily saw'"
    cmp -s "$T/local" "$T/remote" || fail "'Lily saw' ($fmt) differs"
    "$LINK_REQ" "$E" 'Lily saw' --format $fmt >"$T/raw" 2>"$T/err" || fail "link 'Lily saw': $(cat "$T/err")"
    cmp -s "$T/local" "$T/raw" || fail "'Lily saw' ($fmt) without hops differs"
    grep -qx 'facts 0' "$T/err" || fail "'Lily saw' ($fmt): $(cat "$T/err")"
done
"$BIN/llmos-graph" link "$T/db" 'Lily saw' >"$T/local"
[ -s "$T/local" ] && fail "'Lily saw' printed something: $(cat "$T/local")"
[ "$("$BIN/llmos" --endpoint "$E" graph link 'Lily saw' --format json)" = '{"mentions":[],"facts":[]}' ] ||
    fail "'Lily saw' as JSON"
step "a link job without hops carries facts"
out=$(echo '{"id":"nohops","kind":"link","text":"Can a virus cause a disease?"}' |
    timeout 30 "$BIN/llmos" --endpoint "$E" submit - --wait) || fail "link job: $out"
echo "$out" | grep -q '"state":"done"' || fail "link job not done: $out"
echo "$out" | grep -q '"facts":[1-9]' || fail "a link job without hops found no facts: $out"
echo "$out" | grep -q 'virus interacts with' || fail "a link job without hops has no hop-1 fact: $out"


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
# no row ever passes the FILTER: 5216^3 joins that write nothing, under any cap
LONG='SELECT ?a WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i FILTER(?a = ?d && ?d = ?g && ?a != ?g) }'
start=$(date +%s%N)
if "$BIN/llmos" --endpoint "$E" --timeout 20000 graph query "$LONG" \
    --query-timeout 300 >/dev/null 2>"$T/err"; then fail "huge query did not time out"; fi
ms=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$T/err"
grep -q ETIMEDOUT "$T/err" || fail "not ETIMEDOUT"
[ "$ms" -lt 10000 ] || fail "the deadline was not honoured (${ms} ms)"
"$BIN/llmos" --endpoint "$E" ping >/dev/null || fail "node died after a timed-out query"

step "the ask's own deadline stops a query (no --query-timeout)"
pids=
for i in 1 2 3 4 5; do # more than the node's readers
    "$BIN/llmos" --endpoint "$E" --timeout 700 graph query "$LONG" >/dev/null 2>"$T/dl.$i" &
    pids="$pids $!"
done
for p in $pids; do wait "$p" && fail "a query past its ask's deadline was answered"; done
sleep 0.5
start=$(date +%s%N)
"$BIN/llmos" --endpoint "$E" --timeout 3000 graph stats >/dev/null || fail "readers still busy after the deadlines"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 1500 ] || fail "stats waited ${ms} ms: the expired queries kept running"

step "a long query does not hold the others up (several readers)"
"$BIN/llmos" --endpoint "$E" --timeout 20000 graph query "$LONG" \
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

step "a link job with max_facts 4294967295"
out=$(echo '{"id":"maxf","kind":"link","text":"virus and bird","max_facts":4294967295}' |
    timeout 30 "$BIN/llmos" --endpoint "$E" submit - --wait) || fail "max_facts job: $out"
echo "$out" | grep -q '"state":"done"' || fail "max_facts 4294967295 job not done: $out"
echo "$out" | grep -q '"facts":[1-9][0-9]' || fail "max_facts 4294967295 job: $out"

step "the 40-byte cross join over UMLS: ETOOBIG at once, memory bounded"
CROSS='SELECT * WHERE { ?a ?b ?c . ?d ?e ?f }'
for fmt in tsv json; do
    start=$(date +%s%N)
    if "$BIN/llmos" --endpoint "$E" --timeout 20000 graph query "$CROSS" --format $fmt >"$T/out" 2>"$T/err"; then
        fail "the cross join ($fmt) was answered"
    fi
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    cat "$T/err"
    grep -q ETOOBIG "$T/err" || fail "cross join ($fmt): not ETOOBIG"
    grep -q '16777216-byte cap (graph_max_result_bytes) after [0-9][0-9]* rows' "$T/err" ||
        fail "cross join ($fmt): the error does not name the cap and the rows"
    grep -q LIMIT "$T/err" || fail "cross join ($fmt): the error does not suggest LIMIT"
    [ "$ms" -lt 3000 ] || fail "cross join ($fmt) took ${ms} ms to refuse"
done
# DISTINCT with a huge OFFSET writes nothing but is capped too
if "$BIN/llmos" --endpoint "$E" --timeout 20000 graph query \
    'SELECT DISTINCT * WHERE { ?a ?b ?c . ?d ?e ?f } OFFSET 100000000' >/dev/null 2>"$T/err"; then
    fail "DISTINCT + OFFSET was answered"
fi
grep -q 'DISTINCT needs more than the 16777216-byte result cap' "$T/err" || fail "DISTINCT: $(cat "$T/err")"
hwm=$(kib VmHWM)
echo "peak RSS of the node: ${hwm} kB"
[ "$hwm" -lt 300000 ] || fail "the node's peak RSS is ${hwm} kB"
"$BIN/llmos" --endpoint "$E" graph query 'ASK { ?s ?p ?o }' | grep -qx true || fail "no answer after the cross join"
"$BIN/llmos-graph" query "$T/db" 'SELECT * WHERE { ?s ?p ?o } LIMIT 2000' >"$T/local"
"$BIN/llmos" --endpoint "$E" graph query 'SELECT * WHERE { ?s ?p ?o } LIMIT 2000' >"$T/remote"
cmp -s "$T/local" "$T/remote" || fail "a result under the cap differs from local"
# the local tool streams (no cap by default); --max-result-bytes caps it
if "$BIN/llmos-graph" query "$T/db" "$CROSS" --max-result-bytes 16M >/dev/null 2>"$T/err"; then fail "local 16M"; fi
grep -q '16777216-byte cap (--max-result-bytes) after [0-9]* rows' "$T/err" || fail "local cap: $(cat "$T/err")"
if "$BIN/llmos-graph" query "$T/db" "$CROSS" --max-result-bytes 64K >"$T/out" 2>"$T/err"; then fail "local 64K"; fi
grep -q '65536-byte cap' "$T/err" || fail "local 64K: $(cat "$T/err")"
[ "$(stat -c %s "$T/out")" -le 65536 ] || fail "local: more than 64K printed"
for flag in "" "--max-result-bytes 0"; do
    # shellcheck disable=SC2086
    "$BIN/llmos-graph" query "$T/db" "$CROSS LIMIT 200000" $flag | wc -l | grep -qx 200001 ||
        fail "local '$flag' is not 'no cap'"
done
for bad in -1 12Q ''; do
    if "$BIN/llmos-graph" query "$T/db" 'ASK {}' --max-result-bytes "$bad" 2>/dev/null; then fail "size '$bad'"; fi
done

step "SELECT * {}: one empty solution, remote as local"
for q in 'SELECT * {}' 'SELECT * WHERE {}'; do
    for fmt in tsv json; do
        "$BIN/llmos-graph" query "$T/db" "$q" --format $fmt >"$T/local"
        "$BIN/llmos" --endpoint "$E" graph query "$q" --format $fmt >"$T/remote" || fail "$q ($fmt)"
        cmp -s "$T/local" "$T/remote" || fail "$q ($fmt) differs"
    done
    [ "$(cat "$T/remote")" = '{"head":{"vars":[]},"results":{"bindings":[{}]}}' ] || fail "$q as JSON: $(cat "$T/remote")"
    [ "$("$BIN/llmos" --endpoint "$E" graph query "$q" | od -An -c | tr -d ' ')" = '\n\n' ] || fail "$q as TSV"
done

step "garbage payloads after the big queries"
"$GARBAGE" "$E" >/dev/null 2>&1 || fail "garbage payloads after the big queries"

step "SIGTERM stops the node during a long query"
"$BIN/llmos" --endpoint "$E" --timeout 60000 graph query "$LONG" --query-timeout 60000 >/dev/null 2>"$T/long.err" &
LONG_PID=$!
sleep 1.5
kill -0 "$LONG_PID" 2>/dev/null || fail "the long query ended early: $(cat "$T/long.err")"
start=$(date +%s%N)
kill -TERM "$NODE_PID"
wait "$NODE_PID" || fail "llmosd exited with $? on SIGTERM during a query"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
NODE_PID=
echo "the node stopped ${ms} ms after SIGTERM"
[ "$ms" -lt 3000 ] || fail "SIGTERM took ${ms} ms during a long query"
kill "$LONG_PID" 2>/dev/null || true
wait "$LONG_PID" 2>/dev/null || true

step "a reply over the frame cap: an error the client sees, counted in too_big"
printf 'graph_max_result_bytes = 1M\n' >"$T/node.conf"
llmos_node_start "$T/node.out" "$T/node.log" --graph "$T/db" --data-dir "$T/data2" --max-frame 64K \
    --config "$T/node.conf" || fail "llmosd --max-frame 64K did not start"
if "$BIN/llmos" --endpoint "$E" graph query 'SELECT * WHERE { ?s ?p ?o } LIMIT 2000' >/dev/null 2>"$T/err"; then
    fail "a reply over the frame cap was answered"
fi
cat "$T/err"
grep -q 'ETOOBIG' "$T/err" || fail "over the frame: not ETOOBIG"
grep -Eq 'is [0-9]+ bytes, [0-9]+ bytes over the 65536-byte frame cap' "$T/err" || fail "over the frame: no sizes"
"$BIN/llmos" --endpoint "$E" status | grep -q 'too_big=[1-9]' || fail "too_big did not count the reply"
"$BIN/llmos" --endpoint "$E" graph query 'SELECT * WHERE { ?s ?p ?o } LIMIT 10' | wc -l | grep -qx 11 ||
    fail "a small reply after the big one"
# a term longer than the walk's line buffers (a 3000-byte literal)
printf '<http://x.org/long> <http://x.org/says> "%s" .\n' "$(head -c 3000 /dev/zero | tr '\0' 'x')" >"$T/long.nt"
"$BIN/llmos" --endpoint "$E" graph load "$T/long.nt" >/dev/null || fail "remote load of a long literal"
"$BIN/llmos-graph" neighbors "$T/db" '<http://x.org/long>' >"$T/local" 2>/dev/null
"$BIN/llmos" --endpoint "$E" graph neighbors '<http://x.org/long>' >"$T/remote" || fail "neighbors of a long literal"
[ "$(stat -c %s "$T/remote")" -gt 3000 ] || fail "the long literal was not printed"
cmp -s "$T/local" "$T/remote" || fail "neighbors with a long literal differ from local"
# the cap from the config file (1M, not the default 16M)
if "$BIN/llmos" --endpoint "$E" graph query "$CROSS" >/dev/null 2>"$T/err"; then fail "cross join on node 2"; fi
grep -q '1048576-byte cap (graph_max_result_bytes)' "$T/err" || fail "config cap: $(cat "$T/err")"
kill -TERM "$NODE_PID"
wait "$NODE_PID" || fail "llmosd exited with $?"
NODE_PID=
for bad in 0 12Q 5G; do
    if "$BIN/llmosd" --graph "$T/db" --data-dir "$T/data3" --graph-max-result-bytes "$bad" >/dev/null 2>"$T/err"; then
        fail "--graph-max-result-bytes $bad accepted"
    fi
    grep -q 'graph_max_result_bytes' "$T/err" || fail "--graph-max-result-bytes $bad: $(cat "$T/err")"
done
if grep -E 'runtime error|AddressSanitizer|LeakSanitizer|ThreadSanitizer' "$T/node.log"; then
    fail "sanitizer reports in the nodes' log"
fi
echo "OK"
