using System.Text;
using AttentionSharp.Tests.Data;
using AttentionSharp.Training;

namespace AttentionSharp.Tests.Training;

/// <summary>
/// Small stand-ins for every task's data, in the formats the tasks read (a text file, a tagged corpus in the Brown
/// layout, Fashion-MNIST's IDX files, a CMU-style dictionary), and tiny presets, so that whole runs take seconds.
/// </summary>
static class TaskData
{
    static readonly string[] Nouns = ["cat", "dog", "jury", "city", "house", "river", "man", "woman", "car", "tree"];
    static readonly string[] Verbs = ["saw", "liked", "found", "said", "took", "made", "met", "left"];
    static readonly string[] Adjectives = ["big", "small", "old", "new", "red", "quiet"];

    /// <summary>A UTF-8 text of <paramref name="lines"/> lines for the language model.</summary>
    public static string Text(int lines = 300) => string.Concat(Enumerable.Range(0, lines).Select(i =>
        $"the {Adjectives[i % 6]} {Nouns[i % 10]} {Verbs[i % 8]} a {Nouns[(i * 3) % 10]} by the {Nouns[(i * 7) % 10]}.\n"));

    /// <summary>Writes a tagged corpus of 20 documents in the NLTK layout of the Brown corpus; returns its directory.</summary>
    public static string Corpus(string root)
    {
        var dir = Directory.CreateDirectory(Path.Combine(root, "corpus")).FullName;
        var cats = new StringBuilder();
        var rng = new Random(3);
        for (int d = 0; d < 20; d++)
        {
            var id = $"ca{d + 1:00}";
            cats.Append($"{id} news\n");
            var doc = new StringBuilder("\n\n");
            for (int s = 0; s < 12; s++)
            {
                string N() => Nouns[rng.Next(Nouns.Length)] + "/nn";
                string A() => Adjectives[rng.Next(Adjectives.Length)] + "/jj";
                doc.Append($"\tThe/at {A()} {N()} {Verbs[rng.Next(Verbs.Length)]}/vbd a/at {N()} in/in the/at {N()} ./.\n");
            }
            File.WriteAllText(Path.Combine(dir, id), doc.ToString());
        }
        File.WriteAllText(Path.Combine(dir, AttentionSharp.Data.BrownCorpus.CategoriesFile), cats.ToString());
        return dir;
    }

    /// <summary>Writes Fashion-MNIST-shaped IDX files (the held-out 5,000 and a few more for training); returns the directory.</summary>
    public static string Images(string root)
    {
        var dir = Directory.CreateDirectory(Path.Combine(root, "fashion")).FullName;
        void Write(string prefix, int count)
        {
            var rng = new Random(prefix.Length);
            var labels = Enumerable.Range(0, count).Select(i => (byte)(i % 10)).ToArray();
            var pixels = new byte[count * 28 * 28];
            for (int i = 0; i < count; i++)
                for (int p = 0; p < 784; p++)   // a band whose row tells the class, plus noise
                    pixels[i * 784 + p] = (byte)((p / 28 / 3 == labels[i] ? 200 : 20) + rng.Next(30));
            File.WriteAllBytes(Path.Combine(dir, $"{prefix}-images-idx3-ubyte"), IdxReaderTests.Idx([(uint)count, 28, 28], pixels));
            File.WriteAllBytes(Path.Combine(dir, $"{prefix}-labels-idx1-ubyte"), IdxReaderTests.Idx([(uint)count], labels));
        }
        Write("train", AttentionSharp.Data.FashionMnist.ValidationCount + 96);
        Write("t10k", 40);
        return dir;
    }

    /// <summary>Writes a pronouncing dictionary of made-up words (each letter one phoneme) as JSON; returns the file.</summary>
    public static string Dictionary(string root)
    {
        string[] phones = ["AH0", "B", "K", "D", "EH1", "F", "G", "HH", "IH0", "JH", "K", "L", "M", "N", "OW1", "P", "K", "R", "S", "T", "UW1",
                           "V", "W", "K", "Y", "Z"];
        var rng = new Random(5);
        var words = new SortedDictionary<string, string>(StringComparer.Ordinal);
        while (words.Count < 400)
        {
            var word = new string([.. Enumerable.Range(0, 3 + rng.Next(5)).Select(_ => (char)('a' + rng.Next(26)))]);
            words[word] = string.Join(' ', word.Select(c => phones[c - 'a']));
        }
        var path = Path.Combine(root, "dict.json");
        File.WriteAllText(path, "{\n" + string.Join(",\n", words.Select(w => $"  \"{w.Key}\": \"{w.Value}\"")) + "\n}\n");
        return path;
    }

    /// <summary>A tiny run of <paramref name="task"/> with <paramref name="model"/> on the data written under <paramref name="root"/>.</summary>
    public static TrainOptions Options(string task, string model, string root)
    {
        var preset = TaskPresets.For(task, model);
        bool transformer = model == "transformer";
        var data = task switch
        {
            "gpt" => WriteText(root),
            "pos" or "mlm" => Corpus(root),
            "fashion" => Images(root),
            _ => Dictionary(root),
        };
#pragma warning disable format
        return preset with
        {
            Data = data, Out = Path.Combine(root, "run"), Minutes = null, Steps = 12, EvalInterval = 5, EvalSample = 16, Batch = 4,
            WarmupSteps = 2, Seed = 7, Layers = 1, Width = 16, Heads = transformer ? 2 : null, Dropout = 0.1f,
            Context = task == "gpt" ? 16 : null, WordDropout = task == "pos" ? 0.1f : preset.WordDropout,
            TrainFraction = task == "pos" ? 0.5 : preset.TrainFraction,
        };
#pragma warning restore format
    }

    static string WriteText(string root)
    {
        var path = Path.Combine(root, "text.txt");
        File.WriteAllText(path, Text());
        return path;
    }
}
