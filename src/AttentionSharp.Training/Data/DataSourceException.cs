namespace AttentionSharp.Data;

/// <summary>
/// A data source could not be read or fetched: a missing or malformed file, a corpus that could not be downloaded, a
/// tokenizer file of the wrong shape. The message is one sentence a user can act on; the command line prints it as is.
/// </summary>
public sealed class DataSourceException : Exception
{
    public DataSourceException(string message) : base(message) { }

    public DataSourceException(string message, Exception innerException) : base(message, innerException) { }
}
