using System.CommandLine;
using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.IO.Onnx;
using AttentionSharp.Models;

namespace AttentionSharp.Cli;

/// <summary>
/// `attn export --checkpoint DIR --hf OUTDIR`: a checkpoint in Hugging Face's layout (config.json, model.safetensors) —
/// a GPT language model as GPT2LMHeadModel, an mlm checkpoint (attn train --task mlm) as BertForMaskedLM — plus our
/// tokenizer as attn_tokenizer.json so `attn import` can bring the model back whole.
/// `attn export --checkpoint DIR --onnx FILE`: the same model as an ONNX graph (opset 17) that ONNX Runtime runs; weights
/// beyond 1 GiB (or with --external-data, any) go to a sidecar file FILE.data.
/// `attn import` (<see cref="ImportCommand"/>) is the reverse.
/// </summary>
static class ExportCommand
{
    /// <summary>Our tokenizer, saved beside an exported model (Hugging Face's tokenizer files describe other tokenizers).</summary>
    public const string TokenizerFile = "attn_tokenizer.json";

    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "GPT checkpoint or mlm checkpoint (BERT), or a run directory, written by attn train.", Required = true };
        var hf = new Option<string>("--hf") { Description = "Directory to write the Hugging Face files into (GPT-2 or BertForMaskedLM layout)." };
        var onnx = new Option<string>("--onnx") { Description = "ONNX file to write (opset 17; input input_ids (batch, sequence) and for BERT token_type_ids, output logits)." };
        var external = new Option<bool>("--external-data") { Description = "With --onnx: put the weights in a sidecar file FILE.data even when the model is small (automatic above 1 GiB)." };
        var command = new Command("export", "Export a GPT or mlm (BERT) checkpoint in Hugging Face's layout (safetensors and config.json) or as ONNX.") { checkpoint, hf, onnx, external };
        command.SetAction(r => CliErrors.Run(() =>
        {
            string dir = r.GetValue(checkpoint)!;
            string? outDir = r.GetValue(hf), onnxFile = r.GetValue(onnx);
            if ((outDir is null) == (onnxFile is null))
                throw new ArgumentException("attn export needs exactly one of --hf OUTDIR or --onnx FILE.");
            if (outDir is not null && r.GetValue(external))
                throw new ArgumentException("--external-data goes with --onnx; the Hugging Face layout keeps weights in model.safetensors.");
            var externalData = r.GetValue(external) ? OnnxExternalData.Always : OnnxExternalData.Automatic;
            switch (Tasks.TaskRegistry.TaskOf(dir))
            {
                case null: return ExportGpt(dir, outDir, onnxFile, externalData);
                case Tasks.MlmTask.Name: return ExportBert(dir, outDir, onnxFile, externalData);
                case "pos":
                    throw new ArgumentException($"Checkpoint '{dir}' is a pos tagger: its tagging head and spelling features have no place in BertForMaskedLM " +
                                                "or in the masked-LM graph; export the mlm checkpoint it was started from (attn train --task pos --init).");
                case var task:
                    throw new ArgumentException($"Checkpoint '{dir}' is a {task} model; export handles GPT language models and mlm (BERT) checkpoints.");
            }
        }));
        return command;
    }

    static int ExportGpt(string dir, string? outDir, string? onnxFile, OnnxExternalData externalData)
    {
        var (model, tokenizer) = Training.Tasks.GptCheckpoint.Load(dir);
        var c = model.Config;
        string shape = $"{c.Layers} layers, {c.Heads} heads, width {c.Width}, vocabulary {c.VocabSize}";
        if (onnxFile is not null)
        {
            var sidecar = GptOnnx.Export(model, onnxFile, externalData);
            Console.WriteLine($"Wrote {onnxFile}{Sidecar(onnxFile, sidecar)}: GPT with {shape}, context {c.ContextLength}; " +
                              $"input '{GptOnnx.InputName}' (batch, sequence) int64, output '{GptOnnx.OutputName}'.");
            return 0;
        }
        HuggingFaceGpt2.Export(model, outDir!);
        tokenizer.Save(Path.Combine(outDir!, TokenizerFile));
        Console.WriteLine($"Wrote {Path.Combine(outDir!, HuggingFaceFiles.ConfigFile)}, {HuggingFaceFiles.WeightsFile} and {TokenizerFile}: GPT-2 with {shape}.");
        return 0;
    }

    static int ExportBert(string dir, string? outDir, string? onnxFile, OnnxExternalData externalData)
    {
        var (model, vocabulary) = Tasks.MlmTask.Load(dir);
        var c = model.Config;
        string shape = $"{c.Layers} layers, {c.Heads} heads, width {c.Width}, vocabulary {c.VocabSize}, {c.MaxPositions} positions, {c.TypeVocabSize} segment{(c.TypeVocabSize == 1 ? "" : "s")}";
        if (onnxFile is not null)
        {
            var sidecar = BertOnnx.Export(model, onnxFile, externalData);
            Console.WriteLine($"Wrote {onnxFile}{Sidecar(onnxFile, sidecar)}: BERT masked LM with {shape}; inputs '{BertOnnx.InputName}' and " +
                              $"'{BertOnnx.SegmentInputName}' (batch, sequence) int64, output '{BertOnnx.OutputName}'; keys holding id {c.PadTokenId} ({WordVocabulary.PadToken}) are masked.");
            return 0;
        }
        HuggingFaceBert.Export(model, outDir!);
        File.WriteAllText(Path.Combine(outDir!, TokenizerFile), vocabulary.ToJson());
        Console.WriteLine($"Wrote {Path.Combine(outDir!, HuggingFaceFiles.ConfigFile)}, {HuggingFaceFiles.WeightsFile} and {TokenizerFile}: BertForMaskedLM with {shape}. " +
                          $"Pass attention_mask = (input_ids != {c.PadTokenId}) to get our logits.");
        return 0;
    }

    /// <summary>Names the external-data file written beside <paramref name="onnxFile"/>, as the user wrote the .onnx's path; empty when none.</summary>
    static string Sidecar(string onnxFile, string? sidecar) => sidecar is null ? ""
        : $" and its external data {Path.Combine(Path.GetDirectoryName(onnxFile) ?? "", Path.GetFileName(sidecar))} " +
          $"({new FileInfo(sidecar).Length:N0} bytes of weights; keep the two files side by side)";
}
