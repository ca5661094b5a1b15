namespace AttentionSharp.Data;

/// <summary>A dataset divided three ways; each part is disjoint from the others.</summary>
public sealed record DataSplit<T>(T Train, T Validation, T Test);
