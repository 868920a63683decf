#!/usr/bin/env bash
# test_graph_cli.sh — llmos-graph end to end with real files and processes:
#   the KG benchmark files load with the right triple and per-predicate
#   counts (computed here independently with awk); bad input (broken
#   N-Triples, bad UTF-8, an IRI with spaces, a truncated file) is reported
#   as FILE:LINE and leaves the store unchanged; --strict refuses the whole
#   load; kill -9 in the middle of a large load leaves the store exactly as
#   before, consistent in its three orderings, and writable; load → dump →
#   load is a fixpoint; neighbors and path agree with a BFS done in Python;
#   a failed load leaves no new store (directory) behind and an old one
#   untouched; every command answers --help with its usage and exit 0.
set -euo pipefail

BIN=${LLMOS_BIN:?LLMOS_BIN not set}
DATA=${LLMOS_DATA:?LLMOS_DATA not set}
PY=${PYTHON:-/usr/bin/python3}
G="$BIN/llmos-graph"
. "$(dirname "$0")/../lib/tmp.sh"
llmos_tmp llmos-graph-cli cleanup
LOADER_PID=
cleanup() {
    if [ -n "$LOADER_PID" ] && kill -0 "$LOADER_PID" 2>/dev/null; then kill -9 "$LOADER_PID"; fi
}
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

# ----------------------------------------------------------- KG files ---
for kg in umls wn18rr; do
    f="$DATA/kg/$kg/train.txt"
    step "load $kg"
    "$G" load "$T/$kg" "$f" --quiet
    lines=$(wc -l < "$f")
    distinct=$(sort -u "$f" | wc -l)
    [ "$lines" = "$distinct" ] || echo "note: $kg has duplicate lines ($lines lines, $distinct distinct)"
    triples=$("$G" stats "$T/$kg" | awk -F'\t' '$1=="triples"{print $2}')
    [ "$triples" = "$distinct" ] || fail "$kg: $triples triples, want $distinct"
    # Per predicate: awk over the file vs the store's statistics.
    sort -u "$f" | awk -F'\t' '{n[$2]++} END {for (r in n) printf "<http://llmos.local/kg/%s>\t%d\n", r, n[r]}' \
        | sort > "$T/want.$kg"
    "$G" stats "$T/$kg" | awk -F'\t' '/^</' | sort > "$T/got.$kg"
    cmp -s "$T/want.$kg" "$T/got.$kg" || { diff "$T/want.$kg" "$T/got.$kg" | head; fail "$kg: per-predicate counts differ"; }
    "$G" check "$T/$kg" > /dev/null || fail "$kg: check"
done

# ----------------------------------------------------------- fixpoint ---
step "load -> dump -> load fixpoint"
"$G" dump "$T/umls" > "$T/d1.nt"
"$G" load "$T/fix" "$T/d1.nt" --quiet
"$G" dump "$T/fix" > "$T/d2.nt"
cmp -s <(sort "$T/d1.nt") <(sort "$T/d2.nt") || fail "dump of a reloaded dump differs"
[ "$(wc -l < "$T/d1.nt")" = "$(wc -l < "$DATA/kg/umls/train.txt")" ] || fail "dump line count"
# With literals, languages, datatypes, blank nodes and escapes too.
printf '%s\n' '<http://x/a> <http://x/p> "caf\u00E9 \"q\" \\ \n"@en-GB .' \
    '_:b1 <http://x/p> "7"^^<http://www.w3.org/2001/XMLSchema#integer> .' \
    '<http://x/a> <http://x/q> "s"^^<http://www.w3.org/2001/XMLSchema#string> .' \
    '<http://x/a> <http://x/q> _:b1 .' > "$T/lit.nt"
"$G" load "$T/lit" "$T/lit.nt" --quiet
"$G" dump "$T/lit" > "$T/l1.nt"
"$G" load "$T/lit2" "$T/l1.nt" --quiet
"$G" dump "$T/lit2" > "$T/l2.nt"
cmp -s <(sort "$T/l1.nt") <(sort "$T/l2.nt") || fail "literal fixpoint"
grep -q '"s" \.' "$T/l1.nt" || fail "xsd:string literal not normalised to plain"
grep -q '@en-gb' "$T/l1.nt" || fail "language tag not normalised"

# ---------------------------------------------------------- bad input ---
step "bad input leaves the store unchanged"
"$G" dump "$T/umls" | sort > "$T/before.nt"
printf '<http://x/a> <http://x/p> <http://x/b\n' > "$T/broken.nt"             # broken line
printf '<http://x/a> <http://x/p> "caf\xc3\x28" .\n' > "$T/utf8.nt"          # bad UTF-8
printf '<http://x/a b> <http://x/p> <http://x/c> .\n' > "$T/space.nt"        # IRI with spaces
printf '<http://x/a> <http://x/p> <http://x/c> .\n<http://x/a> <http://x/p> "trunc' \
    | head -c 60 > "$T/trunc.nt"                                               # truncated file
printf 'a\tb\n' > "$T/short.tsv"
for bad in broken.nt utf8.nt space.nt short.tsv; do
    "$G" load "$T/umls" "$T/$bad" --quiet 2> "$T/err" || fail "$bad: non-strict load should succeed"
    grep -q "$T/$bad:1" "$T/err" || { cat "$T/err"; fail "$bad: no FILE:LINE in the error"; }
    "$G" dump "$T/umls" | sort | cmp -s - "$T/before.nt" || fail "$bad changed the store"
done
# The truncated file: its first line is good, the cut second line is reported.
"$G" load "$T/umls" "$T/trunc.nt" --strict --quiet 2> "$T/err" && fail "strict load of a truncated file succeeded"
grep -q "$T/trunc.nt:2" "$T/err" || { cat "$T/err"; fail "trunc: no FILE:LINE"; }
"$G" dump "$T/umls" | sort | cmp -s - "$T/before.nt" || fail "strict truncated load changed the store"
# --strict with good files first and one bad line at the end: nothing at all.
"$G" load "$T/umls" "$DATA/kg/wn18rr/train.txt" "$T/space.nt" --strict --quiet 2> "$T/err" \
    && fail "--strict accepted a bad file"
grep -q "space.nt:1" "$T/err" || fail "--strict error has no FILE:LINE"
"$G" dump "$T/umls" | sort | cmp -s - "$T/before.nt" || fail "--strict load changed the store"
"$G" load "$T/umls" "$T/missing.nt" --quiet 2> "$T/err" && fail "a missing file was accepted"
"$G" check "$T/umls" > /dev/null || fail "check after bad input"

# -------------------------------------------------------- kill -9 load ---
step "kill -9 during a large load"
awk 'BEGIN { srand(7); for (i = 0; i < 3000000; i++)
       printf "n%d\tr%d\tn%d\n", int(rand() * 900000), int(rand() * 40), int(rand() * 900000) }' > "$T/big.tsv"
"$G" stats "$T/umls" > "$T/stats.before"
"$G" load "$T/umls" "$T/big.tsv" --quiet --mem-budget 64 &
LOADER_PID=$!
sleep 2
kill -0 "$LOADER_PID" 2>/dev/null || fail "the load finished before the kill: make big.tsv bigger"
kill -9 "$LOADER_PID"
set +e
wait "$LOADER_PID"
status=$?
set -e
LOADER_PID=
[ "$status" = 137 ] || fail "loader exit status $status, want 137 (SIGKILL)"
"$G" check "$T/umls" || fail "store inconsistent after kill -9"
"$G" stats "$T/umls" | cmp -s - "$T/stats.before" || fail "stats changed by a killed load"
"$G" dump "$T/umls" | sort | cmp -s - "$T/before.nt" || fail "a killed load changed the store"
ls -a "$T/umls" | grep -q graph-run && fail "sort runs left behind"
# Still writable afterwards (the writer lock was released by the kernel).
head -1000 "$T/big.tsv" > "$T/small.tsv"
"$G" load "$T/umls" "$T/small.tsv" --quiet
"$G" check "$T/umls" > /dev/null || fail "check after reload"

# ---------------------------------------------------- neighbors, path ---
step "neighbors and path vs BFS in Python"
"$PY" - "$DATA/kg/umls/train.txt" > "$T/bfs.txt" <<'EOF'
import sys, collections
adj = collections.defaultdict(set); edges = set()
for line in open(sys.argv[1]):
    h, r, t = line.rstrip('\n').split('\t'); edges.add((h, r, t))
    adj[h].add(t); adj[t].add(h)
def dist(a):
    d = {a: 0}; q = collections.deque([a])
    while q:
        u = q.popleft()
        for v in adj[u]:
            if v not in d: d[v] = d[u] + 1; q.append(v)
    return d
a, b = 'virus', 'body_location_or_region'
d = dist(a)
one = sum(1 for (h, r, t) in edges if h == a or t == a)
two = sum(1 for (h, r, t) in edges if d.get(h, 9) <= 1 or d.get(t, 9) <= 1)
print(one, two, d[b])
EOF
read -r one two plen < "$T/bfs.txt"
got1=$("$G" neighbors "$T/fix" virus --hops 1 2>/dev/null | wc -l)
got2=$("$G" neighbors "$T/fix" virus --hops 2 --max-edges 1000000 2>/dev/null | wc -l)
[ "$got1" = "$one" ] || fail "1-hop neighbours: $got1 edges, want $one"
[ "$got2" = "$two" ] || fail "2-hop neighbours: $got2 edges, want $two"
gotp=$("$G" path "$T/fix" virus body_location_or_region --max-hops 6 2>/dev/null | wc -l)
[ "$gotp" = "$plen" ] || fail "path: $gotp hops, want $plen"
"$G" neighbors "$T/fix" no_such_node 2> "$T/err" && fail "unknown node accepted"
grep -q "no_such_node" "$T/err" || fail "unknown node: message does not name it"
# ----------------------------------------------------- failed loads ---
step "a load that fails leaves no new store behind, an old one intact"
for args in "/nonexistent.nt" "$DATA/kg/umls/train.txt /nonexistent.nt" "$T" "$T/bad.nt --strict" \
    "$DATA/kg/umls/train.txt --format nope"; do
    printf '<http://x/a> <http://x/p> oops .\n' >"$T/bad.nt"
    # shellcheck disable=SC2086
    if "$G" load "$T/newdb" $args 2>"$T/err"; then fail "load $args succeeded"; fi
    [ -e "$T/newdb" ] && fail "load $args left $T/newdb behind: $(ls -A "$T/newdb")"
done
mkdir "$T/emptydir"
if "$G" load "$T/emptydir" /nonexistent.nt 2>/dev/null; then fail "load into an empty dir succeeded"; fi
[ -d "$T/emptydir" ] || fail "the existing empty directory was removed"
[ -z "$(ls -A "$T/emptydir")" ] || fail "a failed load left files in an existing directory: $(ls -A "$T/emptydir")"
"$G" dump "$T/umls" | sort >"$T/before.nt"
for args in "/nonexistent.nt" "$T/bad.nt --strict"; do
    # shellcheck disable=SC2086
    if "$G" load "$T/umls" $args 2>/dev/null; then fail "load into umls: $args succeeded"; fi
    "$G" dump "$T/umls" | sort | cmp -s - "$T/before.nt" || fail "a failed load ($args) changed the store"
    "$G" check "$T/umls" >/dev/null || fail "a failed load ($args) broke the store"
done

# -------------------------------------------------------------- help ---
step "--help everywhere: usage on stdout, exit 0"
for c in "" load stats dump check neighbors neighbours path query link; do
    # shellcheck disable=SC2086
    "$G" $c --help >"$T/help" 2>"$T/err" || fail "llmos-graph $c --help exited $?"
    grep -q '^usage: llmos-graph' "$T/help" || fail "llmos-graph $c --help: $(head -2 "$T/help")"
    [ -s "$T/err" ] && fail "llmos-graph $c --help wrote to stderr"
    # shellcheck disable=SC2086
    "$G" $c -h >/dev/null || fail "llmos-graph $c -h"
    [ -n "$c" ] || continue
    "$G" help "$c" | cmp -s - "$T/help" || fail "llmos-graph help $c differs from $c --help"
    "$G" "$c" "$T/umls" --help | cmp -s - "$T/help" || fail "llmos-graph $c DB --help"
    "$BIN/llmos" graph "$c" --help | cmp -s - "$T/help" || fail "llmos graph $c --help"
done
"$BIN/llmos" graph --help | grep -q '^usage: llmos-graph' || fail "llmos graph --help"
if "$G" nope --help >/dev/null 2>&1; then fail "an unknown command with --help succeeded"; fi
if "$G" help nope >/dev/null 2>&1; then fail "help for an unknown command succeeded"; fi
if "$G" load "$T/x" 2>/dev/null; then fail "load without files succeeded"; fi

echo "all graph CLI checks passed"
