namespace AttentionSharp.Visualization;

/// <summary>One attention layer to show: its name, the tokens on each side, and NH maps of (queries × keys).</summary>
public sealed record AttentionLayerView(string Name, IReadOnlyList<string> QueryTokens, IReadOnlyList<string> KeyTokens, IReadOnlyList<float[,]> Heads)
{
    public int HeadCount => Heads.Count;
}

/// <summary>
/// What <see cref="AttentionGrid"/> and <see cref="AttentionHtml"/> draw: a model's attention on one input, layer by layer
/// and head by head. For an image model, <see cref="Image"/> holds the picture and its patch grid (token 0 is the class
/// token, token 1 + r·GridWidth + c the patch at row r, column c).
/// </summary>
public sealed record AttentionView(string Title, IReadOnlyList<AttentionLayerView> Layers, AttentionImage? Image = null)
{
    /// <summary>
    /// The view of the probe's records for one batch element, every record read as a self-attention layer over
    /// <paramref name="tokens"/> (as a GPT, BERT or ViT forward pass produces them), named "layer 0", "layer 1", ….
    /// </summary>
    public static AttentionView SelfAttention(string title, IReadOnlyList<AttentionRecord> records, IReadOnlyList<string> tokens, int batch = 0, AttentionImage? image = null)
    {
        if (records.Count == 0)
            throw new ArgumentException("The model ran no attention: it has no attention layers to show.", nameof(records));
        var layers = new List<AttentionLayerView>();
        for (int l = 0; l < records.Count; l++)
        {
            var r = records[l];
            if (r.QueryLength != tokens.Count || r.KeyLength != tokens.Count)
                throw new ArgumentException($"Attention call {l} is {r.QueryLength}×{r.KeyLength}, but there are {tokens.Count} tokens: not self-attention over them.", nameof(records));
            layers.Add(Layer($"layer {l}", r, tokens, tokens, batch));
        }
        return new AttentionView(title, layers, image);
    }

    /// <summary>One record as a layer with its own query and key tokens (cross-attention, say).</summary>
    public static AttentionLayerView Layer(string name, AttentionRecord record, IReadOnlyList<string> queryTokens, IReadOnlyList<string> keyTokens, int batch = 0)
    {
        if (record.QueryLength != queryTokens.Count || record.KeyLength != keyTokens.Count)
            throw new ArgumentException($"'{name}' is {record.QueryLength}×{record.KeyLength} but has {queryTokens.Count} query and {keyTokens.Count} key tokens.");
        var heads = new float[record.Heads][,];
        for (int h = 0; h < record.Heads; h++) heads[h] = record.Map(batch, h);
        return new AttentionLayerView(name, queryTokens, keyTokens, heads);
    }
}

/// <summary>A grayscale picture (values in [0, 1], row-major Height × Width) cut into Patch × Patch squares.</summary>
public sealed record AttentionImage(int Height, int Width, float[] Pixels, int Patch)
{
    public int GridHeight => Height / Patch;
    public int GridWidth => Width / Patch;
}
