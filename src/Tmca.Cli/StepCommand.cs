using System.CommandLine;
using System.Text.Json;
using Tmca.Training;

namespace Tmca.Cli;

/// <summary>`tmca step`: times one full training step (forward, every loss, backward, AdamW) on a random batch, on any
/// device, and prints one JSON line — the engine's side of the GPU script's comparison with PyTorch.</summary>
internal static class StepCommand
{
    public static Command Build()
    {
        var preset = Common.Preset("small");
        var batch = Common.Batch(min: 2);
        var steps = new Option<int>("--steps") { Description = "measured steps (the median is reported)", DefaultValueFactory = _ => 20 }.Positive();
        var warmup = new Option<int>("--warmup") { Description = "steps before measuring", DefaultValueFactory = _ => 3 }.Positive(min: 0);
        var device = Common.Device();
        var loop = new Option<string>("--loop")
        {
            Description = "plain (forward, losses, backward, AdamW: what the PyTorch reference times), trainer (plus the loss read-back) or guarded (the trainer's step with the non-finite guard)",
            DefaultValueFactory = _ => "plain",
        }.OneOf("plain", "trainer", "guarded");
        var recompute = Common.Recompute();
        var cmd = new Command("step", "time one training step on a random batch (JSON): forward, losses, backward, AdamW") { preset, batch, steps, warmup, device, loop, recompute };
        cmd.SetAction(p => Common.Guard(() =>
        {
            var be = Common.Backend(p.GetValue(device)!);
            var t = StepBenchmark.Run(p.GetValue(preset)!, p.GetValue(batch), p.GetValue(steps), p.GetValue(warmup), be, loop: p.GetValue(loop)!, recompute: p.GetValue(recompute));
            var m = t.Memory;
            bool onDevice = be is Tmca.Engine.IDeviceMemory;
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                impl = "tmca", loop = p.GetValue(loop), device = t.Device, preset = t.Preset, batch = t.Batch, median_ms = t.MedianMs, min_ms = t.MinMs, images_per_s = t.ImagesPerSecond,
                peak_rss_mib = t.PeakRssMiB,
                // the pool that holds the tensors: the device pool on a device, the CPU array pool on the CPU
                peak_device_mib = onDevice ? MemoryUse.MiB(m.PoolPeakBytes) : (double?)null, device_cached_mib = onDevice ? MemoryUse.MiB(m.PoolCachedBytes) : (double?)null,
                peak_pool_mib = onDevice ? (double?)null : MemoryUse.MiB(m.PoolPeakBytes), pool_cached_mib = onDevice ? (double?)null : MemoryUse.MiB(m.PoolCachedBytes),
            }));
            return 0;
        }));
        return cmd;
    }
}
