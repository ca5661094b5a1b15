namespace AttentionSharp.Training;

/// <summary>
/// The training loop the task trainers share: batches in a new random order each epoch, one optimizer step each, the
/// schedule fitted to the time limit (<see cref="TimeBudget"/>), a progress report after every step, and validation every
/// <see cref="TrainOptions.EvalInterval"/> steps and at the end. What differs between trainers — the batch type, the step,
/// what a batch counts as "items" for the rate — comes in as functions.
/// </summary>
internal static class EpochLoop
{
    /// <param name="epoch">One epoch's batches, in the order drawn from the generator it is given.</param>
    /// <param name="step">One optimizer step on a batch: (loss, gradient norm).</param>
    /// <param name="items">What a batch adds to the rate's numerator (words, tokens).</param>
    /// <param name="trainer">The trainer's step count, schedule and learning rate, read and written as the loop goes.</param>
    public static void Run<TBatch>(TrainOptions options, bool refitAfterEval, Func<Generator, IEnumerable<TBatch>> epoch,
        Func<TBatch, (float Loss, float GradNorm)> step, Func<TBatch, long> items, IScheduledTrainer trainer,
        Action<StepReport> onStep, Action<int> onEval, CancellationToken cancel)
    {
        var budget = new TimeBudget(options.Minutes, options.Steps, options.EvalInterval, trainer.Step, fitAfter: [20, 100], refitAfterEval);
        var shuffle = new Generator(options.Seed ^ 0x5DEECE66DUL);
        using var batches = Forever(epoch, shuffle).GetEnumerator();
        long count = 0;
        while (trainer.Step < trainer.Schedule.TotalSteps && !cancel.IsCancellationRequested)
        {
            batches.MoveNext();
            var batch = batches.Current;
            var (loss, norm) = step(batch);
            if (!float.IsFinite(loss))
                throw new InvalidOperationException($"The loss became {loss} at step {trainer.Step}; lower the learning rate (now {trainer.LearningRate:G3}).");
            count += items(batch);
            trainer.Schedule = budget.AfterStep(trainer.Step, trainer.Schedule);
            var elapsed = budget.Elapsed;
            var remaining = TimeSpan.FromSeconds(budget.SecondsPerStep(trainer.Step) * (trainer.Schedule.TotalSteps - trainer.Step));
            onStep(new StepReport(trainer.Step, trainer.Schedule.TotalSteps, loss, trainer.LearningRate, norm, count / elapsed.TotalSeconds, elapsed, remaining));
            bool outOfTime = budget.OutOfTime;
            if ((options.EvalInterval > 0 && trainer.Step % options.EvalInterval == 0) || trainer.Step == trainer.Schedule.TotalSteps || outOfTime)
                trainer.Schedule = budget.Evaluate(trainer.Step, trainer.Schedule, () => onEval(trainer.Step));
            if (outOfTime) break;
        }
    }

    static IEnumerable<TBatch> Forever<TBatch>(Func<Generator, IEnumerable<TBatch>> epoch, Generator shuffle)
    {
        while (true)
            foreach (var batch in epoch(shuffle)) yield return batch;
    }
}

/// <summary>What <see cref="EpochLoop"/> reads and writes of a trainer.</summary>
internal interface IScheduledTrainer
{
    int Step { get; }
    CosineSchedule Schedule { get; set; }
    float LearningRate { get; }
}
