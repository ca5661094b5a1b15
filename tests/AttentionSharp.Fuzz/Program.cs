using System.Diagnostics;
using AttentionSharp.Fuzz;

// attn-fuzz: mutation fuzzing of the readers. Usage: attn-fuzz [--target NAME|all] [--count N] [--seed S] [--crashes DIR]
// Prints, per target, the inputs tried, how many were accepted and cleanly rejected, the crashes (exceptions other than
// the reader's own, or an input taking over a second of processor time) and the time; exits 1 if any target crashed.
string target = "all", crashDir = Path.Combine(Path.GetTempPath(), "attn-fuzz-crashes");
long count = 100_000;
int seed = 1;
for (int i = 0; i < args.Length; i++)
{
    string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
    switch (args[i])
    {
        case "--target": target = Value(); break;
        case "--count": count = long.Parse(Value()); break;
        case "--seed": seed = int.Parse(Value()); break;
        case "--crashes": crashDir = Value(); break;
        default: Console.Error.WriteLine($"error: unknown argument '{args[i]}'. Usage: attn-fuzz [--target {string.Join("|", FuzzTarget.All.Select(t => t.Name))}|all] [--count N] [--seed S] [--crashes DIR]"); return 2;
    }
}
var targets = target == "all" ? FuzzTarget.All : FuzzTarget.All.Where(t => t.Name == target).ToList();
if (targets.Count == 0) { Console.Error.WriteLine($"error: no target '{target}'; targets: {string.Join(", ", FuzzTarget.All.Select(t => t.Name))}, all."); return 2; }

long totalCrashes = 0;
Console.WriteLine($"{"target",-12} {"inputs",12} {"accepted",10} {"rejected",10} {"crashes",8} {"seconds",8}");
foreach (var t in targets)
{
    var result = FuzzRunner.Run(t, count, seed, crashDir, Console.Error);
    totalCrashes += result.Crashes;
    Console.WriteLine($"{t.Name,-12} {result.Inputs,12:N0} {result.Accepted,10:N0} {result.Rejected,10:N0} {result.Crashes,8:N0} {result.Elapsed.TotalSeconds,8:F1}");
}
return totalCrashes == 0 ? 0 : 1;

namespace AttentionSharp.Fuzz
{
    public sealed record FuzzResult(long Inputs, long Accepted, long Rejected, long Crashes, TimeSpan Elapsed, IReadOnlyList<string> Examples);

    public static class FuzzRunner
    {
        /// <summary>An input slower than this counts as a hang.</summary>
        public static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(1);

        /// <summary>
        /// Processor time of one more run of <paramref name="input"/>: wall-clock time alone would call an input slow when
        /// the machine is merely busy, so a slow input is run again and timed by the processor time it takes.
        /// </summary>
        static double CpuSeconds(FuzzTarget target, byte[] input)
        {
            using var process = Process.GetCurrentProcess();
            var before = process.TotalProcessorTime;
            try { target.Run(input); } catch (Exception) { }
            process.Refresh();
            return (process.TotalProcessorTime - before).TotalSeconds;
        }

        /// <summary>Runs <paramref name="count"/> mutated inputs through <paramref name="target"/>; crashing inputs are saved under <paramref name="crashDir"/>.</summary>
        public static FuzzResult Run(FuzzTarget target, long count, int seed, string? crashDir, TextWriter? log)
        {
            var mutator = new Mutator(new Random(seed), target.Seeds());
            long accepted = 0, rejected = 0, crashes = 0;
            var examples = new List<string>();
            var total = Stopwatch.StartNew();
            var one = new Stopwatch();
            for (long i = 0; i < count; i++)
            {
                if (i > 0 && i % 100_000 == 0)
                    log?.WriteLine($"{target.Name}: {i:N0} inputs, {crashes} crashes, {total.Elapsed.TotalSeconds:F0} s");
                var input = mutator.Next();
                string? crash = null;
                one.Restart();
                try { target.Run(input); accepted++; }
                catch (Exception e) when (target.IsClean(e)) { rejected++; }
                catch (Exception e) { crash = $"{e.GetType().Name}: {e.Message}"; }
                if (crash is null && one.Elapsed > HangLimit && CpuSeconds(target, input) is var cpu && cpu > HangLimit.TotalSeconds)
                    crash = $"hang: {cpu:F1} s of processor time";
                if (crash is null) continue;
                crashes++;
                if (examples.Count < 10)
                {
                    examples.Add($"input {i}: {crash}");
                    log?.WriteLine($"{target.Name} input {i}: {crash}");
                    if (crashDir is not null)
                    {
                        Directory.CreateDirectory(crashDir);
                        File.WriteAllBytes(Path.Combine(crashDir, $"{target.Name}-{seed}-{i}.bin"), input);
                    }
                }
            }
            return new FuzzResult(count, accepted, rejected, crashes, total.Elapsed, examples);
        }
    }
}
