using AttentionSharp.Benchmarks;

// dotnet run -c Release --project bench/AttentionSharp.Benchmarks -- gemm|attention [--json FILE] [--threads N]
// (what `attn bench …` runs). The GPU benchmarks (--device cuda, gpu-check) run from their own library.
return GpuBenchCommands.Handles(args) ? GpuBenchCommands.Run(args) : BenchCommands.Create().Parse(args).Invoke();
