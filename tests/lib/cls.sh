# cls.sh — sourced by the classifier-serving test scripts (after `set -euo
# pipefail`), with the file-name prefix of their temporary folder as $1:
# checks LLMOS_BIN / LLMOS_MODELS / LLMOS_DATA (BIN, M, DATA), makes $T and
# removes it at exit (tmp.sh; killing the node in $PID first, if any), and defines
#   fail MSG...                 print MSG and the node log's tail, exit 1
#   MODEL                       (--model stories260K.bin --tokenizer tok512.bin)
#   cls_subset OUT FIRST COUNT train|test N
#       a BANKING77 CSV of the intents FIRST..FIRST+COUNT-1 (sorted by name):
#       train = each intent's first N texts; test = its first N texts from
#       the 41st on without a line break
#   stop_node                   stop the node in $PID (started with
#                               llmos_node_start, tests/lib/node.sh, which
#                               this sources): SIGTERM, and it must exit 0
#                               within 10 s (under mpirun: every rank)
BIN=${LLMOS_BIN:?LLMOS_BIN not set}
M=${LLMOS_MODELS:?LLMOS_MODELS not set}
DATA=${LLMOS_DATA:?LLMOS_DATA not set}
PY=/usr/bin/python3
. "$(dirname "${BASH_SOURCE[0]}")/node.sh"
. "$(dirname "${BASH_SOURCE[0]}")/tmp.sh"
llmos_tmp "$1" cleanup
PID=
MPI=0
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -9 "$PID" 2>/dev/null || true; fi
}
fail() { echo "FAIL: $*" >&2; [ -f "$T/node.log" ] && tail -20 "$T/node.log" >&2; exit 1; }
MODEL=(--model "$M/stories260K.bin" --tokenizer "$M/tok512.bin")

cls_subset() {
    "$PY" - "$DATA/banking77/train.csv" "$@" <<'PYEOF'
import csv, sys
src, out, first, count, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
rows = list(csv.reader(open(src, newline='')))
by = {}
for r in rows[1:]:
    by.setdefault(r[1], []).append(r)
with open(out, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(rows[0])
    for l in sorted(by)[first:first + count]:
        rs = by[l]
        w.writerows(rs[:n] if kind == 'train' else [r for r in rs[40:] if '\n' not in r[0]][:n])
PYEOF
}

stop_node() {
    local st=0
    NODE_PID=$PID
    llmos_node_stop || st=$?
    [ "$MPI" = 1 ] || [ "$st" = 0 ] || fail "llmosd exited with status $st"
    PID=
}
