#!/usr/bin/python3
"""mpi_test.py — data-parallel training over real MPI processes: the same
run (global batch 16, micro-batch 4, dropout, seed) on 1 rank and with
`mpirun -np 2` must give the same loss at each of the first 20 steps within
1e-4 relative, for full fine-tuning, for pre-training (next-token loss) and
for full fine-tuning with length buckets (--bucket 4).

Usage: mpi_test.py BIN_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

BIN = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("LLMOS_BIN", "build/bin")
MODELS = os.environ.get("LLMOS_MODELS", os.path.join(os.path.dirname(__file__), "../../../shared/models"))
DATA = os.environ.get("LLMOS_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))


def args(out, mode, extra=()):
    return [os.path.join(BIN, "llmos-train"), "--model", os.path.join(MODELS, "stories260K.bin"), "--tokenizer",
            os.path.join(MODELS, "tok512.bin"), "--train", os.path.join(DATA, "banking77/train.csv"), "--labels",
            os.path.join(DATA, "banking77/categories.json"), "--out", out, "--mode", mode, "--steps", "20",
            "--batch", "16", "--micro", "4", "--seq", "48", "--lr", "3e-3", "--warmup", "2", "--dropout", "0.1",
            "--threads", "1", "--eval-every", "10", "--quiet", *extra]


def losses(path):
    return {r["step"]: r["loss"] for r in map(json.loads, open(path)) if "loss" in r}


def main():
    tmp = tempfile.mkdtemp(prefix="llmos_train_mpi_")
    try:
        for name, mode, extra in (("full", "full", ()), ("pretrain", "pretrain", ()),
                                  ("full+bucket", "full", ("--bucket", "4"))):
            one, two = os.path.join(tmp, mode + "1"), os.path.join(tmp, mode + "2")
            shutil.rmtree(one, ignore_errors=True)
            shutil.rmtree(two, ignore_errors=True)
            subprocess.run(args(one, mode, extra), check=True)
            # Keep Open MPI's and PMIx's plugins loaded at exit, and unwind
            # exactly, so LeakSanitizer can attribute their leaks to them
            # (suppressed by tests/lsan.supp) — ours are still reported.
            env = dict(os.environ, OMPI_MCA_mca_base_component_disable_dlclose="1",
                       PMIX_MCA_mca_base_component_disable_dlclose="1")
            if "LSAN_OPTIONS" in env:
                env["LSAN_OPTIONS"] += ":fast_unwind_on_malloc=0"
            subprocess.run(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", *args(two, mode, extra)], check=True, env=env)
            a, b = losses(os.path.join(one, "metrics.jsonl")), losses(os.path.join(two, "metrics.jsonl"))
            assert sorted(a) == sorted(b) == list(range(1, 21)), (sorted(a), sorted(b))
            worst = max(abs(a[s] - b[s]) / abs(a[s]) for s in a)
            assert worst <= 1e-4, f"{name}: 1 vs 2 ranks differ by {worst:.3e} relative"
            assert a[20] < a[1], f"{name}: the loss did not fall ({a[1]} -> {a[20]})"
            print(f"{name}: 20 steps, 1 rank vs 2 ranks: worst relative loss difference {worst:.2e}; "
                  f"loss {a[1]:.4f} -> {a[20]:.4f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("OK")


if __name__ == "__main__":
    main()
