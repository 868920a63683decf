#!/usr/bin/python3
"""ngram_test.py — llmos-train --mode ngram, llmos-eval and llmos-ckpt on the
n-gram classifier as real processes, on BANKING77:

  - the default n-gram member trained with --val-frac 0.1 --split-seed 1
    reaches validation accuracy >= 0.89, and llmos-eval on the same split
    reports the same accuracy; llmos-ckpt ls/show list it;
  - mixed with a tiny transformer member (stories260K, a few head-only
    steps): weight 0 gives the transformer's accuracy, a huge weight the
    n-gram's, weight 1 something in between; a weighted vote follows the
    heavier member; --predictions --all-probs rows sum to 1;
  - errors: label sets that differ, transformer flags with --mode ngram,
    n-gram flags with another mode, --weight before any --ckpt, export of
    an n-gram checkpoint;
    --val-frac 0 trains on the whole file (no validation figure).

Usage: ngram_test.py BIN_DIR   (LLMOS_MODELS / LLMOS_DATA from the environment)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

BIN = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("LLMOS_BIN", "build/bin")
MODELS = os.environ.get("LLMOS_MODELS", os.path.join(os.path.dirname(__file__), "../../../shared/models"))
DATA = os.environ.get("LLMOS_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))
TRAIN, EVAL, CKPT = (os.path.join(BIN, t) for t in ("llmos-train", "llmos-eval", "llmos-ckpt"))
TRAIN_CSV = os.path.join(DATA, "banking77/train.csv")
LABELS = os.path.join(DATA, "banking77/categories.json")
SPLIT = ["--data", TRAIN_CSV, "--val-frac", "0.1", "--split-seed", "1"]


def run(args, ok=True):
    r = subprocess.run(args, capture_output=True, text=True, timeout=240)
    if ok:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def run_eval(args):
    out = run([EVAL, *args]).stdout
    vals = {p[0]: float(p[1]) for p in (l.split() for l in out.splitlines()) if len(p) == 2 and p[0] in ("accuracy", "macro-F1")}
    members = [float(m) for m in re.findall(r"^member \d+ .*accuracy ([0-9.]+)$", out, re.M)]
    return vals, members, out


def main():
    tmp = tempfile.mkdtemp(prefix="llmos_ngram_")
    try:
        ng = os.path.join(tmp, "ng")
        r = run([TRAIN, "--mode", "ngram", "--train", TRAIN_CSV, "--labels", LABELS, "--val-frac", "0.1", "--split-seed", "1",
                 "--out", ng])
        m = re.search(r"(\d+) features.*validation accuracy ([0-9.]+) \((\d+) texts\)", r.stdout)
        assert m, r.stdout
        nf, val, nval = int(m.group(1)), float(m.group(2)), int(m.group(3))
        assert nval == 1000 and nf > 10000 and val >= 0.89, r.stdout
        metrics = [json.loads(l) for l in open(os.path.join(ng, "metrics.jsonl"))]
        assert abs(metrics[-1]["val_acc"] - val) < 1e-4, metrics
        ls = run([CKPT, "ls", ng]).stdout
        assert re.search(r"^\s+1\s+1\s+ngram\s+[0-9.]+\s+" + re.escape(f"{val:.4f}") + r".*latest best", ls, re.M), ls
        show = json.loads(run([CKPT, "show", ng]).stdout)
        assert show["task"] == "ngram" and show["n_features"] == nf and len(show["labels"]) == 77, show
        r = run([CKPT, "export", ng, os.path.join(tmp, "x.bin")], ok=False)
        assert r.returncode == 1 and "no model to export" in r.stderr, r.stderr
        v, _, out = run_eval(["--ckpt", ng, *SPLIT])
        assert "examples 1000," in out and abs(v["accuracy"] - val) < 1e-9, (v, val)
        print(f"ngram: {nf} features, validation accuracy {val:.4f} (llmos-eval: {v['accuracy']:.4f}); "
              f"train {metrics[-1]['train_s']:.1f} s")

        # A tiny transformer member, then the mixes.
        tf = os.path.join(tmp, "tf")
        run([TRAIN, "--model", os.path.join(MODELS, "stories260K.bin"), "--tokenizer", os.path.join(MODELS, "tok512.bin"),
             "--train", TRAIN_CSV, "--labels", LABELS, "--out", tf, "--mode", "head", "--steps", "8", "--batch", "16",
             "--seq", "48", "--lr", "1e-2", "--threads", "1", "--eval-every", "8", "--quiet"])
        v0, mem, out = run_eval(["--ckpt", tf, "--ckpt", ng, "--weight", "0", *SPLIT])
        assert len(mem) == 2 and abs(mem[1] - val) < 1e-9 and abs(v0["accuracy"] - mem[0]) < 1e-9, out
        vbig, _, out = run_eval(["--ckpt", tf, "--ckpt", ng, "--weight", "1e6", *SPLIT])
        assert abs(vbig["accuracy"] - val) <= 0.002, out
        pred = os.path.join(tmp, "p.jsonl")
        v1, _, out = run_eval(["--ckpt", tf, "--weight", "1", "--ckpt", ng, "--weight", "3", *SPLIT, "--predictions", pred,
                               "--all-probs"])
        assert 0 < v1["accuracy"] <= 1 and v1["accuracy"] >= mem[0] and "members 2 (avg)" in out, out
        rows = [json.loads(l) for l in open(pred)]
        assert len(rows) == 1000 and all(abs(sum(r["probs"]) - 1) < 1e-3 for r in rows)
        vv, _, out = run_eval(["--ckpt", tf, "--ckpt", ng, "--weight", "2", "--ensemble", "vote", *SPLIT])
        assert abs(vv["accuracy"] - val) < 1e-9, out  # the heavier vote always wins
        # --weight-grid: one prediction pass, the same accuracy per weight as
        # separate runs, the first best chosen and used for the report.
        vg, _, out = run_eval(["--ckpt", tf, "--ckpt", ng, "--weight-grid", "0 3 1e6", *SPLIT])
        got = {l.split()[1].rstrip(":"): float(l.split()[-1]) for l in out.splitlines() if l.startswith("weight ")}
        assert got == {"0": v0["accuracy"], "3": v1["accuracy"], "1e+06": vbig["accuracy"]}, out
        accs = [v0["accuracy"], v1["accuracy"], vbig["accuracy"]]
        chosen = ["0", "3", "1e+06"][accs.index(max(accs))]
        assert f"chosen weight {chosen}\n" in out and vg["accuracy"] == max(accs), out
        r = run([EVAL, "--ckpt", tf, "--ckpt", ng, "--weight-grid", "1 x", *SPLIT], ok=False)
        assert r.returncode == 2 and "--weight-grid" in r.stderr, r.stderr
        print(f"mix: transformer {mem[0]:.4f}, n-gram {val:.4f}; weights 0: {v0['accuracy']:.4f}, 3: {v1['accuracy']:.4f}, "
              f"1e6: {vbig['accuracy']:.4f}; weighted vote {vv['accuracy']:.4f}")

        # Errors and --val-frac 0.
        small = os.path.join(tmp, "small.csv")
        with open(small, "w") as f:
            f.write("text,category\nmy card is lost,lost\nlost my card,lost\n\"top up, please\",topup\ntop up failed,topup\n")
        sm = os.path.join(tmp, "sm")
        r = run([TRAIN, "--mode", "ngram", "--train", small, "--val-frac", "0", "--out", sm])
        assert "4 texts" in r.stdout and "validation" not in r.stdout, r.stdout
        r = run([EVAL, "--ckpt", ng, "--ckpt", sm, *SPLIT], ok=False)
        assert r.returncode == 1 and "labels differ" in r.stderr, r.stderr
        r = run([TRAIN, "--mode", "ngram", "--train", small, "--out", sm, "--lr", "0.1"], ok=False)
        assert r.returncode == 2 and "--lr is not an option of --mode ngram" in r.stderr, r.stderr
        r = run([TRAIN, "--model", "stories260K.bin", "--mode", "lora", "--ngram-c", "3", "--train", small, "--out", sm], ok=False)
        assert r.returncode == 2 and "need --mode ngram" in r.stderr, r.stderr
        r = run([EVAL, "--weight", "2", "--ckpt", ng, *SPLIT], ok=False)
        assert r.returncode == 2 and "--weight" in r.stderr, r.stderr
        r = run([EVAL, "--ckpt", os.path.join(tmp, "nothing"), *SPLIT], ok=False)
        assert r.returncode == 1 and "no checkpoint store" in r.stderr, r.stderr
        print("errors: label mismatch, misplaced flags, missing store refused; --val-frac 0 trains on all")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("OK")


if __name__ == "__main__":
    main()
