using AttentionSharp.IO;
using AttentionSharp.Models;
using AttentionSharp.Tests.Support;

namespace AttentionSharp.Tests.IO;

public class StateDictFileTests
{
    static readonly GptConfig Config = new() { VocabSize = 11, ContextLength = 8, Layers = 1, Heads = 2, Width = 8 };

    [Fact]
    public void SavedParametersLoadIntoAFreshModelByName()
    {
        using var dir = new TempDirectory();
        var a = new Gpt(Config, new Generator(1));
        StateDictFile.Save(a, dir.File("m.safetensors"));
        var b = new Gpt(Config, new Generator(2));
        StateDictFile.Load(b, dir.File("m.safetensors"));
        foreach (var ((name, pa), (_, pb)) in a.NamedParameters().Zip(b.NamedParameters()))
            Assert.True(pa.ToArray().SequenceEqual(pb.ToArray()), $"{name} differs after loading");
        var names = SafetensorsFile.Read(dir.File("m.safetensors")).Entries.Select(e => e.Name).ToHashSet();
        Assert.Contains("h.0.attn.c_attn.weight", names);
        Assert.Contains("wte.weight", names);
    }

    [Fact]
    public void AFileForAnotherShapeChangesNothing()
    {
        using var dir = new TempDirectory();
        StateDictFile.Save(new Gpt(Config with { Width = 16 }, new Generator(1)), dir.File("big.safetensors"));
        var model = new Gpt(Config, new Generator(3));
        var before = model.Parameters().Select(p => p.ToArray()).ToList();
        var e = Assert.Throws<ArgumentException>(() => StateDictFile.Load(model, dir.File("big.safetensors")));
        Assert.Contains("shape", e.Message);
        Assert.True(before.Zip(model.Parameters()).All(x => x.First.SequenceEqual(x.Second.ToArray())), "a failed load must leave the model as it was");
    }
}
