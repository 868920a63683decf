#!/usr/bin/python3
"""Numerical check of llmos's forward pass against an independent PyTorch
implementation of Llama (complex-number RoPE as in Meta's reference, GQA by
repeating K/V heads), on a small random model with n_kv_heads < n_heads and
a separate classifier, written here in llama2.c format.  Both the batched
prefill (BLIS GEMM) and the one-token decode (GEMV) paths, 1 and 2 threads.
"""
import os, struct, subprocess, sys, tempfile
import numpy as np
import torch

dump = sys.argv[1]
torch.manual_seed(0)
rng = np.random.default_rng(1)
dim, hidden, L, nh, nkv, V, S = 64, 144, 3, 8, 2, 96, 64
hd = dim // nh

def t(*shape, scale=0.3):
    return torch.tensor(rng.standard_normal(shape).astype(np.float32) * scale)

w = {
    "emb": t(V, dim, scale=1.0),
    "rms_att": 1 + t(L, dim, scale=0.1), "wq": t(L, dim, dim, scale=dim ** -0.5),
    "wk": t(L, nkv * hd, dim, scale=dim ** -0.5), "wv": t(L, nkv * hd, dim, scale=dim ** -0.5),
    "wo": t(L, dim, dim, scale=dim ** -0.5), "rms_ffn": 1 + t(L, dim, scale=0.1),
    "w1": t(L, hidden, dim, scale=dim ** -0.5), "w2": t(L, dim, hidden, scale=hidden ** -0.5),
    "w3": t(L, hidden, dim, scale=dim ** -0.5), "rms_f": 1 + t(dim, scale=0.1), "wcls": t(V, dim, scale=dim ** -0.5),
}

tmp = tempfile.mkdtemp()
mpath, tpath = os.path.join(tmp, "m.bin"), os.path.join(tmp, "tok.bin")
with open(mpath, "wb") as f:
    f.write(struct.pack("7i", dim, hidden, L, nh, nkv, -V, S))  # negative vocab: separate classifier
    for k in ["emb", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_f"]:
        f.write(w[k].numpy().astype("<f4").tobytes())
    f.write(np.zeros(S * hd, "<f4").tobytes())  # legacy freq_cis tables
    f.write(w["wcls"].numpy().astype("<f4").tobytes())
with open(tpath, "wb") as f:
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [bytes([97 + i % 26]) * (1 + i // 26) for i in range(V - 3)]
    f.write(struct.pack("i", max(len(p) for p in pieces)))
    for i, p in enumerate(pieces):
        f.write(struct.pack("fi", -float(i), len(p)) + p)

def rmsnorm(x, g):
    return g * (x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-5))

def reference(tokens):
    T = len(tokens)
    x = w["emb"][torch.tensor(tokens)].double()
    freqs = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).double() / hd))
    ang = torch.outer(torch.arange(T).double(), freqs)
    cis = torch.polar(torch.ones_like(ang), ang)  # [T, hd/2]
    def rope(v):  # v [T, heads, hd], pairs (2i, 2i+1) as complex numbers
        c = torch.view_as_complex(v.reshape(T, v.shape[1], hd // 2, 2).contiguous())
        return torch.view_as_real(c * cis[:, None, :]).reshape(v.shape)
    mask = torch.full((T, T), float("-inf")).double().triu(1)
    for l in range(L):
        h = rmsnorm(x, w["rms_att"][l].double())
        q = (h @ w["wq"][l].double().T).view(T, nh, hd)
        k = (h @ w["wk"][l].double().T).view(T, nkv, hd)
        v = (h @ w["wv"][l].double().T).view(T, nkv, hd)
        q, k = rope(q), rope(k)
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        att = torch.einsum("thd,shd->hts", q, k) / hd ** 0.5 + mask
        o = torch.einsum("hts,shd->thd", att.softmax(-1), v).reshape(T, dim)
        x = x + o @ w["wo"][l].double().T
        h = rmsnorm(x, w["rms_ffn"][l].double())
        g = h @ w["w1"][l].double().T
        x = x + (torch.nn.functional.silu(g) * (h @ w["w3"][l].double().T)) @ w["w2"][l].double().T
    return (rmsnorm(x, w["rms_f"].double()) @ w["wcls"].double().T).numpy()

tokens = [1] + [int(v) for v in rng.integers(3, V, size=40)]
ref = reference(tokens)
failed = passed = 0
for mode in ["prefill", "decode"]:
    for threads in ["1", "2"]:
        out = subprocess.run([dump, mpath, tpath, mode, threads, "--"] + [str(x) for x in tokens],
                             capture_output=True, check=False)
        if out.returncode != 0:
            print("FAIL", mode, threads, out.stderr.decode()); failed += 1; continue
        got = np.frombuffer(out.stdout, dtype="<f4").reshape(len(tokens), V)
        err = np.abs(got - ref).max()
        scale = np.abs(ref).max()
        ok = err < 1e-4 * max(1.0, scale)
        print(f"{mode} threads={threads}: max |llmos - torch| = {err:.3g} (max |logit| {scale:.3g}) {'ok' if ok else 'FAIL'}")
        passed += ok; failed += not ok
for p in (mpath, tpath):
    os.unlink(p)
os.rmdir(tmp)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
