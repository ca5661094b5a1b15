using AttentionSharp.IO;

namespace AttentionSharp.Tests.Support;

/// <summary>Loads the PyTorch reference files written by tests/fixtures/make_fixtures.py.</summary>
public static class Fixtures
{
    public static SafetensorsFile Open(string fileName) =>
        SafetensorsFile.Read(Path.Combine(AppContext.BaseDirectory, "fixtures", fileName));

    public static Tensor Tensor(this SafetensorsFile file, string name, bool requiresGrad = false)
    {
        var entry = file.GetEntry(name);
        var t = AttentionSharp.Tensor.FromArray(entry.ToFloat32(), entry.ShapeToArray());
        t.RequiresGrad = requiresGrad;
        return t;
    }

    public static int[] Ints(this SafetensorsFile file, string name) =>
        file.ReadInt64(name).Select(v => checked((int)v)).ToArray();
}
