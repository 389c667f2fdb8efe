using System.Diagnostics;
using System.Text.Json;
using Tmca.Engine;
using Tmca.Model;

namespace Tmca.Bench;

/// <summary>
/// One full training step (forward, every loss, backward, AdamW) on the CPU backend, timed like the PyTorch
/// reference (bench/reference/tmca_reference.py): warm-up steps, then the median of timed steps. Reports peak
/// managed heap (GC) and peak resident memory (VmHWM) of the process.
/// </summary>
public static class TrainStepBenchmark
{
    public static int Run(string preset, int batch, int steps, int warmup, bool profile = false)
    {
        var cfg = TmcaConfig.Preset(preset);
        var model = new TmcaModel(cfg, new TmcaFlags(), seed: 0);
        var opt = new AdamW(model.Params.Trainable, new AdamWConfig());
        var r = new Random(0);
        int S = cfg.ImageSize;
        var img = Tensor.FromArray(Enumerable.Range(0, batch * 3 * S * S).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray(), batch, 3, S, S);
        var ids = new long[batch * 24]; var mask = new long[batch * 24];
        for (int i = 0; i < ids.Length; i++) { bool on = i % 24 < 18; ids[i] = on ? r.Next(5, 30000) : 0; mask[i] = on ? 1 : 0; }
        var gt = Tensor.FromArray(Enumerable.Range(0, batch * S * S).Select(_ => r.NextDouble() > 0.7 ? 1f : 0f).ToArray(), batch, 1, S, S);
        var b = new TmcaBatch(img, Tensor.FromArray(ids, batch, 24), Tensor.FromArray(mask, batch, 24), gt);
        var times = new List<double>();
        long peakHeap = 0;
        for (int i = 0; i < warmup + steps; i++)
        {
            if (profile && i == warmup) { Profiler.Reset(); Profiler.Enabled = true; }
            var sw = Stopwatch.StartNew();
            using (var scope = new TensorScope())
            using (var tape = new Tape())
            {
                opt.ZeroGrad();
                var loss = model.Losses(model.Forward(b, training: true), b).Total;
                tape.Backward(loss);
                opt.StepOnce();
                peakHeap = Math.Max(peakHeap, GC.GetTotalMemory(false));
            }
            if (i >= warmup) times.Add(sw.Elapsed.TotalMilliseconds);
        }
        if (profile) Console.Error.WriteLine(Profiler.Report(steps));
        times.Sort();
        var info = GC.GetGCMemoryInfo();
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            impl = "tmca-cpu", runtime = Environment.Version.ToString(), threads = Environment.ProcessorCount, preset, batch,
            median_ms = Math.Round(times[times.Count / 2], 2), min_ms = Math.Round(times[0], 2),
            peak_managed_mib = Math.Round(Math.Max(peakHeap, info.HeapSizeBytes) / 1048576.0, 1),
            peak_rss_mib = Math.Round(PeakRssBytes() / 1048576.0, 1),
        }));
        return 0;
    }

    /// <summary>VmHWM from /proc/self/status (Linux), else the current working set.</summary>
    public static long PeakRssBytes()
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
