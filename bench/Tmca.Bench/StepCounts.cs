using Tmca.Cuda;
using Tmca.Engine;
using Tmca.Model;
using Tmca.Training;

namespace Tmca.Bench;

/// <summary>
/// What one training step asks of the device (`Tmca.Bench counts [PRESET…]`, on the CUDA simulator — counts, not
/// times): kernel launches (GEMMs included), device → host and host → device copies, and the device pool's peak
/// bytes, for a full-TMCA step (forward, every loss, backward, AdamW) on a random batch of 8 at the preset's size.
/// The baseline that fusion and CUDA graphs will be judged against.
/// </summary>
public static class StepCounts
{
    public static int Run(string[] presets)
    {
        var sim = CudaBackend.TryCreateSimulator(out var why, new Tmca.Cuda.Sim.SimOptions());
        if (sim is null) { Console.Error.WriteLine($"no CUDA simulator: {why}"); return 1; }
        var rows = new List<string>();
        foreach (var preset in presets)
        {
            var cfg = TmcaConfig.Preset(preset);
            var model = new TmcaModel(cfg, new TmcaFlags(), seed: 1);
            model.To(sim);
            var opt = new AdamW(model.Params.Trainable, new AdamWConfig(1e-4));
            var batch = RandomBatch(cfg, 8, sim);
            (long Launches, long D2H, long H2D, long Peak, double Seconds) last = default;
            for (int step = 0; step < 2; step++)   // the second step is measured (the first loads every kernel file)
            {
                using var scope = new TensorScope();
                using var tape = new Tape();
                sim.Pool.ResetPeak();
                long l0 = sim.Launches, d0 = sim.DeviceToHostCopies, h0 = sim.HostToDeviceCopies;
                var clock = System.Diagnostics.Stopwatch.StartNew();
                Trainer.Step(model, opt, tape, batch);
                last = (sim.Launches - l0, sim.DeviceToHostCopies - d0, sim.HostToDeviceCopies - h0, sim.Pool.PeakBytes, clock.Elapsed.TotalSeconds);
            }
            rows.Add($"| {preset} | {cfg.ImageSize} px, batch 8 | {model.Params.TrainableCount:N0} | {last.Launches:N0} | {last.D2H} | {last.H2D} | {last.Peak / (1 << 20):0.0} MiB | {last.Seconds:0.0} s |");
            Console.WriteLine(rows[^1]);
        }
        Console.WriteLine();
        Console.WriteLine("| preset | step | parameters | kernel launches | device→host copies | host→device copies | pool peak | simulator time |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in rows) Console.WriteLine(r);
        return 0;
    }

    private static TmcaBatch RandomBatch(TmcaConfig cfg, int b, IBackend be)
    {
        var r = new Random(3);
        int s = cfg.ImageSize, l = cfg.TextLen;
        var image = Enumerable.Range(0, b * cfg.InChannels * s * s).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
        var gt = Enumerable.Range(0, b * s * s).Select(i => (i / s % s) > s / 3 && (i % s) < s / 2 ? 1f : 0f).ToArray();
        var ids = Enumerable.Range(0, b * l).Select(i => i % l == 0 ? 2L : 1000L + r.Next(5000)).ToArray();
        var mask = Enumerable.Range(0, b * l).Select(i => i % l < 12 ? 1L : 0L).ToArray();
        return new TmcaBatch(Tensor.FromArray(image, b, cfg.InChannels, s, s).To(be), Tensor.FromArray(ids, b, l).To(be),
                             Tensor.FromArray(mask, b, l).To(be), Tensor.FromArray(gt, b, 1, s, s).To(be)) { HostIds = ids, HostMask = mask };
    }
}
