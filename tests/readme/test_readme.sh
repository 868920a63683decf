#!/usr/bin/env bash
# test_readme.sh — README.md and docs/*.md are executable: every block they
# show is run as a reader would run it, or is visibly of a kind that is not.
#
#   test_readme.sh --source DIR --build DIR [--sanitize ON|OFF]
#                  [--only FILE:LINE]... [--keep] [FILE.md...]
#
# FILEs default to README.md, then docs/*.md in name order (paths relative to
# --source); --only runs just the blocks whose fence opens at FILE:LINE;
# --keep leaves the temporary folder.  Needs LLMOS_MODELS and LLMOS_DATA
# (defaults: SOURCE/../shared/models and .../data) and the built tree.
#
# THE CONVENTION (README.md states it too, in a comment at its top).  A
# block's fence language says what the test does with it:
#
#   ```sh    RUN.  Each block on its own, in order: bash with
#            `set -euo pipefail`, in a fresh empty working directory under a
#            fresh temporary folder, with the build's bin/ first on PATH (so
#            `llmos`, `llmosd` resolve), LLMOS_MODELS / LLMOS_DATA set,
#            LLMOS_ENDPOINT and Open MPI's root/oversubscribe variables unset
#            (the block must say what a reader has to type), stdin empty.
#            A block is self-contained: it starts the nodes it needs, each
#            with its own --data-dir, on ports 7070-7089 (the test waits for
#            them to be free before each block and fails naming the holder
#            if they are not), and stops them itself (`trap ... EXIT`).  It
#            fails when a command fails (the report names the file, the
#            block's first line, the failing command's line and text, and
#            the block's last output lines), when it runs over 180 s (the
#            report lists what was running then), or when a process it
#            started is still running 15 s after it ended.  The whole run
#            keeps within 540 s (LLMOS_README_BUDGET; ctest allows 600):
#            blocks left when it is spent fail unrun.
#   ```c     RUN.  A complete program (it has `main`) on <llmos/client.h>,
#            taking a node's endpoint as its first argument.  Compiled with
#            `cc -std=c11 -Wall -Wextra -Werror` (+ the sanitizers in a
#            sanitizer build) against the client library installed from the
#            build tree, through pkg-config, as the README tells a reader to
#            (compiler messages name the Markdown file and line).  Then run
#            against three endpoints:
#              - a node serving stories260K.bin + tok512.bin and the UMLS
#                graph: it must exit 0;
#              - a node serving nothing but the built-in actors (echo, jobs),
#                fresh data dir: when a job it submitted ended other than
#                done there, it must exit non-zero; a non-zero exit must
#                come with a message on stderr;
#              - an endpoint nobody listens on (port 7089): it must exit
#                non-zero with a message on stderr, within 120 s.
#            So a C example has to fail loudly: print the reason, exit 1.
#   ```text ```json ```sparql ```ini
#            NOT RUN: output samples, usage synopses (placeholders in
#            capitals, [optional] parts), records, queries, config files.
#   ```console   (shell commands) and ```c excerpt (a piece of C, not a
#            program): NOT RUN, and allowed only right after a line
#            `<!-- not run: REASON -->`; the surrounding text must say why
#            too (e.g. `make test` cannot run inside itself).
#   Anything else fails the test: a fence without a language or with
#   another one, a not-run comment before a block that runs, an indented
#   (unfenced) code block, a fence never closed.  Every block is listed in
#   the log with what was done with it: none is skipped silently.
set -uo pipefail

usage() { echo "usage: test_readme.sh --source DIR --build DIR [--sanitize ON|OFF] [--only FILE:LINE]... [--keep] [FILE.md...]" >&2; exit 2; }
SRC='' BUILD='' SAN=OFF KEEP=0
ONLY=()
FILES=()
while [ $# -gt 0 ]; do
    case $1 in
    --source) SRC=${2:?}; shift 2 ;;
    --build) BUILD=${2:?}; shift 2 ;;
    --sanitize) SAN=${2:?}; shift 2 ;;
    --only) ONLY+=("${2:?}"); shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage ;;
    -*) echo "test_readme.sh: unknown option $1" >&2; usage ;;
    *) FILES+=("$1"); shift ;;
    esac
done
[ -n "$SRC" ] && [ -n "$BUILD" ] || usage
SRC=$(cd "$SRC" && pwd) || exit 2
BUILD=$(cd "$BUILD" && pwd) || exit 2
BIN=${LLMOS_BIN:-$BUILD/bin}
export LLMOS_MODELS=${LLMOS_MODELS:-$SRC/../shared/models}
export LLMOS_DATA=${LLMOS_DATA:-$SRC/../shared/data}
HERE=$(cd "$(dirname "$0")" && pwd)
if [ ${#FILES[@]} -eq 0 ]; then
    FILES=(README.md)
    for f in "$SRC"/docs/*.md; do [ -e "$f" ] && FILES+=("docs/${f##*/}"); done
fi
# Time: one sh block may take BLOCK_TIMEOUT s; the whole run BUDGET s (under
# ctest's 600), after which the blocks left are failures, not waits.
BLOCK_TIMEOUT=${LLMOS_README_BLOCK_TIMEOUT:-180}
BUDGET=${LLMOS_README_BUDGET:-540}
START=$SECONDS
time_left() { # CAP: the seconds left of the budget, at most CAP
    local t=$((START + BUDGET - SECONDS))
    [ "$t" -gt "$1" ] && t=$1
    echo "$t"
}
PORT_LO=7070 PORT_HI=7089
DEAD_EP=tcp://127.0.0.1:$PORT_HI   # in the range the test keeps free, never used by a block

for x in llmos llmosd; do
    [ -x "$BIN/$x" ] || { echo "FAIL: $BIN/$x is not built" >&2; exit 1; }
done
for d in "$LLMOS_MODELS" "$LLMOS_DATA"; do
    [ -d "$d" ] || { echo "FAIL: $d does not exist (set LLMOS_MODELS / LLMOS_DATA)" >&2; exit 1; }
done

T=$(mktemp -d /tmp/llmos-readme-XXXXXX)
HARNESS_PIDS=()
CUR_PG='' CUR_DIR=''
cleanup() {
    local p
    for p in "${HARNESS_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
    done
    if [ -n "$CUR_PG" ]; then # interrupted inside a block: stop what it started
        kill -KILL -- "-$CUR_PG" 2>/dev/null
        for p in $(procs_in "$CUR_DIR"); do kill -KILL "$p" 2>/dev/null; done
    fi
    if [ "$KEEP" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One run at a time on this machine: the blocks use fixed ports.  (Every
# process started below gets 9>&-, so that none holds the lock past the run.)
LOCK=/tmp/llmos-readme.lock
exec 9>"$LOCK"
if ! flock -n 9; then
    echo "waiting for another README test to end (holding $LOCK: $(fuser "$LOCK" 2>/dev/null))"
    flock -w 300 9 || { echo "FAIL: another test_readme.sh held $LOCK for 5 minutes" >&2; exit 1; }
fi

FAILS=0
RAN=0
NOTRUN=0
declare -a FAILED_AT=()
fail_block() { # WHERE MESSAGE...: one failure, reported now, counted for the end
    local where=$1
    shift
    FAILS=$((FAILS + 1))
    FAILED_AT+=("$where")
    printf 'FAIL %s: %s\n' "$where" "$*"
}
show() { # FILE N: the last N lines of FILE, indented
    [ -s "$1" ] && tail -n "$2" "$1" | sed 's/^/    | /'
}

# ---------------------------------------------------------------- extraction
INDEX=$T/index.tsv
: >"$INDEX"
mkdir -p "$T/blocks"
n=0
for f in "${FILES[@]}"; do
    [ -f "$SRC/$f" ] || { fail_block "$f" "no such file"; continue; }
    awk -v out="$T/blocks" -v start="$n" -v name="$f" -f "$HERE/extract.awk" "$SRC/$f" >>"$INDEX"
    n=$(awk -F'\t' '$1 == "block" { c++ } END { print c + 0 }' "$INDEX")
done
while IFS=$'\t' read -r _ file line msg; do
    fail_block "$file:$line" "$msg"
done < <(awk -F'\t' '$1 == "error" { print $1 "\t" $2 "\t" $3 "\t" $4 }' "$INDEX")

selected() { # FILE LINE: is this block among --only (or is there no --only)?
    [ ${#ONLY[@]} -eq 0 ] && return 0
    local o
    for o in "${ONLY[@]}"; do [ "$o" = "$1:$2" ] && return 0; done
    return 1
}

# --------------------------------------------------------------- sh blocks
ports_busy() { # the listening sockets on the reserved ports, if any
    ss -Htlnp "( sport >= :$PORT_LO and sport <= :$PORT_HI )" 2>/dev/null
}
wait_ports_free() { # WHERE: up to 15 s for ports 7070-7089 to be free
    local _
    for _ in $(seq 150); do
        [ -z "$(ports_busy)" ] && return 0
        sleep 0.1
    done
    fail_block "$1" "ports $PORT_LO-$PORT_HI are not free (the README's blocks use them):"$'\n'"$(ports_busy)"
    return 1
}
group_alive() { kill -0 -- "-$1" 2>/dev/null; }
procs_in() { # DIR: the processes working in DIR or below (MPI ranks leave the block's process group)
    find /proc -mindepth 2 -maxdepth 2 -name cwd \( -lname "$1" -o -lname "$1/*" \) 2>/dev/null | cut -d/ -f3
}
leftovers() { # PGID DIR: is anything of the block still running?
    group_alive "$1" || [ -n "$(procs_in "$2")" ]
}

# The environment a reader has: no endpoint preset, no Open MPI settings the
# test suite adds (root, oversubscription): the block must carry its flags.
BLOCK_ENV=(env -u LLMOS_ENDPOINT -u OMPI_ALLOW_RUN_AS_ROOT -u OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
           -u OMPI_MCA_rmaps_base_oversubscribe "PATH=$BIN:$PATH")

run_sh() { # N FILE LINE
    local i=$1 file=$2 line=$3 d=$T/run/$1 where="$2:$3"
    mkdir -p "$d/work"
    wait_ports_free "$where" || return
    # Prelude (2 lines) + the block, as written.  The ERR trap names the
    # Markdown line of the command that failed.
    {
        echo 'set -euo pipefail'
        echo "trap 'echo \"$file:\$((LINENO + $((line - 2)))): \$BASH_COMMAND (exit \$?)\" >>\"$d/failed\"' ERR"
        cat "$T/blocks/$i.body"
    } >"$d/block.sh"
    local t0 t1 rc pg tmo hung=''
    tmo=$(time_left "$BLOCK_TIMEOUT")
    if [ "$(time_left 10)" -lt 10 ]; then
        fail_block "$where" "sh block not run: the test's ${BUDGET} s are spent (LLMOS_README_BUDGET)"
        return
    fi
    t0=$(date +%s.%N)
    # timeout makes itself a process-group leader: the block and everything
    # it starts in the background share that group.  It is the backstop; the
    # loop below stops the block at its deadline after noting what ran then.
    (cd "$d/work" && exec "${BLOCK_ENV[@]}" timeout -k 10 $((tmo + 30)) bash "$d/block.sh") \
        </dev/null >"$d/out" 2>&1 9>&- &
    pg=$!
    CUR_PG=$pg CUR_DIR=$d/work
    local deadline=$((SECONDS + tmo))
    while kill -0 "$pg" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            hung=$({ ps -o pid=,etime=,args= -g "$pg"; for p in $(procs_in "$d/work"); do ps -o pid=,etime=,args= -p "$p"; done; } 2>/dev/null |
                grep -v -e " timeout -k " -e " bash $d/block.sh\$" | sort -u | sed 's/^/    /')
            kill -TERM -- "-$pg" 2>/dev/null
            sleep 5
            kill -KILL -- "-$pg" 2>/dev/null
            break
        fi
        sleep 0.2
    done
    wait "$pg"
    rc=$?
    t1=$(date +%s.%N)
    local secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    local _ left=0 procs='' p
    [ -n "$hung" ] && rc=124
    for _ in $(seq 150); do
        leftovers "$pg" "$d/work" || break
        sleep 0.1
    done
    if leftovers "$pg" "$d/work"; then
        left=1
        procs=$({ ps -o pid=,args= -g "$pg"; for p in $(procs_in "$d/work"); do ps -o pid=,args= -p "$p"; done; } 2>/dev/null |
            sort -u | sed 's/^/    /')
        kill -TERM -- "-$pg" 2>/dev/null
        for p in $(procs_in "$d/work"); do kill -TERM "$p" 2>/dev/null; done
        sleep 2
        kill -KILL -- "-$pg" 2>/dev/null
        for p in $(procs_in "$d/work"); do kill -KILL "$p" 2>/dev/null; done
    fi
    CUR_PG='' CUR_DIR=''
    RAN=$((RAN + 1))
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        fail_block "$where" "sh block ran over ${tmo} s and was stopped; running then:"$'\n'"${hung:-    (nothing noted)}"$'\n'"    its last output:"
        show "$d/out" 30
    elif [ "$rc" -ne 0 ]; then
        local at="(no command reported)"
        [ -s "$d/failed" ] && at=$(head -1 "$d/failed")
        fail_block "$where" "sh block failed after $secs s at $at; its last output:"
        show "$d/out" 40
    elif [ "$left" = 1 ]; then
        fail_block "$where" "sh block ended (exit 0, $secs s) but left processes running 15 s later (stop them: trap 'kill \$(jobs -p)' EXIT):"$'\n'"$procs"
    else
        printf 'ok   %s  sh  %s s\n' "$where" "$secs"
    fi
}

# ---------------------------------------------------------------- c blocks
C_READY=0
C_BROKEN=
FULL_EP=
PC=()
CFLAGS=(-std=c11 -Wall -Wextra -Werror -g)
[ "$SAN" = ON ] && CFLAGS+=("-fsanitize=address,undefined")

node_start() { # OUTVAR DIR ARGS...: an llmosd on a free port; its endpoint in OUTVAR
    local var=$1 dir=$2 _ ep=
    shift 2
    mkdir -p "$dir"
    "$BIN/llmosd" --listen tcp://127.0.0.1:0 --data-dir "$dir/data" "$@" </dev/null >"$dir/out" 2>"$dir/log" 9>&- &
    local pid=$!
    HARNESS_PIDS+=("$pid")
    echo "$pid" >"$dir/pid"
    for _ in $(seq 600); do
        ep=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$dir/out" 2>/dev/null | head -1)
        [ -n "$ep" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if [ -z "$ep" ]; then
        echo "llmosd $* did not start:" >&2
        tail -20 "$dir/log" >&2
        return 1
    fi
    printf -v "$var" '%s' "$ep"
}
node_stop() { # DIR
    local pid
    pid=$(cat "$1/pid")
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

c_setup() { # once, before the first C block: the installed client, the full node
    C_READY=1
    local c=$T/c
    mkdir -p "$c"
    if ! cmake -DCMAKE_INSTALL_PREFIX="$c/prefix" -P "$BUILD/client/cmake_install.cmake" >"$c/install.log" 2>&1; then
        C_BROKEN="installing the client library failed: $(tail -5 "$c/install.log")"
        return
    fi
    local pcfile
    pcfile=$(find "$c/prefix" -name llmos-client.pc | head -1)
    if [ -z "$pcfile" ]; then
        C_BROKEN="the client install has no llmos-client.pc"
        return
    fi
    PC=(pkg-config --define-variable=prefix="$c/prefix" --with-path="$(dirname "$pcfile")")
    PC_LIBDIR=$(dirname "$(dirname "$pcfile")")
    if ! "$BIN/llmos" graph load "$c/umls.db" "$LLMOS_DATA/kg/umls/train.txt" >"$c/graph.log" 2>&1; then
        C_BROKEN="loading UMLS for the C examples' node failed: $(tail -5 "$c/graph.log")"
        return
    fi
    if ! node_start FULL_EP "$c/full" --model "$LLMOS_MODELS/stories260K.bin" \
        --tokenizer "$LLMOS_MODELS/tok512.bin" --graph "$c/umls.db" 2>"$c/full.err"; then
        C_BROKEN="the C examples' node did not start: $(cat "$c/full.err")"
        return
    fi
}

DEAD_JOBS=() # "N<TAB>WHERE<TAB>PID" of the runs against the dead endpoint, collected at the end

run_c() { # N FILE LINE
    local i=$1 file=$2 line=$3 d=$T/run/$1 where="$2:$3"
    mkdir -p "$d"
    RAN=$((RAN + 1))
    if ! grep -Eq '(^|[^A-Za-z0-9_])main[[:space:]]*\(' "$T/blocks/$i.body"; then
        fail_block "$where" "c block is not a complete program (no main): make it one, or fence it \`\`\`c excerpt after <!-- not run: REASON -->"
        return
    fi
    [ "$C_READY" = 1 ] || c_setup
    if [ -n "$C_BROKEN" ]; then
        fail_block "$where" "c block not tried: $C_BROKEN"
        return
    fi
    local tmo
    tmo=$(time_left 120)
    if [ "$(time_left 10)" -lt 10 ]; then
        fail_block "$where" "c block not run: the test's ${BUDGET} s are spent (LLMOS_README_BUDGET)"
        return
    fi
    { printf '#line %d "%s"\n' "$((line + 1))" "$file"; cat "$T/blocks/$i.body"; } >"$d/prog.c"
    # shellcheck disable=SC2046 # pkg-config's flags are words
    if ! cc "${CFLAGS[@]}" "$d/prog.c" $("${PC[@]}" --cflags --libs llmos-client) -Wl,-rpath,"$PC_LIBDIR" \
        -o "$d/prog" >"$d/cc.log" 2>&1; then
        fail_block "$where" "c block does not compile:"
        show "$d/cc.log" 30
        return
    fi
    local t0 t1 rc ok=1
    # the dead endpoint: started now, in the background (it waits out timeouts)
    (timeout -k 5 "$tmo" "$d/prog" "$DEAD_EP" >"$d/dead.out" 2>"$d/dead.err"; echo $? >"$d/dead.rc") </dev/null 9>&- &
    HARNESS_PIDS+=("$!")
    DEAD_JOBS+=("$i"$'\t'"$where"$'\t'"$!")
    # the full node: exit 0
    t0=$(date +%s.%N)
    timeout -k 5 "$tmo" "$d/prog" "$FULL_EP" </dev/null >"$d/full.out" 2>"$d/full.err" 9>&-
    rc=$?
    t1=$(date +%s.%N)
    if [ "$rc" -ne 0 ]; then
        ok=0
        fail_block "$where" "c program exited $rc against a node serving the model and the graph; its output:"
        show "$d/full.out" 15
        show "$d/full.err" 15
    fi
    # a node with nothing but the built-in actors: loud when a job did not end done
    local bare_ep=
    if node_start bare_ep "$d/bare" 2>"$d/bare-start.err"; then
        timeout -k 5 "$tmo" "$d/prog" "$bare_ep" </dev/null >"$d/bare.out" 2>"$d/bare.err" 9>&-
        rc=$?
        local bad=0 listed=1
        "$BIN/llmos" --endpoint "$bare_ep" jobs --all --json >"$d/jobs.json" 2>"$d/jobs.err" || listed=0
        bad=$(grep -Ec '^\{"id":"([^"\\]|\\.)*","state":"(failed|cancelled|expired|quarantined)"' "$d/jobs.json")
        node_stop "$d/bare"
        if [ "$listed" = 0 ]; then
            ok=0
            fail_block "$where" "llmos jobs --all --json failed on the node without model and graph: $(cat "$d/jobs.err")"
        elif [ "$bad" -gt 0 ] && [ "$rc" -eq 0 ]; then
            ok=0
            fail_block "$where" "c program exited 0 although $bad of its jobs did not end done (a node without model and graph); its output:"
            show "$d/bare.out" 10
            show "$d/bare.err" 10
        elif [ "$rc" -ne 0 ] && [ ! -s "$d/bare.err" ]; then
            ok=0
            fail_block "$where" "c program exited $rc without a word on stderr (a node without model and graph); its stdout:"
            show "$d/bare.out" 10
        fi
    else
        ok=0
        fail_block "$where" "the node without model and graph did not start: $(cat "$d/bare-start.err")"
    fi
    [ "$ok" = 1 ] && printf 'ok   %s  c   %s s (the dead endpoint checked at the end)\n' "$where" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
}

collect_dead() {
    local e i where pid rc d
    for e in "${DEAD_JOBS[@]}"; do
        IFS=$'\t' read -r i where pid <<<"$e"
        wait "$pid" 2>/dev/null
        d=$T/run/$i
        rc=$(cat "$d/dead.rc" 2>/dev/null || echo "?")
        if [ "$rc" = 0 ]; then
            fail_block "$where" "c program exited 0 against $DEAD_EP, where nobody listens; its output:"
            show "$d/dead.out" 10
        elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
            fail_block "$where" "c program was still running after its time (at most 120 s) against $DEAD_EP, where nobody listens"
        elif [ ! -s "$d/dead.err" ]; then
            fail_block "$where" "c program exited $rc against $DEAD_EP without a word on stderr"
        else
            printf 'ok   %s  c   against %s: exit %s, "%s"\n' "$where" "$DEAD_EP" "$rc" "$(head -c 120 "$d/dead.err" | head -1)"
        fi
    done
}

# ------------------------------------------------------------------- run all
mapfile -t BLOCKS < <(awk -F'\t' '$1 == "block"' "$INDEX")
for b in "${BLOCKS[@]}"; do
    IFS=$'\t' read -r _ i file line lang info notrun <<<"$b"
    selected "$file" "$line" || continue
    where="$file:$line"
    if [ "$notrun" != "-" ]; then
        case "$lang:$info" in
        console:* | c:c\ excerpt*)
            NOTRUN=$((NOTRUN + 1))
            printf 'not run  %s  %s  (%s)\n' "$where" "$info" "$notrun"
            ;;
        *) fail_block "$where" "a not-run comment before a \`\`\`$info block: only \`\`\`console and \`\`\`c excerpt blocks may be marked not run" ;;
        esac
        continue
    fi
    case "$lang:$info" in
    sh:sh) run_sh "$i" "$file" "$line" ;;
    c:c) run_c "$i" "$file" "$line" ;;
    text:* | json:* | sparql:* | ini:*)
        NOTRUN=$((NOTRUN + 1))
        printf 'not run  %s  %s\n' "$where" "$info"
        ;;
    console:* | c:c\ excerpt*)
        fail_block "$where" "a \`\`\`$info block needs <!-- not run: REASON --> on the line before its fence" ;;
    -:*) fail_block "$where" "a fence without a language: \`\`\`sh and \`\`\`c run; \`\`\`text, json, sparql, ini do not" ;;
    *) fail_block "$where" "fence language '$info' is not one the test knows: \`\`\`sh and \`\`\`c run; \`\`\`text, json, sparql, ini do not; \`\`\`console and \`\`\`c excerpt need <!-- not run: REASON -->" ;;
    esac
done </dev/null
[ ${#DEAD_JOBS[@]} -gt 0 ] && collect_dead
[ -s "$T/c/full/pid" ] && node_stop "$T/c/full"

echo "readme: $RAN blocks run, $NOTRUN not run, $FAILS failed, in $((SECONDS - START)) s"
if [ "$FAILS" -gt 0 ]; then
    printf 'FAILED: %s\n' "${FAILED_AT[@]}"
    exit 1
fi
echo PASS
