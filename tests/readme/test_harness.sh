#!/usr/bin/env bash
# test_harness.sh --source DIR --build DIR [--sanitize ON|OFF] — the README
# test's harness can fail: test_readme.sh runs on the small Markdown files in
# fixtures/ and must pass the right one and fail each wrong one, naming the
# file, the line and the reason:
#   pass.md          sh blocks (a fresh empty directory; a node started and
#                    stopped), text/json, console and c excerpt after their
#                    not-run comment, a correct C program: exit 0
#   fail_command.md  a failing command: its Markdown line and text, the
#                    output before it
#   leftover.md      a background process left running
#   hang.md          a block over its time (3 s here): what ran then
#   fences.md        no language, an unknown one, console without a not-run
#                    comment, a not-run comment before sh, C without main, an
#                    indented code block (but not a list's continuation), a
#                    fence indented into a list, a fence never closed
#   c_silent.md      a C program that exits 0 though its job expired (on a
#                    node without model and graph) and though nobody answered
set -euo pipefail
ARGS=("$@")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/llmos-readme-harness-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

run() { # NAME EXPECTED-EXIT: test_readme.sh on fixtures/NAME, output in $T/NAME.log
    local rc=0
    bash "$HERE/test_readme.sh" "${ARGS[@]}" --source "$HERE/fixtures" "$1" >"$T/$1.log" 2>&1 || rc=$?
    [ "$rc" -eq "$2" ] || { cat "$T/$1.log" >&2; fail "$1: test_readme.sh exited $rc, expected $2"; }
}
has() { # NAME TEXT: the log of NAME has this line fragment
    grep -qF -- "$2" "$T/$1.log" || { cat "$T/$1.log" >&2; fail "$1: the output lacks: $2"; }
}
hasnt() {
    grep -qF -- "$2" "$T/$1.log" && { cat "$T/$1.log" >&2; fail "$1: the output has: $2"; }
    return 0
}

run pass.md 0
has pass.md "ok   pass.md:3  sh"
has pass.md "ok   pass.md:9  sh"
has pass.md "not run  pass.md:18  text"
has pass.md "not run  pass.md:22  json"
has pass.md "not run  pass.md:27  console  (it would take hours)"
has pass.md "not run  pass.md:32  c excerpt  (an excerpt)"
has pass.md "ok   pass.md:36  c "
has pass.md "ok   pass.md:36  c   against tcp://127.0.0.1:7089: exit 1"
has pass.md "readme: 3 blocks run, 4 not run, 0 failed"

run fail_command.md 1
has fail_command.md "FAIL fail_command.md:3: sh block failed after"
has fail_command.md "at fail_command.md:6: ls no-such-file (exit 2)"
has fail_command.md "| second"
hasnt fail_command.md "never"

run leftover.md 1
has leftover.md "FAIL leftover.md:3: sh block ended (exit 0"
has leftover.md "left processes running"
has leftover.md "sleep 300"

LLMOS_README_BLOCK_TIMEOUT=3 run hang.md 1
has hang.md "FAIL hang.md:3: sh block ran over 3 s and was stopped; running then:"
has hang.md "sleep 1000"
has hang.md "| waiting"

run fences.md 1
has fences.md "FAIL fences.md:3: a fence without a language"
has fences.md "FAIL fences.md:7: fence language 'bash' is not one the test knows"
has fences.md "FAIL fences.md:11: a \`\`\`console block needs <!-- not run: REASON -->"
has fences.md "FAIL fences.md:16: a not-run comment before a \`\`\`sh block"
has fences.md "FAIL fences.md:20: c block is not a complete program"
has fences.md "FAIL fences.md:27: an indented code block"
hasnt fences.md "fences.md:31"
has fences.md "FAIL fences.md:35: a fence indented by four spaces or more"
hasnt fences.md "fences.md:37"
has fences.md "FAIL fences.md:39: a fence that is never closed"
hasnt fences.md "sh block failed"

run c_silent.md 1
has c_silent.md "FAIL c_silent.md:3: c program exited 0 although 1 of its jobs did not end done"
has c_silent.md "FAIL c_silent.md:3: c program exited 0 against tcp://127.0.0.1:7089, where nobody listens"
echo PASS
