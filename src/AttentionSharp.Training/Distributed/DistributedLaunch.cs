namespace AttentionSharp.Distributed;

/// <summary>
/// Decides, from the environment alone, whether this process is one rank of an MPI job, so that a plain run never loads
/// the MPI library: Open MPI's <c>mpirun</c> sets OMPI_COMM_WORLD_SIZE in every process it starts, and PMIx-based
/// launchers (Open MPI 5, Slurm's srun) set PMIX_RANK.
/// </summary>
public static class DistributedLaunch
{
    /// <summary>How to get MPI, for error messages.</summary>
    public const string InstallHint =
        "Install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev) and start the ranks with 'mpirun -np N attn train …'.";

    /// <summary>True when an MPI launcher started this process.</summary>
    public static bool StartedByMpi => Has("OMPI_COMM_WORLD_SIZE") || Has("PMIX_RANK");

    /// <summary>Ranks of the job on this machine (OMPI_COMM_WORLD_LOCAL_SIZE), or 1 when unknown.</summary>
    public static int LocalRanks =>
        int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_SIZE"), out var n) && n >= 1 ? n : 1;

    /// <summary>
    /// The group this process trains in: MPI_COMM_WORLD when started by an MPI launcher or when <paramref name="required"/>
    /// (then a process started alone is a group of one), otherwise the single-process group without touching MPI.
    /// Throws <see cref="DistributedException"/> with installation advice when MPI is needed but missing.
    /// </summary>
    public static ICommunicator Start(bool required)
    {
        if (!required && !StartedByMpi) return new SingleProcessCommunicator();
        return MpiCommunicator.Start();
    }

    static bool Has(string name) => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(name));
}
