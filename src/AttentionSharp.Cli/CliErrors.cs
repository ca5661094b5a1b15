using AttentionSharp.Data;
using AttentionSharp.IO;

namespace AttentionSharp.Cli;

/// <summary>Turns the library's clear exceptions into one sentence on stderr and a non-zero exit code.</summary>
static class CliErrors
{
    public static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is ArgumentException or DataSourceException or CheckpointException or SafetensorsException or Distributed.DistributedException
                                      or IOException or InvalidDataException or UnauthorizedAccessException
                                      or InvalidOperationException
                                      or Autograd.NonFiniteException or Gpu.GpuUnavailableException or NotSupportedException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }
}
