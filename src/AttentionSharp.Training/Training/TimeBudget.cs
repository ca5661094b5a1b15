using System.Diagnostics;

namespace AttentionSharp.Training;

/// <summary>
/// Fits a learning-rate schedule to a time limit, for every trainer: the schedule's length is set from the measured pace
/// at fixed points — early, so a slow machine never overshoots, and again with the pace measured since the first point,
/// once one-off costs (JIT, pool warm-up) are behind — and, if asked, after every validation pass, counting the time the
/// remaining passes will take. Without a limit it only measures the pace.
/// </summary>
public sealed class TimeBudget
{
    readonly double? _minutes;
    readonly int _maxSteps, _evalInterval, _startStep;
    readonly int[] _fitAfter;
    readonly bool _refitAfterEval;
    readonly Stopwatch _watch = Stopwatch.StartNew();
    TimeSpan _atFirstFit, _evaluating;
    int _evals;

    /// <param name="minutes">The limit, or null for none.</param>
    /// <param name="maxSteps">The schedule never grows past this.</param>
    /// <param name="evalInterval">Steps between validation passes (0: none during training).</param>
    /// <param name="startStep">The step training (re)starts from.</param>
    /// <param name="fitAfter">Steps since the start after which the schedule is fitted, in increasing order.</param>
    /// <param name="refitAfterEval">Also fit after each validation pass, with the passes' cost counted.</param>
    public TimeBudget(double? minutes, int maxSteps, int evalInterval, int startStep, int[] fitAfter, bool refitAfterEval)
    {
        if (fitAfter.Length == 0) throw new ArgumentException("A time budget needs at least one fitting point.", nameof(fitAfter));
        (_minutes, _maxSteps, _evalInterval, _startStep, _fitAfter, _refitAfterEval) = (minutes, maxSteps, evalInterval, startStep, fitAfter, refitAfterEval);
    }

    public TimeSpan Elapsed => _watch.Elapsed;

    /// <summary>True once the limit has passed.</summary>
    public bool OutOfTime => _minutes is { } m && _watch.Elapsed.TotalMinutes >= m;

    /// <summary>Seconds per step measured so far (validation excluded once the first fitting point is passed).</summary>
    public double SecondsPerStep(int step)
    {
        int done = step - _startStep, first = _fitAfter[0];
        var elapsed = _watch.Elapsed;
        return done > first ? (elapsed - _atFirstFit - _evaluating).TotalSeconds / (done - first) : elapsed.TotalSeconds / Math.Max(done, 1);
    }

    /// <summary>Call after each step: returns the schedule, refitted at the fitting points.</summary>
    public CosineSchedule AfterStep(int step, CosineSchedule schedule)
    {
        int done = step - _startStep;
        if (done == _fitAfter[0]) _atFirstFit = _watch.Elapsed;
        return Array.IndexOf(_fitAfter, done) >= 0 ? Fit(step, schedule) : schedule;
    }

    /// <summary>Runs a validation pass, timing it; returns the schedule, refitted afterwards when so configured.</summary>
    public CosineSchedule Evaluate(int step, CosineSchedule schedule, Action evaluate)
    {
        var before = _watch.Elapsed;
        evaluate();
        if (step - _startStep <= _fitAfter[0]) return schedule;
        _evaluating += _watch.Elapsed - before;
        _evals++;
        return _refitAfterEval && !OutOfTime && step < schedule.TotalSteps ? Fit(step, schedule) : schedule;
    }

    CosineSchedule Fit(int step, CosineSchedule schedule)
    {
        if (_minutes is not { } minutes) return schedule;
        double perEval = _refitAfterEval && _evals > 0 ? _evaluating.TotalSeconds / _evals : 0;
        double stepCost = SecondsPerStep(step) + (_evalInterval > 0 ? perEval / _evalInterval : 0);
        int affordable = step + (int)Math.Max(0, (minutes * 60 - _watch.Elapsed.TotalSeconds - perEval) / stepCost);
        // At least one more step, unless the run is already at its last: a fitting point at the final step keeps it there.
        return schedule with { TotalSteps = Math.Clamp(affordable, Math.Min(step + 1, _maxSteps), _maxSteps) };
    }
}
