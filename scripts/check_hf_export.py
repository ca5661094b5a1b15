#!/usr/bin/python3
"""Checks a GPT exported by `attn export --hf DIR` against a plain PyTorch rebuild of GPT-2's forward pass.

Run with Debian's interpreter, which has python3-torch:
    /usr/bin/python3 scripts/check_hf_export.py DIR
It reads DIR/config.json and DIR/model.safetensors as Hugging Face's GPT2LMHeadModel would (Conv1D weights stored
(in, out), names under "transformer.", the head tied to wte), runs the token ids of DIR/attn_reference_logits.json
through GPT-2's forward pass written out below, and compares with the logits AttentionSharp computed for the same ids.
Exits 1 when they differ by more than 1e-4. Only torch and the standard library are used.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32}


def load_safetensors(path):
    """Reads a safetensors file into {name: tensor}."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        t = torch.frombuffer(bytearray(data[start:end]), dtype=DTYPES[entry["dtype"]]) if end > start else torch.empty(0, dtype=DTYPES[entry["dtype"]])
        tensors[name] = t.reshape(entry["shape"]).clone()
    return tensors


def gpt2_forward(config, weights, ids):
    """GPT-2's forward pass for one sequence of ids, from Hugging Face-layout weights: logits (T, V)."""
    w = {k[len("transformer."):] if k.startswith("transformer.") else k: v.float() for k, v in weights.items()}
    c, nh, layers = config["n_embd"], config["n_head"], config["n_layer"]
    eps = config.get("layer_norm_epsilon", 1e-5)
    hs = c // nh
    ids = torch.as_tensor(ids, dtype=torch.long)
    t = ids.shape[0]
    x = w["wte.weight"][ids] + w["wpe.weight"][:t]
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    for i in range(layers):
        p = f"h.{i}."
        h = F.layer_norm(x, (c,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]          # Conv1D: x·W with W (in, out)
        q, k, v = (z.reshape(t, nh, hs).transpose(0, 1) for z in qkv.split(c, dim=-1))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hs)
        scores = scores.masked_fill(~causal, float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(0, 1).reshape(t, c)
        x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = F.layer_norm(x, (c,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        m = F.gelu(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"], approximate="tanh")   # gelu_new
        x = x + m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (c,), w["ln_f.weight"], w["ln_f.bias"], eps)
    return x @ w["wte.weight"].T                                                    # the head tied to wte


def main(directory):
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(directory, "attn_reference_logits.json")) as f:
        reference = json.load(f)
    logits = gpt2_forward(config, load_safetensors(os.path.join(directory, "model.safetensors")), reference["ids"])
    ours = torch.tensor(reference["logits"], dtype=torch.float32).reshape(logits.shape)
    diff = (logits - ours).abs().max().item()
    print(f"{len(reference['ids'])} tokens, vocabulary {logits.shape[1]}: max |PyTorch - AttentionSharp| = {diff:.3e}")
    return 0 if diff <= 1e-4 else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
