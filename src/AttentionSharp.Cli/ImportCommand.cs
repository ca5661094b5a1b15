using System.CommandLine;
using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.IO.Onnx;
using AttentionSharp.Models;

namespace AttentionSharp.Cli;

/// <summary>
/// `attn import --hf DIR --out DIR`: a Hugging Face folder into a checkpoint attn sample, eval and viz read, dispatching on
/// config.json's model_type (gpt2 or bert) — from attn export's folders (with our tokenizer in
/// <see cref="ExportCommand.TokenizerFile"/>) or from transformers' own (save_pretrained's files: single or sharded
/// safetensors, GPT-2's vocab.json + merges.txt, BERT's vocab.txt).
/// </summary>
static class ImportCommand
{
    public static Command Create()
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
            var ours = Path.Combine(dir, ExportCommand.TokenizerFile);
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
