#!/usr/bin/python3
"""ngram_sklearn.py — llmos's TF-IDF n-gram vectors (model/train/ngram.h,
dumped by ngram_dump) against scikit-learn's TfidfVectorizer with the same
settings: word n-grams 1-2 and char_wb n-grams 2-5, sublinear tf, smooth
idf, each block L2-normalised; vocabulary from 1000 BANKING77 training texts
(ASCII ones: llmos works on bytes, scikit-learn on Unicode characters), the
vectors of the first 200 compared feature by feature within 1e-6.

Usage: ngram_sklearn.py BIN_DIR   (BIN_DIR holds ngram_dump; LLMOS_DATA)
Skips (exit 77) when scikit-learn is not installed.
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

try:
    from sklearn.feature_extraction.text import TfidfVectorizer
except ImportError:
    print("scikit-learn not installed (python3-sklearn): skipped")
    sys.exit(77)

BIN = sys.argv[1]
DATA = os.environ.get("LLMOS_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))

rows = []
with open(os.path.join(DATA, "banking77/train.csv"), newline="") as f:
    r = csv.reader(f)
    next(r)
    for text, cat in r:
        if text.isascii() and text.strip():
            rows.append((text, cat))
        if len(rows) == 1000:
            break
texts = [t for t, _ in rows]

with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "t.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "category"])
        w.writerows(rows)
    out = subprocess.run([os.path.join(BIN, "ngram_dump"), path, "200"], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        print(out.stderr)
        sys.exit(1)
ours = [json.loads(l) for l in out.stdout.splitlines()]
assert len(ours) == 200, len(ours)

word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
ref = [{} for _ in range(200)]
for tag, vec in (("w", word), ("c", char)):
    X = vec.fit(texts).transform(texts[:200]).tocsr()
    names = vec.get_feature_names_out()
    for i in range(200):
        for j, v in zip(X.indices[X.indptr[i]:X.indptr[i + 1]], X.data[X.indptr[i]:X.indptr[i + 1]]):
            ref[i][tag + ":" + names[j]] = v
    print(f"{tag}: scikit-learn vocabulary {len(names)}")

bad = 0
worst = 0.0
nnz = 0
for i in range(200):
    a, b = ours[i], ref[i]
    if set(a) != set(b):
        bad += 1
        if bad <= 5:
            print(f"text {i} {texts[i]!r}: only llmos {sorted(set(a) - set(b))[:5]}, only sklearn {sorted(set(b) - set(a))[:5]}")
        continue
    for k in a:
        worst = max(worst, abs(a[k] - b[k]))
    nnz += len(a)
print(f"200 texts, {nnz} non-zeros, max |llmos - sklearn| {worst:.3g}, texts with other features {bad}")
if bad or worst > 1e-6 or nnz < 200 * 20:
    sys.exit(1)
print("ok")
