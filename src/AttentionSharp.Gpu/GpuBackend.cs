using ILGPU;
using ILGPU.Runtime;
using AttentionSharp.Kernels;

namespace AttentionSharp.Gpu;

/// <summary>
/// A <see cref="GpuDevice"/> as a <see cref="Device"/> for tensors: device memory for <see cref="Tensor"/>s and the
/// kernels the autograd engine calls on them (core's Autograd/Tensor.Device.cs), each one of this assembly's kernels on
/// views of the tensors' memory.
/// </summary>
/// <remarks>
/// Memory is cached as the CPU's <see cref="StoragePool"/> caches it, in the same size classes: a tensor's buffer goes
/// back to its class when the last tensor viewing it is disposed, and the next tensor of that class takes it, so a
/// training step allocates nothing from the driver once the first step has run (a driver allocation synchronises
/// the device). When the driver has no memory left, the cached blocks are given back and the allocation tried again.
/// </remarks>
internal sealed class GpuBackend(GpuDevice device) : DeviceBackend, IDisposable
{
    readonly Dictionary<int, Stack<GpuTensor>> _cached = [];   // free blocks by class size
    long _driverAllocations;

    /// <summary>Blocks asked of the driver so far (the cache served every other allocation).</summary>
    public long DriverAllocations => Interlocked.Read(ref _driverAllocations);
    /// <summary>A tensor's elements as a GPU tensor view (dense, from its offset), for a kernel.</summary>
    GpuTensor View(Tensor t)
    {
        if (t.Memory is not GpuMemory memory || !ReferenceEquals(memory.Device, device))
            throw new InvalidOperationException($"A tensor on {t.Device.Name} was handed to {device.Name}'s kernels.");
        return memory.Buffer.Slice(t.Offset, t.ShapeArray);
    }

    GpuTensor? ViewOrNull(Tensor? t) => t is null ? null : View(t);

    static GpuIntBuffer Ints(DeviceIndices indices) => ((GpuIndices)indices).Buffer;

    public override DeviceMemory Allocate(int length)
    {
        int size = length == 0 ? 1 : StoragePool.ClassOf(length).Size;
        lock (_cached)
            if (_cached.TryGetValue(size, out var blocks) && blocks.Count > 0) return new GpuMemory(this, blocks.Pop(), length);
        Interlocked.Increment(ref _driverAllocations);
        try
        {
            return new GpuMemory(this, GpuTensor.Uninitialized(device, size), length);
        }
        catch (Exception e) when (e is ILGPU.Runtime.AcceleratorException or OutOfMemoryException)
        {
            Trim();
            return new GpuMemory(this, GpuTensor.Uninitialized(device, size), length);
        }
    }

    void Return(GpuTensor block)
    {
        lock (_cached)
        {
            if (!_cached.TryGetValue(block.Count, out var blocks)) _cached[block.Count] = blocks = new Stack<GpuTensor>();
            blocks.Push(block);
        }
    }

    /// <summary>Gives every cached block back to the driver.</summary>
    public void Trim()
    {
        lock (_cached)
        {
            foreach (var blocks in _cached.Values)
                while (blocks.Count > 0) blocks.Pop().Dispose();
        }
    }

    public void Dispose() => Trim();

    public override DeviceIndices Upload(ReadOnlySpan<int> values) => new GpuIndices(device.Upload(values));

    public override void CopyFromHost(Tensor destination, ReadOnlySpan<float> source) => View(destination).CopyFrom(source);

    public override void CopyToHost(Tensor source, Span<float> destination) => View(source).CopyTo(destination);

    public override void Fill(Tensor destination, float value)
    {
        var view = View(destination);
        if (view.Count == 0) return;
        if (value == 0f) { view.Clear(); return; }
        var values = new float[view.Count];   // other values seed a backward pass: a few floats, sent from the host
        Array.Fill(values, value);
        view.CopyFrom(values);
    }

    public override void Copy(Tensor destination, Tensor source)
    {
        var (to, from) = (View(destination), View(source));
        if (to.Count != from.Count)
            throw new ArgumentException($"A copy of {from.Count} floats into {to.Count}.", nameof(destination));
        if (to.Count > 0) from.View.SubView(0, from.Count).CopyTo(to.View.SubView(0, to.Count));
    }

    /// <summary>The whole buffer a tensor's memory holds, for kernels that address it from its start.</summary>
    GpuTensor Whole(Tensor t) => t.Memory is GpuMemory memory && ReferenceEquals(memory.Device, device)
        ? memory.Buffer
        : throw new InvalidOperationException($"A tensor on {t.Device.Name} was handed to {device.Name}'s kernels.");

    public override void Gather(Tensor dense, Tensor source, int offset, int[] strides) =>
        device.Strided.Gather(View(dense), Whole(source), offset, dense.ShapeArray, strides);

    public override void ScatterAdd(Tensor target, int offset, int[] strides, Tensor dense) =>
        device.Strided.ScatterAdd(Whole(target), offset, dense.ShapeArray, strides, View(dense));

    public override void AddRows(Tensor y, Tensor a, Tensor table, int rows, int cols, int period) =>
        device.Add.Rows(View(y), View(a), View(table), rows, cols, period);

    public override void Scale(Tensor x, float s) => device.Reduce.Scale(View(x), s);

    public override void SumOfSquares(Tensor total, Tensor x) => device.Reduce.SumOfSquares(View(total), View(x));

    public override void ColumnSum(Tensor destination, Tensor x, int rows, int cols) =>
        device.Reduce.ColumnSum(View(destination), View(x), rows, cols);

    public override void Gemm(Transpose ta, Transpose tb, int m, int n, int k, Tensor a, Tensor b, Tensor c, bool accumulate) =>
        device.Gemm.Multiply(ta, tb, m, n, k, View(a), View(b), View(c), beta: accumulate ? 1f : 0f);

    public override void Linear(Tensor y, Tensor x, Tensor weight, Tensor? bias, int rows, int inFeatures, int outFeatures) =>
        device.Gemm.Linear(View(y), View(x), View(weight), ViewOrNull(bias), rows, inFeatures, outFeatures);

    public override void Gelu(Tensor y, Tensor x, GeluApproximation approximation) =>
        device.Gelu.Forward(View(y), View(x), approximation);

    public override void GeluBackward(Tensor dx, Tensor dy, Tensor x, GeluApproximation approximation) =>
        device.Gelu.Backward(View(dx), View(dy), View(x), approximation);

    public override void LayerNorm(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor? weight, Tensor? bias, int rows,
        int cols, float eps) =>
        device.LayerNorm.Forward(View(y), View(mean), View(rstd), View(x), ViewOrNull(weight), ViewOrNull(bias), rows, cols, eps);

    public override void LayerNormBackward(Tensor dx, Tensor? dweight, Tensor? dbias, Tensor dy, Tensor x, Tensor? weight,
        Tensor mean, Tensor rstd, int rows, int cols) =>
        device.LayerNorm.Backward(View(dx), ViewOrNull(dweight), ViewOrNull(dbias), View(dy), View(x), ViewOrNull(weight),
            View(mean), View(rstd), rows, cols);

    public override void Embedding(Tensor y, DeviceIndices ids, Tensor table, int vocab, int dim) =>
        device.Embedding.Forward(View(y), Ints(ids), View(table), vocab, dim);

    public override void EmbeddingBackward(Tensor dtable, Tensor dy, DeviceIndices ids, int vocab, int dim) =>
        device.Embedding.Backward(View(dtable), View(dy), Ints(ids), vocab, dim);

    public override void CrossEntropy(Tensor loss, Tensor rowLoss, Tensor rowLogSumExp, Tensor logits, DeviceIndices targets,
        int rows, int vocab, int ignoreIndex, float labelSmoothing)
    {
        device.CrossEntropy.Forward(View(rowLoss), View(rowLogSumExp), View(logits), Ints(targets), rows, vocab, ignoreIndex,
            labelSmoothing);
        device.CrossEntropy.Mean(View(loss), View(rowLoss), Ints(targets), ignoreIndex);
    }

    public override void CrossEntropyBackward(Tensor dlogits, float dLoss, Tensor rowScratch, Tensor logits,
        Tensor rowLogSumExp, DeviceIndices targets, int rows, int vocab, int ignoreIndex, float labelSmoothing)
    {
        var dRow = View(rowScratch);
        device.CrossEntropy.MeanGradient(dRow, Ints(targets), dLoss, ignoreIndex);
        device.CrossEntropy.Backward(View(dlogits), dRow, View(logits), View(rowLogSumExp), Ints(targets), rows, vocab,
            ignoreIndex, labelSmoothing);
    }

    public override void PackedSelfAttention(Tensor output, Tensor lse, Tensor qkv, in DeviceAttention attention)
    {
        var (problem, q, k, v, o) = Packed(output, qkv, attention);
        device.FlashAttention.Forward(problem, q, k, v, o, View(lse));
    }

    public override void PackedSelfAttentionBackward(Tensor dqkv, Tensor dOutput, Tensor output, Tensor lse, Tensor qkv,
        in DeviceAttention attention)
    {
        var (problem, q, k, v, o) = Packed(output, qkv, attention);
        var (_, dq, dk, dv, dO) = Packed(dOutput, dqkv, attention);
        device.FlashAttention.Backward(problem, q, k, v, o, View(lse), dO, dq, dk, dv);
    }

    /// <summary>
    /// The problem and the (B, NH, T, HS) head views of Q, K and V inside a (B, T, 3C) buffer and of O in (B, T, C).
    /// </summary>
    (GpuAttentionProblem, GpuHeads Q, GpuHeads K, GpuHeads V, GpuHeads O) Packed(Tensor output, Tensor qkv,
        in DeviceAttention a)
    {
        var problem = new GpuAttentionProblem(a.Batch, a.Heads, a.Time, a.Time, a.HeadSize)
        {
            Causal = a.Causal, Scale = a.Scale, KeyPadding = a.KeyPadding is null ? null : Ints(a.KeyPadding),
            Dropout = a.Dropout, DropoutSeed = a.DropoutSeed, DropoutFirstBatch = a.DropoutFirstBatch,
        };
        var (q, k, v) = GpuHeads.Packed(View(qkv), a.Heads, a.Time, a.HeadSize);
        return (problem, q, k, v, GpuHeads.Merged(View(output), a.Heads, a.Time, a.HeadSize));
    }

    public override void Rotary(Tensor y, Tensor x, int rows, int width, int heads, int headSize, int time, Tensor cos,
        Tensor sin) =>
        device.Rotary.Forward(View(y), View(x), rows, width, heads, headSize, time, View(cos), View(sin));

    public override void RotaryBackward(Tensor dx, Tensor dy, int rows, int width, int heads, int headSize, int time,
        Tensor cos, Tensor sin) =>
        device.Rotary.Backward(View(dx), View(dy), rows, width, heads, headSize, time, View(cos), View(sin));

    public override void Dropout(Tensor y, Tensor x, float p, ulong seed, ulong offset) =>
        device.Dropout.Forward(View(y), View(x), p, seed, offset);

    public override void DropoutBackward(Tensor dx, Tensor dy, float p, ulong seed, ulong offset) =>
        device.Dropout.Backward(View(dx), View(dy), p, seed, offset);

    public override void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
        float weightDecay, int step, float gradScale) =>
        device.AdamW.Step(View(param), View(grad), View(m), View(v), lr, beta1, beta2, eps, weightDecay, step, gradScale);

    /// <summary>
    /// A tensor's memory: a cached block of its size class, returned when the last tensor viewing it is disposed.
    /// </summary>
    sealed class GpuMemory(GpuBackend backend, GpuTensor block, int length) : DeviceMemory(backend.Device, length)
    {
        public GpuTensor Buffer => block;

        protected override void Free() => backend.Return(block);
    }

    GpuDevice Device => device;

    sealed class GpuIndices(GpuIntBuffer buffer) : DeviceIndices
    {
        public GpuIntBuffer Buffer => buffer;

        public override int Length => buffer.Length;

        public override void Dispose() => buffer.Dispose();
    }
}
