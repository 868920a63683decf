#!/usr/bin/env bash
# test_install.sh BUILD SOURCE SANITIZE — what `make install` gives an
# application programmer works on its own: the client part of the install
# (header, shared and static libllmos-client, pkg-config file) goes to a
# temporary prefix; examples/submit.c is compiled against it through
# pkg-config, once with the shared library and once with the static one,
# and both programs run a job on a real llmosd serving stories260K.  (The
# static archive holds llmos's own code; ZeroMQ, protobuf-c and cJSON stay
# shared system libraries: Debian's libzmq has no usable static link line.)
set -euo pipefail
BUILD=${1:?usage: test_install.sh BUILD SOURCE SANITIZE}
SRC=${2:?}
SAN=${3:-OFF}
BIN=${LLMOS_BIN:?LLMOS_BIN not set}
. "$(dirname "$0")/../lib/node.sh"
MODELS=${LLMOS_MODELS:?LLMOS_MODELS not set}
T=$(mktemp -d /tmp/llmos-install-XXXXXX)
NODE_PID=
cleanup() {
    if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then kill -9 "$NODE_PID"; fi
    rm -rf "$T"
}
trap cleanup EXIT
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
cc "${CFLAGS[@]}" "$SRC/examples/submit.c" $("${PC[@]}" --cflags llmos-client) "$libdir/libllmos-client.a" \
    $(pkg-config --libs libzmq libprotobuf-c libcjson) -lpthread -lm -o "$T/submit_static" ||
    fail "compile against the static library"
ldd "$T/submit_static" | grep -q llmos-client && fail "the static program still needs the shared library"

llmos_node_start "$T/node.out" "$T/node.log" --data-dir "$T/data" --model "$MODELS/stories260K.bin" \
    --tokenizer "$MODELS/tok512.bin" || fail "llmosd did not start"
for kind in shared static; do
    "$T/submit_$kind" --endpoint "$E" --no-graph --id "install-$kind" --tokens 20 "Once upon a time" >"$T/$kind.out" ||
        fail "submit_$kind: $(cat "$T/$kind.out")"
    grep -q '^state: done' "$T/$kind.out" && grep -q '^story (20 tokens' "$T/$kind.out" || fail "submit_$kind output: $(cat "$T/$kind.out")"
done
kill -TERM "$NODE_PID"
wait "$NODE_PID" || fail "llmosd exited with $?"
NODE_PID=
echo PASS
