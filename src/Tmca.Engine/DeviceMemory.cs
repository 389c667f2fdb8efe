namespace Tmca.Engine;

/// <summary>Out of device memory, as the training loop sees it (the CUDA backend's exception implements this, so that
/// Training needs no reference to Cuda): what was asked, what was free, and the op that asked.</summary>
public interface IOutOfDeviceMemory
{
    /// <summary>Where it happened: "op 'conv2d.3x3'", or "the op after 'gelu' (allocating its output)"; null if unknown.</summary>
    long Requested { get; }
    long Free { get; }
    long Total { get; }
    string? Op { get; }
}

/// <summary>Byte counts for people: "812 bytes", "12.0 KiB", "3.1 MiB", "1.25 GiB".</summary>
public static class ByteSize
{
    public static string Format(long b) => b >= 1L << 30 ? $"{b / (double)(1L << 30):0.00} GiB" : b >= 1L << 20 ? $"{b / (double)(1L << 20):0.0} MiB"
                                         : b >= 1L << 10 ? $"{b / 1024.0:0.0} KiB" : $"{b} bytes";
}

/// <summary>A backend whose memory use can be measured: the training loop measures steps at two batch sizes after an
/// out-of-memory error, to say which batch would fit; `tmca step` and epochs.jsonl report live, cached and peak bytes.</summary>
public interface IDeviceMemory
{
    long InUseBytes { get; }
    long PeakBytes { get; }
    /// <summary>Free blocks the pool keeps for reuse (held from the device, not live).</summary>
    long CachedBytes { get; }
    void ResetPeak();
    /// <summary>Gives cached free blocks back to the device.</summary>
    void ReleaseCache();
}
