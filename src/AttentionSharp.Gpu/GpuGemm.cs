// Sources: Volkov & Demmel, "Benchmarking GPUs to Tune Dense Linear Algebra" (2008) for register-blocked tiles; the
// BLAS sgemm contract (C = α·op(A)·op(B) + β·C, C not read when β = 0).
using AttentionSharp.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace AttentionSharp.Gpu;

/// <summary>
/// Single-precision matrix multiply on row-major matrices: C = α·op(A)·op(B) + β·C, where op(A) is m×k and op(B) is
/// k×n. With <see cref="Transpose.Yes"/> an operand is stored transposed (A as k×m, B as n×k), as in the CPU engine's
/// <see cref="Gemm"/>: a Linear layer's Y = X·Wᵀ is <c>(No, Yes)</c>, dX = dY·W is <c>(No, No)</c>, dW = dYᵀ·X is
/// <c>(Yes, No)</c>. Leading dimensions are in elements. With β = 0, C is written without being read (NaN in C does
/// not leak through).
/// </summary>
/// <remarks>
/// Each group computes one TM×TN tile of C (64×64 on CUDA) with (TM/4)·(TN/4) threads, each owning a 4×4 register
/// tile; TK-deep slices of op(A) and op(B) pass through shared memory (stored k-major, rows padded by one float so the
/// strided stores do not conflict on banks). Edge tiles of any shape are zero-filled on load and masked on store.
/// </remarks>
public sealed class GpuGemm
{
    readonly GpuDevice _device;
    readonly Action<KernelConfig, GemmArgs> _tiled;

    internal GpuGemm(GpuDevice device)
    {
        _device = device;
        _tiled = device.Load<GemmArgs>(GemmKernel.Tiled<CudaShapes>, GemmKernel.Tiled<SmallShapes>);
    }

    /// <summary>C(m×n) = α·op(A)·op(B) + β·C on dense operands (leading dimension = stored row width).</summary>
    public void Multiply(Transpose ta, Transpose tb, int m, int n, int k, GpuTensor a, GpuTensor b, GpuTensor c,
        float alpha = 1f, float beta = 0f) =>
        Multiply(ta, tb, m, n, k, alpha, a, ta == Transpose.No ? k : m, b, tb == Transpose.No ? n : k, beta, c, n);

    /// <summary>C(m×n) = α·op(A)·op(B) + β·C with explicit leading dimensions.</summary>
    public void Multiply(Transpose ta, Transpose tb, int m, int n, int k, float alpha, GpuTensor a, int lda,
        GpuTensor b, int ldb, float beta, GpuTensor c, int ldc) =>
        MultiplyBatched(ta, tb, 1, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0);

    /// <summary>
    /// y = x·Wᵀ + b (torch.nn.Linear) for a rows × <paramref name="inFeatures"/> input and an (out, in) weight; the bias
    /// (length <paramref name="outFeatures"/>, or null) is added as each tile of the product is stored, so it costs no
    /// pass of its own.
    /// </summary>
    public void Linear(GpuTensor y, GpuTensor x, GpuTensor weight, GpuTensor? bias, int rows, int inFeatures, int outFeatures)
    {
        if (bias is not null) Check.Count(_device, bias, outFeatures, nameof(bias), "outFeatures");
        Launch(Transpose.No, Transpose.Yes, 1, rows, outFeatures, inFeatures, 1f, x, inFeatures, 0, weight, inFeatures, 0,
            0f, y, outFeatures, 0, bias);
    }

    /// <summary>
    /// For each i in [0, batch): C_i = α·op(A_i)·op(B_i) + β·C_i, where A_i starts at element i·strideA of
    /// <paramref name="a"/> (likewise B and C). A stride of 0 broadcasts one A or B to every product; each product
    /// writes its own C, so strideC may be 0 only for a batch of one.
    /// </summary>
    public void MultiplyBatched(Transpose ta, Transpose tb, int batch, int m, int n, int k, float alpha,
        GpuTensor a, int lda, long strideA, GpuTensor b, int ldb, long strideB, float beta, GpuTensor c, int ldc, long strideC) =>
        Launch(ta, tb, batch, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, null);

    /// <summary>The checks and the launch; <paramref name="bias"/> (n floats) is added to every row of C when given.</summary>
    void Launch(Transpose ta, Transpose tb, int batch, int m, int n, int k, float alpha, GpuTensor a, int lda, long strideA,
        GpuTensor b, int ldb, long strideB, float beta, GpuTensor c, int ldc, long strideC, GpuTensor? bias)
    {
        if (m < 0 || n < 0 || k < 0 || batch < 0)
            throw new ArgumentOutOfRangeException(nameof(m), $"GEMM sizes must be non-negative; got batch = {batch}, " +
                $"m = {m}, n = {n}, k = {k}.");
        if (batch > 65535)
            throw new ArgumentOutOfRangeException(nameof(batch), batch, "A batched GEMM holds at most 65535 products " +
                "(the grid's third dimension).");
        if (batch > 1 && strideC < Math.Max((long)(m - 1) * ldc + n, 1))
            throw new ArgumentException($"Batched products must not overlap in C: strideC = {strideC} for {m}×{n} " +
                $"results with ldc = {ldc}.", nameof(strideC));
        CheckLeading("lda", lda, ta == Transpose.No ? k : m);
        CheckLeading("ldb", ldb, tb == Transpose.No ? n : k);
        CheckLeading("ldc", ldc, n);
        if (batch == 0 || m == 0 || n == 0) return;
        CheckOperand("a", a, batch, strideA, ta == Transpose.No ? m : k, ta == Transpose.No ? k : m, lda, k > 0);
        CheckOperand("b", b, batch, strideB, tb == Transpose.No ? k : n, tb == Transpose.No ? n : k, ldb, k > 0);
        CheckOperand("c", c, batch, strideC, m, n, ldc, true);
        var args = new GemmArgs
        {
            A = a.View, B = b.View, C = c.View,
            M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc,
            StrideA = strideA, StrideB = strideB, StrideC = strideC,
            TransA = ta == Transpose.Yes ? 1 : 0, TransB = tb == Transpose.Yes ? 1 : 0,
            Alpha = alpha, Beta = beta,
            // Without a bias the kernel never reads it; C's view stands in (kernel arguments cannot be null).
            Bias = (bias ?? c).View, HasBias = bias is null ? 0 : 1,
        };
        var (tileM, tileN, threads) = _device.Shapes == GpuKernelShapes.Cuda
            ? (CudaShapes.GemmTileM, CudaShapes.GemmTileN, CudaShapes.GemmTileM * CudaShapes.GemmTileN / 16)
            : (SmallShapes.GemmTileM, SmallShapes.GemmTileN, SmallShapes.GemmTileM * SmallShapes.GemmTileN / 16);
        var grid = new Index3D((n + tileN - 1) / tileN, (m + tileM - 1) / tileM, batch);
        _tiled(new KernelConfig(grid, new Index3D(threads, 1, 1)), args);
    }

    static void CheckLeading(string name, int ld, int width)
    {
        if (ld < width)
            throw new ArgumentOutOfRangeException(name, ld, $"{name} must be at least the stored row width {width}; got {ld}.");
    }

    void CheckOperand(string name, GpuTensor t, int batch, long stride, int rows, int cols, int ld, bool used)
    {
        if (!used || rows == 0 || cols == 0) return;
        if (stride < 0) throw new ArgumentOutOfRangeException(name, stride, $"The batch stride of {name} must be " +
            $"non-negative; got {stride}.");
        long needed = (batch - 1) * stride + (long)(rows - 1) * ld + cols;
        Check.AtLeast(_device, t, needed, name, $"{batch} operand(s) of {rows}×{cols} with leading dimension {ld} and " +
            $"batch stride {stride}");
    }
}

/// <summary>The operands of one (batched) GEMM launch.</summary>
internal struct GemmArgs
{
    public ArrayView<float> A, B, C, Bias;
    public int M, N, K, Lda, Ldb, Ldc, HasBias;
    public long StrideA, StrideB, StrideC;
    public int TransA, TransB;
    public float Alpha, Beta;
}

internal static class GemmKernel
{
    /// <summary>One TM×TN tile of C_z for group (x, y, z): 4×4 results per thread, TK-deep steps through shared memory.</summary>
    [Kernel]
    public static void Tiled<TS>(GemmArgs p) where TS : struct, IKernelShapes
    {
        // As[k][i] = op(A)[i0 + i, k0 + k], Bs[k][j] = op(B)[k0 + k, j0 + j]; rows padded by one float.
        var As = SharedMemory.Allocate<float>(TS.GemmTileK * (TS.GemmTileM + 1));
        var Bs = SharedMemory.Allocate<float>(TS.GemmTileK * (TS.GemmTileN + 1));
        int tm = TS.GemmTileM, tn = TS.GemmTileN, tk = TS.GemmTileK, lsa = tm + 1, lsb = tn + 1;
        int stepI = tm / 4, stepJ = tn / 4, threads = stepI * stepJ;
        int tid = Group.IdxX, tx = tid % stepJ, ty = tid / stepJ;
        int i0 = Grid.IdxY * tm, j0 = Grid.IdxX * tn;
        long z = Grid.IdxZ;
        long aBase = z * p.StrideA, bBase = z * p.StrideB, cBase = z * p.StrideC;
        // Thread (tx, ty) owns rows ty + stepI·r and columns tx + stepJ·c, r, c < 4 (strided, so shared reads broadcast).
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (int k0 = 0; k0 < p.K; k0 += tk)
        {
            // Consecutive threads read consecutive stored elements (coalesced), whichever way the operand is stored.
            for (int e = tid; e < tm * tk; e += threads)
            {
                int i = p.TransA == 0 ? e / tk : e % tm, kk = p.TransA == 0 ? e % tk : e / tm;
                int gi = i0 + i, gk = k0 + kk;
                float v = 0f;
                if (gi < p.M && gk < p.K)
                    v = p.TransA == 0 ? p.A[aBase + (long)gi * p.Lda + gk] : p.A[aBase + (long)gk * p.Lda + gi];
                As[kk * lsa + i] = v;
            }
            for (int e = tid; e < tk * tn; e += threads)
            {
                int j = p.TransB == 0 ? e % tn : e / tk, kk = p.TransB == 0 ? e / tn : e % tk;
                int gj = j0 + j, gk = k0 + kk;
                float v = 0f;
                if (gj < p.N && gk < p.K)
                    v = p.TransB == 0 ? p.B[bBase + (long)gk * p.Ldb + gj] : p.B[bBase + (long)gj * p.Ldb + gk];
                Bs[kk * lsb + j] = v;
            }
            Group.Barrier();
            // C_tile += As_sliceᵀ·Bs_slice, one rank-1 update of the 4×4 register tile per k
            for (int kk = 0; kk < tk; kk++)
            {
                int ra = kk * lsa + ty, rb = kk * lsb + tx;
                float a0 = As[ra], a1 = As[ra + stepI], a2 = As[ra + 2 * stepI], a3 = As[ra + 3 * stepI];
                float b0 = Bs[rb], b1 = Bs[rb + stepJ], b2 = Bs[rb + 2 * stepJ], b3 = Bs[rb + 3 * stepJ];
                c00 = GpuMath.Fma(a0, b0, c00); c01 = GpuMath.Fma(a0, b1, c01);
                c02 = GpuMath.Fma(a0, b2, c02); c03 = GpuMath.Fma(a0, b3, c03);
                c10 = GpuMath.Fma(a1, b0, c10); c11 = GpuMath.Fma(a1, b1, c11);
                c12 = GpuMath.Fma(a1, b2, c12); c13 = GpuMath.Fma(a1, b3, c13);
                c20 = GpuMath.Fma(a2, b0, c20); c21 = GpuMath.Fma(a2, b1, c21);
                c22 = GpuMath.Fma(a2, b2, c22); c23 = GpuMath.Fma(a2, b3, c23);
                c30 = GpuMath.Fma(a3, b0, c30); c31 = GpuMath.Fma(a3, b1, c31);
                c32 = GpuMath.Fma(a3, b2, c32); c33 = GpuMath.Fma(a3, b3, c33);
            }
            Group.Barrier();
        }
        int iBase = i0 + ty, jBase = j0 + tx;
        StoreRow(p, cBase, iBase, jBase, stepJ, c00, c01, c02, c03);
        StoreRow(p, cBase, iBase + stepI, jBase, stepJ, c10, c11, c12, c13);
        StoreRow(p, cBase, iBase + 2 * stepI, jBase, stepJ, c20, c21, c22, c23);
        StoreRow(p, cBase, iBase + 3 * stepI, jBase, stepJ, c30, c31, c32, c33);
    }

    static void StoreRow(GemmArgs p, long cBase, int i, int j, int stepJ, float v0, float v1, float v2, float v3)
    {
        if (i >= p.M) return;
        long row = cBase + (long)i * p.Ldc;
        Store(p, row, j, v0);
        Store(p, row, j + stepJ, v1);
        Store(p, row, j + 2 * stepJ, v2);
        Store(p, row, j + 3 * stepJ, v3);
    }

    /// <summary>C[i, j] = α·acc + β·C[i, j] (+ bias[j]), C unread when β = 0.</summary>
    static void Store(GemmArgs p, long row, int j, float acc)
    {
        if (j >= p.N) return;
        float value = p.Alpha * acc;
        if (p.Beta != 0f) value = GpuMath.Fma(p.Beta, p.C[row + j], value);
        if (p.HasBias != 0) value += p.Bias[j];
        p.C[row + j] = value;
    }
}
