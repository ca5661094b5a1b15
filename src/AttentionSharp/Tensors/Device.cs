using AttentionSharp.Kernels;

namespace AttentionSharp;

/// <summary>
/// Where a tensor's elements live and its operations run. <see cref="Cpu"/> is the engine of this assembly; other
/// devices come from backends in their own assemblies (AttentionSharp.Gpu's <c>GpuDevice</c>, on CUDA or ILGPU's CPU
/// accelerator). A tensor moves with <see cref="Tensor.To"/> (a copy) or <see cref="Tensor.MoveTo"/> (in place, for
/// parameters), a model with <see cref="Nn.Module.To"/>; operations on tensors of one device run there, with the
/// autograd engine and the optimizers as on the CPU (docs/gpu.md lists the operations a device runs).
/// </summary>
public abstract class Device
{
    /// <summary>For the backends of this project's own assemblies (they see the core's internals).</summary>
    private protected Device() { }

    /// <summary>The CPU engine: host memory and the SIMD kernels.</summary>
    public static Device Cpu { get; } = new CpuDevice();

    /// <summary>A short name for messages ("cpu", or the accelerator's name).</summary>
    public abstract string Name { get; }

    /// <summary>True for <see cref="Cpu"/>.</summary>
    public bool IsCpu => ReferenceEquals(this, Cpu);

    /// <summary>The memory and kernels of a device other than the CPU.</summary>
    internal abstract DeviceBackend Backend { get; }

    public override string ToString() => Name;

    sealed class CpuDevice : Device
    {
        public override string Name => "cpu";

        internal override DeviceBackend Backend =>
            throw new InvalidOperationException("The CPU runs the engine's own kernels; it has no device backend.");
    }
}

/// <summary>Floats in a device's memory, shared by a tensor and its views through a reference count.</summary>
internal abstract class DeviceMemory
{
    int _refCount = 1;

    protected DeviceMemory(Device device, int length) { Device = device; Length = length; }

    public Device Device { get; }

    /// <summary>Floats held.</summary>
    public int Length { get; }

    public void AddRef() => Interlocked.Increment(ref _refCount);

    public void Release()
    {
        if (Interlocked.Decrement(ref _refCount) == 0) Free();
    }

    /// <summary>Gives the memory back to the device.</summary>
    protected abstract void Free();
}

/// <summary>Integers (token ids, class targets) in a device's memory, uploaded once for an operation's two passes.</summary>
internal abstract class DeviceIndices : IDisposable
{
    public abstract int Length { get; }

    public abstract void Dispose();
}

/// <summary>
/// The forward and backward kernels a device runs, on dense tensors of that device (offset and shape give each
/// operand's elements). Gradient kernels add into their outputs (+=), as the CPU engine's backward rules do; the
/// autograd layer (Autograd/Tensor.Device.cs) allocates, checks shapes and records, these only compute.
/// </summary>
internal abstract class DeviceBackend
{
    /// <summary>Uninitialised memory for <paramref name="length"/> floats.</summary>
    public abstract DeviceMemory Allocate(int length);

    public abstract DeviceIndices Upload(ReadOnlySpan<int> values);

    public abstract void CopyFromHost(Tensor destination, ReadOnlySpan<float> source);

    /// <summary>Copies to the host after every queued kernel has run.</summary>
    public abstract void CopyToHost(Tensor source, Span<float> destination);

    public abstract void Fill(Tensor destination, float value);

    /// <summary>destination = source, both dense and of one size.</summary>
    public abstract void Copy(Tensor destination, Tensor source);

    /// <summary>
    /// dense = the elements of a view of <paramref name="source"/>'s memory: element c at
    /// <paramref name="offset"/> + Σ c_d·strides[d] (offset from the memory's start), c over dense's shape.
    /// </summary>
    public abstract void Gather(Tensor dense, Tensor source, int offset, int[] strides);

    /// <summary>The view's elements of <paramref name="target"/>'s memory += dense (a view that maps no two to one).</summary>
    public abstract void ScatterAdd(Tensor target, int offset, int[] strides, Tensor dense);

    /// <summary>y = a + table[r mod period] over rows of <paramref name="cols"/> (period = rows: a plain sum).</summary>
    public abstract void AddRows(Tensor y, Tensor a, Tensor table, int rows, int cols, int period);

    /// <summary>x ← s·x.</summary>
    public abstract void Scale(Tensor x, float s);

    /// <summary>total[0] += Σ x².</summary>
    public abstract void SumOfSquares(Tensor total, Tensor x);

    /// <summary>dst[j] += Σ_r x[r, j].</summary>
    public abstract void ColumnSum(Tensor destination, Tensor x, int rows, int cols);

    /// <summary>C = op(A)·op(B) (+ C when <paramref name="accumulate"/>) on dense operands.</summary>
    public abstract void Gemm(Transpose ta, Transpose tb, int m, int n, int k, Tensor a, Tensor b, Tensor c, bool accumulate);

    /// <summary>y = x·Wᵀ + b, the bias (or none) added as the product is stored.</summary>
    public abstract void Linear(Tensor y, Tensor x, Tensor weight, Tensor? bias, int rows, int inFeatures, int outFeatures);

    public abstract void Gelu(Tensor y, Tensor x, GeluApproximation approximation);

    /// <summary>dx += dy·GELU′(x).</summary>
    public abstract void GeluBackward(Tensor dx, Tensor dy, Tensor x, GeluApproximation approximation);

    /// <summary>y = LayerNorm(x) per row of <paramref name="cols"/>, keeping each row's mean and 1/σ.</summary>
    public abstract void LayerNorm(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor? weight, Tensor? bias, int rows,
        int cols, float eps);

    /// <summary>dx += ∂L/∂x; dweight, dbias (where given) += their sums.</summary>
    public abstract void LayerNormBackward(Tensor dx, Tensor? dweight, Tensor? dbias, Tensor dy, Tensor x, Tensor? weight,
        Tensor mean, Tensor rstd, int rows, int cols);

    /// <summary>y[i] = table[ids[i]] for rows of <paramref name="dim"/>.</summary>
    public abstract void Embedding(Tensor y, DeviceIndices ids, Tensor table, int vocab, int dim);

    /// <summary>dtable[ids[i]] += dy[i].</summary>
    public abstract void EmbeddingBackward(Tensor dtable, Tensor dy, DeviceIndices ids, int vocab, int dim);

    /// <summary>
    /// loss[0] = the mean over counted rows of the (smoothed) cross-entropy; each row's log Σ e^x kept in
    /// <paramref name="rowLogSumExp"/> (rows floats), its loss in <paramref name="rowLoss"/>.
    /// </summary>
    public abstract void CrossEntropy(Tensor loss, Tensor rowLoss, Tensor rowLogSumExp, Tensor logits, DeviceIndices targets,
        int rows, int vocab, int ignoreIndex, float labelSmoothing);

    /// <summary>dlogits += dLoss·∂loss/∂logits (the mean's share per counted row), using scratch of rows floats.</summary>
    public abstract void CrossEntropyBackward(Tensor dlogits, float dLoss, Tensor rowScratch, Tensor logits,
        Tensor rowLogSumExp, DeviceIndices targets, int rows, int vocab, int ignoreIndex, float labelSmoothing);

    /// <summary>
    /// Self-attention from a fused (B, T, 3·NH·HS) projection [Q K V], heads read in place: output (B, T, NH·HS) and
    /// each query row's logsumexp (B·NH·T floats).
    /// </summary>
    public abstract void PackedSelfAttention(Tensor output, Tensor lse, Tensor qkv, in DeviceAttention attention);

    /// <summary>dqkv += the gradients of Q, K and V (in their places in the fused layout) from dOutput.</summary>
    public abstract void PackedSelfAttentionBackward(Tensor dqkv, Tensor dOutput, Tensor output, Tensor lse, Tensor qkv,
        in DeviceAttention attention);

    /// <summary>
    /// y = RoPE(x) over rows × width: the first <paramref name="heads"/> heads of each row rotated by the angles of row
    /// r mod T of the tables (T × HS/2 each, on the device), the rest passed through (<see cref="Kernels.Rotary"/>).
    /// </summary>
    public abstract void Rotary(Tensor y, Tensor x, int rows, int width, int heads, int headSize, int time, Tensor cos,
        Tensor sin);

    /// <summary>dx += the inverse rotation of dy.</summary>
    public abstract void RotaryBackward(Tensor dx, Tensor dy, int rows, int width, int heads, int headSize, int time,
        Tensor cos, Tensor sin);

    /// <summary>
    /// y = x·mask/(1 − p) with the CPU's counter-based mask from (seed, offset) (<see cref="Kernels.Dropout"/>).
    /// </summary>
    public abstract void Dropout(Tensor y, Tensor x, float p, ulong seed, ulong offset);

    /// <summary>dx += dy·mask/(1 − p), the mask formed again from (seed, offset).</summary>
    public abstract void DropoutBackward(Tensor dx, Tensor dy, float p, ulong seed, ulong offset);

    /// <summary>One AdamW step on p, m, v in place with g read as gradScale·g (the CPU's <see cref="Kernels.AdamW"/>).</summary>
    public abstract void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps,
        float weightDecay, int step, float gradScale);
}

/// <summary>
/// One packed self-attention call on a device: sizes, masks (causal, key padding flags B·T with 1 = padding, or null)
/// and dropout on the weights with the CPU engine's mask (seed and first batch as its AttentionProblem's).
/// </summary>
internal readonly record struct DeviceAttention(int Batch, int Time, int Heads, int HeadSize, bool Causal, float? Scale,
    DeviceIndices? KeyPadding, float Dropout, ulong DropoutSeed, int DropoutFirstBatch);
