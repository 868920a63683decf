#!/usr/bin/env bash
# test_tmp_sh.sh — tests/lib/tmp.sh, the shell tests' temporary folder: a
# script that fails, exits with a status or succeeds leaves no folder and
# keeps its status; the clean-up function runs first; KEEP keeps the folder;
# a link inside is removed, not followed; $TMPDIR is used; a bad name is
# refused.
set -euo pipefail
LIB=$(cd "$(dirname "$0")/../lib" && pwd)
# the test's own folder does not use the helper under test: a broken helper
# must not be able to hide this script's failure
OUTER=$(mktemp -d "${TMPDIR:-/tmp}/llmos-test-tmp-sh-XXXXXX")
trap 'rm -rf -- "$OUTER"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# run SCRIPT: a child bash that sources tmp.sh; prints T, status in RC
run() {
    RC=0
    TMPDIR=$OUTER bash -c "set -euo pipefail; . '$LIB/tmp.sh'; $1" >"$OUTER/out" 2>"$OUTER/err" || RC=$?
    CHILD_T=$(head -1 "$OUTER/out")
}

mkdir "$OUTER/outside"
echo keep >"$OUTER/outside/file"

# success: removed, status 0, the clean-up ran before the removal
run 'on_exit() { [ -d "$T" ] && touch "'"$OUTER"'/cleanup-ran"; }
     llmos_tmp child on_exit; echo "$T"; mkdir -p "$T/a/b"; echo x >"$T/a/b/caf$(printf "\xc3\xa9")";
     ln -s "'"$OUTER"'/outside" "$T/a/link"'
[ "$RC" = 0 ] || fail "success: status $RC: $(cat "$OUTER/err")"
case $CHILD_T in "$OUTER"/child-*) ;; *) fail "TMPDIR not used: '$CHILD_T'" ;; esac
[ ! -e "$CHILD_T" ] || fail "success: $CHILD_T left behind"
[ -f "$OUTER/cleanup-ran" ] || fail "the clean-up function did not run (or ran after the removal)"
[ "$(cat "$OUTER/outside/file")" = keep ] || fail "the link was followed"

# an exit status and a set -e failure are kept, the folder still goes
run 'llmos_tmp child; echo "$T"; exit 7'
[ "$RC" = 7 ] || fail "exit 7 became $RC"
[ ! -e "$CHILD_T" ] || fail "exit 7: $CHILD_T left behind"
run 'llmos_tmp child; echo "$T"; false; echo unreachable'
[ "$RC" = 1 ] || fail "set -e failure became $RC"
[ ! -e "$CHILD_T" ] || fail "set -e: $CHILD_T left behind"
grep -q unreachable "$OUTER/out" && fail "set -e did not stop the script"

# a failing clean-up function does not keep the folder nor change the status
run 'bad() { return 5; }; llmos_tmp child bad; echo "$T"; exit 3'
[ "$RC" = 3 ] && [ ! -e "$CHILD_T" ] || fail "failing clean-up: status $RC, folder $(ls -d "$CHILD_T" 2>&1)"

# KEEP keeps it and says where
KEEP=1 run 'llmos_tmp child; echo "$T"'
[ "$RC" = 0 ] && [ -d "$CHILD_T" ] || fail "KEEP: status $RC, folder missing"
grep -q "kept $CHILD_T" "$OUTER/err" || fail "KEEP: no 'kept' line: $(cat "$OUTER/err")"

# llmos_tmp_remove in a script's own trap, twice is harmless
run 'llmos_tmp child; echo "$T"; trap "llmos_tmp_remove; llmos_tmp_remove" EXIT; exit 4'
[ "$RC" = 4 ] && [ ! -e "$CHILD_T" ] || fail "own trap: status $RC"

# bad names are refused before anything is made
for bad in '' 'a/b' 'a b' '..;rm' "caf$(printf '\xc3\xa9')"; do
    run "llmos_tmp '$bad'; echo made"
    [ "$RC" = 2 ] || fail "name '$bad': status $RC"
    grep -q "bad folder name" "$OUTER/err" || fail "name '$bad': $(cat "$OUTER/err")"
done
# a TMPDIR that does not exist
RC=0
TMPDIR=/nonexistent-llmos-tmp bash -c ". '$LIB/tmp.sh'; llmos_tmp child" 2>"$OUTER/err" || RC=$?
[ "$RC" = 2 ] && grep -q "cannot make a folder in /nonexistent-llmos-tmp" "$OUTER/err" || fail "missing TMPDIR: $RC"
echo "tmp.sh: ok"
