using System.CommandLine;
using System.Text.Json.Nodes;
using AttentionSharp.IO;

namespace AttentionSharp.Cli;

/// <summary>
/// `attn export --checkpoint DIR --hf OUTDIR`: a GPT checkpoint in Hugging Face's GPT-2 layout (config.json,
/// model.safetensors), plus our tokenizer as attn_tokenizer.json so `attn import` can bring the model back whole.
/// `attn export --checkpoint DIR --onnx FILE`: the same model as an ONNX graph (opset 17) that ONNX Runtime runs.
/// `attn import --hf DIR --out DIR`: the reverse, into a checkpoint attn sample and attn eval read.
/// </summary>
static class ExportCommand
{
    /// <summary>Our tokenizer, saved beside an exported model (Hugging Face's tokenizer files describe other tokenizers).</summary>
    public const string TokenizerFile = "attn_tokenizer.json";

    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "GPT checkpoint or run directory written by attn train.", Required = true };
        var hf = new Option<string>("--hf") { Description = "Directory to write the Hugging Face GPT-2 files into." };
        var onnx = new Option<string>("--onnx") { Description = "ONNX file to write (opset 17; input input_ids (batch, sequence), output logits)." };
        var command = new Command("export", "Export a GPT checkpoint in Hugging Face's GPT-2 layout (safetensors and config.json) or as ONNX.") { checkpoint, hf, onnx };
        command.SetAction(r => CliErrors.Run(() =>
        {
            string dir = r.GetValue(checkpoint)!;
            string? outDir = r.GetValue(hf), onnxFile = r.GetValue(onnx);
            if ((outDir is null) == (onnxFile is null))
                throw new ArgumentException("attn export needs exactly one of --hf OUTDIR or --onnx FILE.");
            if (Tasks.TaskRegistry.TaskOf(dir) is { } task)
                throw new ArgumentException($"Checkpoint '{dir}' is a {task} model; export handles GPT language models.");
            var (model, tokenizer) = SampleCommand.Load(dir);
            if (onnxFile is not null)
            {
                IO.Onnx.GptOnnx.Export(model, onnxFile);
                Console.WriteLine($"Wrote {onnxFile}: GPT with {model.Config.Layers} layers, {model.Config.Heads} heads, width {model.Config.Width}, " +
                                  $"vocabulary {model.Config.VocabSize}, context {model.Config.ContextLength}; input '{IO.Onnx.GptOnnx.InputName}' (batch, sequence) int64, output '{IO.Onnx.GptOnnx.OutputName}'.");
                return 0;
            }
            outDir ??= "";
            HuggingFaceGpt2.Export(model, outDir);
            tokenizer.Save(Path.Combine(outDir, TokenizerFile));
            Console.WriteLine($"Wrote {Path.Combine(outDir, HuggingFaceGpt2.ConfigFile)}, {HuggingFaceGpt2.WeightsFile} and {TokenizerFile}: " +
                              $"GPT-2 with {model.Config.Layers} layers, {model.Config.Heads} heads, width {model.Config.Width}, vocabulary {model.Config.VocabSize}.");
            return 0;
        }));
        return command;
    }

    public static Command CreateImport()
    {
        var hf = new Option<string>("--hf") { Description = "Hugging Face GPT-2 directory (config.json, model.safetensors, attn_tokenizer.json).", Required = true };
        var output = new Option<string>("--out") { Description = "Run directory to write the checkpoint into (as DIR/checkpoint).", Required = true };
        var command = new Command("import", "Import a Hugging Face GPT-2 directory as a checkpoint.") { hf, output };
        command.SetAction(r => CliErrors.Run(() =>
        {
            string dir = r.GetValue(hf)!;
            var tokenizerPath = Path.Combine(dir, TokenizerFile);
            if (!File.Exists(tokenizerPath))
                throw new CheckpointException($"'{dir}' has no {TokenizerFile}: attn import needs the tokenizer attn export writes beside the weights.");
            var tokenizer = Data.ITokenizer.Load(tokenizerPath);
            var model = HuggingFaceGpt2.Import(dir);
            if (tokenizer.VocabSize != model.Config.VocabSize)
                throw new CheckpointException($"'{dir}': the tokenizer has {tokenizer.VocabSize} ids but the model's vocabulary is {model.Config.VocabSize}.");
            var target = Path.Combine(r.GetValue(output)!, Checkpoint.LatestSubdirectory);
            Checkpoint.Save(target, model, new Checkpoint.Contents(model.Config.ToJson(), tokenizer.ToJson(),
                new JsonObject { ["imported_from"] = Path.GetFullPath(dir) }, null));
            Console.WriteLine($"Wrote {target}: GPT with {model.Config.Layers} layers, {model.Config.Heads} heads, width {model.Config.Width}, {model.ParameterCount():N0} parameters.");
            return 0;
        }));
        return command;
    }
}
