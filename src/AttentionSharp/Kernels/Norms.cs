// Source: Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural networks" (2013), global-norm
// gradient clipping as PyTorch torch.nn.utils.clip_grad_norm_.
using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using AttentionSharp.Kernels.Simd;

namespace AttentionSharp.Kernels;

/// <summary>The two passes of global-norm clipping: Σx² over every gradient buffer, then a scale of each.</summary>
public static unsafe class Norms
{
    /// <summary>Floats summed in single precision before the running total (in double) takes them.</summary>
    const int Block = 4096;

    /// <summary>Floats per independently summed group; groups are fixed, so the result is the same on any thread count.</summary>
    const int Group = 16 * Block;

    /// <summary>Σ_i x_i², accumulated in double over blocks of 4096 squares summed in float.</summary>
    public static double SumOfSquares(ReadOnlySpan<float> x)
    {
        int groups = (x.Length + Group - 1) / Group;
        if (groups <= 1) return GroupSum(x);
        double[] partial = ArrayPool<double>.Shared.Rent(groups);
        try
        {
            fixed (float* px = x)
            {
                float* p = px;
                int n = x.Length;
                Kernels.Parallel.For(groups, 1, (start, end) =>
                {
                    for (int g = start; g < end; g++)
                    {
                        int offset = g * Group;
                        partial[g] = GroupSum(new ReadOnlySpan<float>(p + offset, Math.Min(Group, n - offset)));
                    }
                });
            }
            double total = 0;
            for (int g = 0; g < groups; g++) total += partial[g];
            return total;
        }
        finally
        {
            ArrayPool<double>.Shared.Return(partial);
        }
    }

    static double GroupSum(ReadOnlySpan<float> x)
    {
        double total = 0;
        for (int i = 0; i < x.Length; i += Block)
            total += TensorPrimitives.SumOfSquares(x.Slice(i, Math.Min(Block, x.Length - i)));
        return total;
    }

    /// <summary>
    /// Σ x² of a dense tensor on any device: <see cref="SumOfSquares(ReadOnlySpan{float})"/> on the CPU; a device sums
    /// in float with its own kernel (in an order of its own), and the total is read back.
    /// </summary>
    public static double SumOfSquares(Tensor x) => SumOfSquares([x]);

    /// <summary>
    /// Σ x² over dense tensors of one device: each summed as above on the CPU (in order, in double); a device adds them
    /// all into one float total there and reads it back once.
    /// </summary>
    public static double SumOfSquares(IReadOnlyList<Tensor> tensors)
    {
        if (tensors.Count == 0) return 0;
        var device = tensors[0].Device;
        if (tensors.Any(t => !ReferenceEquals(t.Device, device)))
            throw new ArgumentException("SumOfSquares: the tensors are on more than one device.", nameof(tensors));
        if (device.IsCpu)
        {
            double sum = 0;
            foreach (var t in tensors) sum += SumOfSquares(t.Data);
            return sum;
        }
        using var total = Tensor.Zeros(device, 1);
        foreach (var t in tensors) Tensor.DeviceBackendOf(t).SumOfSquares(total, Tensor.DenseOnDevice(t));
        return total.Item();
    }

    /// <summary>x ← s·x for a dense tensor on any device.</summary>
    public static void Scale(Tensor x, float s)
    {
        if (x.Device.IsCpu) Scale(x.Data, s);
        else Tensor.DeviceBackendOf(x).Scale(Tensor.DenseOnDevice(x), s);
    }

    /// <summary>x ← s·x.</summary>
    public static void Scale(Span<float> x, float s)
    {
        fixed (float* px = x)
            Work.Elements(x.Length, new ScaleKernel(px, s));
    }

    readonly struct ScaleKernel(float* x, float s) : IRangeKernel
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Run<T>(int start, int end) where T : unmanaged, ISimd<T>
        {
            T vs = T.Create(s);
            int i = start;
            for (; i <= end - T.Count; i += T.Count) T.Store(T.Load(in x[i]) * vs, ref x[i]);
            for (; i < end; i++) x[i] *= s;
        }
    }
}
