using System.Text.Json;
using Tmca.Engine;
using Tmca.Training;

namespace Tmca.Bench;

/// <summary>`Tmca.Bench step PRESET BATCH [STEPS] [WARMUP] [--profile]`: one CPU training step, as JSON in the fields
/// bench/step-vs-pytorch.sh reads (the measurement itself is Tmca.Training's StepBenchmark, which `tmca step` also runs).</summary>
public static class TrainStepBenchmark
{
    public static int Run(string preset, int batch, int steps, int warmup, bool profile = false)
    {
        var t = StepBenchmark.Run(preset, batch, steps, warmup, CpuBackend.Instance, profile);
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            impl = "tmca-cpu", runtime = Environment.Version.ToString(), threads = Environment.ProcessorCount, preset, batch,
            median_ms = t.MedianMs, min_ms = t.MinMs, peak_managed_mib = t.PeakManagedMiB, peak_rss_mib = t.PeakRssMiB,
            peak_pool_mib = MemoryUse.MiB(t.Memory.PoolPeakBytes), pool_cached_mib = MemoryUse.MiB(t.Memory.PoolCachedBytes),
        }));
        return 0;
    }
}
