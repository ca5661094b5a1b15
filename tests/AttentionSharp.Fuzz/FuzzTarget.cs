using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.Models;

namespace AttentionSharp.Fuzz;

/// <summary>
/// One reader under test: well-formed seed inputs, the reader run on a (mutated) input, and the exceptions that count as
/// a clean rejection — the library's own, documented ones, whose messages name the problem. Anything else is a crash.
/// </summary>
public sealed record FuzzTarget(string Name, Func<IReadOnlyList<byte[]>> Seeds, Action<byte[]> Run, Func<Exception, bool> IsClean)
{
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        new("safetensors", SafetensorsSeeds, ReadSafetensors, e => e is SafetensorsException),
        new("checkpoint", CheckpointSeeds, LoadCheckpoint, e => e is SafetensorsException or CheckpointException || e.GetType() == typeof(ArgumentException)),
        new("tokenizer", TokenizerSeeds, LoadTokenizer, e => e is DataSourceException),
        new("idx", IdxSeeds, bytes => IdxReader.Parse(bytes, "fuzz.idx"), e => e is DataSourceException),
        new("brown", BrownSeeds, bytes => BrownCorpus.Parse("ca01", "news", Encoding.UTF8.GetString(bytes)), e => e is DataSourceException),
        new("cmudict", CmuDictSeeds, ReadCmuDict, e => e is DataSourceException),
        new("image", ImageSeeds, bytes => GrayImage.Parse(bytes, "fuzz.img"), e => e is DataSourceException),
    ];

    // ---- the CMU Pronouncing Dictionary in its npm package's layout, then its G2P split and encoding.

    static IReadOnlyList<byte[]> CmuDictSeeds() =>
    [
        Encoding.UTF8.GetBytes("/** @type {{ [word: string]: string }} */\nexport const dictionary = {\n  \"'bout\": \"B AW1 T\",\n  \"a\": \"AH0\",\n" +
                               "  \"a(2)\": \"EY1\",\n  \"a.d.\": \"EY2 D IY1\",\n  \"aalborg\": \"AO1 L B AO0 R G # place, danish\",\n" +
                               "  \"café\": \"K AE0 F EY1\",\n  \"x-ray\": \"EH1 K S R EY2\",\n}\n"),
        Encoding.UTF8.GetBytes("{\"abandon\": \"AH0 B AE1 N D AH0 N\", \"abandon(2)\": \"AH0 B AE1 N D IH0 N\"}"),
    ];

    static void ReadCmuDict(byte[] bytes)
    {
        var dictionary = CmuDict.Parse(Encoding.UTF8.GetString(bytes), "fuzz.js");
        var split = dictionary.Split();
        var vocabulary = G2pVocabulary.ForCmuDict(keepStress: false);
        _ = new G2pDataset(split.Train.Concat(split.Validation).Concat(split.Test), vocabulary);
    }

    // ---- images: PGM (P2, P5) by our reader, PNG through SkiaSharp.

    static IReadOnlyList<byte[]> ImageSeeds()
    {
        var p5 = new List<byte>(Encoding.ASCII.GetBytes("P5\n# a comment\n4 3\n255\n"));
        p5.AddRange(Enumerable.Range(0, 12).Select(i => (byte)(i * 20)));
        var p2 = Encoding.ASCII.GetBytes("P2\n3 2\n65535\n0 1000 65535\n7 8 9\n");
        using var bitmap = new SkiaSharp.SKBitmap(5, 4);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 5; x++) bitmap.SetPixel(x, y, new SkiaSharp.SKColor((byte)(x * 50), (byte)(y * 60), 90, (byte)(255 - x)));
        using var png = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        return [[.. p5], p2, png.ToArray()];
    }

    // ---- safetensors: every entry read back in each type it converts to.

    static IReadOnlyList<byte[]> SafetensorsSeeds()
    {
        var w = new SafetensorsWriter();
        w.SetMetadata("format", "pt");
        w.Add("wte.weight", [3, 4], Enumerable.Range(0, 12).Select(i => i * 0.5f).ToArray());
        w.Add("ln.bias", [4], [1f, 2f, 3f, 4f], SafetensorsDType.BF16);
        w.Add("half", [2, 1], [0.25f, -8f], SafetensorsDType.F16);
        w.Add("ids", [2, 2], [1L, -2L, 3L, int.MaxValue]);
        w.Add("step", [], [7]);
        w.Add("empty", [0, 5], ReadOnlySpan<float>.Empty, SafetensorsDType.F64);
        return [w.ToArray(), CheckpointWeights()];
    }

    static void ReadSafetensors(byte[] bytes)
    {
        var file = SafetensorsFile.Read(bytes);
        foreach (var e in file.Entries)
        {
            if (e.DType.IsFloatingPoint()) file.ReadFloat32(e.Name);
            if (e.DType.IsInteger()) { file.ReadInt64(e.Name); file.ReadInt32(e.Name); }
        }
    }

    // ---- checkpoint: config.json → GptConfig.FromJson, and weights → StateDictFile.Load into the model it describes, as
    // Checkpoint.ReadContents and Checkpoint.LoadWeights do; the first byte of the seed says which half the input is.

    static readonly GptConfig CheckpointConfig = new() { VocabSize = 11, ContextLength = 4, Layers = 1, Heads = 2, Width = 4 };
    static readonly Lazy<Gpt> CheckpointModel = new(() => new Gpt(CheckpointConfig, new Generator(1)));

    static byte[] CheckpointWeights()
    {
        var w = new SafetensorsWriter();
        foreach (var (name, p) in CheckpointModel.Value.NamedParameters()) w.Add(name, p.Shape, p.ToArray());
        return w.ToArray();
    }

    static IReadOnlyList<byte[]> CheckpointSeeds() =>
    [
        [(byte)'C', .. Encoding.UTF8.GetBytes(CheckpointConfig.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }))],
        [(byte)'W', .. CheckpointWeights()],
    ];

    static void LoadCheckpoint(byte[] bytes)
    {
        if (bytes.Length == 0) return;
        if (bytes[0] == (byte)'W')
        {
            StateDictFile.Load(CheckpointModel.Value, SafetensorsFile.Read(bytes.AsSpan(1)));
            return;
        }
        JsonObject json; // the text decoded as File.ReadAllText decodes it, then parsed as Checkpoint.ReadContents does
        try { json = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 1, bytes.Length - 1)) as JsonObject ?? throw new CheckpointException("config.json is not a JSON object."); }
        catch (JsonException e) { throw new CheckpointException($"config.json is not valid JSON: {e.Message}"); } // as ReadContents
        var config = GptConfig.FromJson(json);
        // A config that passes Validate builds a model; only small ones are built, so an input's time stays the reader's.
        long parameters = ((long)config.VocabSize + config.ContextLength) * config.Width + (long)config.Layers * 12 * config.Width * config.Width;
        if (parameters < 100_000) _ = new Gpt(config, new Generator(2));
    }

    // ---- tokenizers: each type's JSON, and the loaded tokenizer round-trips a text.

    static IReadOnlyList<byte[]> TokenizerSeeds()
    {
        const string text = "the cat sat on the mat; the dog sat on the log. ünïcödé ✓";
        return
        [
            Encoding.UTF8.GetBytes(CharTokenizer.Train(text).ToJson()),
            Encoding.UTF8.GetBytes(ByteBpeTokenizer.Train(string.Concat(Enumerable.Repeat(text, 4)), 280).ToJson()),
            Encoding.UTF8.GetBytes(new TiktokenTokenizer("cl100k_base").ToJson()),
        ];
    }

    static void LoadTokenizer(byte[] bytes)
    {
        var tokenizer = ITokenizer.FromJson(Encoding.UTF8.GetString(bytes), "fuzz tokenizer");
        var ids = tokenizer.Encode("the cat ✓");
        foreach (var id in ids)
            if (id < 0 || id >= tokenizer.VocabSize) throw new InvalidOperationException($"Encode gave id {id} outside [0, {tokenizer.VocabSize}).");
        tokenizer.Decode(ids);
    }

    // ---- IDX (Fashion-MNIST): images and labels, plain and gzipped.

    static IReadOnlyList<byte[]> IdxSeeds()
    {
        byte[] images = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, .. Enumerable.Range(0, 12).Select(i => (byte)(i * 20))];
        byte[] labels = [0, 0, 8, 1, 0, 0, 0, 4, 9, 0, 3, 7];
        using var gz = new MemoryStream();
        using (var z = new System.IO.Compression.GZipStream(gz, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true)) z.Write(images);
        return [images, labels, gz.ToArray()];
    }

    // ---- Brown corpus files: WORD/TAG tokens, sentences on lines, paragraphs between blank lines.

    static IReadOnlyList<byte[]> BrownSeeds() =>
    [
        Encoding.UTF8.GetBytes("\n\n\tThe/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd Friday/nr an/at investigation/nn of/in " +
                               "Atlanta's/np$ recent/jj primary/nn election/nn produced/vbd ``/`` no/at evidence/nn ''/'' that/cs any/dti " +
                               "irregularities/nns took/vbd place/nn ./.\n\n\n\tThe/at jury/nn further/rbr said/vbd 1/2/cd of/in it/pps ./.\n"),
    ];
}
