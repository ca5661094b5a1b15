using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using AttentionSharp.Data;
using AttentionSharp.Generation;
using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Training;
using AttentionSharp.Training.Tasks;

namespace AttentionSharp.Cli.Tasks;

/// <summary>
/// `attn train --task mlm`: masked-word pre-training of the BERT encoder on the Brown training sentences (BERT's
/// corruption of 15 % of the words), with the pos task's vocabulary, so `attn train --task pos --init RUN` can start the
/// tagger from it. `attn eval` reports the loss and the accuracy of recovering the masked words of the test split.
/// </summary>
static class MlmTask
{
    public const string Name = "mlm";

    public static int Evaluate(string checkpointDir, string? data, string? jsonPath, string? cache)
    {
        var contents = Checkpoint.ReadContents(checkpointDir);
        if (WordPieceOf(contents, checkpointDir) is { } wordPiece)
            return EvaluateTokens(checkpointDir, contents, wordPiece, data, jsonPath, cache);
        if (data is not null && !Directory.Exists(data))
            throw new DataSourceException("--data for an mlm checkpoint is a directory of tagged text in the Brown corpus's " +
                                          $"NLTK layout; '{data}' is not a directory.");
        var (model, vocabulary) = Load(contents, checkpointDir);
        var split = (data is null ? BrownCorpus.Fetch(DataCache.Resolve(cache), Console.Out) : BrownCorpus.Load(data)).Split();
        var test = TaggingDataset.Build(split.Test, vocabulary, TaggingDataset.WordSet(split.Train), TaggerNetwork.MaxLength);
        var rng = new Generator(TaggingTask.EvalMaskSeed);
        var (loss, accuracy) = TaggerEvaluation.Evaluate(model, b => TaggingTask.MlmLogits(model, b),
            test.Batches(32).Select(b => MaskedWords.Mask(b, vocabulary.Count, rng)).ToList());
        Console.WriteLine($"{data ?? "The Brown corpus"}, test split: {test.WordCount:N0} words, {accuracy.Total:N0} of them " +
                          "masked (15%, fixed draws).");
        Console.WriteLine($"masked-word loss {loss:F4} (perplexity {Math.Exp(loss):F1}), {TaggingTask.Describe(accuracy)}");
        if (jsonPath is not null)
            File.WriteAllText(jsonPath, new JsonObject { ["loss"] = loss, ["accuracy"] = accuracy.Accuracy }
                .ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    /// <summary>
    /// A BERT that reads WordPiece tokens (imported from a Hugging Face folder): masked-token loss and accuracy on --data
    /// FILE, or on the Brown corpus test documents as plain text.
    /// </summary>
    static int EvaluateTokens(string checkpointDir, Checkpoint.Contents contents, WordPieceTokenizer tokenizer, string? data,
        string? jsonPath, string? cache)
    {
        var model = LoadBert(contents, checkpointDir);
        string text, source;
        if (data is not null) { text = TextFile.Read(data); source = data; }
        else
        {
            text = BrownCorpus.PlainText(BrownCorpus.Fetch(DataCache.Resolve(cache), Console.Out).Split().Test);
            source = "the Brown corpus test split";
        }
        var (loss, accuracy, masked) = MaskedTokenEvaluation.Evaluate(model, tokenizer, text);
        Console.WriteLine($"{source}: {text.Length:N0} characters; {masked:N0} WordPiece tokens masked (15%, fixed draws).");
        Console.WriteLine($"masked-token loss {loss:F4} (perplexity {Math.Exp(loss):F1}), accuracy {100 * accuracy:F2}%");
        if (jsonPath is not null)
            File.WriteAllText(jsonPath, new JsonObject { ["loss"] = loss, ["accuracy"] = accuracy, ["masked"] = masked }
                .ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    /// <summary>Where `attn predict` fills in words: BERT's own spelling of the mask, in any case.</summary>
    public const string MaskMarker = "[MASK]";

    /// <summary>Candidates shown for each masked position (the fill-mask pipeline's default).</summary>
    const int Shown = 5;

    /// <summary>
    /// `attn predict`: the words most likely where the input says [MASK] (WordPiece tokens for an imported BERT), each
    /// with its probability, then the input with each position's first choice in it.
    /// </summary>
    public static int Predict(string checkpointDir, string input, string? cache)
    {
        var pieces = Regex.Split(input, Regex.Escape(MaskMarker), RegexOptions.IgnoreCase);
        if (pieces.Length == 1)
            throw new ArgumentException($"--input holds no {MaskMarker}: write it where the model should fill in a word, " +
                                        $"as in \"The {MaskMarker} was late.\"");
        var contents = Checkpoint.ReadContents(checkpointDir);
        var ids = new List<int>();
        var positions = new List<int>();
        Bert model;
        Func<int, bool> candidate;
        Func<int, string> token;
        Func<int[], string> text;
        int limit;
        if (WordPieceOf(contents, checkpointDir) is { } wordPiece)
        {
            model = LoadBert(contents, checkpointDir);
            ids.Add(wordPiece.ClsId);
            for (int i = 0; i < pieces.Length; i++)
            {
                if (i > 0) { positions.Add(ids.Count); ids.Add(wordPiece.MaskId); }
                ids.AddRange(wordPiece.Encode(pieces[i]));
            }
            ids.Add(wordPiece.SepId);
            int[] special = [wordPiece.PadId, wordPiece.ClsId, wordPiece.SepId, wordPiece.MaskId];
            candidate = id => !special.Contains(id);
            token = id => wordPiece.Tokens[id];
            text = filled => wordPiece.Decode(filled.AsSpan(1, filled.Length - 2));
            limit = model.Config.MaxPositions;
        }
        else
        {
            (model, var vocabulary) = Load(contents, checkpointDir);
            var words = new List<string>();
            for (int i = 0; i < pieces.Length; i++)
            {
                if (i > 0) { positions.Add(ids.Count); ids.Add(WordVocabulary.Mask); words.Add(MaskMarker); }
                foreach (var word in BrownWords.Tokenize(pieces[i])) { ids.Add(vocabulary.Id(word)); words.Add(word); }
            }
            var unknown = words.Where((w, i) => ids[i] == WordVocabulary.Unknown).Distinct().ToList();
            if (unknown.Count > 0)
                Console.WriteLine($"Not in the vocabulary, read as {WordVocabulary.UnknownToken}: {string.Join(", ", unknown)}");
            candidate = id => id > WordVocabulary.Mask;
            token = id => vocabulary.Words[id];
            text = filled => string.Join(" ",
                words.Select((w, i) => ids[i] == WordVocabulary.Mask ? vocabulary.Words[filled[i]] : w));
            limit = TaggerNetwork.MaxLength;
        }
        if (ids.Count > limit)
            throw new ArgumentException(
                $"--input is {ids.Count} tokens long but the model reads at most {limit}; give a shorter one.");
        var filled = ids.ToArray();
        var fills = MaskFilling.Fill(model, filled, positions, Shown, candidate);
        if (fills[0].Length == 0)
            throw new CheckpointException($"The vocabulary of checkpoint '{checkpointDir}' holds no word to fill in, only its " +
                                          "special tokens.");
        for (int n = 0; n < fills.Length; n++)
        {
            Console.WriteLine($"{MaskMarker} {n + 1} of {fills.Length}: " +
                              string.Join("  ", fills[n].Select(f => $"{token(f.Id)} ({100 * f.Probability:F1} %)")));
            filled[positions[n]] = fills[n][0].Id;
        }
        Console.WriteLine(text(filled));
        return 0;
    }

    /// <summary>The "network" object of a checkpoint's config.json.</summary>
    static JsonObject NetworkOf(Checkpoint.Contents contents, string checkpointDir) =>
        contents.Config["network"] as JsonObject
        ?? throw new CheckpointException($"The config.json of checkpoint '{checkpointDir}' has no \"network\" object.");

    /// <summary>
    /// `attn viz`: the BERT's self-attention over a text: its WordPiece tokens framed by [CLS] … [SEP] for an imported
    /// model, its words for one pre-trained here.
    /// </summary>
    public static Visualization.AttentionView Visualize(string checkpointDir, VizInput input, string? cache)
    {
        if (input.Text is not { } text)
            throw new ArgumentException(
                $"Checkpoint '{checkpointDir}' is a masked language model: it reads --text, not --image.");
        var contents = Checkpoint.ReadContents(checkpointDir);
        Bert model;
        int[] ids;
        List<string> tokens;
        if (WordPieceOf(contents, checkpointDir) is { } wordPiece)
        {
            model = LoadBert(contents, checkpointDir);
            ids = [wordPiece.ClsId, .. wordPiece.Encode(text), wordPiece.SepId];
            tokens = [.. ids.Select(id => wordPiece.Tokens[id])];
        }
        else
        {
            (model, var vocabulary) = Load(contents, checkpointDir);
            var words = BrownWords.Tokenize(text);
            if (words.Count == 0) throw new ArgumentException("--text holds no words.");
            ids = TaggingDataset.FromSentences([TaggingDataset.Untagged([.. words], vocabulary)]).Batches(1).Single().Ids;
            tokens = [.. words];
        }
        if (ids.Length > model.Config.MaxPositions)
            throw new ArgumentException($"The text is {ids.Length} tokens long but the model reads at most " +
                                        $"{model.Config.MaxPositions}; give a shorter one.");
        model.Eval();
        using var probe = Visualization.AttentionProbe.Start();
        using (Autograd.GradMode.NoGrad())
        using (TensorScope.Begin()) model.Forward(ids, 1, ids.Length);
        return Visualization.AttentionView.SelfAttention($"BERT attention on \"{VizCommand.Shorten(text)}\"", probe.Records,
            tokens);
    }

    /// <summary>The WordPiece tokenizer of an imported BERT's checkpoint, or null for one pre-trained here (words).</summary>
    static WordPieceTokenizer? WordPieceOf(Checkpoint.Contents contents, string checkpointDir) =>
        (JsonNode.Parse(contents.TokenizerJson) as JsonObject)?["type"] is JsonValue type
        && type.TryGetValue<string>(out var name) && name == WordPieceTokenizer.TypeName
            ? (WordPieceTokenizer)ITokenizer.FromJson(contents.TokenizerJson, $"the tokenizer of checkpoint '{checkpointDir}'")
            : null;

    /// <summary>The BERT and the word vocabulary of an mlm checkpoint (or run directory).</summary>
    public static (Bert Model, WordVocabulary Vocabulary) Load(string checkpointDir) =>
        Load(Checkpoint.ReadContents(checkpointDir), checkpointDir);

    static (Bert Model, WordVocabulary Vocabulary) Load(Checkpoint.Contents contents, string checkpointDir) =>
        (LoadBert(contents, checkpointDir),
         WordVocabulary.FromJson(contents.TokenizerJson, $"the vocabulary of checkpoint '{checkpointDir}'"));

    /// <summary>The checkpoint's BERT, built from its config and holding the weights its run validated.</summary>
    static Bert LoadBert(Checkpoint.Contents contents, string checkpointDir)
    {
        var model = new Bert(BertConfig.FromJson(NetworkOf(contents, checkpointDir)), new Generator(0));
        Checkpoint.LoadWeights(checkpointDir, model);
        return model;
    }
}
