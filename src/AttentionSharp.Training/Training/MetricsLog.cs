using System.Text.Json;
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

    /// <summary>
    /// Reopens the log of a run resumed from a checkpoint taken after <paramref name="step"/>: keeps the lines up to the
    /// first one about a later step (or a line cut short by a crash), drops the rest — those steps run again and are
    /// logged anew, so no step appears twice — and appends from there. The kept part is rewritten atomically.
    /// </summary>
    public static MetricsLog ResumeAt(string path, int step)
    {
        if (File.Exists(path))
        {
            var kept = new List<string>();
            foreach (var line in File.ReadLines(path))
            {
                JsonNode? node;
                try { node = JsonNode.Parse(line); }
                catch (JsonException) { break; }
                if (node is not JsonObject record) break;
                if (record["step"] is JsonValue s && s.TryGetValue<int>(out var n) && n > step) break;
                kept.Add(line);
            }
            var temp = path + $".tmp-{Environment.ProcessId}";
            File.WriteAllLines(temp, kept);
            File.Move(temp, path, overwrite: true);
        }
        return new MetricsLog(path, append: true);
    }

    public void Write(JsonObject record) => _writer.WriteLine(record.ToJsonString());

    public void Dispose() => _writer.Dispose();
}
