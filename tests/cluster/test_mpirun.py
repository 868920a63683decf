#!/usr/bin/python3
"""test_mpirun.py — `mpirun -np 3 llmosd` is a 3-node cluster.

Under mpirun each rank initialises MPI, the ranks exchange their endpoints
(MPI_Allgather) and peer with each other.  Checks: every node answers
`llmos status` and sees the two others; SIGTERM to mpirun stops all of them
cleanly (each rank exits 0, so mpirun does).
"""
import json
import os
import signal
import subprocess
import sys
import time

BIN = os.environ.get("LLMOS_BIN") or os.path.dirname(os.path.abspath(sys.argv[0]))


def main():
    # Under the sanitizer build, Open MPI's plugins leak at exit and are
    # unloaded before LeakSanitizer reports, so tests/lsan.supp cannot name
    # them: leak checking is off for these MPI processes only (address and UB
    # checks stay on; every other cluster test runs llmosd with leak checks).
    asan = os.environ.get("ASAN_OPTIONS", "").replace("detect_leaks=1", "")
    os.environ["ASAN_OPTIONS"] = (asan + ":detect_leaks=0").strip(":")
    mpirun = subprocess.Popen(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "3",
                               os.path.join(BIN, "llmosd"), "--listen", "tcp://127.0.0.1:0", "--workers", "1",
                               "--log-level", "warn"], stdout=subprocess.PIPE, text=True)
    eps = []
    deadline = time.time() + 60
    while len(eps) < 3 and time.time() < deadline:
        line = mpirun.stdout.readline()
        if not line:
            break
        if "listening on" in line:
            eps.append(line.split()[-1])
    ok = len(eps) == 3
    print("endpoints:", eps, flush=True)
    names = set()
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
    # SIGTERM each rank (mpirun's children): each must exit 0, and so mpirun.
    with open("/proc/%d/task/%d/children" % (mpirun.pid, mpirun.pid)) as f:
        ranks = [int(p) for p in f.read().split()]
    print("ranks:", ranks, flush=True)
    for pid in ranks:
        os.kill(pid, signal.SIGTERM)
    try:
        code = mpirun.wait(timeout=60)
    except subprocess.TimeoutExpired:
        mpirun.kill()
        code = "hung"
    print("mpirun exit:", code, flush=True)
    if not ok or code != 0:
        print("FAIL")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
