#!/usr/bin/env bash
# make demo — llmos's main job on this machine, end to end, with real parts:
#   1. a two-node cluster (two llmosd processes peered over ZeroMQ on loopback),
#      checked with `llmos ping` and `llmos status`;
#   2. the pretrained kernel model (stories260K) generating text, greedy and
#      sampled, through `llmos generate`;
#   3. a knowledge graph (UMLS) loaded into LMDB and served by node a's graph
#      actor: SPARQL, an entity-linked prompt whose facts are printed as
#      sentences, and a shortest path, all asked over ZeroMQ;
#   4. a clean shutdown (SIGTERM, exit 0) and a summary.
# Models and data come from $LLMOS_MODELS / $LLMOS_DATA (default ../shared/...).
# Submitting jobs through the scheduler and tensor-parallel serving are not
# built yet (issues 4 and 6); this script grows with them.
set -euo pipefail
build=${1:-build}
bin=$(cd "$build/bin" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
models=${LLMOS_MODELS:-$top/../shared/models}
data=${LLMOS_DATA:-$top/../shared/data}
for f in "$models/stories260K.bin" "$models/tok512.bin" "$data/kg/umls/train.txt"; do
  [ -r "$f" ] || { echo "demo: cannot read $f (set LLMOS_MODELS / LLMOS_DATA)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/llmos-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
t0=$(date +%s.%N)
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. a two-node cluster on loopback; node a serves the UMLS knowledge graph"
"$bin/llmos" graph load "$work/umls" "$data/kg/umls/train.txt" --format tsv
# Port 0: the system picks free ports; each node prints the endpoint it got.
wait_endpoint() {
  for _ in $(seq 200); do
    ep=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$1" 2>/dev/null | head -1)
    [ -n "$ep" ] && { echo "$ep"; return 0; }
    sleep 0.05
  done
  echo "demo: a node did not start; its log:" >&2; cat "${1%.out}.log" >&2; return 1
}
"$bin/llmosd" --listen tcp://127.0.0.1:0 --node-name a --graph "$work/umls" >"$work/a.out" 2>"$work/a.log" &
pids+=($!)
ea=$(wait_endpoint "$work/a.out")
"$bin/llmosd" --listen tcp://127.0.0.1:0 --node-name b --peer "$ea" >"$work/b.out" 2>"$work/b.log" &
pids+=($!)
eb=$(wait_endpoint "$work/b.out")
cat "$work/a.out" "$work/b.out"
"$bin/llmos" --endpoint "$ea" ping
"$bin/llmos" --endpoint "$eb" ping
sleep 0.5
"$bin/llmos" --endpoint "$eb" status

step "2. the kernel model: stories260K, greedy (must equal the reference text)"
"$bin/llmos" generate --model "$models/stories260K.bin" --tokenizer "$models/tok512.bin" \
  -n 200 --temperature 0 | tee "$work/greedy.txt"
if cmp -s "$work/greedy.txt" "$models/stories260K.greedy.txt"; then
  echo "(identical to stories260K.greedy.txt)"
else
  echo "demo: greedy text differs from the reference" >&2; exit 1
fi
step "   sampled, temperature 0.8, top-p 0.9, seed 42, int8 weights"
"$bin/llmos" generate --model "$models/stories260K.gguf" --prompt "One day, Tom found a" \
  -n 120 --temperature 0.8 --top-p 0.9 --seed 42 --quantize q8

step "3. the knowledge graph, asked through node a's graph actor over ZeroMQ"
"$bin/llmos" --endpoint "$ea" graph stats | head -8
step "   SPARQL: what else causes what a virus causes?"
"$bin/llmos" --endpoint "$ea" graph query '
PREFIX kg: <http://llmos.local/kg/>
SELECT DISTINCT ?other WHERE {
  kg:virus kg:causes ?effect .
  ?other kg:causes ?effect .
  FILTER (?other != kg:virus)
} LIMIT 8'
step "   entity linking: the facts a prompt about it would carry"
"$bin/llmos" --endpoint "$ea" graph link "Can a virus cause a disease or syndrome in a mammal?" --max-facts 8
step "   shortest path"
"$bin/llmos" --endpoint "$ea" graph path virus mammal --max-hops 4

step "4. shutdown"
for p in "${pids[@]}"; do kill -TERM "$p"; done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
pids=()
[ $rc -eq 0 ] && echo "both nodes stopped cleanly (exit 0)" || { echo "demo: a node exited with $rc" >&2; exit 1; }
t1=$(date +%s.%N)
printf '\ndemo done in %.1f s: 2 nodes, 2 generations, 1 graph load, 1 query, 1 link, 1 path\n' \
  "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')"
