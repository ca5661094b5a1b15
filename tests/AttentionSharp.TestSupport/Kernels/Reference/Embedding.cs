// Reference twin of Kernels.Embedding.
namespace AttentionSharp.Kernels.Reference;

/// <summary>Plain table lookup and scatter-add; an absent id (−1, where allowed) is a row of zeros.</summary>
public static class Embedding
{
    public static void Forward(Span<float> y, ReadOnlySpan<int> ids, ReadOnlySpan<float> table, int vocab, int dim,
        bool allowAbsent = false)
    {
        Kernels.Embedding.Validate(ids, table.Length, vocab, dim, allowAbsent: allowAbsent);
        Guard.Matrix(nameof(y), y.Length, ids.Length, dim, "ids.Length", nameof(dim));
        // y[i, :] = table[ids[i], :], or 0
        for (int i = 0; i < ids.Length; i++)
            for (int j = 0; j < dim; j++) y[i * dim + j] = ids[i] < 0 ? 0f : table[ids[i] * dim + j];
    }

    public static void Backward(Span<float> dtable, ReadOnlySpan<float> dy, ReadOnlySpan<int> ids, int vocab, int dim,
        bool allowAbsent = false)
    {
        Kernels.Embedding.Validate(ids, dtable.Length, vocab, dim, nameof(dtable), allowAbsent);
        Guard.Matrix(nameof(dy), dy.Length, ids.Length, dim, "ids.Length", nameof(dim));
        // dtable[ids[i], :] += dy[i, :]
        for (int i = 0; i < ids.Length; i++)
            if (ids[i] >= 0)
                for (int j = 0; j < dim; j++) dtable[ids[i] * dim + j] += dy[i * dim + j];
    }
}
