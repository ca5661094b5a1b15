namespace AttentionSharp.Kernels.Reference;

/// <summary>
/// The plain twin of <see cref="Gemm"/>: the definition of a matrix product, one element at a time, summed in double.
/// Tests compare the fast kernel against it; it is meant to be read, not to be fast.
/// </summary>
public static unsafe class ReferenceGemm
{
    /// <summary>C(m×n) = op(A)(m×k) · op(B)(k×n) [+ bias(n)] [+ C if <paramref name="accumulate"/>].</summary>
    public static void Multiply(Transpose ta, Transpose tb, int m, int n, int k, float* a, int lda, float* b, int ldb,
        float* c, int ldc, bool accumulate = false, float* bias = null)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                // C(i, j) = Σ_p op(A)(i, p) · op(B)(p, j)
                double sum = 0;
                for (int p = 0; p < k; p++)
                {
                    float aip = ta == Transpose.No ? a[(long)i * lda + p] : a[(long)p * lda + i];
                    float bpj = tb == Transpose.No ? b[(long)p * ldb + j] : b[(long)j * ldb + p];
                    sum += (double)aip * bpj;
                }
                if (bias != null) sum += bias[j];
                if (accumulate) sum += c[(long)i * ldc + j];
                c[(long)i * ldc + j] = (float)sum;
            }
    }

    /// <summary>The span form of <see cref="Multiply(Transpose, Transpose, int, int, int, float*, int, float*, int, float*, int, bool, float*)"/>.</summary>
    public static void Multiply(Transpose ta, Transpose tb, int m, int n, int k, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, bool accumulate = false, ReadOnlySpan<float> bias = default)
    {
        fixed (float* pa = a, pb = b, pc = c, pbias = bias)
            Multiply(ta, tb, m, n, k, pa, lda, pb, ldb, pc, ldc, accumulate, bias.IsEmpty ? null : pbias);
    }

    /// <summary>
    /// C_i = op(A_i)·op(B_i) [+ C_i] for i in [0, batch), operands <c>stride</c> elements apart (0 broadcasts); with
    /// strideC = 0 the products are summed into the one C.
    /// </summary>
    public static void MultiplyBatched(Transpose ta, Transpose tb, int batch, int m, int n, int k, float* a, int lda,
        long strideA, float* b, int ldb, long strideB, float* c, int ldc, long strideC, bool accumulate = false)
    {
        for (int i = 0; i < batch; i++)
            Multiply(ta, tb, m, n, k, a + i * strideA, lda, b + i * strideB, ldb, c + i * strideC, ldc,
                accumulate || (strideC == 0 && i > 0));
    }
}
