#!/usr/bin/python3
"""torch_step.py — the baseline of bin/train_bench: the same Llama shape and
batch trained in PyTorch (float32, AdamW), printing {"tok_s": ...} from the
median step time.

Usage: torch_step.py DIM HIDDEN LAYERS HEADS KV_HEADS VOCAB B T STEPS THREADS
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

dim, hidden, layers, heads, kvh, vocab, B, T, steps, threads = map(int, sys.argv[1:11])
torch.set_num_threads(threads)
torch.manual_seed(0)
hd = dim // heads


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.n1 = torch.nn.Parameter(torch.ones(dim))
        self.n2 = torch.nn.Parameter(torch.ones(dim))
        self.wq = torch.nn.Linear(dim, dim, bias=False)
        self.wk = torch.nn.Linear(dim, kvh * hd, bias=False)
        self.wv = torch.nn.Linear(dim, kvh * hd, bias=False)
        self.wo = torch.nn.Linear(dim, dim, bias=False)
        self.w1 = torch.nn.Linear(dim, hidden, bias=False)
        self.w2 = torch.nn.Linear(hidden, dim, bias=False)
        self.w3 = torch.nn.Linear(dim, hidden, bias=False)


def rms(x, w):
    return w * x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-5)


def rope(x, c, s):
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * c - b * s, a * s + b * c), -1).flatten(-2)


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, dim)
        self.layers = torch.nn.ModuleList(Layer() for _ in range(layers))
        self.nf = torch.nn.Parameter(torch.ones(dim))
        self.out = torch.nn.Linear(dim, vocab, bias=False)
        self.out.weight = self.emb.weight  # tied, like llmos's shared classifier
        self.mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        freq = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.arange(T).float()[:, None] * freq[None]
        self.c, self.s = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]

    def forward(self, tok):
        x = self.emb(tok)
        for L in self.layers:
            h = rms(x, L.n1)
            q = rope(L.wq(h).view(B, T, heads, hd), self.c, self.s).transpose(1, 2)
            k = rope(L.wk(h).view(B, T, kvh, hd), self.c, self.s).transpose(1, 2)
            v = L.wv(h).view(B, T, kvh, hd).transpose(1, 2)
            if kvh != heads:
                k = k.repeat_interleave(heads // kvh, 1)
                v = v.repeat_interleave(heads // kvh, 1)
            att = (q @ k.transpose(-1, -2)) * (hd ** -0.5)
            o = att.masked_fill(self.mask, float("-inf")).softmax(-1) @ v
            x = x + L.wo(o.transpose(1, 2).reshape(B, T, dim))
            h = rms(x, L.n2)
            x = x + L.w2(F.silu(L.w1(h)) * L.w3(h))
        return self.out(rms(x, self.nf))


m = Model()
opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.01)
tok = torch.randint(0, vocab, (B, T + 1))


def step():
    opt.zero_grad(set_to_none=False)
    logits = m(tok[:, :T])
    loss = F.cross_entropy(logits.reshape(-1, vocab), tok[:, 1:].reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()


step()  # warm-up
times = []
for _ in range(steps):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
times.sort()
med = times[len(times) // 2] if len(times) % 2 else 0.5 * (times[len(times) // 2 - 1] + times[len(times) // 2])
print(json.dumps({"tok_s": B * T / med, "params": sum(p.numel() for p in m.parameters())}))
