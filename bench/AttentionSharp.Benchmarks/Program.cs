using AttentionSharp.Benchmarks;

// dotnet run -c Release --project bench/AttentionSharp.Benchmarks -- gemm|attention [--json FILE] [--threads N]
// (what `attn bench …` runs).
return BenchCommands.Create().Parse(args).Invoke();
