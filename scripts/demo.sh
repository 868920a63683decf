#!/usr/bin/env bash
# make demo — llmos's main job on this machine, end to end, with real parts:
#   1. the UMLS knowledge graph loaded into LMDB (llmos graph load);
#   2. a two-rank cluster: `mpirun -np 2 llmosd` serving stories260K with
#      tensor parallelism T = 2 (each rank holds half of every layer), the
#      graph, and the job scheduler with its durable log in a data dir;
#      checked with `llmos ping` / `llmos status`;
#   3. the kernel model: greedy text checked byte for byte against the
#      reference (local engine), and the cluster's T = 2 greedy equal to it;
#   4. a batch of mixed jobs through `llmos batch run` (the client library):
#      generations, knowledge-augmented generations (entity linking -> facts
#      -> generation), graph queries; results and a summary (jobs/s,
#      tokens/s); a re-run answers from the job log without recomputing;
#   5. a program on <llmos/client.h> (examples/submit.c) streams a job;
#   6. a clean shutdown (SIGTERM to mpirun, every rank exits 0).
# Models and data come from $LLMOS_MODELS / $LLMOS_DATA (default ../shared/...).
set -euo pipefail
build=${1:-build}
bin=$(cd "$build/bin" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
models=${LLMOS_MODELS:-$top/../shared/models}
data=${LLMOS_DATA:-$top/../shared/data}
for f in "$models/stories260K.bin" "$models/tok512.bin" "$models/stories260K.greedy.txt" "$data/kg/umls/train.txt"; do
  [ -r "$f" ] || { echo "demo: cannot read $f (set LLMOS_MODELS / LLMOS_DATA)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/llmos-demo.XXXXXX)
cluster_pid=
cleanup() {
  [ -n "$cluster_pid" ] && kill -TERM "$cluster_pid" 2>/dev/null && sleep 1
  [ -n "$cluster_pid" ] && kill -KILL "$cluster_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
t0=$(date +%s.%N)
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. the knowledge graph: UMLS into LMDB"
"$bin/llmos" graph load "$work/umls" "$data/kg/umls/train.txt" --format tsv

step "2. a two-rank cluster (mpirun -np 2): stories260K, the graph, the job scheduler"
model_args=(--model "$models/stories260K.bin" --tokenizer "$models/tok512.bin")
if "$bin/llmosd" --help 2>&1 | grep -q -- '--tp N'; then
  model_args+=(--tp 2)
  echo "model served with tensor parallelism T = 2 over the two ranks"
else
  echo "NOTE: this llmosd has no --tp yet: each rank serves the whole model (T = 1)"
fi
# Port 0: each rank takes a free port and prints it; --tag-output tells the ranks apart.
mpirun --allow-run-as-root --oversubscribe --tag-output -np 2 "$bin/llmosd" --listen tcp://127.0.0.1:0 \
  "${model_args[@]}" --graph "$work/umls" --data-dir "$work/data" >"$work/cluster.out" 2>"$work/cluster.log" &
cluster_pid=$!
ep=
for _ in $(seq 400); do
  ep=$(sed -n 's/^\[[0-9]*,0\]<stdout>:.*listening on \(tcp:[^ ]*\).*/\1/p' "$work/cluster.out" | head -1)
  [ -n "$ep" ] && break
  kill -0 "$cluster_pid" 2>/dev/null || { echo "demo: the cluster did not start:" >&2; cat "$work/cluster.log" >&2; exit 1; }
  sleep 0.05
done
[ -n "$ep" ] || { echo "demo: rank 0 printed no endpoint" >&2; cat "$work/cluster.log" >&2; exit 1; }
sed 's/^\[[0-9]*,\([0-9]\)\]<stdout>:/rank \1: /' "$work/cluster.out"
llmos=("$bin/llmos" --endpoint "$ep")
for _ in $(seq 100); do "${llmos[@]}" --timeout 300 ping >/dev/null 2>&1 && break; sleep 0.1; done
"${llmos[@]}" ping
"${llmos[@]}" status | grep -E '^(node|peers|actors)'

step "3. the kernel model: greedy stories260K must equal the reference text"
"$bin/llmos" generate --model "$models/stories260K.bin" --tokenizer "$models/tok512.bin" \
  -n 200 --temperature 0 >"$work/greedy.txt" 2>"$work/generate.log"
if cmp -s "$work/greedy.txt" "$models/stories260K.greedy.txt"; then
  head -c 300 "$work/greedy.txt"; echo " ..."
  echo "(local engine: identical to stories260K.greedy.txt)"
else
  echo "demo: greedy text differs from the reference" >&2; exit 1
fi
# the same greedy continuation computed by the cluster, as a job
prompt="Once upon a time"
"$bin/llmos" generate --model "$models/stories260K.bin" --tokenizer "$models/tok512.bin" \
  --prompt "$prompt" -n 80 --temperature 0 >"$work/local80.txt" 2>>"$work/generate.log"
printf '{"id":"greedy-check","kind":"generate","prompt":"%s","max_tokens":79,"temperature":0}\n' "$prompt" |
  "${llmos[@]}" submit - --wait --wait-timeout 60000 >"$work/greedy-job.json"
job_text=$(jq -r '.tasks[0].text' "$work/greedy-job.json")
# -n counts prompt positions too, so compare the common prefix (~300 characters)
local_text=$(cat "$work/local80.txt")
cluster_text="$prompt$job_text"
n=${#local_text}
[ ${#cluster_text} -lt "$n" ] && n=${#cluster_text}
if [ "$n" -gt 150 ] && [ "${local_text:0:n}" = "${cluster_text:0:n}" ]; then
  echo "(the cluster's greedy job, T = 2, equals the local engine's text: $n characters compared)"
else
  echo "demo: the cluster's greedy text differs from the local engine's:" >&2
  echo "  local: ${local_text:0:200}" >&2
  echo "  job:   ${cluster_text:0:200}" >&2
  exit 1
fi

step "4. a batch of mixed jobs through llmos batch run (8 in flight)"
K='PREFIX kg: <http://llmos.local/kg/> '
{
  i=0
  for p in "Once upon a time" "One day, Tom found a" "The little cat" "Lily wanted to" \
           "The sun was" "Ben and his dog" "In the park," "The old tree"; do
    i=$((i + 1))
    jq -cn --arg p "$p" --argjson s "$i" '{id:"story-\($s)",kind:"generate",prompt:$p,max_tokens:60,temperature:0.8,top_p:0.9,seed:$s}'
  done
  i=0
  for p in "A virus can cause a disease." "The bacterium lives in a mammal." "A fungus and a plant." \
           "The bird is an animal." "An enzyme is a chemical." "Tom had a virus."; do
    i=$((i + 1))
    jq -cn --arg p "$p" --argjson s "$i" '{id:"kg-story-\($s)",kind:"generate",graph:true,prompt:$p,max_facts:4,hops:1,max_tokens:60,temperature:0.8,seed:$s}'
  done
  for q in "SELECT ?x WHERE { kg:virus kg:causes ?x } LIMIT 5" \
           "SELECT DISTINCT ?p WHERE { kg:mammal ?p ?o } LIMIT 5" \
           "SELECT ?a WHERE { ?a kg:isa kg:organism } LIMIT 5" \
           "ASK { kg:virus kg:causes kg:disease_or_syndrome }"; do
    i=$((i + 1))
    jq -cn --arg q "$K$q" --argjson s "$i" '{id:"query-\($s)",kind:"graph_query",query:$q}'
  done
  jq -cn '{id:"facts-1",kind:"link",text:"Can a virus cause a disease or syndrome in a mammal?",hops:1,max_facts:6}'
} >"$work/jobs.jsonl"
"${llmos[@]}" batch run "$work/jobs.jsonl" -o "$work/results.jsonl" --concurrency 8 2>"$work/batch.err"
jq -r 'def short: gsub("\\s+"; " ") | .[0:150];
       if .status != "ok" then "\(.id): ERROR \(.error)"
       elif .kind == "generate" and .tasks then "\(.id) [\(.tasks[0].facts) facts -> \(.tokens) tokens]: \(.text | short)"
       elif .kind == "generate" then "\(.id) [\(.tokens) tokens]: \(.text | short)"
       elif .kind == "link" then "\(.id) [\(.facts) facts]: \(.text | short)"
       else "\(.id): \(.text | short)" end' "$work/results.jsonl"
echo
cat "$work/batch.err"
ok=$(jq -s 'map(select(.status == "ok")) | length' "$work/results.jsonl")
total=$(wc -l <"$work/jobs.jsonl")
[ "$ok" = "$total" ] || { echo "demo: $((total - ok)) of $total jobs failed" >&2; exit 1; }
echo "kg-story-1's prompt as the model saw it (the facts its link task found, then the prompt):"
{ jq -r 'select(.id == "kg-story-1") | .tasks[0].text' "$work/results.jsonl"; jq -r 'select(.id == "kg-story-1") | .prompt' "$work/jobs.jsonl"; } |
  grep -v '^$' | sed 's/^/  | /'
step "   the same batch again: answered from the durable job log, nothing recomputed"
rm "$work/results.jsonl"
before=$("${llmos[@]}" jobs --stats | jq .done)
"${llmos[@]}" batch run "$work/jobs.jsonl" -o "$work/results.jsonl" --concurrency 8 2>&1 | tail -1
after=$("${llmos[@]}" jobs --stats | jq .done)
echo "jobs the scheduler ran for the second batch: $((after - before))"
[ "$after" = "$before" ] || { echo "demo: the second batch ran jobs again" >&2; exit 1; }

step "5. a program on <llmos/client.h>: examples/submit.c (link -> generate, streamed)"
if [ -x "$bin/example_submit" ]; then
  "$bin/example_submit" --endpoint "$ep" --id demo-example --tokens 60 "A virus can cause a disease in a mammal."
else
  echo "(example_submit not built)"
fi

step "6. shutdown"
# SIGTERM to each rank (mpirun's children); mpirun then exits with their status
ranks=$(pgrep -P "$cluster_pid" || true)
[ -n "$ranks" ] && kill -TERM $ranks || kill -TERM "$cluster_pid"
rc=0
wait "$cluster_pid" || rc=$?
cluster_pid=
[ $rc -eq 0 ] && echo "both ranks stopped cleanly (exit 0)" || { echo "demo: the cluster exited with $rc" >&2; tail "$work/cluster.log" >&2; exit 1; }
t1=$(date +%s.%N)
printf '\ndemo done in %.1f s: 2 ranks, %s jobs (%s)\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" "$total" \
  "$(sed -n 's/.*: \([0-9]* jobs in .*\)/\1/p' "$work/batch.err" | head -1)"
