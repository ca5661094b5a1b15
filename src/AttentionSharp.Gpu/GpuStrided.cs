using ILGPU;
using ILGPU.Runtime;

namespace AttentionSharp.Gpu;

/// <summary>
/// Copies between a strided view and dense elements (rank ≤ 6): <see cref="Gather"/> makes a view dense
/// (<c>Contiguous</c> of a transposed or narrowed tensor on a device), <see cref="ScatterAdd"/> adds a dense gradient back
/// into the view's places. Element c of the view lies at <c>offset + Σ_d c_d·strides[d]</c> of the buffer.
/// </summary>
public sealed class GpuStrided
{
    /// <summary>Largest rank handled.</summary>
    public const int MaxRank = 6;

    readonly GpuDevice _device;
    readonly Action<KernelConfig, StridedArgs> _gather, _scatterAdd;

    internal GpuStrided(GpuDevice device)
    {
        _device = device;
        _gather = device.Load<StridedArgs>(GatherKernel, GatherKernel);
        _scatterAdd = device.Load<StridedArgs>(ScatterAddKernel, ScatterAddKernel);
    }

    /// <summary>
    /// dense[i] = buffer[offset + Σ c_d·strides[d]] for every index c of <paramref name="shape"/>, in row-major order.
    /// </summary>
    public void Gather(GpuTensor dense, GpuTensor buffer, long offset, ReadOnlySpan<int> shape, ReadOnlySpan<int> strides)
    {
        var args = Arguments(dense, buffer, offset, shape, strides);
        if (args.Count > 0) _gather(_device.ElementLaunch(args.Count), args);
    }

    /// <summary>
    /// buffer[offset + Σ c_d·strides[d]] += dense[i]: for views that map no two indices to one element (those of narrow,
    /// select, transpose and permute), so that no two threads add to one place.
    /// </summary>
    public void ScatterAdd(GpuTensor buffer, long offset, ReadOnlySpan<int> shape, ReadOnlySpan<int> strides, GpuTensor dense)
    {
        var args = Arguments(dense, buffer, offset, shape, strides);
        if (args.Count > 0) _scatterAdd(_device.ElementLaunch(args.Count), args);
    }

    StridedArgs Arguments(GpuTensor dense, GpuTensor buffer, long offset, ReadOnlySpan<int> shape, ReadOnlySpan<int> strides)
    {
        if (shape.Length != strides.Length || shape.Length > MaxRank)
            throw new ArgumentException($"A strided view needs one stride per dimension and at most {MaxRank} " +
                $"dimensions; got shape ({string.Join(", ", shape.ToArray())}) and strides " +
                $"({string.Join(", ", strides.ToArray())}).");
        long count = 1, last = offset;
        for (int d = 0; d < shape.Length; d++)
        {
            if (shape[d] < 0 || strides[d] < 0)
                throw new ArgumentException("A strided view's sizes and strides must be non-negative.");
            count *= shape[d];
            last += (long)Math.Max(shape[d] - 1, 0) * strides[d];
        }
        Check.Count(_device, dense, count, nameof(dense), "the view's elements");
        if (count > 0) Check.AtLeast(_device, buffer, last + 1, nameof(buffer), "the view's last element + 1");
        // Leading dimensions of size 1 pad the shape to MaxRank.
        Span<int> s = stackalloc int[MaxRank], t = stackalloc int[MaxRank];
        s.Fill(1); t.Clear();
        shape.CopyTo(s[(MaxRank - shape.Length)..]);
        strides.CopyTo(t[(MaxRank - shape.Length)..]);
        return new StridedArgs
        {
            Dense = dense.View, Buffer = buffer.View, Offset = offset, Count = (int)count,
            S0 = s[0], S1 = s[1], S2 = s[2], S3 = s[3], S4 = s[4], S5 = s[5],
            T0 = t[0], T1 = t[1], T2 = t[2], T3 = t[3], T4 = t[4], T5 = t[5],
        };
    }

    /// <summary>Where dense element i of the view lies in the buffer.</summary>
    static long Place(in StridedArgs p, int i)
    {
        long at = p.Offset;
        int c = i % p.S5; i /= p.S5; at += (long)c * p.T5;
        c = i % p.S4; i /= p.S4; at += (long)c * p.T4;
        c = i % p.S3; i /= p.S3; at += (long)c * p.T3;
        c = i % p.S2; i /= p.S2; at += (long)c * p.T2;
        c = i % p.S1; i /= p.S1; at += (long)c * p.T1;
        return at + (long)i * p.T0;
    }

    [Kernel]
    static void GatherKernel(StridedArgs p)
    {
        for (int i = GpuMath.GridFirst; i < p.Count; i += GpuMath.GridStride) p.Dense[i] = p.Buffer[Place(p, i)];
    }

    [Kernel]
    static void ScatterAddKernel(StridedArgs p)
    {
        for (int i = GpuMath.GridFirst; i < p.Count; i += GpuMath.GridStride) p.Buffer[Place(p, i)] += p.Dense[i];
    }
}

internal struct StridedArgs
{
    public ArrayView<float> Dense, Buffer;
    public long Offset;
    public int Count, S0, S1, S2, S3, S4, S5, T0, T1, T2, T3, T4, T5;
}
