namespace Tmca.Engine;

/// <summary>Out of device memory, as the training loop sees it (the CUDA backend's exception implements this, so that
/// Training needs no reference to Cuda): what was asked, what was free, and the op that asked.</summary>
public interface IOutOfDeviceMemory
{
    long Requested { get; }
    long Free { get; }
    long Total { get; }
    string? Op { get; }
}

/// <summary>A backend whose memory use can be measured: the training loop measures steps at two batch sizes after an
/// out-of-memory error, to say which batch would fit.</summary>
public interface IDeviceMemory
{
    long InUseBytes { get; }
    long PeakBytes { get; }
    void ResetPeak();
    /// <summary>Gives cached free blocks back to the device.</summary>
    void ReleaseCache();
}
