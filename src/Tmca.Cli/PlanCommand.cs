using System.CommandLine;
using Tmca.Cuda;
using Tmca.Cuda.Plan;
using Tmca.Engine;
using Tmca.Model;
using Tmca.Training;

namespace Tmca.Cli;

/// <summary>
/// `tmca plan`: what one CUDA training step asks of a named GPU, without a GPU. The real step (forward, every loss,
/// backward, AdamW with the non-finite guard, as `tmca train` runs it; `--eval`: one inference batch) goes through the
/// CUDA backend onto <see cref="PlanningRuntime"/>, which executes nothing and records every launch, GEMM, memset and
/// copy with its declared cost; <see cref="StepPlan"/> bounds each on the device model.
/// </summary>
internal static class PlanCommand
{
    public static Command Build()
    {
        var preset = new Option<string?>("--preset") { Description = "model size: nano, small or tiny (default small)" };
        preset.AcceptOnlyFromAmong("nano", "small", "tiny");
        var config = new Option<string?>("--config") { Description = "model config JSON instead of a preset" }.ExistingFile();
        var batch = Common.Batch(min: 2);
        var gpu = new Option<string>("--gpu") { Description = "the device modelled: " + string.Join(", ", DeviceModels.All.Select(d => d.Id)), DefaultValueFactory = _ => "h100" }
            .OneOf(DeviceModels.All.Select(d => d.Id).ToArray());
        var tf32 = new Option<bool>("--tf32") { Description = "TF32 GEMMs (tensor cores) as `--tf32` training would run them" };
        var eval = new Option<bool>("--eval") { Description = "plan an inference batch instead of a training step" };
        var json = new Option<string?>("--json") { Description = "write the plan as JSON to FILE" };
        var trace = new Option<string?>("--trace") { Description = "write a Chrome trace / Perfetto JSON of the step's operations at their bounds to FILE" };
        var recompute = Common.Recompute();
        var top = new Option<int>("--top") { Description = "how many of the largest operations to list", DefaultValueFactory = _ => 10 }.Positive();
        var cmd = new Command("plan", "bound one CUDA step on a named GPU without running it: FLOPs, bytes, launches, memory peak per op family")
        {
            preset, config, batch, gpu, tf32, eval, json, trace, top, recompute,
        };
        cmd.Exclusive(preset, config, "the config file gives the model size");
        cmd.SetAction(p => Common.Guard(() =>
        {
            // a config file is read and checked as `tmca train --config` reads it: a bad one is bad data, named
            var cfg = new TrainOptions { Preset = p.GetValue(preset) ?? "small", ConfigFile = p.GetValue(config) }.ResolveConfig();
            string name = p.GetValue(config) is { } f ? Path.GetFileName(f) : p.GetValue(preset) ?? "small";
            var mode = p.GetValue(recompute);
            var device = DeviceModels.Get(p.GetValue(gpu)!);
            var plan = StepPlanner.Plan(cfg, new TmcaFlags(), p.GetValue(batch), device, p.GetValue(tf32), p.GetValue(eval), name, mode);
            Console.Write(PlanReport.Markdown(plan, p.GetValue(top)));
            if (mode != RecomputeMode.None)
            {
                // what recompute buys and costs: the same step planned with everything stored
                var stored = StepPlanner.Plan(cfg, new TmcaFlags(), p.GetValue(batch), device, p.GetValue(tf32), p.GetValue(eval), name, RecomputeMode.None);
                Console.WriteLine(RecomputeLine(mode, plan, stored));
            }
            if (p.GetValue(json) is { } j) AtomicWrite(j, PlanReport.Json(plan, p.GetValue(top)));
            if (p.GetValue(trace) is { } t) AtomicWrite(t, PlanReport.Trace(plan));
            return 0;
        }));
        return cmd;
    }

    /// <summary>"recompute stages: peak A MiB vs B MiB stored (−x %), bound +y ms (+z %)".</summary>
    internal static string RecomputeLine(RecomputeMode mode, StepPlan plan, StepPlan stored)
    {
        double mib = plan.PeakDeviceBytes / 1048576.0, storedMib = stored.PeakDeviceBytes / 1048576.0;
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"\nrecompute {mode.ToString().ToLowerInvariant()}: peak {mib:N0} MiB vs {storedMib:N0} MiB stored ({(mib / storedMib - 1) * 100:+0.0;-0.0} %), "
            + $"bound {plan.BoundMs:0.00} ms vs {stored.BoundMs:0.00} ms (+{plan.BoundMs - stored.BoundMs:0.00} ms, {(plan.BoundMs / stored.BoundMs - 1) * 100:+0.0;-0.0} %)");
    }

    private static void AtomicWrite(string path, string text)
    {
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, overwrite: true);
    }
}

/// <summary>Runs one real step of a model on the planning runtime and builds its plan (the step after a warm-up step,
/// so that first-use allocations and tables do not count).</summary>
public static class StepPlanner
{
    public static StepPlan Plan(TmcaConfig cfg, TmcaFlags flags, int batch, DeviceModel device, bool tf32, bool eval, string name,
                                RecomputeMode recompute = RecomputeMode.None)
    {
        using var runtime = new PlanningRuntime(device);
        using var backend = new CudaBackend(runtime) { Tf32 = tf32 };
        runtime.ObservePool(backend.Pool);   // the memory timeline: what is live at each operation and at the peak
        var model = new TmcaModel(cfg, flags, seed: 0, initialize: false) { Recompute = recompute };   // values do not matter: nothing runs
        model.To(backend);
        var opt = new AdamW(model.Params.Trainable, new AdamWConfig());
        var b = StepBenchmark.RandomBatch(cfg, batch, backend);
        var owners = new List<(ulong Start, ulong End, ParameterOwner Owner)>();
        var holders = new List<(ulong Start, ulong End, string Holder)>();
        int holdersAt = int.MaxValue;
        void TakeOwners()
        {
            owners = OwnerRanges(model);
            holders = HolderRanges(model, opt);
            holdersAt = runtime.PoolChanges.Count;
        }
        void Step()
        {
            using var scope = new TensorScope();
            if (eval)
            {
                using (Tape.NoGrad()) model.Forward(b, training: false);
            }
            else
            {
                using var tape = new Tape();
                Trainer.Step(model, opt, tape, b, guard: true);
            }
            backend.Synchronize();
        }
        Step();
        runtime.ClearEvents();
        backend.Pool.ResetPeak();
        Step();
        TakeOwners();   // the gradients live until the next step starts
        string what = $"{name} ({cfg.ImageSize} px), batch {batch}, {(eval ? "inference" : "training step")}, {(tf32 ? "TF32" : "FP32")}"
                      + (recompute == RecomputeMode.None ? "" : $", recompute {recompute.ToString().ToLowerInvariant()}");
        var pool = new PoolTimeline(runtime.PoolChanges.ToList(), runtime.PoolStepStart, Lookup(holders), holdersAt);
        return StepPlan.Build(runtime.Events.ToList(), device, Lookup(owners), backend.Pool.PeakBytes, runtime.PeakReservedBytes, what, pool);
    }

    /// <summary>Who owns the parameter (value or gradient) at a device address: the planner's families need it to tell a
    /// ConvNeXt pointwise GEMM from a decoder one, and a text GEMM from an attention projection.</summary>
    private static List<(ulong Start, ulong End, ParameterOwner Owner)> OwnerRanges(TmcaModel model)
    {
        var ranges = new List<(ulong Start, ulong End, ParameterOwner Owner)>();
        foreach (var p in model.Params.All)
        {
            var owner = p.Name.Contains("attention.", StringComparison.Ordinal) || p.Name.Contains("attn.", StringComparison.Ordinal) ? ParameterOwner.Attention
                : p.Name.StartsWith("text_encoder.", StringComparison.Ordinal) ? ParameterOwner.TextEncoder
                : p.Name.StartsWith("image_encoder.", StringComparison.Ordinal) ? ParameterOwner.ImageEncoder
                : ParameterOwner.Other;
            foreach (var t in new[] { p.Value, p.Value.Grad })
                if (t?.Storage is CudaStorage s) ranges.Add((s.Ptr, s.Ptr + (ulong)s.Bytes, owner));
        }
        ranges.Sort((a, b) => a.Start.CompareTo(b.Start));
        return ranges;
    }

    /// <summary>What holds each named block: the parameters (and buffers), their gradients, the AdamW moments.</summary>
    private static List<(ulong Start, ulong End, string Holder)> HolderRanges(TmcaModel model, AdamW opt)
    {
        var ranges = new List<(ulong Start, ulong End, string Holder)>();
        void Add(Tensor? t, string holder) { if (t?.Storage is CudaStorage s) ranges.Add((s.Ptr, s.Ptr + (ulong)s.Bytes, holder)); }
        foreach (var p in model.Params.All) { Add(p.Value, "parameters and buffers"); Add(p.Value.Grad, "gradients"); }
        foreach (var (_, t) in opt.State()) Add(t, "AdamW moments");
        ranges.Sort((a, b) => a.Start.CompareTo(b.Start));
        return ranges;
    }

    private static Func<ulong, ParameterOwner?> Lookup(List<(ulong Start, ulong End, ParameterOwner Owner)> ranges)
    {
        var find = Finder(ranges.Select(r => (r.Start, r.End)).ToList());
        return address => find(address) is int i ? ranges[i].Owner : null;
    }

    private static Func<ulong, string?> Lookup(List<(ulong Start, ulong End, string Holder)> ranges)
    {
        var find = Finder(ranges.Select(r => (r.Start, r.End)).ToList());
        return address => find(address) is int i ? ranges[i].Holder : null;
    }

    /// <summary>The index of the range (sorted by start) that holds an address, or null.</summary>
    private static Func<ulong, int?> Finder(List<(ulong Start, ulong End)> ranges)
    {
        var starts = ranges.Select(r => r.Start).ToArray();
        return address =>
        {
            int i = Array.BinarySearch(starts, address);
            if (i < 0) i = ~i - 1;
            return i >= 0 && address < ranges[i].End ? i : null;
        };
    }
}
