using AttentionSharp.Tests.Support;
using AttentionSharp.Training;

namespace AttentionSharp.Tests.Training;

public class MetricsLogTests
{
    [Fact]
    public void ResumingKeepsTheLinesUpToTheCheckpointAndDropsTheRest()
    {
        using var dir = new TempDirectory();
        var path = dir.Write("log.jsonl", """
            {"step":1,"loss":3}
            {"step":2,"loss":2.5}
            {"step":2,"val_loss":2.6}
            {"step":3,"loss":2.4}
            {"step":4,"lo
            """);
        using (var log = MetricsLog.ResumeAt(path, 2)) log.Write(new() { ["step"] = 3, ["loss"] = 2.3 });
        Assert.Equal(["{\"step\":1,\"loss\":3}", "{\"step\":2,\"loss\":2.5}", "{\"step\":2,\"val_loss\":2.6}", "{\"step\":3,\"loss\":2.3}"], File.ReadAllLines(path));
    }
}
