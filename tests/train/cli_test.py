#!/usr/bin/python3
"""cli_test.py — integration tests of llmos-train / llmos-eval / llmos-ckpt
as real processes on BANKING77 with stories260K:

  resume    an uninterrupted run vs. a run killed with SIGKILL after a
            checkpoint and resumed with --resume: the losses of every step
            after the resume point are identical;
  crash     SIGKILL at random moments while checkpoints are written every
            step: the store always opens, lists, and its latest version
            loads completely (llmos-ckpt export);
  eval      llmos-eval prints accuracy/macro-F1/micro-F1, writes one
            prediction per test line whose accuracy equals the printed one;
            ensembles by vote and by average run; --val-frac evaluates the
            validation split llmos-train held out (its accuracy is the
            best checkpoint's validation metric);
  errors    unknown label and empty text are refused with file:line.

Usage: cli_test.py BIN_DIR [TEST...]   (default: all; LLMOS_MODELS / LLMOS_DATA
from the environment)
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("LLMOS_BIN", "build/bin")
ONLY = set(sys.argv[2:])
MODELS = os.environ.get("LLMOS_MODELS", os.path.join(os.path.dirname(__file__), "../../../shared/models"))
DATA = os.environ.get("LLMOS_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))
TRAIN = os.path.join(BIN, "llmos-train")


def base_args(out, steps, extra=()):
    return [TRAIN, "--model", os.path.join(MODELS, "stories260K.bin"), "--tokenizer", os.path.join(MODELS, "tok512.bin"),
            "--train", os.path.join(DATA, "banking77/train.csv"), "--labels", os.path.join(DATA, "banking77/categories.json"),
            "--out", out, "--steps", str(steps), "--batch", "16", "--micro", "8", "--seq", "48", "--lr", "3e-3",
            "--warmup", "3", "--dropout", "0.1", "--threads", "1", "--eval-every", "6", "--quiet", *extra]


def losses(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        if "loss" in r:
            out[r["step"]] = r["loss"]  # the last record of a step wins (a resumed run repeats steps)
    return out


def latest_step(out):
    r = subprocess.run([os.path.join(BIN, "llmos-ckpt"), "ls", out], capture_output=True, text=True)
    if r.returncode != 0:
        return -1
    steps = [int(float(l.split()[1])) for l in r.stdout.splitlines()[1:] if l.strip()]
    return max(steps) if steps else -1


def test_resume(tmp):
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    for mode in ("full", "lora"):
        shutil.rmtree(a, ignore_errors=True)
        shutil.rmtree(b, ignore_errors=True)
        # LoRA also buckets by length (windows of 3 batches): the kill lands
        # inside a window, whose batches the resumed run must rebuild.
        extra = ("--mode", mode, "--save-every", "5", *(("--bucket", "3") if mode == "lora" else ()))
        subprocess.run(base_args(a, 20, extra), check=True)
        p = subprocess.Popen(base_args(b, 20, extra))
        deadline = time.time() + 120
        while latest_step(b) < 5 and time.time() < deadline and p.poll() is None:
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL)
        p.wait()
        at = latest_step(b)
        assert 5 <= at < 20, f"kill came too late or no checkpoint: latest step {at}"
        subprocess.run(base_args(b, 20, (*extra, "--resume")), check=True)
        la, lb = losses(os.path.join(a, "metrics.jsonl")), losses(os.path.join(b, "metrics.jsonl"))
        assert sorted(la) == list(range(1, 21)) and sorted(lb) == list(range(1, 21)), (sorted(la), sorted(lb))
        for s in range(at + 1, 21):
            assert la[s] == lb[s], f"{mode}: step {s}: uninterrupted {la[s]} vs resumed {lb[s]}"
        print(f"resume ({mode}): killed after checkpoint at step {at}; steps {at + 1}..20 identical "
              f"(last loss {la[20]:.6f})")


def test_crash(tmp):
    c = os.path.join(tmp, "c")
    rng = random.Random(5)
    survived = 0
    for i in range(6):
        p = subprocess.Popen(base_args(c, 400, ("--mode", "full", "--save-every", "1", "--keep", "3", "--eval-every", "0")
                                       + (("--resume",) if i else ())), stderr=subprocess.DEVNULL)
        # The kill lands at a random moment after the store exists (loading and
        # tokenizing take seconds under ASan on a loaded machine).
        deadline = time.time() + 120
        while not os.path.exists(os.path.join(c, "ckpt.lmdb")) and p.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(rng.uniform(1.5, 4.0))
        p.send_signal(signal.SIGKILL)
        p.wait()
        r = subprocess.run([os.path.join(BIN, "llmos-ckpt"), "ls", c], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        if latest_step(c) > 0:
            out = os.path.join(tmp, "x.bin")
            r = subprocess.run([os.path.join(BIN, "llmos-ckpt"), "export", c, out], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            survived += 1
    assert survived >= 3, survived
    print(f"crash: 6 SIGKILLs during per-step checkpointing; store intact each time (latest step {latest_step(c)})")


def run_eval(args):
    r = subprocess.run([os.path.join(BIN, "llmos-eval"), *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    vals = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("accuracy", "macro-F1", "micro-F1"):
            vals[parts[0]] = float(parts[1])
    return vals, r.stdout


def test_eval(tmp):
    a, e2 = os.path.join(tmp, "a"), os.path.join(tmp, "e2")
    subprocess.run(base_args(a, 12, ("--mode", "lora")), check=True)
    subprocess.run(base_args(e2, 10, ("--mode", "head", "--lr", "1e-2", "--seed", "2", "--label-smoothing", "0.1")),
                   check=True)
    pred = os.path.join(tmp, "pred.jsonl")
    test = os.path.join(DATA, "banking77/test.csv")
    vals, out = run_eval(["--ckpt", a, "--data", test, "--predictions", pred])
    assert set(vals) == {"accuracy", "macro-F1", "micro-F1"}, out
    rows = [json.loads(l) for l in open(pred)]
    assert len(rows) == 3080
    acc = sum(r["label"] == r["pred"] for r in rows) / len(rows)
    assert abs(acc - vals["accuracy"]) < 1e-4, (acc, vals)
    assert "most confused" in out and "card_arrival" in out
    small = os.path.join(tmp, "small.csv")  # the ensembles on the first 400 test rows
    with open(test) as f, open(small, "w") as g:
        g.writelines(f.readlines()[:401])
    for how in ("vote", "avg"):
        v2, out2 = run_eval(["--ckpt", a, "--ckpt", e2, "--ensemble", how, "--data", small])
        assert "member 2" in out2 and 0 <= v2["accuracy"] <= 1
    # --val-frac: the split llmos-train validated on; its accuracy is the best version's validation metric.
    ls = subprocess.run([os.path.join(BIN, "llmos-ckpt"), "ls", a], capture_output=True, text=True, check=True).stdout
    best = [l.split() for l in ls.splitlines()[1:] if l.rstrip().endswith("best")]
    assert len(best) == 1, ls
    train = os.path.join(DATA, "banking77/train.csv")
    vv, outv = run_eval(["--ckpt", a, "--data", train, "--val-frac", "0.1", "--split-seed", "1"])
    assert "examples 1000," in outv and abs(vv["accuracy"] - float(best[0][4])) < 1e-4, (vv, ls)
    # The meta keeps absolute paths (a run trained with paths relative to its
    # working directory evaluates from anywhere), and a base model that has
    # moved away is found by its file name in $LLMOS_MODELS.
    mdir, mv = os.path.join(tmp, "models_copy"), os.path.join(tmp, "mv")
    os.makedirs(mdir)
    for f in ("stories260K.bin", "tok512.bin"):
        shutil.copy(os.path.join(MODELS, f), mdir)
    rel = [os.path.abspath(x) if os.path.exists(x) else x for x in base_args(os.path.abspath(mv), 4, ("--mode", "head"))]
    rel[rel.index("--model") + 1], rel[rel.index("--tokenizer") + 1] = "stories260K.bin", "tok512.bin"
    subprocess.run(rel, check=True, cwd=mdir)
    meta = subprocess.run([os.path.join(BIN, "llmos-ckpt"), "show", mv], capture_output=True, text=True, check=True).stdout
    assert os.path.join(os.path.realpath(mdir), "tok512.bin") in meta, meta
    before, _ = run_eval(["--ckpt", mv, "--data", small])
    shutil.rmtree(mdir)
    r = subprocess.run([os.path.abspath(os.path.join(BIN, "llmos-eval")), "--ckpt", os.path.abspath(mv), "--data",
                        os.path.abspath(small)], capture_output=True, text=True, cwd=tmp,
                       env=dict(os.environ, LLMOS_MODELS=os.path.abspath(MODELS)))
    assert r.returncode == 0 and f"accuracy {before['accuracy']:.4f}" in r.stdout, (r.stdout, r.stderr)
    print(f"eval: accuracy {vals['accuracy']:.4f} macro-F1 {vals['macro-F1']:.4f}; predictions agree; vote/avg ensembles run; "
          "a moved base model is found in $LLMOS_MODELS")


def test_errors(tmp):
    bad = os.path.join(tmp, "bad.csv")
    with open(bad, "w") as f:
        f.write('text,category\n"fine, quoted",card_arrival\nwhat is this,no_such_label\n')
    r = subprocess.run([TRAIN, "--model", os.path.join(MODELS, "stories260K.bin"), "--tokenizer",
                        os.path.join(MODELS, "tok512.bin"), "--train", bad, "--labels",
                        os.path.join(DATA, "banking77/categories.json"), "--out", os.path.join(tmp, "e"), "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "bad.csv:3: unknown label 'no_such_label'" in r.stderr, r.stderr
    with open(bad, "w") as f:
        f.write('text,category\n"fine",card_arrival\n"",card_arrival\n')
    r = subprocess.run([TRAIN, "--model", os.path.join(MODELS, "stories260K.bin"), "--tokenizer", os.path.join(MODELS, "tok512.bin"),
                        "--train", bad, "--out", os.path.join(tmp, "e"), "--quiet"], capture_output=True, text=True)
    assert r.returncode != 0 and "bad.csv:3: empty text" in r.stderr, r.stderr
    print("errors: unknown label and empty text refused with file:line")


def main():
    tmp = tempfile.mkdtemp(prefix="llmos_train_cli_")
    try:
        for name, fn in (("errors", test_errors), ("resume", test_resume), ("eval", test_eval), ("crash", test_crash)):
            if not ONLY or name in ONLY:
                fn(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("OK")


if __name__ == "__main__":
    main()
