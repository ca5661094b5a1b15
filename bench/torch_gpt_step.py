#!/usr/bin/env python3
"""The PyTorch peer of `attn bench train --device cuda`: one GPT-2 124M training step on the GPU, timed the same way.

The model is AttentionSharp's GPT (and nanoGPT's): learned positions, pre-LN blocks, GELU (tanh form), the head tied
to wte, biases, dropout 0, V = 50257. The step is what attn's is: zero the gradients, forward, cross-entropy, backward,
clip the global norm to 1, AdamW (lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.1 on rank >= 2). Eager mode,
fp32, TF32 off for matmuls and cuDNN; attention through F.scaled_dot_product_attention (fp32 has no flash kernel, so
PyTorch picks its memory-efficient or math kernel), or written out with --attention math.

Timing: the median of --steps steps after --warmups, each from its start until torch.cuda.synchronize() returns; the
loss and the gradient norm are read back inside the step as attn does. MFU uses attn's count, (6*N + 12*L*C*T) FLOPs
per token with N the parameters without wpe, over the FP32 peak given by --peak-gflops (gpu-check.sh passes attn's:
multiprocessors x clock x 128 x 2). Prints one JSON object, and writes it to --json.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c, nh, attention):
        super().__init__()
        self.nh, self.attention = nh, attention
        self.ln_1 = nn.LayerNorm(c, eps=1e-5)
        self.c_attn = nn.Linear(c, 3 * c)
        self.c_proj = nn.Linear(c, c)
        self.ln_2 = nn.LayerNorm(c, eps=1e-5)
        self.c_fc = nn.Linear(c, 4 * c)
        self.mlp_proj = nn.Linear(4 * c, c)

    def attn(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)                                # (B, T, C) each
        q, k, v = (z.view(b, t, self.nh, c // self.nh).transpose(1, 2) for z in (q, k, v))   # (B, NH, T, HS)
        if self.attention == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            s = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
            s = s.masked_fill(torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
            y = F.softmax(s, dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, layers, heads, width, context, vocab, attention):
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(context, width)
        self.h = nn.ModuleList(Block(width, heads, attention) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width, eps=1e-5)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith("c_proj.weight") or name.endswith("mlp_proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, ids, targets):
        t = ids.size(1)
        x = self.wte(ids) + self.wpe(torch.arange(t, device=ids.device))
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()                             # (B, T, V), tied to wte
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmups", type=int, default=3)
    parser.add_argument("--attention", choices=["sdpa", "math"], default="sdpa")
    parser.add_argument("--peak-gflops", type=float, default=None, help="FP32 peak for MFU (attn's figure)")
    parser.add_argument("--json", default=None, help="also write the result to this file")
    a = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("error: PyTorch sees no CUDA device.")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    device = torch.device("cuda")
    torch.manual_seed(42)
    model = Gpt(a.layers, a.heads, a.width, a.context, a.vocab, a.attention).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                                  lr=1e-4, betas=(0.9, 0.999), eps=1e-8)
    g = torch.Generator(device="cpu").manual_seed(1234)
    batches = [(torch.randint(a.vocab, (a.batch, a.context), generator=g).to(device),
                torch.randint(a.vocab, (a.batch, a.context), generator=g).to(device)) for _ in range(4)]

    first_loss = None

    def step(i):
        nonlocal first_loss
        x, y = batches[i % len(batches)]
        optimizer.zero_grad(set_to_none=True)
        loss = model(x, y)
        value = loss.item()
        if first_loss is None:
            first_loss = value
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item()
        optimizer.step()

    for i in range(a.warmups):
        step(i)
    torch.cuda.synchronize()
    times = []
    for i in range(a.steps):
        start = time.perf_counter()
        step(a.warmups + i)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    ms = statistics.median(times) * 1e3
    tokens = a.batch * a.context
    n = sum(p.numel() for p in model.parameters()) - model.wpe.weight.numel()
    flops = (6.0 * n + 12.0 * a.layers * a.width * a.context) * tokens
    result = {
        "peer": f"PyTorch {torch.__version__} eager fp32, TF32 off, attention {a.attention}",
        "device": torch.cuda.get_device_name(0),
        "multiprocessors": torch.cuda.get_device_properties(0).multi_processor_count,
        "config": f"L{a.layers} NH{a.heads} C{a.width} T{a.context} B{a.batch} V{a.vocab}",
        "ms": round(ms, 3),
        "tokens_per_s": round(tokens / (ms / 1e3), 1),
        "step_gflop": round(flops / 1e9, 1),
        "peak_gflops": a.peak_gflops,
        "mfu": round(flops / (ms / 1e3) / (a.peak_gflops * 1e9), 4) if a.peak_gflops else None,
        "first_loss": first_loss,
        "max_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1),
        "steps": a.steps,
        "timing": "median step, from its start until torch.cuda.synchronize() returned (loss and norm read inside)",
    }
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
