namespace AttentionSharp.Kernels;

public enum Transpose { No, Yes }

// Interim plain GEMM with the final API; replaced by the packed, blocked kernels.
public static unsafe class Gemm
{
    public static void Multiply(Transpose ta, Transpose tb, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate = false, float* bias = null)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++)
                    s += (ta == Transpose.No ? a[(long)i * lda + p] : a[(long)p * lda + i]) * (tb == Transpose.No ? b[(long)p * ldb + j] : b[(long)j * ldb + p]);
                if (bias != null) s += bias[j];
                c[(long)i * ldc + j] = accumulate ? c[(long)i * ldc + j] + s : s;
            }
    }

    public static void MultiplyBatched(Transpose ta, Transpose tb, int batch, int m, int n, int k, float* a, int lda, long strideA, float* b, int ldb, long strideB, float* c, int ldc, long strideC, bool accumulate = false)
    {
        for (int i = 0; i < batch; i++) Multiply(ta, tb, m, n, k, a + i * strideA, lda, b + i * strideB, ldb, c + i * strideC, ldc, accumulate);
    }
}
