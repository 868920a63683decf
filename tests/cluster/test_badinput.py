#!/usr/bin/python3
"""test_badinput.py — a real llmosd fed bad input by a Python ZeroMQ client.

Each bad frame (random bytes, truncated protobuf, a 100 MiB frame, an
envelope naming no actor, an unknown actor, an unknown type, an expired
deadline, a three-frame message) must get an error Envelope back, the node
must still answer `llmos ping`, and `llmos status` must count each kind.
Then: log lines are limited per burst, the CLI's error paths and git-style
dispatch, a bad config line (FILE:LINE), and SIGTERM -> exit 0.

Well-formed envelopes are built with the protobuf classes generated from
protos/llmos/envelope.proto (<build>/python, on PYTHONPATH); bytes are
crafted by hand only where the point is malformed input (random bytes, a
truncated envelope, an oversized frame, a three-frame message).  The node is
started and stopped by the node fixture (tests/lib/llmos_node.py).
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import zmq

import llmos_node
from llmos import envelope_pb2 as pb

BIN = os.environ.get("LLMOS_BIN") or os.path.dirname(os.path.abspath(sys.argv[0]))
LLMOSD = os.path.join(BIN, "llmosd")
LLMOS = os.path.join(BIN, "llmos")

EFORMAT, ENOTFOUND, ETIMEDOUT, ETOOBIG, EUNKNOWNTYPE = -4, -5, -6, -10, -15

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def envelope(to_name="", to_id=0, type_=0, corr=0, deadline=0, payload=b"", from_id=1):
    """A serialized Envelope to actor to_name (or id to_id) on the receiving node."""
    e = pb.Envelope(to=pb.ActorRef(id=to_id, name=to_name), type=type_, correlation_id=corr, deadline_ms=deadline,
                    payload=payload)
    getattr(e, "from").id = from_id  # `from` is a Python keyword
    return e.SerializeToString()


def parse_envelope(b):
    """The scalar fields of an Envelope reply."""
    e = pb.Envelope.FromString(b)
    return {"type": e.type, "corr": e.correlation_id, "status": e.status, "error": e.error,
            "is_reply": e.is_reply, "payload": e.payload}


# ---- the CLI ----

def cli(*args, timeout=30):
    r = subprocess.run([LLMOS] + list(args), capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def main():
    logf = tempfile.NamedTemporaryFile(prefix="llmosd-", suffix=".log", delete=False)
    node = llmos_node.start(["--workers", "2"], err=logf)
    ep = node.endpoint
    print("node at", ep, flush=True)
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(ep)

    def ask(frames, what, timeout_ms=10000):
        s.send_multipart(frames if isinstance(frames, list) else [frames], copy=False)
        if not s.poll(timeout_ms):
            check(False, what + ": no reply within %d ms" % timeout_ms)
            return None
        r = s.recv_multipart()
        check(len(r) == 1, what + ": reply is one frame")
        return parse_envelope(r[0])

    def expect_error(frames, status, what, corr=0):
        r = ask(frames, what)
        if r is None:
            return
        check(r["type"] == pb.MSG_ERROR and r["status"] == status and r["is_reply"],
              "%s -> error %d (got type %d status %d: %s)" % (what, status, r["type"], r["status"], r["error"]))
        check(r["corr"] == corr, "%s: correlation id %d kept" % (what, corr))
        check(len(r["error"]) > 0, "%s: error message '%s'" % (what, r["error"]))
        rc, out, err = cli("--endpoint", ep, "--timeout", "5000", "ping")
        check(rc == 0 and "pong" in out, "%s: node still answers llmos ping (%s)" % (what, out.strip() or err.strip()))

    # A good ask first: the path works.
    r = ask(envelope("echo", type_=0xF10, corr=1, payload=b"hello"), "echo")
    check(r is not None and r["payload"] == b"hello" and r["corr"] == 1 and r["status"] == 0, "echo round trip")

    rnd = random.Random(1234)
    junk = bytes([0xFF]) + bytes(rnd.getrandbits(8) for _ in range(300))
    expect_error(junk, EFORMAT, "random bytes")

    good = envelope("echo", type_=0xF10, corr=2, payload=b"x" * 100)
    expect_error(good[: len(good) - 40], EFORMAT, "truncated protobuf")

    expect_error(envelope("", type_=pb.MSG_PING, corr=3), EFORMAT, "envelope naming no actor")

    # Over the frame cap: the size is the point, refused before any decoding
    # (the start looks like an envelope, the rest is zeros).
    big = bytearray(100 << 20)
    big[0:4] = b"\x0a\x00\x1a\x00"
    expect_error(bytes(big), ETOOBIG, "100 MiB frame")
    del big

    expect_error(envelope("nobody", type_=pb.MSG_PING, corr=5), ENOTFOUND, "unknown actor (ask)", corr=5)
    expect_error(envelope("nobody", type_=pb.MSG_PING, corr=0), ENOTFOUND, "unknown actor (one-way, notice)")
    expect_error(envelope("node", type_=0x7777, corr=6), EUNKNOWNTYPE, "unknown type", corr=6)
    past = int(time.time() * 1000) - 5000
    expect_error(envelope("echo", type_=0xF10, corr=7, deadline=past), ETIMEDOUT, "expired deadline", corr=7)
    expect_error([b"a", b"b", b"c"], EFORMAT, "three-frame message")

    # Counters by kind.
    rc, out, err = cli("--endpoint", ep, "status", "--json")
    check(rc == 0, "llmos status --json (%s)" % err.strip())
    st = json.loads(out)
    e = st["errors"]
    print("errors:", e, flush=True)
    check(e["decode"] >= 3, "decode counted (%d)" % e["decode"])
    check(e["too_big"] >= 1, "too_big counted (%d)" % e["too_big"])
    check(e["unknown_actor"] >= 2, "unknown_actor counted (%d)" % e["unknown_actor"])
    check(e["unknown_type"] >= 1, "unknown_type counted (%d)" % e["unknown_type"])
    check(e["expired"] >= 1, "expired counted (%d)" % e["expired"])
    check(e["bad_frame"] >= 1, "bad_frame counted (%d)" % e["bad_frame"])
    check(any(a.startswith("sink ") for a in st["actors"]) and any(a.startswith("echo ") for a in st["actors"]),
          "built-in actors listed: %s" % st["actors"])
    rc, out, err = cli("--endpoint", ep, "status")
    check(rc == 0 and "uptime" in out and "decode=" in out and "node " in out, "llmos status prints the node")

    # A burst of bad frames: every one answered, logged about once.  (Wait
    # for the quiet gap that ends the previous burst first.)
    time.sleep(1.5)
    before = open(logf.name).read().count("client frame refused")
    n = 500
    for _ in range(n):
        s.send(junk)
    answered = 0
    deadline = time.time() + 30
    while answered < n and time.time() < deadline:
        if s.poll(1000):
            s.recv_multipart()
            answered += 1
    check(answered == n, "burst: %d/%d bad frames answered" % (answered, n))
    time.sleep(0.2)
    logged = open(logf.name).read().count("client frame refused") - before
    check(1 <= logged <= 5, "burst: logged %d time(s), not %d" % (logged, n))

    # CLI error paths.
    dead = "tcp://127.0.0.1:%d" % free_port()
    rc, out, err = cli("--endpoint", dead, "--timeout", "300", "ping")
    check(rc == 1 and "no answer" in err, "ping to a dead endpoint: exit 1, '%s'" % err.strip())
    rc, out, err = cli("--endpoint", dead, "--timeout", "300", "status")
    check(rc == 1 and "no answer" in err, "status to a dead endpoint: exit 1")
    rc, out, err = cli("frobnicate")
    check(rc == 1 and "unknown command" in err, "unknown command: '%s'" % err.strip())
    rc, out, err = cli("--help")
    check(rc == 0 and "ping" in out and "status" in out, "llmos --help lists commands")
    # Git-style dispatch: next to the executable first, then PATH.
    tmp = tempfile.mkdtemp(prefix="llmos-cli-")
    try:
        shutil.copy(LLMOS, os.path.join(tmp, "llmos"))
        for d, name, word in ((tmp, "llmos-hello", "beside"), (os.path.join(tmp, "p"), "llmos-hello", "path"),
                              (os.path.join(tmp, "p"), "llmos-onpath", "path")):
            os.makedirs(d, exist_ok=True)
            f = os.path.join(d, name)
            with open(f, "w") as fh:
                fh.write('#!/bin/sh\necho "%s $LLMOS_ENDPOINT $*"\n' % word)
            os.chmod(f, 0o755)
        env = dict(os.environ, PATH=os.path.join(tmp, "p") + ":" + os.environ.get("PATH", ""))
        r = subprocess.run([os.path.join(tmp, "llmos"), "--endpoint", "tcp://h:1", "hello", "a", "b"],
                           capture_output=True, text=True, env=env)
        check(r.stdout.strip() == "beside tcp://h:1 a b", "dispatch prefers llmos's directory: %r" % r.stdout)
        r = subprocess.run([os.path.join(tmp, "llmos"), "onpath", "x"], capture_output=True, text=True, env=env)
        check(r.stdout.strip().startswith("path") and r.stdout.strip().endswith(" x"),
              "dispatch falls back to PATH: %r" % r.stdout)
    finally:
        shutil.rmtree(tmp)

    # A bad config line names FILE:LINE.
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as cf:
        cf.write("# test\nworkers = 1\nlisten tcp://127.0.0.1:1\n")
    r = subprocess.run([LLMOSD, "--config", cf.name], capture_output=True, text=True, timeout=30)
    check(r.returncode != 0 and ("%s:3" % cf.name) in r.stderr, "bad config line: %r" % r.stderr.strip())
    os.unlink(cf.name)

    # A good config file is applied: name, workers, frame cap.
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as cf:
        cf.write("# small node\nlisten = tcp://127.0.0.1:0\nnode_name = cfgnode  # named\n"
                 "workers = 1\nmax_frame = 1M\nlog_level = warn\n")
    try:
        n2 = llmos_node.start(["--config", cf.name])
        ep2 = n2.endpoint
    except llmos_node.NodeError as e:
        n2, ep2 = None, None
        check(False, "llmosd --config starts: %s" % e)
    if ep2:
        rc, out, err = cli("--endpoint", ep2, "status", "--json")
        st2 = json.loads(out) if rc == 0 else {}
        check(st2.get("node_name") == "cfgnode" and st2.get("workers") == 1,
              "config applied: name %s, workers %s" % (st2.get("node_name"), st2.get("workers")))
        s2 = ctx.socket(zmq.DEALER)
        s2.setsockopt(zmq.LINGER, 0)
        s2.connect(ep2)
        s2.send(envelope("echo", type_=0xF10, corr=9, payload=b"y" * (3 << 19)))
        r = parse_envelope(s2.recv_multipart()[0]) if s2.poll(10000) else None
        check(r is not None and r["status"] == ETOOBIG, "max_frame = 1M refuses a 1.5 MiB frame with an error")
        # Past twice the cap ZeroMQ itself cuts the connection (ZMQ_MAXMSGSIZE):
        # no reply is possible, and the node keeps serving.
        s2.send(b"z" * (3 << 20))
        check(not s2.poll(1000), "a frame over twice the cap gets no reply (connection cut)")
        rc, out, err = cli("--endpoint", ep2, "ping")
        check(rc == 0, "the node still answers ping after that")
        s2.close()
    if n2:
        check(llmos_node.stop(n2) == 0, "config node stops with exit 0")
    os.unlink(cf.name)

    # SIGTERM: clean exit 0.
    s.close()
    ctx.term()
    code = llmos_node.stop(node, timeout_ms=30000)
    check(code == 0, "SIGTERM -> exit 0 (got %s)" % code)
    log = open(logf.name).read()
    check("ERROR" not in log and "runtime error" not in log and "Sanitizer" not in log,
          "no errors or sanitizer reports in the node's log")
    if failures:
        print(log[-4000:])
    os.unlink(logf.name)
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("all checks passed")


def free_port():
    import socket
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


if __name__ == "__main__":
    main()
