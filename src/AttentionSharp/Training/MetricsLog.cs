using System.Text.Json.Nodes;

namespace AttentionSharp.Training;

/// <summary>A JSON-lines log of training metrics: one object per line, flushed as written so a crash keeps what was logged.</summary>
public sealed class MetricsLog : IDisposable
{
    readonly StreamWriter _writer;

    public MetricsLog(string path, bool append)
    {
        _writer = new StreamWriter(path, append) { AutoFlush = true };
    }

    public void Write(JsonObject record) => _writer.WriteLine(record.ToJsonString());

    public void Dispose() => _writer.Dispose();
}
