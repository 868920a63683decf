#!/usr/bin/env bash
# test_graph_generate.sh — knowledge-augmented generation end to end:
# `llmos generate --graph DB` (llmos → llmos-generate, real stories260K,
# real graph store) links the prompt, puts the facts' sentences in front of
# it and reports the triples it used.  Checks, against expectations written
# here from the graph files:
#   - the triples reported on stderr and in --json are exactly the expected
#     ones (1 hop, 2 hops, --max-facts), and the prompt the model saw (JSON
#     "prompt", --show-prompt) is their sentences, an empty line, the prompt;
#   - rdfs:label names from an N-Triples graph link and read as labels;
#   - a prompt that mentions nothing uses 0 facts and prints exactly what
#     plain generate prints (greedy);
#   - facts that do not fit seq_len are dropped (a prefix of the full list),
#     never an error, and prompt + generation stay within seq_len;
#   - a missing DB is a clear error (exit 1, the path named).
set -euo pipefail

BIN=${LLMOS_BIN:?LLMOS_BIN not set}
PY=${PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/../lib/tmp.sh"
llmos_tmp llmos-graph-gen
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

GEN=("$BIN/llmos" generate --model stories260K.bin --tokenizer tok512.bin --temperature 0)
K=http://llmos.local/kg/

printf 'lily\towns\ttom\nlily\tlikes\tball\ntom\tis_a\tcat\ncat\teats\tfish\nsun\tis\thot\n' > "$T/g.tsv"
"$BIN/llmos-graph" load "$T/db" "$T/g.tsv" --quiet

# facts FILE.json: the JSON's facts as "s p o ." lines (in order)
facts() { "$PY" -c 'import json,sys; [print(f["s"], f["p"], f["o"], ".") for f in json.load(open(sys.argv[1]))["graph"]["facts"]]' "$1"; }
# stderr_facts FILE: the "graph fact:" lines of a stderr capture
stderr_facts() { sed -n 's/^graph fact: //p' "$1"; }
# check_prompt FILE.json: "prompt" = the facts' sentences, one per line, an empty line, then the user's prompt
check_prompt() {
    "$PY" - "$1" "$2" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
user = sys.argv[2]
sent = [f["sentence"] for f in j["graph"]["facts"]]
want = "".join(s + "\n" for s in sent) + ("\n" if sent else "") + user
if j["prompt"] != want:
    sys.exit("prompt the model saw:\n%r\nwant:\n%r" % (j["prompt"], want))
EOF
}

step "1 hop: the mentioned entities' facts, the one between two mentions first"
P="Lily saw Tom in the garden"
"${GEN[@]}" -n 80 --prompt "$P" --graph "$T/db" --json > "$T/a.json" 2> "$T/a.err" || { cat "$T/a.err"; fail "generate --graph"; }
cat > "$T/a.want" <<EOF
<${K}lily> <${K}owns> <${K}tom> .
EOF
facts "$T/a.json" > "$T/a.facts"
head -1 "$T/a.facts" | cmp -s - "$T/a.want" || fail "the fact between lily and tom is not first: $(facts "$T/a.json")"
cat >> "$T/a.want" <<EOF
<${K}lily> <${K}likes> <${K}ball> .
<${K}tom> <${K}is_a> <${K}cat> .
EOF
cmp -s <(facts "$T/a.json" | sort) <(sort "$T/a.want") || { facts "$T/a.json"; fail "1-hop facts differ from the expected ones"; }
cmp -s <(facts "$T/a.json") <(stderr_facts "$T/a.err") || fail "stderr reports other facts than the JSON"
grep -q '^graph: 3 facts used (3 linked)' "$T/a.err" || fail "count line: $(grep '^graph:' "$T/a.err")"
check_prompt "$T/a.json" "$P"
"$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["prompt"].startswith("lily owns tom.\n"), j["prompt"]; assert j["graph"]["used"] == 3 and j["graph"]["prefix_tokens"] > 0; assert j["text"]' "$T/a.json" \
    || fail "JSON answer"
# --show-prompt prints the same full prompt on stderr; text mode echoes the user's prompt only.
"${GEN[@]}" -n 80 --prompt "$P" --graph "$T/db" --show-prompt > "$T/a.out" 2> "$T/a2.err"
"$PY" - "$T/a.json" "$T/a2.err" <<'EOF' || fail "--show-prompt differs from the JSON prompt"
import json, sys
j = json.load(open(sys.argv[1]))
err = open(sys.argv[2]).read()
assert ("prompt: " + j["prompt"] + "\n") in err, err
EOF
head -c ${#P} "$T/a.out" | cmp -s - <(printf '%s' "$P") || fail "stdout does not start with the user's prompt"
# the continuation of text mode equals the JSON's (same greedy run)
"$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); o=open(sys.argv[2]).read(); assert o == sys.argv[3] + j["text"] + "\n", (o, j["text"])' \
    "$T/a.json" "$T/a.out" "$P" || fail "text and JSON continuations differ"

step "2 hops and --max-facts"
"${GEN[@]}" -n 60 --prompt "Tom was happy" --graph "$T/db" --json --hops 1 > "$T/h1.json" 2> /dev/null
printf '%s\n' "<${K}tom> <${K}is_a> <${K}cat> ." "<${K}lily> <${K}owns> <${K}tom> ." | sort > "$T/h1.want"
cmp -s <(facts "$T/h1.json" | sort) "$T/h1.want" || { facts "$T/h1.json"; fail "hops 1"; }
"${GEN[@]}" -n 60 --prompt "Tom was happy" --graph "$T/db" --json --hops 2 > "$T/h2.json" 2> /dev/null
printf '%s\n' "<${K}cat> <${K}eats> <${K}fish> ." "<${K}lily> <${K}likes> <${K}ball> ." >> "$T/h1.want"
cmp -s <(facts "$T/h2.json" | sort) <(sort "$T/h1.want") || { facts "$T/h2.json"; fail "hops 2"; }
check_prompt "$T/h2.json" "Tom was happy"
"${GEN[@]}" -n 60 --prompt "$P" --graph "$T/db" --json --max-facts 1 > "$T/m1.json" 2> "$T/m1.err"
cmp -s <(facts "$T/m1.json") <(head -1 "$T/a.want") || fail "--max-facts 1: $(facts "$T/m1.json")"
grep -q '^graph: 1 facts used' "$T/m1.err" || fail "--max-facts 1 count line"

step "rdfs:label names (N-Triples graph)"
L='<http://www.w3.org/2000/01/rdf-schema#label>'
cat > "$T/l.nt" <<EOF
<http://ex.org/q1> $L "Big Red Dog" .
<http://ex.org/q2> $L "the Moon"@en .
<http://ex.org/q1> <http://ex.org/barksAt> <http://ex.org/q2> .
<http://ex.org/q3> <http://ex.org/p> <http://ex.org/q4> .
EOF
"$BIN/llmos-graph" load "$T/ldb" "$T/l.nt" --quiet
"${GEN[@]}" -n 80 --prompt "The big red dog looked up" --graph "$T/ldb" --json > "$T/l.json" 2> "$T/l.err"
printf '%s\n' "<http://ex.org/q1> <http://ex.org/barksAt> <http://ex.org/q2> ." "<http://ex.org/q1> $L \"Big Red Dog\" ." \
    | sort > "$T/l.want"
cmp -s <(facts "$T/l.json" | sort) "$T/l.want" || fail "label link: $(facts "$T/l.json")"
"$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); s=[f["sentence"] for f in j["graph"]["facts"]]; assert "Big Red Dog barks At the Moon." in s, s' "$T/l.json" \
    || fail "label sentence"

step "no entity: 0 facts, exactly plain generate"
Q="Once upon a time, there was a little girl"
"${GEN[@]}" -n 100 --prompt "$Q" --graph "$T/db" > "$T/n.out" 2> "$T/n.err"
"${GEN[@]}" -n 100 --prompt "$Q" > "$T/plain.out" 2> /dev/null
cmp -s "$T/n.out" "$T/plain.out" || { diff "$T/n.out" "$T/plain.out"; fail "0 facts but not plain generate's text"; }
grep -q '^graph: 0 facts used (0 linked), prefix 0 tokens' "$T/n.err" || fail "0-fact count line: $(grep '^graph' "$T/n.err")"
! grep -q '^graph fact:' "$T/n.err" || fail "facts reported for a prompt without entities"
"${GEN[@]}" -n 100 --prompt "$Q" --graph "$T/db" --json > "$T/n.json" 2> /dev/null
"$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["prompt"] == sys.argv[2] and j["graph"]["used"] == 0 and j["graph"]["facts"] == []; assert sys.argv[2] + j["text"] + "\n" == open(sys.argv[3]).read()' \
    "$T/n.json" "$Q" "$T/plain.out" || fail "0-fact JSON"

step "facts that do not fit seq_len are dropped, not an error"
# -n 500 leaves 12 of stories260K's 512 positions for the facts.
"${GEN[@]}" -n 500 --prompt "$P" --graph "$T/db" --json > "$T/d.json" 2> "$T/d.err" || fail "generate -n 500 --graph failed"
"$PY" - "$T/d.json" "$T/a.json" <<'EOF' || fail "dropping facts"
import json, sys
d, a = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
used, full = d["graph"]["facts"], a["graph"]["facts"]
assert 0 < len(used) < len(full), (len(used), len(full))
assert used == full[:len(used)], "not the highest-priority facts"
assert d["graph"]["prefix_tokens"] <= 12, d["graph"]
# positions run: the prompt and every generated token but the last (llama2.c's -n)
assert d["prompt_tokens"] + d["generated_tokens"] - 1 <= 512, d
EOF
grep -q 'dropped to fit 12 tokens' "$T/d.err" || fail "the count line does not say facts were dropped"
"${GEN[@]}" -n 512 --prompt "$P" --graph "$T/db" > /dev/null 2> "$T/z.err" || fail "-n 512 --graph failed"
grep -q '^graph: 0 facts used (3 linked, 3 dropped to fit 0 tokens)' "$T/z.err" || fail "-n 512: $(grep '^graph' "$T/z.err")"

step "bad input"
rc=0
"${GEN[@]}" -n 40 --prompt "$P" --graph "$T/missing" > "$T/x.out" 2> "$T/x.err" || rc=$?
[ "$rc" = 1 ] || fail "missing DB: exit $rc"
grep -q "llmos-generate: --graph: .*$T/missing" "$T/x.err" || fail "missing DB message: $(cat "$T/x.err")"
[ ! -s "$T/x.out" ] || fail "missing DB still generated text"
rc=0
"${GEN[@]}" --prompt "$P" --graph "$T/db" --hops 3 > /dev/null 2> "$T/x.err" || rc=$?
[ "$rc" = 2 ] && grep -q -- '--hops' "$T/x.err" || fail "--hops 3 accepted (exit $rc)"
echo "PASS"
