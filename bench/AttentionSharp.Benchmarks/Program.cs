using AttentionSharp.Benchmarks;

// dotnet run -c Release --project bench/AttentionSharp.Benchmarks -- gemm [--json FILE] [--threads N]
if (args.Length == 0 || args[0] != "gemm")
{
    Console.Error.WriteLine("usage: AttentionSharp.Benchmarks gemm [--json FILE] [--threads N]");
    return 2;
}
var options = new GemmBenchOptions();
for (int i = 1; i < args.Length; i++)
{
    string? value = i + 1 < args.Length ? args[i + 1] : null;
    switch (args[i])
    {
        case "--json" when value != null: options = options with { JsonPath = value }; i++; break;
        case "--threads" when int.TryParse(value, out int threads): options = options with { Threads = threads }; i++; break;
        default:
            Console.Error.WriteLine($"Unknown or incomplete option '{args[i]}': expected --json FILE or --threads N.");
            return 2;
    }
}
return GemmBenchmark.Run(options, Console.Out);
