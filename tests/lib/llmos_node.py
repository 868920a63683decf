"""llmos_node.py — the node fixture for Python tests.

Starts a real llmosd through the fixture's command ($LLMOS_BIN/llmos-test-node,
tests/lib/node_fixture.h), the same way C and shell tests start theirs: the
Popen is llmosd itself (or mpirun), on a port the system picks, waited for
until it serves (every rank printed its "listening on" line, which llmosd
prints once every actor is started); stop() sends SIGTERM (to each rank under mpirun) and SIGKILL
to its process group after a grace time, and returns the exit status.

    node = llmos_node.start(["--workers", "2"], err=logfile)
    ... node.endpoint ...
    assert llmos_node.stop(node) == 0      # a clean shutdown

Every test runs with PYTHONPATH holding tests/lib and <build>/python, where
the protobuf classes of protos/llmos/*.proto are generated
(`from llmos import envelope_pb2`).
"""
import os
import subprocess
import tempfile

BIN = os.environ.get("LLMOS_BIN") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "bin")
FIXTURE = os.path.join(BIN, "llmos-test-node")


class NodeError(Exception):
    """The node did not start or serve; str() says why (its status, stderr's tail)."""


class Node:
    """A running node: proc (the Popen of llmosd or mpirun), endpoint (the
    rank used), endpoints (every rank's, in the order printed), out (the
    stdout file)."""

    def __init__(self, proc, endpoint, endpoints, np, out, own_out):
        self.proc = proc
        self.pid = proc.pid
        self.endpoint = endpoint
        self.endpoints = endpoints
        self.np = np
        self.out = out
        self._own_out = own_out


def start(args=(), np=1, recovery=False, listen=None, actor=None, probe_type=None, timeout_ms=30000, out=None,
          err=None, env=None):
    """Starts llmosd with args (after --listen tcp://127.0.0.1:0, or listen).
    np > 1: under mpirun -np np (recovery: --enable-recovery).  actor: use the
    rank that answers as that actor (probe_type: a message type it answers
    with status 0; default any answer but ENOTFOUND).  out: the stdout file
    (default a temporary one); err: a path (appended) or a file object for
    stderr (default inherited).  Raises NodeError (the process is killed)."""
    own_out = out is None
    if own_out:
        fd, out = tempfile.mkstemp(prefix="llmos-node-", suffix=".out")
        os.close(fd)
    cmd = [FIXTURE, "exec"]
    wait = [FIXTURE, "wait", "--out", out, "--timeout", str(timeout_ms)]
    if np > 1:
        cmd += ["--np", str(np)]
        wait += ["--np", str(np)]
    if recovery:
        cmd.append("--recovery")
    if listen:
        cmd += ["--listen", listen]
    if actor:
        wait += ["--actor", actor]
    if probe_type is not None:
        wait += ["--probe-type", str(probe_type)]
    errf = open(err, "a") if isinstance(err, str) else err
    if isinstance(err, str):
        wait += ["--err", err]
    elif err is not None and hasattr(err, "name") and isinstance(err.name, str):
        wait += ["--err", err.name]
    with open(out, "w") as outf:
        proc = subprocess.Popen(cmd + ["--"] + list(args), stdout=outf, stderr=errf, env=env)
    if isinstance(err, str):
        errf.close()
    wait += ["--pid", str(proc.pid)]
    r = subprocess.run(wait, capture_output=True, text=True)
    if r.returncode != 0:
        proc.kill()
        proc.wait()
        if own_out:
            os.unlink(out)
        raise NodeError(r.stderr.strip() or "llmos-test-node wait: exit %d" % r.returncode)
    endpoint = r.stdout.strip()
    endpoints = [endpoint]
    if np > 1:
        r = subprocess.run(wait + ["--all"], capture_output=True, text=True, check=True)
        endpoints = r.stdout.split()
    return Node(proc, endpoint, endpoints, np, out, own_out)


def _status(rc):
    return 128 - rc if rc < 0 else rc


def stop(node, timeout_ms=None):
    """SIGTERM (each rank under mpirun), SIGKILL to the process group after
    timeout_ms (default 10000); returns the exit status: 0 = a clean
    shutdown, 128 + signal when killed."""
    if node.proc.poll() is None:
        cmd = [FIXTURE, "stop", "--pid", str(node.pid), "--np", str(node.np)]
        if timeout_ms:
            cmd += ["--timeout", str(timeout_ms)]
        subprocess.run(cmd)
    rc = _status(node.proc.wait())
    if node._own_out and os.path.exists(node.out):
        os.unlink(node.out)
    return rc


def kill(node, sig=9):
    """Sends sig (default SIGKILL: a crash) and waits; returns the exit status."""
    if node.proc.poll() is None:
        os.kill(node.pid, sig)
    rc = _status(node.proc.wait())
    if node._own_out and os.path.exists(node.out):
        os.unlink(node.out)
    return rc
