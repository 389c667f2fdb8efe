using Tmca.Engine;

namespace Tmca.Training;

/// <summary>
/// What a step or an epoch needed in memory, for `tmca step` and epochs.jsonl (issue 19): the process's peak resident
/// set (VmHWM) and the pool that holds the tensors — the CPU array pool on the CPU, the device pool on a device —
/// with its peak of live bytes and what it caches besides.
/// </summary>
public readonly record struct MemoryUse(long PeakRssBytes, long PoolPeakBytes, long PoolLiveBytes, long PoolCachedBytes)
{
    public static double MiB(long bytes) => Math.Round(bytes / 1048576.0, 1);

    /// <summary>Now, for <paramref name="backend"/>'s pool; the RSS peak since <see cref="ResetPeaks"/> (or since the
    /// process started where the kernel does not let it be reset).</summary>
    public static MemoryUse Read(IBackend backend) => backend is IDeviceMemory d
        ? new MemoryUse(PeakRss(), d.PeakBytes, d.InUseBytes, d.CachedBytes)
        : new MemoryUse(PeakRss(), CpuArrayPool.PeakLiveBytes, CpuArrayPool.LiveBytes, CpuArrayPool.CachedBytes);

    /// <summary>Starts a new measurement: the pool's peak becomes its live bytes, and so does the process's VmHWM
    /// (Linux: writing 5 to /proc/self/clear_refs; elsewhere the RSS peak stays the process's).</summary>
    public static void ResetPeaks(IBackend backend)
    {
        if (backend is IDeviceMemory d) d.ResetPeak();
        else CpuArrayPool.ResetPeak();
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>VmHWM from /proc/self/status (Linux), else the current working set.</summary>
    public static long PeakRss()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:")) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException) { }
        return Environment.WorkingSet;
    }
}
