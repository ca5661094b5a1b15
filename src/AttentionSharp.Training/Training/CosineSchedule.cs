namespace AttentionSharp.Training;

/// <summary>
/// Linear warmup from 0 to the peak rate over the first <c>warmup</c> steps, then cosine decay to
/// <c>minRate</c> at <c>totalSteps</c>: lr(s) = min + ½(peak − min)(1 + cos(π·(s − warmup)/(total − warmup))).
/// </summary>
public sealed record CosineSchedule(float PeakRate, int WarmupSteps, int TotalSteps, float MinRate)
{
    /// <summary>The rate for 0-based step <paramref name="step"/>.</summary>
    public float RateAt(int step)
    {
        if (WarmupSteps > 0 && step < WarmupSteps) return PeakRate * (step + 1) / WarmupSteps;
        if (step >= TotalSteps) return MinRate;
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        return (float)(MinRate + 0.5 * (PeakRate - MinRate) * (1 + Math.Cos(Math.PI * progress)));
    }
}
