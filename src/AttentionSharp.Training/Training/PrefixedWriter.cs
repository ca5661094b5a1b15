using System.Text;

namespace AttentionSharp.Training;

/// <summary>
/// Writes whole lines to <paramref name="inner"/>, each starting with <paramref name="prefix"/>: text is held until its
/// line ends, so that several writers sharing one synchronized output (an ensemble's members training side by side)
/// never interleave within a line. A carriage return ends a line as a newline does; what is held at
/// <see cref="Flush"/> or disposal is written as a line of its own.
/// </summary>
public sealed class PrefixedWriter(TextWriter inner, string prefix) : TextWriter
{
    readonly StringBuilder _line = new();
    readonly Lock _gate = new();

    public override Encoding Encoding => inner.Encoding;

    public override void Write(char value)
    {
        lock (_gate)
        {
            if (value is '\n' or '\r') EndLine(force: false);
            else _line.Append(value);
        }
    }

    public override void Write(string? value)
    {
        if (value is null) return;
        lock (_gate)
            foreach (char c in value)
            {
                if (c is '\n' or '\r') EndLine(force: false);
                else _line.Append(c);
            }
    }

    public override void WriteLine(string? value)
    {
        lock (_gate)
        {
            Write(value);
            EndLine(force: true);
        }
    }

    public override void WriteLine()
    {
        lock (_gate) EndLine(force: true);
    }

    public override void Flush()
    {
        lock (_gate)
        {
            if (_line.Length > 0) EndLine(force: true);
            inner.Flush();
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) Flush();
        base.Dispose(disposing);
    }

    /// <summary>
    /// Writes the held text as one line. A line break after an empty line is dropped unless <paramref name="force"/>d
    /// (the "\r\n" pair, or a "\r" that redraws a line, makes one line, not two).
    /// </summary>
    void EndLine(bool force)
    {
        if (_line.Length == 0 && !force) return;
        inner.WriteLine(_line.Length == 0 ? "" : prefix + _line);
        _line.Clear();
    }
}
