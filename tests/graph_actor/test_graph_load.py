#!/usr/bin/python3
"""test_graph_load.py — loads over the wire into a running node, end to end.

A real `llmosd --graph DB` on a free port; the real `llmos` CLI sends files
(`llmos --endpoint E graph load FILE...`, in small chunks so one load is many
messages).  Checks:
  - UMLS sent in 64 KiB chunks: the node's store then holds exactly what a
    local `llmos-graph load` of the same file holds (dumps compared), and
    remote queries see the triples; a load of several files at once, and a
    file named by its path on the node (--remote-path), load too;
  - a malformed N-Triples file: without --strict the bad line is reported
    as FILE:LINE:COL and skipped, the good lines load; with --strict the
    load is refused with FILE:LINE and the store is unchanged (dump equal);
  - a large load (synthetic TSV) runs on the writer while queries keep being
    answered quickly, during the load itself, from the snapshot before it;
    two loads sent at once both commit (they run one after the other);
  - the node killed (-9) in the middle of a load: the store is exactly as
    before, consistent, and served again by a new node.
Nodes are started and stopped by the node fixture (tests/lib/llmos_node.py).
"""
import calendar
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import llmos_node

BIN = os.environ["LLMOS_BIN"]
DATA = os.environ["LLMOS_DATA"]
LLMOS = os.path.join(BIN, "llmos")
GRAPH = os.path.join(BIN, "llmos-graph")


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def step(msg):
    print("---", msg, flush=True)


def run(args, ok=True, timeout=120):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if ok and p.returncode != 0:
        fail("%s: exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def start_node(args, log, listen=None):
    """llmosd with args (the node fixture, tests/lib/llmos_node.py), stderr to log."""
    try:
        return llmos_node.start(args, listen=listen, err=log)
    except llmos_node.NodeError as e:
        fail("llmosd did not start: %s" % e)


def dump(db):
    return sorted(run([GRAPH, "dump", db]).stdout.splitlines())


def triples(ep):
    out = run([LLMOS, "--timeout", "30000", "--endpoint", ep, "graph", "stats"]).stdout
    return int(re.search(r"^triples\t(\d+)$", out, re.M).group(1))


def main():
    tmp = tempfile.mkdtemp(prefix="llmos-graph-load-")
    node = None
    try:
        db = os.path.join(tmp, "db")
        seed = os.path.join(tmp, "seed.nt")
        with open(seed, "w") as f:
            f.write("<http://x/seed> <http://x/p> <http://x/o> .\n")
        run([GRAPH, "load", db, seed, "--quiet"])
        log = open(os.path.join(tmp, "node.log"), "w")
        node = start_node(["--graph", db], log)
        ep = node.endpoint

        step("UMLS over the wire in 64 KiB chunks equals a local load")
        umls = os.path.join(DATA, "kg/umls/train.txt")
        p = run([LLMOS, "--timeout", "30000", "--endpoint", ep, "graph", "load", umls, "--chunk", "65536"])
        size = os.path.getsize(umls)
        if "(%d bytes sent)" % size not in p.stdout:
            fail("load report: " + p.stdout)
        ref = os.path.join(tmp, "ref")
        run([GRAPH, "load", ref, seed, umls, "--quiet"])
        if dump(db) != dump(ref):
            fail("the node's store differs from a local load of the same files")
        lines = sum(1 for _ in open(umls))
        if triples(ep) != lines + 1:
            fail("stats: %d triples, want %d" % (triples(ep), lines + 1))
        q = "PREFIX k: <http://llmos.local/kg/> SELECT ?x WHERE { ?x k:isa k:event }"
        remote = run([LLMOS, "--timeout", "30000", "--endpoint", ep, "graph", "query", q]).stdout
        local = run([GRAPH, "query", ref, q]).stdout
        if remote != local or remote.count("\n") < 5:
            fail("query after the load: %r vs %r" % (remote[:200], local[:200]))
        # The linker sees entities loaded after it was built.
        run([LLMOS, "--timeout", "30000", "--endpoint", ep, "graph", "link", "seed"])
        two = os.path.join(tmp, "two.nt")
        with open(two, "w") as f:
            f.write("<http://x/new_thing> <http://x/p> <http://x/seed> .\n")
        tsv = os.path.join(tmp, "three.tsv")
        with open(tsv, "w") as f:
            f.write("alpha\trel\tbeta\n")
        run([LLMOS, "--timeout", "30000", "--endpoint", ep, "graph", "load", two, tsv])
        out = run([LLMOS, "--timeout", "30000", "--endpoint", ep, "graph", "link", "a new thing and alpha"]).stdout
        if "<http://x/new_thing>" not in out or "<http://llmos.local/kg/alpha>" not in out:
            fail("link does not see newly loaded entities:\n" + out)
        # An outside llmos-graph load into the served directory (LMDB: one
        # writer at a time, across processes) is seen by the next link too.
        outside = os.path.join(tmp, "outside.tsv")
        with open(outside, "w") as f:
            f.write("zeta_thing\trel\talpha\n")
        run([GRAPH, "load", db, outside, "--quiet"])
        out = run([LLMOS, "--timeout", "30000", "--endpoint", ep, "graph", "link", "the zeta thing"]).stdout
        if "<http://llmos.local/kg/zeta_thing>" not in out:
            fail("link does not see an outside load:\n" + out)
        # A file on the node's side.
        side = os.path.join(tmp, "side.tsv")
        with open(side, "w") as f:
            f.write("gamma\trel\tdelta\n")
        run([LLMOS, "--timeout", "30000", "--endpoint", ep, "graph", "load", "--remote-path", side])
        if triples(ep) != lines + 5:
            fail("after the multi-file and path loads: %d triples" % triples(ep))

        step("the default chunk passes a node with a small frame cap (max_frame = 1M)")
        bigger = os.path.join(tmp, "bigger.tsv")  # 2.3 MB: several default chunks
        with open(bigger, "w") as f:
            for i in range(100000):
                f.write("b%d\tr%d\tb%d\n" % (i, i % 5, i + 1))
        db2 = os.path.join(tmp, "db2")
        run([GRAPH, "load", db2, seed, "--quiet"])
        node2 = start_node(["--graph", db2, "--max-frame", "1M"], log)
        ep2 = node2.endpoint
        try:
            p = run([LLMOS, "--timeout", "30000", "--endpoint", ep2, "graph", "load", umls, bigger])
            if "(%d bytes sent)" % (size + os.path.getsize(bigger)) not in p.stdout:
                fail("load through a small frame cap: " + p.stdout + p.stderr)
            ref2 = os.path.join(tmp, "ref2")
            run([GRAPH, "load", ref2, seed, umls, bigger, "--quiet"])
            if dump(db2) != dump(ref2):
                fail("the load through a small frame cap differs from a local load")
        finally:
            st = llmos_node.stop(node2, timeout_ms=30000)
            if st != 0:
                fail("the second llmosd exited with %d" % st)

        step("malformed lines: reported with their line, skipped; --strict refuses and changes nothing")
        bad = os.path.join(tmp, "bad.nt")
        with open(bad, "w") as f:
            f.write("<http://x/g1> <http://x/p> <http://x/o> .\n"
                    "<http://x/g2> <http://x/p> <http://x/o> .\n"
                    "<http://x/g3> <http://x/p> no_iri .\n"
                    "<http://x/g4> <http://x/p> \"ok\" .\n")
        before = dump(db)
        p = run([LLMOS, "--timeout", "30000", "--endpoint", ep, "graph", "load", bad, "--strict", "--chunk", "50"], ok=False)
        if p.returncode != 1 or "bad.nt:3:" not in p.stderr or "EFORMAT" not in p.stderr:
            fail("strict load of a malformed file: exit %d, %r" % (p.returncode, p.stderr))
        if dump(db) != before:
            fail("a refused strict load changed the store")
        p = run([LLMOS, "--timeout", "30000", "--endpoint", ep, "graph", "load", bad])
        if not re.search(r"bad\.nt:3:\d+: .*\(line skipped\)", p.stderr) or "1 malformed lines skipped" not in p.stdout:
            fail("non-strict load: %r %r" % (p.stdout, p.stderr))
        after = set(dump(db)) - set(before)
        if len(after) != 3 or any("g3" in t for t in after):
            fail("non-strict load stored %r" % sorted(after))
        p = run([LLMOS, "--timeout", "30000", "--endpoint", ep, "graph", "load", os.path.join(tmp, "missing.nt")], ok=False)
        if p.returncode != 1 or "missing.nt" not in p.stderr:
            fail("a missing file: %r" % p.stderr)
        p = run([LLMOS, "--timeout", "30000", "--endpoint", ep, "graph", "load", "--remote-path", os.path.join(tmp, "nope.nt")], ok=False)
        if p.returncode != 1 or "nope.nt" not in p.stderr:
            fail("a missing node-side file: %r" % p.stderr)

        step("queries are answered during a large load")
        big = os.path.join(tmp, "big.tsv")
        n_big = 300000
        with open(big, "w") as f:
            for i in range(n_big):
                f.write("e%d\tr%d\te%d\n" % (i, i % 37, (i * 7919) % 200003))
        n0 = triples(ep)
        loader = subprocess.Popen([LLMOS, "--timeout", "30000", "--endpoint", ep, "graph", "load", big], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        answers = []  # (wall time answered, latency, triples seen)
        while loader.poll() is None:
            t0 = time.monotonic()
            seen = triples(ep)
            t1 = time.monotonic()
            answers.append((time.time(), t1 - t0, seen))
            time.sleep(0.02)
        out, err = loader.communicate()
        if loader.returncode != 0:
            fail("large load: %s %s" % (out, err))
        # The load itself, as the node's log dates it (wall clock, ms): from
        # "started" to "committed" (logged right after the commit).
        log.flush()
        size = os.path.getsize(big)
        stamps = {}
        for line in open(os.path.join(tmp, "node.log")):
            m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z .*graph: load '\w+' (started|\(1 files)", line)
            if m and ("(1 files, %d bytes sent)" % size) in line:
                t = calendar.timegm(time.strptime(m.group(1)[:19], "%Y-%m-%dT%H:%M:%S")) + float(m.group(1)[19:])
                stamps["started" if m.group(2) == "started" else "done"] = t
        if "started" not in stamps or "done" not in stamps:
            fail("the node did not log the large load's start and end")
        start, end = stamps["started"], stamps["done"]
        during = [a for a in answers if start < a[0] < end - 0.002]
        print("load: %.2f s on the node; %d queries answered during it, slowest %.3f s" %
              (end - start, len(during), max([a[1] for a in during] or [0])))
        if end - start < 0.3:
            fail("the load took %.2f s: too short to show anything" % (end - start))
        if len(during) < 3:
            fail("only %d queries were answered during a %.2f s load" % (len(during), end - start))
        if any(a[2] != n0 for a in during):
            fail("a query during the load saw a half-loaded store: %r" % sorted({a[2] for a in during}))
        if max(a[1] for a in during) > max(2.0, (end - start) / 2):
            fail("queries waited for the load: slowest answer %.2f s" % max(a[1] for a in during))
        if triples(ep) != n0 + n_big:
            fail("after the large load: %d triples, want %d" % (triples(ep), n0 + n_big))

        step("two loads at once both commit, one after the other")
        files = []
        for k in range(2):
            path = os.path.join(tmp, "par%d.tsv" % k)
            with open(path, "w") as f:
                for i in range(20000):
                    f.write("p%d_%d\tq\tp%d_%d\n" % (k, i, k, i + 1))
            files.append(path)
        n1 = triples(ep)
        ps = [subprocess.Popen([LLMOS, "--timeout", "30000", "--endpoint", ep, "graph", "load", f, "--chunk", "100000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for f in files]
        for p in ps:
            out, err = p.communicate(timeout=120)
            if p.returncode != 0:
                fail("concurrent load: %s %s" % (out, err))
        if triples(ep) != n1 + 40000:
            fail("after two concurrent loads: %d triples, want %d" % (triples(ep), n1 + 40000))
        run([GRAPH, "check", db])
        if run([LLMOS, "--timeout", "30000", "--endpoint", ep, "ping"], ok=False).returncode != 0:
            fail("the node stopped answering")
        st = llmos_node.stop(node, timeout_ms=30000)
        node = None
        if st != 0:
            fail("llmosd exit status %d" % st)

        step("kill -9 of the node during a load: the store is as before, and served again")
        before = dump(db)
        node = start_node(["--graph", db], log, listen=ep)  # back on the same port
        log_at = os.path.getsize(os.path.join(tmp, "node.log"))
        # Short timeouts: the commit's answer never comes.
        loader = subprocess.Popen([LLMOS, "--timeout", "4000", "--endpoint", ep, "graph", "load", big,
                                   "--load-timeout", "4000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            log.flush()
            with open(os.path.join(tmp, "node.log")) as f:
                f.seek(log_at)
                if "started (1 files, %d bytes sent)" % size in f.read():
                    break
            time.sleep(0.01)
        else:
            fail("the load never started")
        time.sleep(0.2)
        llmos_node.kill(node)
        node = None
        loader.communicate(timeout=60)
        if loader.returncode == 0:
            fail("the load reported success although the node was killed")
        run([GRAPH, "check", db])
        if dump(db) != before:
            fail("a load killed before its commit changed the store")
        node = start_node(["--graph", db], log, listen=ep)  # back on the same port
        if triples(ep) != len(before):
            fail("the restarted node serves %d triples, want %d" % (triples(ep), len(before)))
        st = llmos_node.stop(node, timeout_ms=30000)
        node = None
        if st != 0:
            fail("llmosd exit status %d" % st)
        print("PASS")
    finally:
        if node is not None:
            llmos_node.kill(node)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
