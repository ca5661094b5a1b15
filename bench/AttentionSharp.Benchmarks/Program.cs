Console.WriteLine("AttentionSharp benchmarks");
