namespace AttentionSharp.Nn;

/// <summary>An ordered list of child modules named "0", "1", … (as torch.nn.ModuleList), e.g. GPT-2's "h.0", "h.1".</summary>
public sealed class ModuleList : Module
{
    int _count;

    public T Add<T>(T module) where T : Module => RegisterModule((_count++).ToString(System.Globalization.CultureInfo.InvariantCulture), module);

    public int Count => _count;
}
