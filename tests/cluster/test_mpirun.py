#!/usr/bin/python3
"""test_mpirun.py — `mpirun -np 3 llmosd` is a 3-node cluster.

Under mpirun each rank initialises MPI, the ranks exchange their endpoints
(MPI_Allgather) and peer with each other.  Checks: every node answers
`llmos status` and sees the two others; SIGTERM to each rank stops all of
them cleanly (each rank exits 0, so mpirun does).  The cluster is started and
stopped by the node fixture (tests/lib/llmos_node.py: stop() sends SIGTERM to
mpirun's children, the ranks).
"""
import json
import os
import subprocess
import sys
import time

import llmos_node

BIN = os.environ.get("LLMOS_BIN") or os.path.dirname(os.path.abspath(sys.argv[0]))


def main():
    # Under the sanitizer build, Open MPI's plugins leak at exit and are
    # unloaded before LeakSanitizer reports, so tests/lsan.supp cannot name
    # them: leak checking is off for these MPI processes only (address and UB
    # checks stay on; every other cluster test runs llmosd with leak checks).
    asan = os.environ.get("ASAN_OPTIONS", "").replace("detect_leaks=1", "")
    os.environ["ASAN_OPTIONS"] = (asan + ":detect_leaks=0").strip(":")
    try:
        node = llmos_node.start(["--workers", "1", "--log-level", "warn"], np=3, timeout_ms=60000)
    except llmos_node.NodeError as e:
        print("FAIL: the cluster did not start:", e)
        sys.exit(1)
    eps = node.endpoints
    ok = len(eps) == 3
    print("endpoints:", eps, flush=True)
    names = set()
    deadline = time.time() + 60
    for ep in eps if ok else []:
        peers = -1
        while time.time() < deadline:
            r = subprocess.run([os.path.join(BIN, "llmos"), "--endpoint", ep, "status", "--json"],
                               capture_output=True, text=True, timeout=30)
            if r.returncode == 0:
                st = json.loads(r.stdout)
                peers = st["peers"]
                names.add(st["node_name"])
                if peers == 2:
                    break
            time.sleep(0.1)
        print(ep, "sees", peers, "peers", flush=True)
        ok = ok and peers == 2
    ok = ok and names == {"rank0", "rank1", "rank2"}
    print("names:", sorted(names), flush=True)
    code = llmos_node.stop(node, timeout_ms=60000)
    print("mpirun exit:", code, flush=True)
    if not ok or code != 0:
        print("FAIL")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
