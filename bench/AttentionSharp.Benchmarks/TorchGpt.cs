using AttentionSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using F = TorchSharp.torch.nn.functional;

namespace AttentionSharp.Benchmarks;

/// <summary>
/// The same GPT as <see cref="Gpt"/> written in TorchSharp, for side-by-side runs: pre-LN blocks, GELU in its tanh
/// form, learned positions, the LM head tied to wte, dropout 0, torch's scaled_dot_product_attention (causal) and
/// torch.optim.AdamW. Its parameters start as copies of one of our models, so both compute the same loss.
/// Letters: B batch, T time, C width, NH heads, HS head size, V vocabulary.
/// </summary>
internal sealed class TorchGpt : IDisposable
{
    readonly GptConfig _config;
    readonly Dictionary<string, Parameter> _p;
    readonly torch.optim.Optimizer _optimizer;

    public TorchGpt(Gpt source, float lr, float weightDecay)
    {
        if (source.Config.PositionalEncoding != Nn.PositionalEncodingKind.Learned || !source.Config.Bias)
            throw new ArgumentException("The TorchSharp peer implements GPT-2's layout only: learned positions and biases.");
        _config = source.Config;
        _p = source.NamedParameters().ToDictionary(
            e => e.Name,
            e => new Parameter(torch.tensor(e.Parameter.ToArray(), e.Parameter.Shape.ToArray().Select(d => (long)d).ToArray()), requires_grad: true));
        _optimizer = torch.optim.AdamW(_p.Values, lr, 0.9, 0.999, 1e-8, weightDecay);
    }

    /// <summary>Mean next-token cross-entropy of (B, T) ids against (B, T) targets.</summary>
    public torch.Tensor Loss(torch.Tensor ids, torch.Tensor targets)
    {
        long b = ids.shape[0], t = ids.shape[1];
        int c = _config.Width, nh = _config.Heads, hs = c / nh;
        long[] norm = [c];
        using var positions = torch.arange(t, dtype: torch.int64);
        var x = _p["wte.weight"].index_select(0, ids.view(b * t)).view(b, t, c) + _p["wpe.weight"].index_select(0, positions); // (B, T, C)
        for (int l = 0; l < _config.Layers; l++)
        {
            string h = $"h.{l}.";
            var a = F.layer_norm(x, norm, _p[h + "ln_1.weight"], _p[h + "ln_1.bias"], 1e-5);
            var qkv = F.linear(a, _p[h + "attn.c_attn.weight"], _p[h + "attn.c_attn.bias"]).split(c, 2); // 3 × (B, T, C)
            var q = qkv[0].view(b, t, nh, hs).transpose(1, 2);                                            // (B, NH, T, HS)
            var k = qkv[1].view(b, t, nh, hs).transpose(1, 2);
            var v = qkv[2].view(b, t, nh, hs).transpose(1, 2);
            // TorchSharp 0.107 spells the causal flag is_casual.
            var y = F.scaled_dot_product_attention(q, k, v, is_casual: true).transpose(1, 2).contiguous().view(b, t, c);
            x = x + F.linear(y, _p[h + "attn.c_proj.weight"], _p[h + "attn.c_proj.bias"]);
            var m = F.layer_norm(x, norm, _p[h + "ln_2.weight"], _p[h + "ln_2.bias"], 1e-5);
            m = F.gelu(F.linear(m, _p[h + "mlp.c_fc.weight"], _p[h + "mlp.c_fc.bias"]), GELU.Approximate.tanh);
            x = x + F.linear(m, _p[h + "mlp.c_proj.weight"], _p[h + "mlp.c_proj.bias"]);
        }
        x = F.layer_norm(x, norm, _p["ln_f.weight"], _p["ln_f.bias"], 1e-5);
        var logits = F.linear(x, _p["wte.weight"]);                                                     // (B, T, V)
        return F.cross_entropy(logits.view(b * t, _config.VocabSize), targets.view(b * t));
    }

    /// <summary>One training step as ours: zero the gradients, forward, backward, clip the norm to 1, AdamW; returns the loss.</summary>
    public float Step(torch.Tensor ids, torch.Tensor targets)
    {
        using var scope = torch.NewDisposeScope();
        _optimizer.zero_grad();
        var loss = Loss(ids, targets);
        loss.backward();
        torch.nn.utils.clip_grad_norm_(_p.Values, 1.0);
        _optimizer.step();
        return loss.item<float>();
    }

    public void Dispose()
    {
        _optimizer.Dispose();
        foreach (var p in _p.Values) p.Dispose();
    }
}
