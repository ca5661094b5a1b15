namespace AttentionSharp.Data;

/// <summary>
/// Test-time augmentation: the views of an image whose class probabilities an evaluation averages. A classifier trained
/// on shifted and mirrored images gives each view a slightly different answer; their mean is steadier than any one.
/// "none" reads the image once; "mirror" the image and its mirror image; "shifts" both of those at the centre and
/// moved one pixel up, down, left and right (10 views), the moves of the training crops.
/// </summary>
public sealed class TestViews
{
    /// <summary>The names <see cref="TestViews(string, float)"/> takes.</summary>
    public static IReadOnlyList<string> Names { get; } = ["none", "mirror", "shifts"];

    /// <summary>One view: mirrored or not, then shifted: view[y, x] = image[y + Dy, x + Dx].</summary>
    public readonly record struct View(bool Mirror, int Dy, int Dx);

    static readonly (int Dy, int Dx)[] Moves = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)];

    /// <param name="name">"none", "mirror" or "shifts".</param>
    /// <param name="fill">The value a shift brings in at the edge: the background, in the images' units.</param>
    public TestViews(string name, float fill)
    {
        Views = name switch
        {
            "none" => [new View(false, 0, 0)],
            "mirror" => [new View(false, 0, 0), new View(true, 0, 0)],
            "shifts" => [.. from mirror in new[] { false, true } from m in Moves select new View(mirror, m.Dy, m.Dx)],
            _ => throw new ArgumentException($"The test views '{name}' are not known; use {string.Join(", ", Names)}."),
        };
        (Name, Fill) = (name, fill);
    }

    /// <summary>One view, the image itself.</summary>
    public static TestViews None { get; } = new("none", 0f);

    public string Name { get; }
    public float Fill { get; }
    public IReadOnlyList<View> Views { get; }

    /// <summary>Whether the only view is the image itself.</summary>
    public bool IsIdentity => Views.Count == 1;

    /// <summary>In words, for a run's header: what an evaluation reads.</summary>
    public string Description => Name switch
    {
        "none" => "each image once",
        "mirror" => "each image and its mirror image, probabilities averaged",
        _ => $"{Views.Count} views of each image (it and its mirror image, each at the centre and shifted one pixel four " +
             "ways), probabilities averaged",
    };

    /// <summary>
    /// Writes view <paramref name="view"/> of the (Ch, H, W) image <paramref name="image"/> into
    /// <paramref name="target"/>.
    /// </summary>
    public void Write(ReadOnlySpan<float> image, Span<float> target, int channels, int side, View view)
    {
        ImageAugmentation.Shift(image, target, channels, side, view.Dy, view.Dx, Fill);
        // Shifted, then mirrored: the mirror image shifted by −Dx, a view of the set all the same (moves come in ± pairs).
        if (view.Mirror) ImageAugmentation.FlipHorizontal(target, side);
    }
}
