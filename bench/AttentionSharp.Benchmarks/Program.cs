using AttentionSharp.Benchmarks;

// dotnet run -c Release --project bench/AttentionSharp.Benchmarks -- gemm|attention [--json FILE] [--threads N]
if (args.Length == 0 || args[0] is not ("gemm" or "attention"))
{
    Console.Error.WriteLine("usage: AttentionSharp.Benchmarks gemm|attention [--json FILE] [--threads N]");
    return 2;
}
string? json = null;
int? threads = null;
for (int i = 1; i < args.Length; i++)
{
    string? value = i + 1 < args.Length ? args[i + 1] : null;
    switch (args[i])
    {
        case "--json" when value != null: json = value; i++; break;
        case "--threads" when int.TryParse(value, out int n): threads = n; i++; break;
        default:
            Console.Error.WriteLine($"Unknown or incomplete option '{args[i]}': expected --json FILE or --threads N.");
            return 2;
    }
}
if (args[0] == "attention")
{
    var attention = new AttentionBenchOptions { JsonPath = json };
    if (threads is { } t) attention = attention with { Threads = t };
    return AttentionBenchmark.Run(attention, Console.Out);
}
var options = new GemmBenchOptions { JsonPath = json };
if (threads is { } g) options = options with { Threads = g };
return GemmBenchmark.Run(options, Console.Out);
