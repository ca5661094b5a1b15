using AttentionSharp.Data;
using AttentionSharp.Generation;
using AttentionSharp.Models;

namespace AttentionSharp.Cli;

/// <summary>
/// A loaded model and the options of one `attn sample` call: continues prompts, prints samples. With a
/// <paramref name="gpu"/> copy of the model (--device cuda) the tokens are drawn from its logits
/// (<see cref="Gpu.GpuTextGenerator"/>), with the same sampling and stop rules.
/// </summary>
sealed class SampleSession(Gpt model, ITokenizer tokenizer, SamplingOptions options, int tokens, ulong seed, int samples,
                     string[] stops, Gpu.GpuGpt? gpu = null)
{
    readonly StopConditions _stop = new()
    {
        Strings = stops, EndOfText = EndOfText.Find(tokenizer.Encode, tokenizer.Decode), Decode = tokenizer.Decode,
    };

    /// <summary>
    /// Continues each prompt <c>samples</c> times. Sample s of every prompt draws from the s-th generator of the seed,
    /// so a prompt gives the same samples alone or among others.
    /// </summary>
    public void Print(IReadOnlyList<SamplePrompts.Prompt> prompts) =>
        Print(prompts, [.. prompts.SelectMany(_ => TextGenerator.SampleGenerators(seed, samples))]);

    /// <summary>Streams a lone sample as it is drawn; prints several after the batch, each under a header.</summary>
    void Print(IReadOnlyList<SamplePrompts.Prompt> prompts, Generator[] generators)
    {
        if (prompts.Count == 1 && samples == 1)
        {
            Console.Write(prompts[0].Text);
            Generate([prompts[0].Ids], generators, (_, text) => Console.Write(text));
            Console.WriteLine();
            return;
        }
        int[][] rows = [.. prompts.SelectMany(p => Enumerable.Repeat(p.Ids, samples))];
        var results = Generate(rows, generators, null);
        for (int row = 0; row < results.Length; row++)
        {
            int p = row / samples, s = row % samples;
            string header = prompts.Count > 1 && samples > 1 ? $"prompt {p + 1}, sample {s + 1}"
                          : prompts.Count > 1 ? $"prompt {p + 1}" : $"sample {s + 1}";
            Console.WriteLine($"--- {header} ---");
            Console.WriteLine(prompts[p].Text + results[row].Text);
        }
    }

    GeneratedSequence[] Generate(int[][] rows, Generator[] generators, Action<int, string>? onText) => gpu is null
        ? TextGenerator.GenerateBatch(model, rows, tokens, options, generators, _stop, onText: onText)
        : Gpu.GpuTextGenerator.GenerateBatch(gpu, rows, tokens, options, generators, _stop, onText);

    /// <summary>
    /// Reads a line, prints its continuation, repeats until end of input, an empty line or "exit". The generators
    /// go on from one prompt to the next, so a session is reproducible from its seed and a repeated line differs.
    /// </summary>
    public int Interactive(TextReader input)
    {
        var generators = TextGenerator.SampleGenerators(seed, samples);
        int context = model.Config.ContextLength;
        while (true)
        {
            if (!Console.IsInputRedirected) Console.Write("> ");
            var line = input.ReadLine();
            if (line is null || line.Trim() is "" or "exit") return 0;
            SamplePrompts.Prompt prompt;
            try { prompt = SamplePrompts.Encode(line, "the prompt", tokenizer, context); }
            catch (ArgumentException e) { Console.Error.WriteLine($"error: {e.Message}"); continue; }
            Print([prompt], generators);
            Console.Out.Flush();
        }
    }
}
