using System.Text.Json.Nodes;
using AttentionSharp.Data;
using AttentionSharp.IO;
using AttentionSharp.Nn;
using AttentionSharp.Training;

namespace AttentionSharp.Cli.Tasks;

/// <summary>
/// The training loop that the pos and mlm tasks share around <see cref="TaggerTrainer"/>: progress line, JSONL log,
/// validation passes, latest and best checkpoints (best by validation accuracy), and Ctrl+C saving the latest.
/// </summary>
static class TaggerRun
{
    /// <summary>Creates the run directory; returns the best and latest checkpoint directories and a fresh log.</summary>
    public static (string Best, string Latest, MetricsLog Log) Open(string outDir)
    {
        Directory.CreateDirectory(outDir);
        return (Path.Combine(outDir, Checkpoint.BestSubdirectory), Path.Combine(outDir, Checkpoint.LatestSubdirectory),
            new MetricsLog(Path.Combine(outDir, "log.jsonl"), append: false));
    }

    /// <summary>Trains to the end of the schedule or the time limit; returns 0, or 130 when interrupted (the latest checkpoint saved).</summary>
    public static int Train(TaggerTrainer trainer, TaggingDataset train, TaggingDataset validation, TrainOptions options, MetricsLog log,
        string checkpointDir, string bestDir, Module model, Func<Checkpoint.Contents> contents, Func<TaggingBatch, TaggingBatch>? prepareValidation = null)
    {
        double bestAccuracy = double.NegativeInfinity;
        var progress = new ProgressLine(Console.Out, Console.IsOutputRedirected);
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Console.CancelKeyPress += onCancel;
        // Validation batches are fixed once (masked once for mlm), so every pass scores the same positions.
        var validationBatches = validation.Batches(options.Batch).Select(b => prepareValidation is null ? b : prepareValidation(b)).ToList();
        void Save(string dir)
        {
            var c = contents();
            c.State["best_val_accuracy"] = bestAccuracy;
            Checkpoint.Save(dir, model, c);
        }
        try
        {
            trainer.Run(train,
                report =>
                {
                    progress.Update(report);
                    log.Write(new JsonObject { ["step"] = report.Step, ["loss"] = report.Loss, ["lr"] = report.LearningRate, ["grad_norm"] = report.GradNorm, ["elapsed_s"] = Math.Round(report.Elapsed.TotalSeconds, 2) });
                },
                step =>
                {
                    var (loss, accuracy) = trainer.Evaluate(validationBatches);
                    bool best = accuracy.Accuracy > bestAccuracy;
                    if (best) bestAccuracy = accuracy.Accuracy;
                    progress.Line($"step {step}: validation loss {loss:F4}, {Describe(accuracy)}{(best ? " (best so far)" : "")}");
                    var entry = new JsonObject { ["step"] = step, ["val_loss"] = loss, ["val_accuracy"] = accuracy.Accuracy };
                    if (accuracy.UnseenTotal > 0) entry["val_unseen_accuracy"] = accuracy.UnseenAccuracy;   // none in masked-word modelling
                    log.Write(entry);
                    Save(checkpointDir);
                    if (best) Save(bestDir);
                },
                cancel.Token);
        }
        finally { Console.CancelKeyPress -= onCancel; }
        if (!cancel.IsCancellationRequested) return 0;
        Save(checkpointDir);
        progress.Line($"Interrupted at step {trainer.Step}; checkpoint saved to {checkpointDir}.");
        return 130;
    }

    public static string Describe(TagAccuracy a) => a.UnseenTotal == 0
        ? $"accuracy {100 * a.Accuracy:F2}% ({a.Correct:N0}/{a.Total:N0})"
        : $"accuracy {100 * a.Accuracy:F2}% ({a.Correct:N0}/{a.Total:N0}), on unseen words {100 * a.UnseenAccuracy:F2}% ({a.UnseenCorrect:N0}/{a.UnseenTotal:N0})";
}
