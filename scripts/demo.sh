#!/usr/bin/env bash
# make demo — llmos's main job on this machine, end to end, with real parts:
#   1. a two-node cluster (two llmosd processes peered over ZeroMQ on loopback),
#      checked with `llmos ping` and `llmos status`;
#   2. the pretrained kernel model (stories260K) generating text, greedy and
#      sampled, through `llmos generate`;
#   3. a knowledge graph (UMLS) loaded into LMDB, queried with SPARQL, and an
#      entity-linked prompt whose facts are printed as sentences;
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

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "1. a two-node cluster on loopback"
pa=$(free_port); pb=$(free_port)
"$bin/llmosd" --listen "tcp://127.0.0.1:$pa" --node-name a >"$work/a.out" 2>"$work/a.log" &
pids+=($!)
"$bin/llmosd" --listen "tcp://127.0.0.1:$pb" --node-name b --peer "tcp://127.0.0.1:$pa" >"$work/b.out" 2>"$work/b.log" &
pids+=($!)
for _ in $(seq 100); do
  grep -q listening "$work/a.out" 2>/dev/null && grep -q listening "$work/b.out" 2>/dev/null && break
  sleep 0.05
done
cat "$work/a.out" "$work/b.out"
"$bin/llmos" --endpoint "tcp://127.0.0.1:$pa" ping
"$bin/llmos" --endpoint "tcp://127.0.0.1:$pb" ping
sleep 0.5
"$bin/llmos" --endpoint "tcp://127.0.0.1:$pb" status

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

step "3. the knowledge graph: UMLS into LMDB"
"$bin/llmos" graph load "$work/umls" "$data/kg/umls/train.txt" --format tsv
"$bin/llmos" graph stats "$work/umls" | head -8
step "   SPARQL: what else causes what a virus causes?"
"$bin/llmos" graph query "$work/umls" '
PREFIX kg: <http://llmos.local/kg/>
SELECT DISTINCT ?other WHERE {
  kg:virus kg:causes ?effect .
  ?other kg:causes ?effect .
  FILTER (?other != kg:virus)
} LIMIT 8'
step "   entity linking: the facts a prompt about it would carry"
"$bin/llmos" graph link "$work/umls" "Can a virus cause a disease or syndrome in a mammal?" --max-facts 8
step "   shortest path"
"$bin/llmos" graph path "$work/umls" virus mammal --max-hops 4

step "4. shutdown"
for p in "${pids[@]}"; do kill -TERM "$p"; done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
pids=()
[ $rc -eq 0 ] && echo "both nodes stopped cleanly (exit 0)" || { echo "demo: a node exited with $rc" >&2; exit 1; }
t1=$(date +%s.%N)
printf '\ndemo done in %.1f s: 2 nodes, 2 generations, 1 graph load, 1 query, 1 link, 1 path\n' \
  "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')"
