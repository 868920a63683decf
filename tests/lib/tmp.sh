# tmp.sh — sourced by the shell tests: one temporary folder per test
# script, removed at exit (the shell side of runtime/base/tmpdir.h).
#
# llmos_tmp NAME [CLEANUP]
#   makes a fresh folder ${TMPDIR:-/tmp}/NAME-XXXXXX, sets T to its path and
#   installs an EXIT trap that runs the function CLEANUP first when one is
#   named (to stop the test's processes before their files go), then
#   removes T — unless KEEP is set, then it prints "kept T" instead.  The
#   script's exit status is kept.  NAME: letters, digits, '.', '_', '-'.
#   A script that needs its own EXIT trap calls llmos_tmp_remove in it.
#
# llmos_tmp_remove
#   the clean-up the trap does (CLEANUP, then T removed or kept); safe to
#   call twice.
llmos_tmp() {
    local name=${1:-}
    case $name in
    '' | *[!A-Za-z0-9._-]*)
        echo "llmos_tmp: bad folder name '$name' (letters, digits, '.', '_', '-')" >&2
        exit 2
        ;;
    esac
    _LLMOS_TMP_CLEANUP=${2:-}
    T=$(mktemp -d "${TMPDIR:-/tmp}/$name-XXXXXX") || {
        echo "llmos_tmp: cannot make a folder in ${TMPDIR:-/tmp}" >&2
        exit 2
    }
    trap '_llmos_tmp_exit' EXIT
}

llmos_tmp_remove() {
    if [ -n "${_LLMOS_TMP_CLEANUP:-}" ]; then
        local fn=$_LLMOS_TMP_CLEANUP
        _LLMOS_TMP_CLEANUP=
        "$fn" || true
    fi
    [ -n "${T:-}" ] || return 0
    if [ -n "${KEEP:-}" ]; then
        echo "kept $T" >&2
    else
        rm -rf -- "$T" || true
    fi
    T=
}

_llmos_tmp_exit() {
    local rc=$?
    set +e
    llmos_tmp_remove
    exit "$rc"
}
