using System.Text.Json.Nodes;
using AttentionSharp.Distributed;
using AttentionSharp.Gpu;
using AttentionSharp.Models;
using AttentionSharp.Tests.Support;
using AttentionSharp.Tests.Training;
using AttentionSharp.Training;

namespace AttentionSharp.Tests.Gpu;

/// <summary>
/// The GPU step plugged into the one training run (<see cref="GpuStepEngine"/> on the simulator): the same losses,
/// validation and checkpoints as the CPU run, and a run stopped on the device resumes on the CPU from its checkpoint.
/// </summary>
[Collection(GpuCollection.Name)]
[Trait("Category", "Gpu")]
public class GpuTrainingTests(GpuFixture fixture)
{
    /// <summary>Losses of the same steps on both engines: the differences of GpuGptCheck, carried through six steps.</summary>
    const double LossTolerance = 1e-4;

    int Run(TrainOptions options, CancellationTokenSource? cancel = null, Action<StepReport>? observer = null)
    {
        var output = new StringWriter();
        try
        {
            return new TrainingRun(options, new SingleProcessCommunicator(), output)
            {
                // GpuStepEngine.ForCuda's choice on the simulator: GpuGpt for a GPT, the model's own modules otherwise.
                DeviceEngine = (task, trainer) => (task.Model is Gpt gpt
                    ? new GpuStepEngine(fixture.Simulator, gpt, (ITokenBatches)task, trainer.Optimizer)
                    : trainer.EngineOn(fixture.Simulator), fixture.Simulator.ToString()),
                Cancellation = cancel?.Token ?? CancellationToken.None,
                StepObserver = observer,
            }.Execute();
        }
        catch (Exception e) { throw new InvalidOperationException($"{e.Message}\n{output}", e); }
    }

    static List<JsonObject> Log(string runDir) =>
        [.. File.ReadAllLines(Path.Combine(runDir, "log.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject())];

    static float[] Values(string runDir, string key) =>
        [.. Log(runDir).Where(r => r[key] is not null).Select(r => (float)r[key]!)];

    static void Close(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= LossTolerance * Math.Max(1, Math.Abs(expected[i])),
                $"{what} {i}: CPU {expected[i]:R}, device {actual[i]:R}");
    }

    [Fact]
    public void TheDeviceEngineTrainsAsTheCpuInTheSameRunAndItsCheckpointsResumeOnTheCpu()
    {
        using var dir = new TempDirectory();
        TrainBothWays(TaskData.Options("gpt", "transformer", dir.Path) with { Dropout = 0f }, dir);
    }

    [Fact]
    public void AMaskedWordModelTrainsOnDeviceTensorsAsOnTheCpuAndResumesOnTheCpu()
    {
        // The mlm preset's BERT (rotary positions, dropout 0.1 with the CPU's masks, key padding) through its own
        // modules on the device: the model moves there for the steps and back for evaluation and checkpoints.
        using var dir = new TempDirectory();
        TrainBothWays(TaskData.Options("mlm", "transformer", dir.Path), dir);
    }

    /// <summary>
    /// Six steps with an evaluation after the third, on the CPU and on the device: the same losses, gradient norms and
    /// validation losses; then a run stopped on the device after step 4 (its checkpoint holds the device's weights,
    /// moments and step count) resumes on the CPU and logs the remaining steps' CPU losses.
    /// </summary>
    void TrainBothWays(TrainOptions options, TempDirectory dir)
    {
        options = options with { Steps = 6, EvalInterval = 3 };
        var cpu = options with { Out = dir.File("cpu") };
        var device = options with { Out = dir.File("device"), Device = TrainDevice.Cuda };
        Assert.Equal(0, Run(cpu));
        var backend = (GpuBackend)fixture.Simulator.Backend;
        long allocations = backend.DriverAllocations;
        Assert.Equal(0, Run(device));
        if (options.Task != "gpt")   // GpuGpt keeps its own buffers; the other models' tensors come from the backend
            Assert.True(backend.DriverAllocations > allocations, "the run allocated nothing on the device");
        Close(Values(cpu.Out!, "loss"), Values(device.Out!, "loss"), "training loss at step");
        Close(Values(cpu.Out!, "grad_norm"), Values(device.Out!, "grad_norm"), "gradient norm at step");
        Close(Values(cpu.Out!, "val_loss"), Values(device.Out!, "val_loss"), "validation loss");

        using var cancel = new CancellationTokenSource();
        var stopped = device with { Out = dir.File("stopped") };
        Assert.Equal(130, Run(stopped, cancel, r => { if (r.Step == 4) cancel.Cancel(); }));
        Assert.Equal(0, Run(options with { Out = null, Resume = stopped.Out }));
        Close(Values(cpu.Out!, "loss"), Values(stopped.Out!, "loss"),
            "loss, stopped on the device and resumed on the CPU, at step");
    }

    [Fact]
    public void OtherTasksAndOptionsTheDeviceCannotRunAreRefusedByName()
    {
        using var dir = new TempDirectory();
        var pos = TaskData.Options("pos", "lstm", dir.Path) with { Device = TrainDevice.Cuda };
        var e = Assert.Throws<ArgumentException>(() => TaskPresets.Refuse(pos));
        Assert.Equal("--device cuda trains --task gpt and --task mlm; --task pos trains on the CPU (--device cpu).",
            e.Message);
        var gpt = TaskData.Options("gpt", "transformer", dir.Path) with { Device = TrainDevice.Cuda };
        var refused = Assert.Throws<InvalidOperationException>(() => Run(gpt with { Dropout = 0.1f }));
        Assert.Contains("The GPU GPT supports GPT-2's layout only (dropout 0); this model's dropout is 0.1.", refused.Message);
    }
}
