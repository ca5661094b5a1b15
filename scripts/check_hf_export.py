#!/usr/bin/python3
"""Checks a model exported by `attn export --hf DIR` against a plain PyTorch rebuild of its Hugging Face forward pass.

Run with Debian's interpreter, which has python3-torch:
    /usr/bin/python3 scripts/check_hf_export.py DIR
It reads DIR/config.json and DIR/model.safetensors as Hugging Face would and picks the model by config.json's
model_type:
- "gpt2": GPT2LMHeadModel (Conv1D weights stored (in, out), names under "transformer.", the head tied to wte);
- "bert": BertForMaskedLM (names under "bert." and "cls.predictions.", Linear weights (out, in), post-LN layers with
  erf GELU, the decoder tied to the word embeddings, the additive attention mask built as BertModel builds it).
It runs the inputs of DIR/attn_reference_logits.json (ids; for BERT also token_type_ids and attention_mask) through the
forward pass written out below and compares with the logits AttentionSharp computed for the same inputs. Exits 1 when
they differ by more than 1e-4. Only torch and the standard library are used.
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


def bert_mlm_forward(config, weights, ids, token_type_ids, attention_mask):
    """BertForMaskedLM's forward pass (evaluation mode) for one sequence, from Hugging Face-layout weights: logits (T, V)."""
    w = {k[len("bert."):] if k.startswith("bert.") else k: v.float() for k, v in weights.items()}
    if config.get("hidden_act", "gelu") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("only hidden_act 'gelu' and position_embedding_type 'absolute' are rebuilt here")
    c, nh, layers = config["hidden_size"], config["num_attention_heads"], config["num_hidden_layers"]
    eps = config.get("layer_norm_eps", 1e-12)
    hs = c // nh
    ids = torch.as_tensor(ids, dtype=torch.long)
    t = ids.shape[0]
    linear = lambda x, name: F.linear(x, w[name + ".weight"], w[name + ".bias"])        # nn.Linear: x·Wᵀ + b, W (out, in)
    norm = lambda x, name: F.layer_norm(x, (c,), w[name + ".weight"], w[name + ".bias"], eps)
    # BertEmbeddings: word + token type + absolute position, LayerNorm
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][torch.as_tensor(token_type_ids)]
         + w["embeddings.position_embeddings.weight"][:t])
    x = norm(x, "embeddings.LayerNorm")
    # BertModel's extended attention mask: 0 where attended, the dtype's lowest value where masked, added to the scores
    mask = (1.0 - torch.as_tensor(attention_mask, dtype=torch.float32)) * torch.finfo(torch.float32).min
    for i in range(layers):
        p = f"encoder.layer.{i}."
        q, k, v = (linear(x, p + "attention.self." + n).reshape(t, nh, hs).transpose(0, 1) for n in ("query", "key", "value"))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hs) + mask
        y = (scores.softmax(-1) @ v).transpose(0, 1).reshape(t, c)
        x = norm(linear(y, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")      # BertSelfOutput
        h = F.gelu(linear(x, p + "intermediate.dense"))                                              # BertIntermediate, erf GELU
        x = norm(linear(h, p + "output.dense") + x, p + "output.LayerNorm")                          # BertOutput
    # BertLMPredictionHead: transform (dense, GELU, LayerNorm), then the decoder tied to the word embeddings
    h = norm(F.gelu(linear(x, "cls.predictions.transform.dense")), "cls.predictions.transform.LayerNorm")
    decoder = w.get("cls.predictions.decoder.weight", w["embeddings.word_embeddings.weight"])
    bias = w.get("cls.predictions.bias", w.get("cls.predictions.decoder.bias"))
    return h @ decoder.T + bias


def main(directory):
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(directory, "attn_reference_logits.json")) as f:
        reference = json.load(f)
    weights = load_safetensors(os.path.join(directory, "model.safetensors"))
    model_type = config.get("model_type")
    if model_type == "gpt2":
        logits = gpt2_forward(config, weights, reference["ids"])
    elif model_type == "bert":
        logits = bert_mlm_forward(config, weights, reference["ids"], reference["token_type_ids"], reference["attention_mask"])
    else:
        print(f"{directory}/config.json: model_type {model_type!r} is neither gpt2 nor bert")
        return 2
    ours = torch.tensor(reference["logits"], dtype=torch.float32).reshape(logits.shape)
    diff = (logits - ours).abs().max().item()
    print(f"{model_type}: {len(reference['ids'])} tokens, vocabulary {logits.shape[1]}: max |PyTorch - AttentionSharp| = {diff:.3e}")
    return 0 if diff <= 1e-4 else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
