# extract.awk — the fenced blocks of one Markdown file, for test_readme.sh.
#
#   awk -v out=DIR -v start=N -v name=FILE -f extract.awk FILE.md
#
# Writes each block's text to DIR/<n>.body (n counts on from `start`) and
# prints one line per block on stdout:
#     block <TAB> n <TAB> FILE <TAB> LINE <TAB> LANG <TAB> INFO <TAB> NOTRUN
# (LINE: the line of the opening fence; LANG: the info string's first word,
# "-" when there is none; INFO: the whole info string, "-" when empty;
# NOTRUN: the reason of a `<!-- not run: REASON -->` comment on the last
# non-blank line before the fence, "-" when there is none), and one line per
# problem the test must report:
#     error <TAB> FILE <TAB> LINE <TAB> MESSAGE
# Problems: an unterminated fence, an indented code block (four spaces or a
# tab after a blank line, outside a list), a fence indented by four spaces or
# more (inside a list): every block must be fenced with a language in the
# first columns, so that none escapes the test unseen.
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
BEGIN { n = start; infence = 0; anyindent = 0; header = ""; prevblank = 1; inlist = 0; lastline = "" }
{
    line = $0
    sub(/\r$/, "", line)
    if (infence) {
        if (match(line, /^(   |  | )?(`+|~+)[ \t]*$/) || (anyindent && match(line, /^[ \t]*(`+|~+)[ \t]*$/))) {
            f = trim(line)
            if (substr(f, 1, 1) == fchar && length(f) >= flen) {
                infence = 0
                anyindent = 0
                close(body)
                if (header != "") print header
                header = ""
                prevblank = 0
                lastline = line
                next
            }
        }
        print line > body
        next
    }
    if (match(line, /^(   |  | )?(```|~~~)/)) {
        f = trim(line)
        fchar = substr(f, 1, 1)
        flen = 0
        while (substr(f, flen + 1, 1) == fchar) flen++
        info = trim(substr(f, flen + 1))
        lang = info
        sub(/[ \t].*/, "", lang)
        notrun = "-"
        if (match(lastline, /^<!-- *not run: *.*-->[ \t]*$/)) {
            notrun = lastline
            sub(/^<!-- *not run: */, "", notrun)
            sub(/ *-->[ \t]*$/, "", notrun)
            if (notrun == "") notrun = "(no reason given)"
        }
        infence = 1
        fline = NR
        body = out "/" n ".body"
        printf "" > body
        # printed when the fence closes: a block never closed is an error, not run
        header = sprintf("block\t%d\t%s\t%d\t%s\t%s\t%s", n, name, NR, (lang == "" ? "-" : lang), \
            (info == "" ? "-" : info), notrun)
        n++
        next
    }
    if (line ~ /^(    |\t)[ \t]*(```|~~~)/) {
        printf "error\t%s\t%d\ta fence indented by four spaces or more (in a list?): the test does not read it; start it in column 1\n", name, NR
        infence = 1
        anyindent = 1
        header = ""
        fchar = substr(trim(line), 1, 1)
        flen = 3
        fline = NR
        body = "/dev/null"
        next
    }
    if (line ~ /^[ \t]*$/) { prevblank = 1; next }
    if (line ~ /^(   |  | )?([-*+]|[0-9]+[.)])[ \t]/) inlist = 1
    else if (line !~ /^[ \t]/) inlist = 0
    if (prevblank && !inlist && line ~ /^(    |\t)/)
        printf "error\t%s\t%d\tan indented code block: fence it with a language (sh runs; text, json ... do not)\n", name, NR
    prevblank = 0
    lastline = line
}
END {
    if (infence) printf "error\t%s\t%d\ta fence that is never closed\n", name, fline
}
