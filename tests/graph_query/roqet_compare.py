#!/usr/bin/python3
"""roqet_compare.py — llmos-graph query answers like an independent engine.

Loads UMLS (kg/umls/train.txt, as TSV) plus a few triples with literals into
an llmos graph with `llmos-graph load`, writes the same data as N-Triples
(here, from the TSV, without llmos), and runs a set of SPARQL queries through
both `llmos-graph query` and Debian's `roqet` (rasqal).  Result sets must be
equal as multisets of rows (no ORDER BY, so order is free).  Queries with
LIMIT/OFFSET are checked by size and by inclusion in the full answer, and the
pages of one query must partition it.  ASK answers must agree.  Then the
CLI's answers to bad queries (exit 1, "line L, column C" on stderr, never a
crash) and `llmos-graph link` on a UMLS sentence.

Exit status 0 when everything agrees; otherwise every difference is printed.
"""
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

BIN = os.environ.get("LLMOS_BIN", "build/bin")
DATA = os.environ.get("LLMOS_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))
TOOL = os.path.join(BIN, "llmos-graph")
BASE = "http://llmos.local/kg/"
XSD = "http://www.w3.org/2001/XMLSchema#"
P = "PREFIX u: <%s> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> " % BASE

# Literals of each kind (tags lower case: the store normalises them).
EXTRAS = """\
<{b}cell> <http://www.w3.org/2000/01/rdf-schema#label> "cell"@en .
<{b}cell> <http://www.w3.org/2000/01/rdf-schema#label> "Zelle"@de .
<{b}tissue> <http://www.w3.org/2000/01/rdf-schema#label> "tissue" .
<{b}cell> <{b}count> "5"^^<{x}integer> .
<{b}tissue> <{b}count> "05"^^<{x}integer> .
<{b}virus> <{b}count> "7"^^<{x}integer> .
<{b}virus> <{b}weight> "2.5"^^<{x}decimal> .
<{b}alga> <{b}note> "plain text" .
<{b}bird> <{b}note> "plain text"@en .
<{b}alga> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{b}Organism> .
<{b}bird> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{b}Organism> .
<{b}fish> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{b}Organism> .
""".format(b=BASE, x=XSD)

# Equal result multisets expected.  1 to 4 patterns, constants in every
# position, shared variables, FILTER, DISTINCT, ASK.
QUERIES = [
    # one pattern, each shape
    "SELECT ?x WHERE { ?x u:isa u:entity }",
    "SELECT * WHERE { u:alga ?p ?o }",
    "SELECT ?s ?p WHERE { ?s ?p u:cell }",
    "SELECT ?p WHERE { u:virus ?p u:bird }",
    "SELECT ?s ?o WHERE { ?s u:interacts_with ?o }",
    "SELECT * WHERE { ?s ?p ?o }",
    "SELECT ?o WHERE { u:virus u:causes ?o }",
    "SELECT ?x WHERE { ?x ?p ?x }",
    "SELECT ?x WHERE { u:nonexistent ?p ?x }",
    "SELECT ?x WHERE { ?x u:isa u:nonexistent }",
    # two patterns
    "SELECT ?a ?b WHERE { ?a u:isa ?b . ?b u:isa u:entity }",
    "SELECT ?x ?y ?z WHERE { ?x u:affects ?y . ?y u:process_of ?z }",
    "SELECT ?s ?o WHERE { ?s ?p ?o . ?o ?p ?s }",
    "SELECT ?a ?b WHERE { ?a ?p u:cell . ?b ?p u:tissue }",
    "SELECT * WHERE { u:alga ?p ?o . u:bird ?q ?r }",
    "SELECT ?x ?y WHERE { ?x u:isa u:entity ; u:affects ?y }",
    "SELECT ?x WHERE { ?x u:causes u:disease_or_syndrome , u:neoplastic_process }",
    "SELECT ?p ?x WHERE { u:cell ?p ?x . ?x u:isa u:entity }",
    # three and four patterns
    "SELECT ?a ?b ?c WHERE { ?a u:isa ?b . ?b u:isa ?c . ?a u:affects ?c }",
    "SELECT * WHERE { ?a u:isa ?b . ?b u:isa ?c . ?c u:isa ?d . ?x u:affects ?a }",
    "SELECT ?x WHERE { ?x u:affects ?a . ?x u:isa ?b . ?x u:result_of ?c . ?x u:process_of ?d }",
    "SELECT ?a ?c WHERE { ?a u:location_of ?b . ?b u:affects ?c . ?c u:isa u:biologic_function }",
    "SELECT ?p ?q WHERE { u:virus ?p ?x . ?x ?q u:cell . u:cell u:location_of ?y . ?y u:isa ?x }",
    # FILTER
    "SELECT ?a ?b WHERE { ?a u:isa ?b FILTER(?b != u:entity) }",
    "SELECT ?s ?p WHERE { ?s ?p ?o FILTER(?o = u:cell || ?o = u:tissue) }",
    "SELECT ?s ?o WHERE { ?s ?p ?o FILTER(!(?p = u:isa) && ?o = u:cell) }",
    "SELECT ?a ?b WHERE { ?a u:interacts_with ?b FILTER(?a = ?b) }",
    "SELECT ?a ?b WHERE { ?a u:interacts_with ?b . ?b u:interacts_with ?a FILTER(?a != ?b) }",
    "SELECT ?x WHERE { ?x u:isa u:entity FILTER(?nowhere = u:cell) }",
    "SELECT ?x WHERE { ?x u:isa u:entity FILTER(?nowhere = u:cell || ?x = u:event) }",
    "SELECT ?s ?p WHERE { ?s ?p ?o FILTER(?o = u:cell && ?p != u:isa) }",
    "SELECT * WHERE { ?a u:isa ?b . ?b u:isa ?c FILTER(?b = u:organism) }",
    "SELECT ?s WHERE { ?s ?p ?o FILTER(u:cell = ?o && ?o = u:tissue) }",
    "SELECT ?s WHERE { ?s ?p ?o FILTER(?o = u:nonexistent) }",
    "SELECT ?s ?p WHERE { ?s ?p ?o FILTER(?p = u:isa) FILTER(?o = u:entity) }",
    "SELECT ?x ?c WHERE { ?x u:count ?c FILTER(?c = 5) }",
    "SELECT ?x ?y WHERE { ?x u:count ?c . ?y u:count ?d FILTER(?c = ?d && ?x != ?y) }",
    "SELECT ?x WHERE { ?x u:weight ?w FILTER(?w = 2.50) }",
    "SELECT ?x WHERE { ?x u:note ?n FILTER(?n = \"plain text\") }",
    "SELECT ?x WHERE { ?x u:note ?n FILTER(?n = \"plain text\"@en) }",
    "SELECT ?x ?l WHERE { ?x rdfs:label ?l FILTER(?l != \"Zelle\"@de) }",
    "SELECT ?x WHERE { ?x u:count ?c FILTER(?c != \"5\") }",
    "SELECT ?x WHERE { ?x u:count ?c FILTER(?c = \"5\" || ?c = 7) }",
    "SELECT ?x WHERE { ?x u:count ?c FILTER(?c != true) }",
    "SELECT ?x WHERE { ?x u:count ?c FILTER(?c != \"5\"^^<http://example.org/dt>) }",
    "SELECT ?x WHERE { ?x u:note ?n FILTER(?n != \"x\"^^<http://example.org/dt>) }",
    "SELECT ?x WHERE { ?x u:count ?c FILTER(?c != u:cell) }",
    # literals and rdf:type as constants
    "SELECT ?x WHERE { ?x a u:Organism }",
    "SELECT ?x ?y WHERE { ?x a u:Organism . ?x u:interacts_with ?y }",
    "SELECT ?x WHERE { ?x rdfs:label \"cell\"@en }",
    "SELECT ?x WHERE { ?x u:count 5 }",
    "SELECT ?x WHERE { ?x u:note \"plain text\" }",
    # DISTINCT and unbound projections
    "SELECT DISTINCT ?p WHERE { ?s ?p ?o }",
    "SELECT DISTINCT ?s WHERE { ?s u:affects ?o }",
    "SELECT DISTINCT ?b WHERE { ?a u:isa ?b . ?b u:isa ?c }",
    "SELECT ?x ?unbound WHERE { ?x u:isa u:entity }",
    "SELECT * WHERE { }",
    # ASK
    "ASK { u:alga u:isa u:entity }",
    "ASK { u:alga u:isa u:cell }",
    "ASK WHERE { ?a u:isa ?b . ?b u:isa ?a }",
    "ASK { ?x u:interacts_with ?x FILTER(?x != u:bird) }",
]

# (query without modifiers, [(limit, offset)...]) checked by size/inclusion.
PAGED = [
    ("SELECT ?x ?y WHERE { ?x u:affects ?y }", [(10, None), (10, 795), (None, 800), (0, None), (5, 2000)]),
    ("SELECT DISTINCT ?o WHERE { ?s u:isa ?o }", [(7, 3), (100, 0)]),
    ("SELECT ?a ?c WHERE { ?a u:isa ?b . ?b u:isa ?c }", [(25, 25)]),
]

# Bad queries: (query, what stderr must say); exit status 1, no crash.
BAD = [
    ("SELECT ?x WHERE { ?x ?y }", "line 1, column 25: expected an object"),
    ("PREFIX u: <http://llmos.local/kg/>\nSELECT ?x\nWHERE {\n ?x u:isa ?y .\n ?y u:isa\n}",
     "line 6, column 1: expected an object"),
    ("SELECT ?x WHERE { ?x <http://a b> ?y }", "an IRI may not contain spaces"),
    ("SELECT ?x WHERE { ?x zz:p ?y }", "undefined prefix 'zz:'"),
    ("SELECT ?x WHERE { ?x ?p ?y } ORDER BY ?x", "ORDER is not supported"),
    ("SELECT ?x WHERE { ?x ?p \"unterminated }", "unterminated string"),
    ("SELECT ?x WHERE { ?x ?p ?y", "found end of query"),
    ("\x01\x02garbage", "expected PREFIX, BASE, SELECT or ASK"),
]

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg, file=sys.stderr)


def norm_field(f):
    """A TSV field as N-Triples: roqet writes numbers and booleans bare."""
    if f == "":
        return None
    if re.fullmatch(r"[+-]?\d+", f):
        return '"%s"^^<%sinteger>' % (f, XSD)
    if re.fullmatch(r"[+-]?\d*\.\d+", f):
        return '"%s"^^<%sdecimal>' % (f, XSD)
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+", f):
        return '"%s"^^<%sdouble>' % (f, XSD)
    if f in ("true", "false"):
        return '"%s"^^<%sboolean>' % (f, XSD)
    return f


def parse_tsv(text):
    """Rows as a multiset of (var, term) tuples sorted by var."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return [], collections.Counter()
    head = [h[1:] for h in lines[0].split("\t")] if lines[0] else []
    rows = collections.Counter()
    for line in lines[1:]:
        fields = line.split("\t") if head else []
        if len(fields) != len(head):
            raise ValueError("row %r has %d fields, header %d" % (line, len(fields), len(head)))
        rows[tuple(sorted((h, norm_field(f)) for h, f in zip(head, fields) if f != ""))] += 1
    return head, rows


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def llmos(db, q, fmt="tsv"):
    r = run([TOOL, "query", db, q, "--format", fmt])
    if r.returncode != 0:
        raise RuntimeError("llmos-graph query failed (%d): %s\n%s" % (r.returncode, q, r.stderr))
    return r.stdout


def roqet(nt, q, fmt="tsv"):
    r = run(["roqet", "-q", "-i", "sparql", "-D", nt, "-r", fmt, "-e", q])
    if r.returncode not in (0, 2):  # 2: warnings (an unused variable, say)
        raise RuntimeError("roqet failed (%d): %s\n%s" % (r.returncode, q, r.stderr))
    return r.stdout


def with_mods(q, limit, offset):
    return q + ("" if limit is None else " LIMIT %d" % limit) + ("" if offset is None else " OFFSET %d" % offset)


def main():
    if not os.access(TOOL, os.X_OK):
        print("no %s" % TOOL, file=sys.stderr)
        return 1
    if not shutil.which("roqet"):
        print("roqet not installed (apt-get install rasqal-utils)", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="llmos-roqet-")
    try:
        tsv = os.path.join(DATA, "kg/umls/train.txt")
        nt = os.path.join(tmp, "umls.nt")
        extras = os.path.join(tmp, "extras.nt")
        with open(extras, "w") as f:
            f.write(EXTRAS)
        triples = set()
        with open(tsv) as f, open(nt, "w") as out:
            for n, line in enumerate(f, 1):
                parts = line.rstrip("\n").split("\t")
                assert len(parts) == 3, "%s:%d: not 3 fields" % (tsv, n)
                for p in parts:  # UMLS names are unreserved IRI characters: no percent-encoding
                    assert re.fullmatch(r"[A-Za-z0-9_.~-]+", p), "%s:%d: name %r" % (tsv, n, p)
                triples.add(tuple(parts))
                out.write("<%s%s> <%s%s> <%s%s> .\n" % (BASE, parts[0], BASE, parts[1], BASE, parts[2]))
            out.write(EXTRAS)
        db = os.path.join(tmp, "db")
        r = run([TOOL, "load", db, tsv, extras])
        if r.returncode != 0:
            print("load failed: %s" % r.stderr, file=sys.stderr)
            return 1
        nextra = EXTRAS.count("\n")
        count = parse_tsv(llmos(db, "SELECT * WHERE { ?s ?p ?o }"))[1]
        if sum(count.values()) != len(triples) + nextra:
            fail("store has %d triples, data %d" % (sum(count.values()), len(triples) + nextra))

        checked = 0
        for q in QUERIES:
            q = P + q
            if " ASK " in " " + q[len(P):] + " " or q[len(P):].startswith("ASK"):
                mine = llmos(db, q, "json").strip()
                theirs = roqet(nt, q, "xml")
                want = "true" if "<boolean>true</boolean>" in theirs else "false"
                if mine != '{"head":{},"boolean":%s}' % want:
                    fail("%s\n  llmos: %s\n  roqet: %s" % (q, mine, want))
                checked += 1
                continue
            mh, mrows = parse_tsv(llmos(db, q))
            th, trows = parse_tsv(roqet(nt, q))
            if trows and sorted(mh) != sorted(th):
                fail("%s\n  header llmos %s, roqet %s" % (q, mh, th))
            if mrows != trows:
                extra = list((mrows - trows).items())[:5]
                missing = list((trows - mrows).items())[:5]
                fail("%s\n  llmos %d rows, roqet %d rows\n  only llmos: %s\n  only roqet: %s"
                     % (q, sum(mrows.values()), sum(trows.values()), extra, missing))
            checked += 1

        for base_q, mods in PAGED:
            q = P + base_q
            full = parse_tsv(roqet(nt, q))[1]
            total = sum(full.values())
            for limit, offset in mods:
                mq = with_mods(q, limit, offset)
                mine = parse_tsv(llmos(db, mq))[1]
                theirs = parse_tsv(roqet(nt, mq))[1]
                want = max(0, total - (offset or 0))
                if limit is not None:
                    want = min(want, limit)
                n_mine, n_theirs = sum(mine.values()), sum(theirs.values())
                if n_mine != want or n_theirs != want:
                    fail("%s: llmos %d rows, roqet %d, expected %d" % (mq, n_mine, n_theirs, want))
                if mine - full:
                    fail("%s: rows not in the full answer: %s" % (mq, list((mine - full).items())[:3]))
                checked += 1
            # pages of 100 partition the answer
            pages = collections.Counter()
            for off in range(0, total + 100, 100):
                pages += parse_tsv(llmos(db, with_mods(q, 100, off)))[1]
            if pages != full:
                fail("%s: pages of 100 do not add up to the answer (%d vs %d rows)"
                     % (q, sum(pages.values()), total))
            checked += 1

        for q, want in BAD:
            q = q.encode().decode("unicode_escape")
            r = run([TOOL, "query", db, q])
            if r.returncode != 1 or want not in r.stderr or r.stdout:
                fail("bad query %r: exit %d, stderr %r" % (q, r.returncode, r.stderr))
        r = run([TOOL, "query", db, "--file", os.path.join(tmp, "missing.rq")])
        if r.returncode != 1 or "missing.rq" not in r.stderr:
            fail("missing query file: exit %d, stderr %r" % (r.returncode, r.stderr))
        r = run([TOOL, "query", os.path.join(tmp, "nodb"), "ASK {}"])
        if r.returncode != 1:
            fail("missing store: exit %d, stderr %r" % (r.returncode, r.stderr))
        qf = os.path.join(tmp, "q.rq")
        with open(qf, "w") as f:
            f.write(P + "\nSELECT ?x WHERE {\n  ?x u:isa u:entity\n}\n")
        mine = parse_tsv(run([TOOL, "query", db, "--file", qf]).stdout)[1]
        if mine != parse_tsv(roqet(nt, P + "SELECT ?x WHERE { ?x u:isa u:entity }"))[1]:
            fail("--file query differs from roqet")
        with open(qf) as f:
            piped = parse_tsv(run([TOOL, "query", db, "--file", "-"], stdin=f).stdout)[1]
        if piped != mine:
            fail("--file - (stdin) differs from --file")

        r = run([TOOL, "link", db, "Does a Virus cause a disease or syndrome?", "--max-facts", "4"])
        lines = r.stdout.splitlines()
        if (r.returncode != 0 or "mention\t21\t40\tdisease or syndrome\t<%sdisease_or_syndrome>" % BASE
                not in lines or "virus causes disease or syndrome." not in lines
                or sum(1 for l in lines if l.startswith("fact\t")) != 4):
            fail("link: exit %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
        r = run([TOOL, "link", db, "x", "--hops", "3"])
        if r.returncode != 2:
            fail("link --hops 3: exit %d" % r.returncode)

        print("%d checks against roqet, %d failures" % (checked, len(failures)))
        return 1 if failures else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
