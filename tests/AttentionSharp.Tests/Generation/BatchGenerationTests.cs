using AttentionSharp.Autograd;
using AttentionSharp.Generation;
using AttentionSharp.Models;
using AttentionSharp.Nn;

namespace AttentionSharp.Tests.Generation;

/// <summary>
/// TextGenerator.GenerateBatch on a tiny random GPT: batched rows equal one-at-a-time decoding (prompts of different
/// lengths, past the context, every cache kind), several samples from one seed, stop strings and end-of-text.
/// </summary>
public class BatchGenerationTests
{
    const int Vocab = 12;
    const int Context = 16;

    /// <summary>Each id decodes to its own piece, several longer than one character, so stops can span tokens.</summary>
    static readonly string[] Pieces = ["a", "b", "c", "ab", "ca", " ", "x", "yz", "zz", "bc", "q", "<|endoftext|>"];

    static string Decode(ReadOnlySpan<int> ids)
    {
        var text = new System.Text.StringBuilder();
        foreach (int id in ids) text.Append(Pieces[id]);
        return text.ToString();
    }

    /// <summary>A GPT with weights drawn wide (std 0.5): its distributions are far from uniform and rows differ.</summary>
    static Gpt Model(PositionalEncodingKind positions = PositionalEncodingKind.Learned,
                     AttentionPattern? attention = null)
    {
        var config = new GptConfig
        {
            VocabSize = Vocab, ContextLength = Context, Layers = 2, Heads = 2, Width = 16,
            PositionalEncoding = positions, Attention = attention ?? AttentionPattern.Full,
        };
        var model = new Gpt(config, new Generator(11));
        var rng = new Generator(12);
        using (GradMode.NoGrad())
            foreach (var p in model.Parameters().Where(p => p.Rank >= 2))
            {
                using var w = Tensor.Normal(rng, 0f, 0.5f, p.Shape);
                p.CopyFrom_(w);
            }
        return model;
    }

    static readonly int[][] Prompts = [[1, 2, 3], [4], [5, 6, 7, 8, 9], [0, 1, 2], [3, 3, 3, 3, 3, 3, 3, 3], [7, 7]];

    static readonly SamplingOptions Greedy = new() { Temperature = 0 };
    static readonly SamplingOptions Sampled = new()
    {
        Temperature = 1f, TopK = 8, TopP = 0.95f, RepetitionPenalty = 1.2f,
    };

    static Generator[] Seeds(int count, ulong first) =>
        [.. Enumerable.Range(0, count).Select(i => new Generator(first + (ulong)i))];

    /// <summary>Each prompt alone through <see cref="TextGenerator.Generate"/>, a fresh generator of the seed.</summary>
    static int[][] OneAtATime(Gpt model, int[][] prompts, int tokens, SamplingOptions options, ulong firstSeed) =>
        [.. prompts.Select((p, i) =>
            TextGenerator.Generate(model, p, tokens, options, new Generator(firstSeed + (ulong)i))[p.Length..])];

    static void AssertRowsEqual(int[][] expected, GeneratedSequence[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i].SequenceEqual(actual[i].Tokens),
                $"{what}, row {i}: expected [{string.Join(", ", expected[i])}], "
                + $"got [{string.Join(", ", actual[i].Tokens)}]");
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(1f)]
    public void BatchedRowsOfDifferentLengthsEqualOneAtATimeDecoding(float temperature)
    {
        var model = Model();
        var options = temperature == 0 ? Greedy : Sampled;
        // 40 tokens run past the context of 16, so the cache is rebuilt from the last half-context in the batch too.
        foreach (int tokens in new[] { 1, 9, 40 })
        {
            var expected = OneAtATime(model, Prompts, tokens, options, 100);
            var batched = TextGenerator.GenerateBatch(model, Prompts, tokens, options, Seeds(Prompts.Length, 100));
            AssertRowsEqual(expected, batched, $"temperature {temperature}, {tokens} tokens");
            Assert.All(batched, r => Assert.Equal(StopReason.Length, r.Reason));
        }
    }

    [Theory]
    [InlineData(PositionalEncodingKind.Rotary, AttentionKind.Full)]
    [InlineData(PositionalEncodingKind.Alibi, AttentionKind.Full)]
    [InlineData(PositionalEncodingKind.Sinusoidal, AttentionKind.SlidingWindow)]
    [InlineData(PositionalEncodingKind.Learned, AttentionKind.Linear)]
    public void EveryCacheKindJoinsRowsExactly(PositionalEncodingKind positions, AttentionKind kind)
    {
        var attention = kind switch
        {
            AttentionKind.SlidingWindow => AttentionPattern.Sliding(4),
            AttentionKind.Linear => AttentionPattern.LinearAttention,
            _ => AttentionPattern.Full,
        };
        var model = Model(positions, attention);
        var expected = OneAtATime(model, Prompts, 20, Sampled, 7);
        var batched = TextGenerator.GenerateBatch(model, Prompts, 20, Sampled, Seeds(Prompts.Length, 7));
        AssertRowsEqual(expected, batched, $"{positions}, {kind}");
    }

    [Fact]
    public void SamplesFromOneSeedAreReproducibleAndDiffer()
    {
        var model = Model();
        int[][] prompts = [.. Enumerable.Repeat(new[] { 1, 2 }, 4)];
        var a = TextGenerator.GenerateBatch(model, prompts, 12, Sampled, TextGenerator.SampleGenerators(5, 4));
        var b = TextGenerator.GenerateBatch(model, prompts, 12, Sampled, TextGenerator.SampleGenerators(5, 4));
        for (int i = 0; i < a.Length; i++) Assert.Equal(a[i].Tokens, b[i].Tokens);
        Assert.Equal(4, a.Select(r => string.Join(",", r.Tokens)).Distinct().Count());
        // The first sample is the one a single generator of the seed draws.
        Assert.Equal(TextGenerator.Generate(model, [1, 2], 12, Sampled, new Generator(5))[2..], a[0].Tokens);
    }

    [Fact]
    public void AStopStringSpanningTokensEndsTheRowAndIsNotPartOfItsText()
    {
        var model = Model();
        var stop = new StopConditions { Decode = Decode };
        var full = TextGenerator.GenerateBatch(model, [Prompts[0]], 30, Sampled, Seeds(1, 3), stop)[0];
        string text = full.Text!;
        Assert.Equal(Decode(full.Tokens), text);
        // A stop from the middle of the fifth token's text to the middle of a later one: several tokens, cut inside both.
        int from = Decode(full.Tokens[..4]).Length + Pieces[full.Tokens[4]].Length / 2;
        int to = Decode(full.Tokens[..8]).Length - 1;
        Assert.True(to - from >= 2, $"the continuation's text is too short: '{text}'");
        string stopString = text[from..to];
        foreach (var strings in new[] { new[] { stopString }, new[] { "never there", stopString } })
        {
            var streamed = new System.Text.StringBuilder();
            var stopped = TextGenerator.GenerateBatch(model, [Prompts[0]], 30, Sampled, Seeds(1, 3),
                stop with { Strings = strings }, onText: (_, s) => streamed.Append(s))[0];
            int at = text.IndexOf(stopString, StringComparison.Ordinal);
            int last = Enumerable.Range(1, full.Tokens.Length)
                .First(k => Decode(full.Tokens[..k]).Contains(stopString, StringComparison.Ordinal));
            Assert.Equal(StopReason.StopString, stopped.Reason);
            Assert.Equal(stopString, stopped.Stop);
            Assert.Equal(text[..at], stopped.Text);
            Assert.Equal(full.Tokens[..last], stopped.Tokens);
            Assert.Equal(text[..at], streamed.ToString());
        }
    }

    [Fact]
    public void AOneTokenStopEndsOnlyItsRow()
    {
        var model = Model();
        var stop = new StopConditions { Decode = Decode };
        var full = TextGenerator.GenerateBatch(model, Prompts, 20, Greedy, Seeds(Prompts.Length, 1), stop);
        string stopString = Pieces[full[2].Tokens[5]];
        var stopped = TextGenerator.GenerateBatch(model, Prompts, 20, Greedy, Seeds(Prompts.Length, 1),
                                                  stop with { Strings = [stopString] });
        for (int i = 0; i < Prompts.Length; i++)
        {
            int at = full[i].Text!.IndexOf(stopString, StringComparison.Ordinal);
            Assert.Equal(at < 0 ? full[i].Text : full[i].Text![..at], stopped[i].Text);
            Assert.Equal(at < 0 ? StopReason.Length : StopReason.StopString, stopped[i].Reason);
            Assert.Equal(full[i].Tokens[..stopped[i].Tokens.Length], stopped[i].Tokens);
        }
        Assert.Equal(StopReason.StopString, stopped[2].Reason);
    }

    [Fact]
    public void EndOfTextEndsARowAndStaysOutOfItsText()
    {
        var model = Model();
        var full = TextGenerator.GenerateBatch(model, Prompts, 20, Sampled, Seeds(Prompts.Length, 9),
                                               new StopConditions { Decode = Decode });
        int endOfText = full[0].Tokens[3];
        var stop = new StopConditions { Decode = Decode, EndOfText = [endOfText] };
        var stopped = TextGenerator.GenerateBatch(model, Prompts, 20, Sampled, Seeds(Prompts.Length, 9), stop);
        for (int i = 0; i < Prompts.Length; i++)
        {
            int at = Array.IndexOf(full[i].Tokens, endOfText);
            var expected = at < 0 ? full[i].Tokens : full[i].Tokens[..(at + 1)];
            Assert.Equal(expected, stopped[i].Tokens);
            Assert.Equal(at < 0 ? StopReason.Length : StopReason.EndOfText, stopped[i].Reason);
            Assert.Equal(Decode(at < 0 ? expected : expected[..^1]), stopped[i].Text);
        }
        Assert.Equal(StopReason.EndOfText, stopped[0].Reason);
        // Pieces spell "<|endoftext|>" as id 11; other markers take two ids here.
        Assert.Equal([11], EndOfText.Find(text => Array.IndexOf(Pieces, text) is >= 0 and var id ? [id] : [0, 0], Decode));
    }

    [Fact]
    public void BadArgumentsAreRefusedByName()
    {
        var model = Model();
        Assert.Contains("Prompt 1", Assert.Throws<ArgumentException>(() =>
            TextGenerator.GenerateBatch(model, [[1], []], 3, Greedy, Seeds(2, 0))).Message);
        Assert.Contains("one generator per prompt", Assert.Throws<ArgumentException>(() =>
            TextGenerator.GenerateBatch(model, [[1], [2]], 3, Greedy, Seeds(1, 0))).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            TextGenerator.GenerateBatch(model, [[1]], -1, Greedy, Seeds(1, 0)));
        Assert.Contains("decoder", Assert.Throws<ArgumentException>(() =>
            TextGenerator.GenerateBatch(model, [[1]], 3, Greedy, Seeds(1, 0),
                                        new StopConditions { Strings = ["a"] })).Message);
        Assert.Contains("stop string", Assert.Throws<ArgumentException>(() =>
            new StopConditions { Strings = [""], Decode = Decode }.Validate()).Message);
        var none = TextGenerator.GenerateBatch(model, Prompts, 0, Greedy, Seeds(Prompts.Length, 0));
        Assert.All(none, r => Assert.Empty(r.Tokens));
    }
}
