using System.Runtime.Intrinsics;

namespace AttentionSharp.Kernels;

/// <summary>Whether a GEMM operand is used as stored (<see cref="No"/>) or transposed (<see cref="Yes"/>).</summary>
public enum Transpose { No, Yes }

/// <summary>
/// Single-precision matrix multiply on row-major matrices, in the manner of BLIS (Van Zee &amp; van de Geijn, "BLIS: A
/// Framework for Rapidly Instantiating BLAS Functionality", 2015): panels of A and B are packed into contiguous buffers
/// and a register-blocked micro-kernel of FMAs computes one MR×NR tile of C at a time.
/// </summary>
/// <remarks>
/// <para><c>C = op(A)·op(B) [+ bias] [+ C]</c>, where op(A) is m×k and op(B) is k×n. With <see cref="Transpose.Yes"/> the
/// operand is stored transposed: A as k×m, B as n×k. So a Linear layer with W stored (out, in) computes
/// Y = X·Wᵀ + b as <c>Multiply(No, Yes, …, bias)</c>, dX = dY·W as <c>(No, No)</c> and dW = dYᵀ·X as
/// <c>(Yes, No)</c>.</para>
/// <para>Leading dimensions are in elements: row r of a stored operand starts at <c>r · ld</c>. The micro-kernel is
/// chosen once per process: Vector512 (<see cref="Kernel512"/>), Vector256 (<see cref="Kernel256"/>) or scalar
/// (<see cref="KernelScalar"/>). Results do not depend on the thread count: every element of C is summed over k in the
/// same order whatever the split.</para>
/// <para>Two kinds of product skip packing: a few rows (decoding; <see cref="FewRows"/>) and narrow ones, with few columns
/// or a small C over a long k (a small convolution and its weight gradient; <see cref="NarrowRows"/>,
/// <see cref="LongDepth"/>).</para>
/// </remarks>
public static unsafe partial class Gemm
{
    /// <summary>Which micro-kernel this process uses: 512, 256 or 0 (scalar).</summary>
    public static int VectorBits { get; } =
        Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : 0;

    /// <summary>
    /// C(m×n) = op(A)(m×k) · op(B)(k×n) [+ bias(n) broadcast over rows] [+ C if <paramref name="accumulate"/>].
    /// </summary>
    public static void Multiply(Transpose ta, Transpose tb, int m, int n, int k, float* a, int lda, float* b, int ldb,
        float* c, int ldc, bool accumulate = false, float* bias = null)
    {
        CheckShape(ta, tb, m, n, k, lda, ldb, ldc);
        var problem = new Problem(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, accumulate, bias);
        Dispatch(in problem, Parallel.ThreadCount);
    }

    /// <summary>
    /// C(m×n) = op(A)(m×k) · op(B)(k×n) [+ bias(n)] [+ C]; checks that every span holds the elements its shape and
    /// leading dimension reach. An empty <paramref name="bias"/> means no bias.
    /// </summary>
    public static void Multiply(Transpose ta, Transpose tb, int m, int n, int k, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, bool accumulate = false, ReadOnlySpan<float> bias = default)
    {
        CheckShape(ta, tb, m, n, k, lda, ldb, ldc);
        CheckLength("A", a.Length, ta == Transpose.No ? m : k, ta == Transpose.No ? k : m, lda, m > 0 && k > 0);
        CheckLength("B", b.Length, tb == Transpose.No ? k : n, tb == Transpose.No ? n : k, ldb, k > 0 && n > 0);
        CheckLength("C", c.Length, m, n, ldc, m > 0 && n > 0);
        if (!bias.IsEmpty && bias.Length < n)
            throw new ArgumentException($"bias holds {bias.Length} elements but n = {n} are needed.", nameof(bias));
        fixed (float* pa = a, pb = b, pc = c, pbias = bias)
            Multiply(ta, tb, m, n, k, pa, lda, pb, ldb, pc, ldc, accumulate, bias.IsEmpty ? null : pbias);
    }

    /// <summary>
    /// For each i in [0, batch): C_i = op(A_i)·op(B_i) [+ C_i], where A_i starts at <c>a + i·strideA</c> (likewise B, C).
    /// A stride of 0 broadcasts one matrix to every product. With <paramref name="strideC"/> = 0 all products go to one
    /// C and are summed there: C = Σ_i op(A_i)·op(B_i) [+ C] (the weight gradient of a layer applied to a batch).
    /// </summary>
    public static void MultiplyBatched(Transpose ta, Transpose tb, int batch, int m, int n, int k, float* a, int lda,
        long strideA, float* b, int ldb, long strideB, float* c, int ldc, long strideC, bool accumulate = false)
    {
        CheckShape(ta, tb, m, n, k, lda, ldb, ldc);
        if (batch < 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be non-negative.");
        if (batch == 0) return;
        int threads = Parallel.ThreadCount;
        long flops = (long)m * n * k;
        // Products share C, or each is big enough to keep all threads busy on its own: one after another, each threaded.
        if (strideC == 0 || batch < threads || flops >= ThreadedMinFlops * 8)
        {
            for (int i = 0; i < batch; i++)
            {
                var problem = new Problem(ta, tb, m, n, k, a + i * strideA, lda, b + i * strideB, ldb, c + i * strideC, ldc,
                    accumulate || (strideC == 0 && i > 0), null);
                Dispatch(in problem, threads);
            }
            return;
        }
        // Many small products: whole products per thread, each single-threaded.
        var job = new BatchJob(ta, tb, m, n, k, a, lda, strideA, b, ldb, strideB, c, ldc, strideC, accumulate);
        Parallel.For(batch, 1, job.Body);
    }

    sealed class BatchJob(Transpose ta, Transpose tb, int m, int n, int k, float* a, int lda, long strideA,
        float* b, int ldb, long strideB, float* c, int ldc, long strideC, bool accumulate)
    {
        public Action<int, int> Body => (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                var problem = new Problem(ta, tb, m, n, k, a + i * strideA, lda, b + i * strideB, ldb, c + i * strideC, ldc,
                    accumulate, null);
                Dispatch(in problem, 1);
            }
        };
    }

    /// <summary>Below this many multiply-adds a product stays on the calling thread: waking a worker would cost more.</summary>
    const long ThreadedMinFlops = 96L * 96 * 96;

    static void Dispatch(in Problem p, int threads)
    {
        if (p.M == 0 || p.N == 0) return;
        if (p.K == 0) { ScaleOrFill(in p); return; }
        if ((long)p.M * p.N * p.K < ThreadedMinFlops) threads = 1;
        if (IsLongAndSmall(in p)) { LongDepth(in p, threads); return; }
        if (p.M <= FewRowsMax) { FewRows(in p, threads); return; }
        if (IsNarrow(in p)) { NarrowRows(in p, threads); return; }
        switch (VectorBits)
        {
            case 512: Driver<Kernel512>.Run(in p, threads); break;
            case 256: Driver<Kernel256>.Run(in p, threads); break;
            default: Driver<KernelScalar>.Run(in p, threads); break;
        }
    }

    /// <summary>k = 0: the product is zero, so C = [C] + [bias].</summary>
    static void ScaleOrFill(in Problem p)
    {
        for (int i = 0; i < p.M; i++)
        {
            var row = new Span<float>(p.C + (long)i * p.Ldc, p.N);
            if (!p.Accumulate) row.Clear();
            if (p.Bias != null)
                System.Numerics.Tensors.TensorPrimitives.Add(row, new ReadOnlySpan<float>(p.Bias, p.N), row);
        }
    }

    static void CheckShape(Transpose ta, Transpose tb, int m, int n, int k, int lda, int ldb, int ldc)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentOutOfRangeException(nameof(m), $"GEMM sizes must be non-negative, got m = {m}, n = {n}, k = {k}.");
        CheckLeading("lda", lda, ta == Transpose.No ? k : m, ta);
        CheckLeading("ldb", ldb, tb == Transpose.No ? n : k, tb);
        CheckLeading("ldc", ldc, n, Transpose.No);
    }

    static void CheckLeading(string name, int ld, int width, Transpose t)
    {
        if (ld < width)
            throw new ArgumentOutOfRangeException(name, ld,
                $"{name} must be at least the stored row width {width} (transpose {t}), got {ld}.");
    }

    static void CheckLength(string operand, int length, int rows, int cols, int ld, bool used)
    {
        if (!used) return;
        long needed = (long)(rows - 1) * ld + cols;
        if (length < needed)
            throw new ArgumentException(
                $"{operand} holds {length} elements but a {rows}×{cols} operand with leading dimension {ld} needs {needed}.",
                operand.ToLowerInvariant());
    }

    /// <summary>One call's operands; the packing routines read op(A) and op(B) through it.</summary>
    readonly struct Problem(Transpose ta, Transpose tb, int m, int n, int k, float* a, int lda, float* b, int ldb,
        float* c, int ldc, bool accumulate, float* bias)
    {
        public readonly Transpose TransA = ta, TransB = tb;
        public readonly int M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc;
        public readonly float* A = a, B = b, C = c, Bias = bias;
        public readonly bool Accumulate = accumulate;
    }
}
