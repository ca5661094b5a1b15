// Source: Li et al., "PyTorch Distributed: Experiences on Accelerating Data Parallel Training" (VLDB 2020) for gradient
// buckets in reverse registration order.
using System.Diagnostics;

namespace AttentionSharp.Distributed;

/// <summary>
/// Averages gradients over the ranks of a group: g ← (1/N)·Σ_ranks g. Gradients are packed into buckets of at most
/// <see cref="DefaultBucketElements"/> floats — in reverse registration order, the order backward finishes them — so a
/// few large messages replace one per tensor. A bucket's reduction starts as soon as all of its gradients are final:
/// during backward when the last backward of a step reports them (<see cref="GradientReady"/>, passed to
/// <see cref="Tensor.Backward(Tensor?, Action{Tensor})"/>), so the transfers overlap the rest of the sweep, and otherwise
/// in <see cref="AverageGradients"/>. Buckets always start in the same order on every rank, whichever of them a rank's
/// graph finished early. Every rank must build its reducer over the same parameters in the same order.
/// </summary>
public sealed class GradientAllReducer
{
    /// <summary>1 Mi floats (4 MiB) per bucket: large enough that latency is paid rarely, small enough to pipeline.</summary>
    public const int DefaultBucketElements = 1 << 20;

    readonly ICommunicator _communicator;
    readonly Tensor[][] _buckets;
    readonly float[][] _buffers;
    readonly Dictionary<Tensor, int> _bucketOf = new(ReferenceEqualityComparer.Instance);
    readonly int[] _gradients, _waitingFor;        // each bucket's gradients; those not yet reported final this step
    int _started;                                  // buckets started this step, in order
    readonly Stopwatch _watch = new();

    public GradientAllReducer(ICommunicator communicator, IEnumerable<Tensor> parameters,
        int bucketElements = DefaultBucketElements)
    {
        ArgumentNullException.ThrowIfNull(communicator);
        if (bucketElements <= 0)
            throw new ArgumentOutOfRangeException(nameof(bucketElements), bucketElements,
                "A bucket must hold at least one element.");
        _communicator = communicator;
        var buckets = new List<Tensor[]>();
        var current = new List<Tensor>();
        int filled = 0;
        foreach (var p in parameters.Reverse())
        {
            // A tensor larger than a bucket gets a bucket of its own rather than being split.
            if (current.Count > 0 && filled + p.Count > bucketElements)
            {
                buckets.Add([.. current]);
                current.Clear();
                filled = 0;
            }
            current.Add(p);
            filled += p.Count;
        }
        if (current.Count > 0) buckets.Add([.. current]);
        _buckets = [.. buckets];
        _buffers = communicator.Size == 1
            ? []
            : [.. _buckets.Select(b => GC.AllocateArray<float>(b.Sum(p => p.Count), pinned: true))];
        // A tensor listed twice waits in its first bucket; the later one starts after it anyway.
        _gradients = new int[_buckets.Length];
        for (int b = 0; b < _buckets.Length; b++)
            foreach (var p in _buckets[b])
                if (_bucketOf.TryAdd(p, b)) _gradients[b]++;
        _waitingFor = new int[_buckets.Length];
        BeginStep();
    }

    /// <summary>The parameters of each bucket, in the order they are reduced.</summary>
    public IReadOnlyList<IReadOnlyList<Tensor>> Buckets => _buckets;

    /// <summary>Time spent averaging so far (packing, transfer, unpacking), for the communication share of a step.</summary>
    public TimeSpan Elapsed => _watch.Elapsed;

    /// <summary>No gradient of the step is final yet: after construction and after each average.</summary>
    void BeginStep()
    {
        _gradients.CopyTo(_waitingFor, 0);
        _started = 0;
    }

    /// <summary>
    /// Backward's report that <paramref name="parameter"/>'s gradient is final for this step: every bucket whose
    /// gradients are all final, and all before it, start their reduction; other tensors are ignored.
    /// </summary>
    public void GradientReady(Tensor parameter)
    {
        if (_communicator.Size == 1 || !_bucketOf.TryGetValue(parameter, out int b)) return;
        _watch.Start();
        if (--_waitingFor[b] == 0)
            while (_started < _buckets.Length && _waitingFor[_started] == 0) Start(_started++);
        _communicator.Progress();
        _watch.Stop();
    }

    /// <summary>
    /// Replaces every parameter's gradient by its mean over the ranks (collective): starts the buckets not started
    /// during backward, waits for all, and begins the next step. A parameter without a gradient on this rank counts as
    /// zeros and gets one, so ranks stay in step even when a branch saw no data here.
    /// </summary>
    public void AverageGradients()
    {
        if (_communicator.Size == 1) return;
        _watch.Start();
        while (_started < _buckets.Length) Start(_started++);
        _communicator.WaitAll();
        float scale = 1f / _communicator.Size;
        for (int b = 0; b < _buckets.Length; b++)
        {
            var buffer = _buffers[b].AsSpan();
            int at = 0;
            foreach (var p in _buckets[b])
            {
                System.Numerics.Tensors.TensorPrimitives.Multiply(buffer.Slice(at, p.Count), scale, p.GradBuffer());
                at += p.Count;
            }
        }
        BeginStep();
        _watch.Stop();
    }

    /// <summary>Packs bucket <paramref name="b"/>'s gradients into its buffer and starts their reduction.</summary>
    void Start(int b)
    {
        var buffer = _buffers[b].AsSpan();
        int at = 0;
        foreach (var p in _buckets[b])
        {
            p.GradBuffer().CopyTo(buffer.Slice(at, p.Count));
            at += p.Count;
        }
        _communicator.StartAllReduceSum(_buffers[b]);
    }
}
