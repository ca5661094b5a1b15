using System.CommandLine;
using AttentionSharp.Autograd;
using AttentionSharp.Visualization;

namespace AttentionSharp.Cli;

/// <summary>
/// `attn viz`: a checkpoint's attention on one input, as a PNG grid of layer × head maps (attention.png) and one
/// self-contained HTML viewer (attention.html); for an image model also the class token's attention rollout
/// (rollout.png). A GPT language model reads --text; task checkpoints say in their config.json what they read.
/// </summary>
static class VizCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint or run directory written by attn train.", Required = true };
        var text = new Option<string?>("--text") { Description = "The text (a sentence, a word) whose attention to show." };
        var image = new Option<string?>("--image") { Description = "The image file whose attention to show (image models)." };
        var output = new Option<string>("--out") { Description = "Directory for attention.png, attention.html (and rollout.png for images).", Required = true };
        var cache = new Option<string?>("--cache") { Description = "Data cache directory." };
        var command = new Command("viz", "Draw a checkpoint's attention on a text or an image: PNG maps and an HTML viewer.") { checkpoint, text, image, output, cache };
        command.SetAction(r => CliErrors.Run(() =>
        {
            string dir = r.GetValue(checkpoint)!;
            var input = (r.GetValue(text), r.GetValue(image)) switch
            {
                ({ } t, null) => new VizInput(t, null),
                (null, { } i) => new VizInput(null, i),
                (null, null) => throw new ArgumentException("Give the input to look at: --text TEXT or --image FILE."),
                _ => throw new ArgumentException("Give either --text or --image, not both."),
            };
            var view = Tasks.TaskRegistry.TaskOf(dir) is { } taskName
                ? Tasks.TaskRegistry.Viz.TryGetValue(taskName, out var build)
                    ? build(dir, input, r.GetValue(cache))
                    : throw new IO.CheckpointException($"Checkpoint '{dir}' is for task '{taskName}', which attn viz cannot draw.")
                : LanguageModel(dir, input);
            Write(view, r.GetValue(output)!);
            return 0;
        }));
        return command;
    }

    /// <summary>The attention of a GPT checkpoint on a text: one map per layer, the text's tokens on both sides.</summary>
    static AttentionView LanguageModel(string dir, VizInput input)
    {
        if (input.Text is not { } text) throw new ArgumentException($"Checkpoint '{dir}' is a language model: it reads --text, not --image.");
        var (model, tokenizer) = Training.Tasks.GptCheckpoint.LoadForInference(dir);
        var ids = tokenizer.Encode(text);
        if (ids.Length == 0) throw new ArgumentException("--text is empty: there is nothing to attend over.");
        if (ids.Length > model.Config.ContextLength)
            throw new ArgumentException($"The text is {ids.Length} tokens long but the model's context is {model.Config.ContextLength}; give a shorter text.");
        model.Eval();
        using var probe = AttentionProbe.Start();
        using (GradMode.NoGrad()) model.Forward(ids, 1, ids.Length).Dispose();
        var tokens = ids.Select(id => tokenizer.Decode([id])).ToList();
        return AttentionView.SelfAttention($"GPT attention on \"{Shorten(text)}\" ({model.Config.Layers} layers × {model.Config.Heads} heads)", probe.Records, tokens);
    }

    /// <summary>Writes the grid, the viewer and, for images, the rollout; says where.</summary>
    public static void Write(AttentionView view, string outDir)
    {
        Directory.CreateDirectory(outDir);
        var files = new List<string> { Path.Combine(outDir, "attention.png"), Path.Combine(outDir, "attention.html") };
        AttentionGrid.Save(files[0], view);
        AttentionHtml.Save(files[1], view);
        if (view.Image is not null)
        {
            files.Add(Path.Combine(outDir, "rollout.png"));
            AttentionGrid.SaveRollout(files[2], view);
        }
        Console.WriteLine($"{view.Layers.Count} attention layers × {view.Layers.Max(l => l.HeadCount)} heads: wrote {string.Join(", ", files)}");
    }

    internal static string Shorten(string text) => text.Length <= 60 ? text : text[..57] + "…";
}

/// <summary>What attn viz looks at: a text or an image file (exactly one is set).</summary>
sealed record VizInput(string? Text, string? ImageFile);
