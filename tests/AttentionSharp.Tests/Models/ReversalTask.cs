namespace AttentionSharp.Tests.Models;

/// <summary>The toy task the sequence-to-sequence tests learn: reverse a few random tokens.</summary>
internal static class ReversalTask
{
    /// <summary>
    /// A batch of <paramref name="batch"/> sources of <paramref name="length"/> random ids in [3, vocab), the decoder
    /// inputs BOS + the reversed source, and the targets: the reversed source + EOS (ids 1 and 2).
    /// </summary>
    public static (int[] Source, int[] Input, int[] Target) Batch(Generator rng, int batch, int length, int vocab)
    {
        const int bos = 1, eos = 2;
        var source = new int[batch * length]; var input = new int[batch * (length + 1)]; var target = new int[input.Length];
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < length; t++) source[b * length + t] = 3 + rng.NextInt(vocab - 3);
            input[b * (length + 1)] = bos;
            for (int t = 0; t < length; t++)
            {
                int reversed = source[b * length + length - 1 - t];
                target[b * (length + 1) + t] = reversed;
                input[b * (length + 1) + t + 1] = reversed;
            }
            target[b * (length + 1) + length] = eos;
        }
        return (source, input, target);
    }
}
