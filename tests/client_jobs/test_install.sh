#!/usr/bin/env bash
# test_install.sh BUILD SOURCE SANITIZE — what `make install` gives an
# application programmer works on its own: the client part of the install
# (header, shared and static libllmos-client, pkg-config files) goes to a
# temporary prefix; examples/submit.c is compiled against it with nothing
# but pkg-config's flags, once with the shared library (llmos-client) and
# once with the static one (llmos-client-static), and both programs run a
# job on a real llmosd serving stories260K.  The static archive is complete:
# every object of it links (--whole-archive) with only the system libraries
# the .pc names, and build/client/libllmos-client.a is that same archive.
# (It holds llmos's own code; ZeroMQ, protobuf-c and cJSON stay shared
# system libraries: Debian's libzmq has no usable static link line.)
# submit.c against a dead endpoint exits non-zero with the reason.
set -euo pipefail
BUILD=${1:?usage: test_install.sh BUILD SOURCE SANITIZE}
SRC=${2:?}
SAN=${3:-OFF}
BIN=${LLMOS_BIN:?LLMOS_BIN not set}
. "$(dirname "$0")/../lib/node.sh"
MODELS=${LLMOS_MODELS:?LLMOS_MODELS not set}
. "$(dirname "$0")/../lib/tmp.sh"
llmos_tmp llmos-install cleanup
NODE_PID=
cleanup() {
    if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then kill -9 "$NODE_PID"; fi
}
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake -DCMAKE_INSTALL_PREFIX="$T/p" -P "$BUILD/client/cmake_install.cmake" >"$T/install.log" || fail "install: $(cat "$T/install.log")"
[ -f "$T/p/include/llmos/client.h" ] || fail "no header installed"
pc=$(find "$T/p" -name llmos-client.pc | head -1)
[ -n "$pc" ] || fail "no pkg-config file installed"
libdir=$(dirname "$(dirname "$pc")")
[ -f "$libdir/libllmos-client.a" ] || fail "no static library in $libdir"
ls "$libdir"/libllmos-client.so* >/dev/null || fail "no shared library in $libdir"
PC=(pkg-config --define-variable=prefix="$T/p" --with-path="$(dirname "$pc")")
"${PC[@]}" --exists llmos-client || fail "pkg-config does not find llmos-client"
# the public header stands alone: C11 and C++ compilers, no llmos internals
grep -q '#include "' "$T/p/include/llmos/client.h" && fail "the installed header includes project headers"
CFLAGS=(-std=c11 -Wall -Wextra -Werror)
[ "$SAN" = ON ] && CFLAGS+=(-fsanitize=address,undefined)
cc "${CFLAGS[@]}" "$SRC/examples/submit.c" $("${PC[@]}" --cflags --libs llmos-client) -Wl,-rpath,"$libdir" \
    -o "$T/submit_shared" || fail "compile against the shared library"
"${PC[@]}" --exists llmos-client-static || fail "pkg-config does not find llmos-client-static"
cc "${CFLAGS[@]}" "$SRC/examples/submit.c" $("${PC[@]}" --cflags --libs llmos-client-static) -o "$T/submit_static" ||
    fail "compile against the static library with pkg-config's flags only: $("${PC[@]}" --libs llmos-client-static)"
ldd "$T/submit_static" | grep -q llmos-client && fail "the static program still needs the shared library"
# complete: every member of the archive links with only what the .pc names
echo 'int main(void) { return 0; }' >"$T/empty.c"
static_libs=$("${PC[@]}" --libs llmos-client-static)
cc "${CFLAGS[@]}" "$T/empty.c" -Wl,--whole-archive "$libdir/libllmos-client.a" -Wl,--no-whole-archive $static_libs \
    -o "$T/whole" 2>"$T/whole.err" || fail "the static archive is not self-contained: $(head -5 "$T/whole.err")"
cmp -s "$BUILD/client/libllmos-client.a" "$libdir/libllmos-client.a" ||
    fail "build/client/libllmos-client.a is not the complete archive that is installed"

llmos_node_start "$T/node.out" "$T/node.log" --data-dir "$T/data" --model "$MODELS/stories260K.bin" \
    --tokenizer "$MODELS/tok512.bin" || fail "llmosd did not start"
for kind in shared static; do
    "$T/submit_$kind" --endpoint "$E" --no-graph --id "install-$kind" --tokens 20 "Once upon a time" >"$T/$kind.out" ||
        fail "submit_$kind: $(cat "$T/$kind.out")"
    grep -q '^state: done' "$T/$kind.out" && grep -q '^story (20 tokens' "$T/$kind.out" || fail "submit_$kind output: $(cat "$T/$kind.out")"
done
# a job that fails (a prompt longer than the model's 512 positions): exit 1 and the reason;
# one the node refuses (no graph for the "facts" task): exit 1 and the node's reason
long=$(printf 'Once upon a time there was a cat. %.0s' $(seq 120))
if "$T/submit_static" --endpoint "$E" --no-graph --id install-fail --tokens 5 "$long" >"$T/fail.out" 2>"$T/fail.err"; then
    fail "a failed job exited 0: $(cat "$T/fail.out" "$T/fail.err")"
fi
grep -q "^example_submit: job install-fail failed: .*story.*ETOOBIG.*seq_len" "$T/fail.err" ||
    fail "failed job: $(cat "$T/fail.err")"
if "$T/submit_static" --endpoint "$E" --id install-refused "x" >"$T/ref.out" 2>"$T/ref.err"; then
    fail "a refused job exited 0"
fi
grep -q "^example_submit: .*graph.* (ENOTFOUND)" "$T/ref.err" || fail "refused job: $(cat "$T/ref.err")"
kill -TERM "$NODE_PID"
wait "$NODE_PID" || fail "llmosd exited with $?"
NODE_PID=
# a dead endpoint (the node is gone): exit 1 and the reason, within the timeout given
start=$(date +%s%N)
if "$T/submit_static" --endpoint "$E" --no-graph --timeout 1500 --id install-dead "x" >"$T/dead.out" 2>"$T/dead.err"; then
    fail "submit against a dead endpoint exited 0"
fi
ms=$((($(date +%s%N) - start) / 1000000))
grep -q "no answer from $E within 1500 ms" "$T/dead.err" || fail "dead endpoint: $(cat "$T/dead.err")"
[ "$ms" -ge 1500 ] && [ "$ms" -lt 2500 ] || fail "a 1500 ms timeout took $ms ms"
echo PASS
