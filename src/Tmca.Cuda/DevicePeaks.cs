namespace Tmca.Cuda;

/// <summary>
/// Datasheet peaks of the GPUs this project may be lent, keyed by the device name the driver reports (cuDeviceGetName),
/// for the kernel lab's roofline fractions. Dense figures (no 2:4 sparsity). Memory bandwidth is better measured
/// (`tmca doctor --measure`): a datasheet's HBM figure is a ceiling a copy kernel reaches ~90 % of.
/// H100 SXM and H200 share the die (132 SMs, same compute peaks); H200's HBM3e is ≈4.8 TB/s, H100 SXM's HBM3 3.35.
/// The planner's devices (Plan/DeviceModels) carry the same datasheet figures; DevicePeaksTests holds the two tables together.
/// </summary>
public sealed record DevicePeaks(string Match, double HbmGBs, double Fp32TFlops, double Tf32TFlops)
{
    // most specific first: "H100 PCIe" before "H100"
    private static readonly DevicePeaks[] Table =
    [
        new("H200", 4800, 67, 495),
        new("H100 PCIe", 2000, 51, 378),
        new("H100 NVL", 3900, 60, 418),
        new("H100", 3350, 67, 495),
        new("A100-SXM4-80GB", 2039, 19.5, 156),
        new("A100", 1555, 19.5, 156),
        new("L40S", 864, 91.6, 183),
        new("L4", 300, 30.3, 60),
        new("RTX 4090", 1008, 82.6, 82.6),
    ];

    /// <summary>The peaks for a device name, or null when the table does not know it (then no roofline fraction is claimed).</summary>
    public static DevicePeaks? For(string deviceName) =>
        Table.FirstOrDefault(p => deviceName.Contains(p.Match, StringComparison.OrdinalIgnoreCase));

    /// <summary>Measured device-to-device copy bandwidth (GB/s: bytes read + written per second), best of
    /// <paramref name="repeats"/> copies of <paramref name="bytes"/> through the runtime's own copy.</summary>
    public static unsafe double MeasureCopyBandwidth(IDeviceRuntime rt, long bytes, int repeats = 5)
    {
        ulong a = rt.Alloc(bytes), b = rt.Alloc(bytes);
        try
        {
            rt.Memset(a, 1, bytes);
            rt.CopyOnDevice(b, a, bytes);   // warm-up
            rt.Synchronize();
            double best = 0;
            for (int i = 0; i < repeats; i++)
            {
                float ms = rt.Time(() => rt.CopyOnDevice(b, a, bytes));
                if (ms > 0) best = Math.Max(best, 2.0 * bytes / (ms * 1e-3) / 1e9);
            }
            return best;
        }
        finally { rt.Free(a); rt.Free(b); }
    }
}
