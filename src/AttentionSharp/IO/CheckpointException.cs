namespace AttentionSharp.IO;

/// <summary>A saved model (a checkpoint or a Hugging Face folder) is missing, malformed, or does not fit the model asked for.</summary>
public sealed class CheckpointException(string message) : Exception(message);
