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
/// `attn import --hf DIR --out DIR`: the reverse, dispatching on config.json's model_type (gpt2 or bert), into a
/// checkpoint attn sample or attn eval read — from attn export's folders or from transformers' own (save_pretrained's
/// files: single or sharded safetensors, GPT-2's vocab.json + merges.txt, BERT's vocab.txt).
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
        var (model, tokenizer) = SampleCommand.Load(dir);
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

    public static Command CreateImport()
    {
        var hf = new Option<string>("--hf")
        {
            Description = "Hugging Face directory as save_pretrained writes it: config.json (model_type gpt2 or bert), model.safetensors or a sharded " +
                          "model.safetensors.index.json, and the tokenizer (vocab.json + merges.txt for GPT-2, vocab.txt for BERT, or attn export's attn_tokenizer.json).",
            Required = true,
        };
        var output = new Option<string>("--out") { Description = "Run directory to write the checkpoint into (as DIR/checkpoint).", Required = true };
        var command = new Command("import", "Import a Hugging Face GPT-2 or BertForMaskedLM directory as a checkpoint (GPT: attn sample; BERT: an mlm checkpoint).") { hf, output };
        command.SetAction(r => CliErrors.Run(() =>
        {
            string dir = r.GetValue(hf)!;
            var target = Path.Combine(r.GetValue(output)!, Checkpoint.LatestSubdirectory);
            var state = new JsonObject { ["imported_from"] = Path.GetFullPath(dir) };
            // attn export writes our own tokenizer beside the weights; a folder from transformers has its own files.
            var ours = Path.Combine(dir, TokenizerFile);
            string? tokenizerPath = File.Exists(ours) ? ours : null;
            return HuggingFaceFiles.ModelType(dir) switch
            {
                "gpt2" => ImportGpt(dir, tokenizerPath, target, state),
                "bert" when tokenizerPath is not null => ImportBert(dir, tokenizerPath, target, state),
                "bert" => ImportWordPieceBert(dir, target, state),
                var type => throw new CheckpointException($"{Path.Combine(dir, HuggingFaceFiles.ConfigFile)}: model_type is '{type ?? "missing"}'; attn import reads gpt2 (GPT2LMHeadModel) and bert (BertForMaskedLM)."),
            };
        }));
        return command;
    }

    static int ImportGpt(string dir, string? tokenizerPath, string target, JsonObject state)
    {
        var tokenizer = tokenizerPath is null ? HuggingFaceTokenizer.LoadGpt2(dir) : ITokenizer.Load(tokenizerPath);
        var model = HuggingFaceGpt2.Import(dir);
        if (tokenizer.VocabSize != model.Config.VocabSize)
            throw new CheckpointException($"'{dir}': the tokenizer has {tokenizer.VocabSize} ids but the model's vocabulary is {model.Config.VocabSize}.");
        Checkpoint.Save(target, model, new Checkpoint.Contents(model.Config.ToJson(), tokenizer.ToJson(), state, null));
        Console.WriteLine($"Wrote {target}: GPT with {model.Config.Layers} layers, {model.Config.Heads} heads, width {model.Config.Width}, {model.ParameterCount():N0} parameters.");
        return 0;
    }

    static int ImportBert(string dir, string tokenizerPath, string target, JsonObject state)
    {
        var vocabulary = WordVocabulary.FromJson(File.ReadAllText(tokenizerPath), tokenizerPath);
        var model = HuggingFaceBert.Import(dir, out var skipped);
        var c = model.Config;
        if (vocabulary.Count != c.VocabSize)
            throw new CheckpointException($"'{dir}': the word vocabulary has {vocabulary.Count} ids but the model's vocab_size is {c.VocabSize}.");
        if (c.PadTokenId != WordVocabulary.Pad)
            throw new CheckpointException($"'{dir}': pad_token_id is {c.PadTokenId}, but the word vocabulary pads with id {WordVocabulary.Pad} ({WordVocabulary.PadToken}).");
        return SaveBert(dir, model, vocabulary.ToJson(), skipped, target, state);
    }

    /// <summary>A BERT from transformers with its WordPiece tokenizer (vocab.txt), whose [PAD] must be the model's pad_token_id.</summary>
    static int ImportWordPieceBert(string dir, string target, JsonObject state)
    {
        var tokenizer = HuggingFaceTokenizer.LoadBert(dir);
        var model = HuggingFaceBert.Import(dir, out var skipped);
        var c = model.Config;
        if (tokenizer.VocabSize != c.VocabSize)
            throw new CheckpointException($"'{dir}': {HuggingFaceTokenizer.VocabTextFile} has {tokenizer.VocabSize} tokens but the model's vocab_size is {c.VocabSize}.");
        if (c.PadTokenId != tokenizer.PadId)
            throw new CheckpointException($"'{dir}': pad_token_id is {c.PadTokenId}, but {HuggingFaceTokenizer.VocabTextFile} puts [PAD] at id {tokenizer.PadId}.");
        return SaveBert(dir, model, tokenizer.ToJson(), skipped, target, state);
    }

    static int SaveBert(string dir, Bert model, string tokenizerJson, IReadOnlyList<string> skipped, string target, JsonObject state)
    {
        var c = model.Config;
        if (c.MaxPositions < Training.Tasks.TaggerNetwork.MaxLength)
            throw new CheckpointException($"'{dir}': max_position_embeddings is {c.MaxPositions}, but mlm checkpoints read sentences of up to {Training.Tasks.TaggerNetwork.MaxLength} words (attn eval, attn train --task pos --init).");
        Checkpoint.Save(target, model, new Checkpoint.Contents(Training.Tasks.TaggingTask.MlmConfigJson(c), tokenizerJson, state, null));
        Console.WriteLine($"Wrote {target}: an mlm checkpoint, BERT with {c.Layers} layers, {c.Heads} heads, width {c.Width}, {model.ParameterCount():N0} parameters." +
                          (skipped.Count == 0 ? "" : $" Left out {skipped.Count} tensor{(skipped.Count == 1 ? "" : "s")} outside the masked-LM path: {string.Join(", ", skipped)}."));
        return 0;
    }
}
