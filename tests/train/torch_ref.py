#!/usr/bin/python3
"""torch_ref.py — an independent PyTorch (float64, autograd) implementation
of the llmos training step: Llama (RMSNorm, interleaved-pair RoPE, causal GQA
attention, SwiGLU), next-token loss or the pooled classification head with
dropout, LoRA adapters.  It reads the parameters and batch that
train_grad_dump wrote, recomputes loss and gradients, and requires every
tensor's gradient to match llmos's fp32 gradient within 1e-4 relative
(||g_llmos - g_torch|| / ||g_torch|| per tensor), and the loss within 1e-5.

Usage: torch_ref.py PATH/TO/train_grad_dump
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

M64 = (1 << 64) - 1


def splitmix_uniforms(state, n):
    out = []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        z = z ^ (z >> 31)
        out.append((z >> 11) * 2.0 ** -53)
    return out


def rope_tables(T, hd, theta):
    half = hd // 2
    i = np.arange(half, dtype=np.float32)
    freq = np.float32(1.0) / np.power(np.float32(theta), (np.float32(2) * i) / np.float32(hd))
    pos = np.arange(T, dtype=np.float32)[:, None]
    val = (pos * freq[None, :]).astype(np.float32)
    return torch.tensor(np.cos(val).astype(np.float64)), torch.tensor(np.sin(val).astype(np.float64))


def rope(x, cos, sin):
    # x: [B, T, H, hd]; rotate consecutive pairs
    a, b = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    out = torch.empty_like(x)
    out[..., 0::2] = a * c - b * s
    out[..., 1::2] = a * s + b * c
    return out


def run_case(d):
    c = json.load(open(os.path.join(d, "case.json")))
    params = np.fromfile(os.path.join(d, "params.bin"), dtype=np.float32)
    grads = np.fromfile(os.path.join(d, "grads.bin"), dtype=np.float32)
    assert params.size == c["n_params"] and grads.size == c["n_params"]
    P = {}
    for t in c["tensors"]:
        a = params[t["off"]:t["off"] + t["rows"] * t["cols"]].astype(np.float64).reshape(t["rows"], t["cols"])
        P[t["name"]] = torch.tensor(a, requires_grad=True)
    D, L, nh, nkv = c["dim"], c["n_layers"], c["n_heads"], c["n_kv_heads"]
    hd, B, T, eps = D // nh, c["B"], c["T"], c["norm_eps"]
    toks = torch.tensor(c["tokens"]).reshape(B, T)
    lens = c["lens"]
    cos, sin = rope_tables(T, hd, c["rope_theta"])
    lora = c["mode"] == 2
    s_lora = c["lora_alpha"] / c["lora_rank"] if lora else 0.0

    def rms(x, w):
        return w[0] * x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)

    def lin(x, l, name):
        y = x @ P[f"layers.{l}.{name}"].T
        if lora:
            y = y + s_lora * (x @ P[f"lora.{l}.{name}.A"].T) @ P[f"lora.{l}.{name}.B"].T
        return y

    x = P["tok_embd"][toks]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(L):
        h = rms(x, P[f"layers.{l}.attn_norm"])
        q = rope(lin(h, l, "wq").reshape(B, T, nh, hd), cos, sin)
        k = rope(lin(h, l, "wk").reshape(B, T, nkv, hd), cos, sin)
        v = lin(h, l, "wv").reshape(B, T, nkv, hd)
        k = k.repeat_interleave(nh // nkv, dim=2)
        v = v.repeat_interleave(nh // nkv, dim=2)
        att = torch.einsum("bthd,bshd->bhts", q, k) / np.sqrt(hd)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        o = torch.einsum("bhts,bshd->bthd", att, v).reshape(B, T, D)
        x = x + lin(o, l, "wo")
        h = rms(x, P[f"layers.{l}.ffn_norm"])
        x = x + lin(torch.nn.functional.silu(lin(h, l, "w1")) * lin(h, l, "w3"), l, "w2")
    xf = rms(x, P["final_norm"])
    if c["task"] == "lm":
        cls_w = P["classifier"] if "classifier" in P else P["tok_embd"]
        logp = (xf @ cls_w.T).log_softmax(-1)
        loss, cnt = 0.0, 0
        for b in range(B):
            for t in range(lens[b] - 1):
                loss = loss - logp[b, t, toks[b, t + 1]]
                cnt += 1
    else:
        pooled = []
        p = np.float32(c["dropout"])
        keep = np.float32(1) - p
        for b in range(B):
            if c["pool"] == "last":
                pl = xf[b, lens[b] - 1]
            else:
                pl = xf[b, :lens[b]].mean(0)
            state = (c["drop_seed"] ^ ((0xD1B54A32D192ED03 * (c["first"] + b + 1)) & M64)) & M64
            u = splitmix_uniforms(state, D)
            m = torch.tensor([0.0 if ui < float(p) else float(np.float32(1) / keep) for ui in u], dtype=torch.float64)
            pooled.append(pl * m)
        z = torch.stack(pooled) @ P["head.w"].T + P["head.b"][0]
        logp = z.log_softmax(-1)
        lab = c["labels"]
        loss = -sum(logp[b, lab[b]] for b in range(B))
        cnt = B
    assert cnt == c["count"], (cnt, c["count"])
    rel_loss = abs(loss.item() - c["loss_sum"]) / abs(loss.item())
    print(f"{os.path.basename(d)}: loss torch {loss.item():.9f} llmos {c['loss_sum']:.9f} (rel {rel_loss:.2e})")
    ok = rel_loss <= 1e-5
    (loss * np.float64(np.float32(1.0 / cnt))).backward()
    worst = 0.0
    for t in c["tensors"]:
        name = t["name"]
        ours = grads[t["off"]:t["off"] + t["rows"] * t["cols"]].astype(np.float64)
        ref = P[name].grad
        trainable = t["off"] >= c["train_off"]
        if ref is None or not trainable:
            ref = np.zeros_like(ours) if not trainable else np.zeros_like(ours)
        else:
            ref = ref.numpy().reshape(-1)
        nref = np.linalg.norm(ref)
        if nref == 0:
            if np.linalg.norm(ours) != 0:
                print(f"  {name}: reference gradient is zero, llmos {np.linalg.norm(ours):.3g}")
                ok = False
            continue
        rel = np.linalg.norm(ours - ref) / nref
        worst = max(worst, rel)
        if rel > 1e-4:
            print(f"  {name}: relative gradient error {rel:.3e}")
            ok = False
    print(f"  {len(c['tensors'])} tensors, worst relative gradient error {worst:.2e}")
    return ok


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.argv[1], tmp], check=True)
        cases = sorted(os.listdir(tmp))
        assert len(cases) == 3, cases
        results = [run_case(os.path.join(tmp, cs)) for cs in cases]
    if not all(results):
        print("FAIL: llmos gradients differ from the PyTorch reference")
        return 1
    print("OK: llmos gradients match the PyTorch reference within 1e-4")
    return 0


if __name__ == "__main__":
    sys.exit(main())
