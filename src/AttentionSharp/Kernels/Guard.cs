namespace AttentionSharp.Kernels;

/// <summary>
/// Argument checks shared by the kernels and their reference twins. Messages name the argument, the expected and the
/// actual length, and the shape; they are only formatted on failure, so a passing check allocates nothing.
/// </summary>
internal static class Guard
{
    /// <summary>Throws unless <paramref name="rows"/> and <paramref name="cols"/> are non-negative.</summary>
    public static void Shape(int rows, int cols, string rowsName = "rows", string colsName = "cols")
    {
        if (rows < 0) throw new ArgumentOutOfRangeException(rowsName, rows, $"{rowsName} must be non-negative; got {rows}.");
        if (cols < 0) throw new ArgumentOutOfRangeException(colsName, cols, $"{colsName} must be non-negative; got {cols}.");
    }

    /// <summary>Throws unless span <paramref name="name"/> holds rows × cols floats.</summary>
    public static void Matrix(string name, int actual, int rows, int cols, string rowsName = "rows", string colsName = "cols")
    {
        if (actual != (long)rows * cols)
            throw new ArgumentException(
                $"{name} has length {actual}; expected {(long)rows * cols} ({rowsName} × {colsName} = {rows} × {cols}).", name);
    }

    /// <summary>Checks of a row-wise forward y = f(x): both rows × cols.</summary>
    public static void RowForward(int y, int x, int rows, int cols)
    {
        Shape(rows, cols);
        Matrix(nameof(y), y, rows, cols);
        Matrix(nameof(x), x, rows, cols);
    }

    /// <summary>Checks of a row-wise backward from (dy, y): dx, dy and y all rows × cols.</summary>
    public static void RowBackward(int dx, int dy, int y, int rows, int cols)
    {
        Shape(rows, cols);
        Matrix(nameof(dx), dx, rows, cols);
        Matrix(nameof(dy), dy, rows, cols);
        Matrix(nameof(y), y, rows, cols);
    }

    /// <summary>Throws unless span <paramref name="name"/> holds <paramref name="length"/> items (one per <paramref name="dimension"/>).</summary>
    public static void Vector(string name, int actual, int length, string dimension)
    {
        if (actual != length)
            throw new ArgumentException($"{name} has length {actual}; expected {length} ({dimension} = {length}).", name);
    }

    /// <summary>Like <see cref="Vector"/>, but an empty span is also accepted and means "absent".</summary>
    public static void OptionalVector(string name, int actual, int length, string dimension)
    {
        if (actual != 0 && actual != length)
            throw new ArgumentException(
                $"{name} has length {actual}; expected {length} ({dimension} = {length}), or 0 to leave it out.", name);
    }

    /// <summary>Throws unless an element-wise operand has the length of the first one, <paramref name="reference"/>.</summary>
    public static void SameLength(string name, int actual, int expected, string reference)
    {
        if (actual != expected)
            throw new ArgumentException($"{name} has length {actual}; expected {expected}, the length of {reference}.", name);
    }
}
