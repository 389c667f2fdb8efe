using System.Diagnostics;
using Tmca.Engine;
using Tmca.Model;

namespace Tmca.Training;

/// <summary>The timing of one full training step, measured the same way for every device.</summary>
/// <param name="Memory">after the last step: the process's peak RSS, the tensor pool's live peak over every step and what
/// it caches (the CPU array pool, or the device pool on a device).</param>
public sealed record StepTiming(string Preset, int Batch, string Device, double MedianMs, double MinMs, double ImagesPerSecond,
                                double PeakManagedMiB, MemoryUse Memory)
{
    public double PeakRssMiB => MemoryUse.MiB(Memory.PeakRssBytes);
}

/// <summary>
/// One full training step (forward, every loss with the full TMCA flags, backward, AdamW) on a fixed random batch,
/// timed after warm-up; the median of the measured steps. The same batch and settings as bench/reference's PyTorch
/// step (random image, 18 of 24 tokens, 30 % target), so the two can be compared in one command.
/// </summary>
public static class StepBenchmark
{
    /// <param name="loop">"plain": forward, losses, backward, AdamW (what PyTorch's reference times); "trainer": the
    /// training loop's step (plus its one read-back of the loss terms); "guarded": the trainer's step with the
    /// non-finite guard as training runs it (BatchNorm buffers snapshotted, gradients counted, AdamW conditional).</param>
    public static StepTiming Run(string preset, int batch, int steps, int warmup, IBackend backend, bool profile = false, string loop = "plain",
                                 RecomputeMode recompute = RecomputeMode.None)
    {
        if (loop is not ("plain" or "trainer" or "guarded")) throw new ArgumentException($"loop '{loop}': plain, trainer or guarded");
        var cfg = TmcaConfig.Preset(preset);
        var model = new TmcaModel(cfg, new TmcaFlags(), seed: 0) { Recompute = recompute };
        model.To(backend);
        var opt = new AdamW(model.Params.Trainable, new AdamWConfig());
        var b = RandomBatch(cfg, batch, backend);
        var times = new List<double>();
        var buffers = new BufferSnapshot(model);
        long peakHeap = 0;
        for (int i = 0; i < warmup + steps; i++)
        {
            if (profile && i == warmup) { Profiler.Reset(); Profiler.Enabled = true; }
            var sw = Stopwatch.StartNew();
            using (var scope = new TensorScope())
            using (var tape = new Tape())
            {
                if (loop == "plain")
                {
                    opt.ReleaseGrads();
                    var loss = model.Losses(model.Forward(b, training: true), b).Total;
                    tape.Backward(loss);
                    opt.StepOnce();
                }
                else
                {
                    if (loop == "guarded") buffers.Save();
                    var v = Trainer.Step(model, opt, tape, b, guard: loop == "guarded");
                    if (!v.Finite) throw new InvalidOperationException($"step {i}: not finite");
                }
                backend.Synchronize();   // device work is asynchronous: the step ends when the device is done
                peakHeap = Math.Max(peakHeap, GC.GetTotalMemory(false));
            }
            if (i >= warmup) times.Add(sw.Elapsed.TotalMilliseconds);
        }
        if (profile) Console.Error.WriteLine(Profiler.Report(steps));
        times.Sort();
        var info = GC.GetGCMemoryInfo();
        double med = times[times.Count / 2];
        return new StepTiming(preset, batch, backend.Name, Math.Round(med, 2), Math.Round(times[0], 2), Math.Round(batch / (med / 1000), 1),
                              Math.Round(Math.Max(peakHeap, info.HeapSizeBytes) / 1048576.0, 1), MemoryUse.Read(backend));
    }

    /// <summary>The benchmark's fixed random batch on <paramref name="backend"/>: images uniform in [−1, 1), 18 of 24 tokens
    /// set, masks 30 % target (the same as bench/reference's PyTorch step).</summary>
    public static TmcaBatch RandomBatch(TmcaConfig cfg, int batch, IBackend backend)
    {
        var r = new Random(0);
        int S = cfg.ImageSize;
        var img = new float[(long)batch * cfg.InChannels * S * S];
        for (long i = 0; i < img.Length; i++) img[i] = (float)(r.NextDouble() * 2 - 1);
        var ids = new long[batch * 24]; var mask = new long[batch * 24];
        for (int i = 0; i < ids.Length; i++) { bool on = i % 24 < 18; ids[i] = on ? r.Next(5, 30000) : 0; mask[i] = on ? 1 : 0; }
        var gt = new float[(long)batch * S * S];
        for (long i = 0; i < gt.Length; i++) gt[i] = r.NextDouble() > 0.7 ? 1f : 0f;
        Tensor Up(Tensor t) => backend is CpuBackend ? t : t.To(backend, persistent: true);
        return new TmcaBatch(Up(Tensor.FromArray(img, batch, cfg.InChannels, S, S)), Up(Tensor.FromArray(ids, batch, 24)), Up(Tensor.FromArray(mask, batch, 24)),
                             Up(Tensor.FromArray(gt, batch, 1, S, S))) { HostIds = ids, HostMask = mask };
    }
}
