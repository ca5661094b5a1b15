using AttentionSharp.Training;

namespace AttentionSharp.Tests.Training;

/// <summary>Fitting a schedule to a time limit.</summary>
public class TimeBudgetTests
{
    static readonly CosineSchedule Schedule = new(1e-3f, 2, 20, 1e-4f);

    [Fact]
    public void AFittingPointAtTheLastAllowedStepKeepsTheScheduleThere()
    {
        // --steps 20 with a fitting point after step 20: no step beyond the cap, no exception
        var budget = new TimeBudget(minutes: 10, maxSteps: 20, evalInterval: 0, startStep: 0, fitAfter: [20, 100], refitAfterEval: false);
        var fitted = budget.AfterStep(20, Schedule);
        Assert.Equal(20, fitted.TotalSteps);
    }

    [Fact]
    public void APlentifulLimitGrowsTheScheduleToTheCapAndAnExhaustedOneStopsAtTheNextStep()
    {
        var plenty = new TimeBudget(minutes: 60, maxSteps: 500, evalInterval: 0, startStep: 0, fitAfter: [5], refitAfterEval: false);
        Assert.Equal(500, plenty.AfterStep(5, Schedule with { TotalSteps = 500 }).TotalSteps);
        var none = new TimeBudget(minutes: 1e-9, maxSteps: 500, evalInterval: 0, startStep: 0, fitAfter: [5], refitAfterEval: false);
        Thread.Sleep(5);
        Assert.Equal(6, none.AfterStep(5, Schedule with { TotalSteps = 500 }).TotalSteps);
        Assert.True(none.OutOfTime);
    }
}
