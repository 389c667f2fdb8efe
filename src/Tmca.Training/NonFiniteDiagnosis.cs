using System.Text.Json;
using Tmca.Engine;
using Tmca.Model;

namespace Tmca.Training;

/// <summary>
/// Where a non-finite value came from, found by running the failed step again (same parameters — the guarded
/// AdamW left them untouched —, same batch) with the tape watched: the data first, then the first forward op whose
/// output holds a NaN/Inf, then the first parameter (in backward order) whose gradient does. Slow (every op's
/// output is read back), so it runs only after a step has failed.
/// </summary>
public static class NonFiniteDiagnosis
{
    /// <param name="buffers">The model's buffers as they were before the step: the re-run's forward pass moves them again,
    /// and they are put back afterwards.</param>
    public static string Run(TmcaModel model, AdamW opt, TmcaBatch batch, long step, IReadOnlyList<string> sampleIds, BufferSnapshot buffers)
    {
        if (Count(batch.Image) is var (nan, inf) && nan + inf > 0)
        {
            var bad = BadSamples(batch.Image, sampleIds);
            return $"the data: the step's images hold {nan} NaN and {inf} Inf value(s) (sample{(bad.Count == 1 ? "" : "s")} {string.Join(", ", bad)})";
        }
        var badParams = model.Params.Trainable.Where(p => Count(p.Value) is var (a, b) && a + b > 0).Select(p => p.Name).ToList();
        if (badParams.Count > 0) return $"parameter {badParams[0]} was already non-finite before the step ({badParams.Count} in all)";
        // The parameters whose gradient the failed step left non-finite, in backward order (last registered first).
        var suspects = model.Params.Trainable.Reverse().Where(p => p.Value.Grad is { } g && Count(g) is var (a, b) && a + b > 0).ToList();

        var watch = new Watch(suspects);
        // A test's fault injection, if one is installed, runs the step again as well (the watch must see its NaN) and first.
        IStepInspector.Announce(step, batch.Image);
        var installed = Tape.Inspector;
        Tape.Inspector = installed is null ? watch : new Both(installed, watch);
        string lossText;
        try
        {
            using var scope = new TensorScope();
            using var tape = new Tape();
            var output = model.Forward(batch, training: true);
            var losses = model.Losses(output, batch);
            lossText = $"loss {losses.Total.ToArray<float>()[0]}";
            opt.ZeroGrad();
            tape.Backward(losses.Total);
        }
        finally { Tape.Inspector = installed; buffers.Restore(); }

        var parts = new List<string>();
        if (watch.Forward is { } f)
            parts.Add($"forward: op #{f.Index} '{f.Op}' produced the first non-finite output ({f.Nan} NaN, {f.Inf} Inf in {Shape.Format(f.Shape)}); {lossText}");
        else parts.Add($"forward: every op's output is finite ({lossText})");
        if (watch.FirstGradient is { } g)
            parts.Add($"backward: the gradient first turned non-finite at the output of op #{g.Index} '{g.Op}'");
        if (watch.Param is { } p)
            parts.Add($"first parameter with a non-finite gradient: {p.Name} (after the backward of op #{p.Index} '{p.Op}'; {suspects.Count} parameter(s) in all)");
        else if (suspects.Count > 0) parts.Add($"parameters with non-finite gradients (backward order): {string.Join(", ", suspects.Take(3).Select(s => s.Name))}{(suspects.Count > 3 ? ", …" : "")}");
        return string.Join("; ", parts);
    }

    /// <summary>Saves what replays the failed step: the parameters and optimiser state before it (a training checkpoint)
    /// plus the batch ("batch.*") and the diagnosis. Returns the file's path.</summary>
    public static string SaveReplay(string runDir, long step, TmcaModel model, AdamW opt, TmcaBatch batch, TrainOptions o, TrainState state, string diagnosis)
    {
        string path = Path.Combine(runDir, $"nonfinite-step-{step}.safetensors");
        var meta = new Dictionary<string, string>
        {
            ["train_state"] = JsonSerializer.Serialize(state), ["options"] = JsonSerializer.Serialize(o),
            ["replay_step"] = step.ToString(), ["diagnosis"] = diagnosis,
        };
        var extra = opt.State().Select(kv => new KeyValuePair<string, Tensor>("optim." + kv.Key, kv.Value)).ToList();
        extra.Add(new("batch.image", batch.Image));
        extra.Add(new("batch.ids", batch.Ids));
        extra.Add(new("batch.mask", batch.Mask));
        if (batch.Gt is not null) extra.Add(new("batch.gt", batch.Gt));
        Checkpoint.Save(model, path, meta, extra);
        return path;
    }

    /// <summary>Runs a saved step again (guarded) and diagnoses it: (finite?, what happened).</summary>
    public static (bool Reproduced, string Report) Replay(string path, IBackend backend)
    {
        var (model, state, optState) = TrainingCheckpoint.Load(path);
        var f = SafetensorsFile.Open(path);
        if (!f.Contains("batch.image")) throw new InvalidDataException($"{path}: not a replay file (no batch.image); `tmca train` writes nonfinite-step-N.safetensors");
        var o = JsonSerializer.Deserialize<TrainOptions>(f.Metadata["options"]) ?? throw new InvalidDataException($"{path}: no options");
        long step = long.Parse(f.Metadata["replay_step"]);
        model.To(backend);
        var opt = new AdamW(model.Params.Trainable, new AdamWConfig(o.Lr, WeightDecay: o.WeightDecay));
        opt.LoadState(optState, state.OptimizerStep);
        using var scope = new TensorScope();
        var buffers = new BufferSnapshot(model);
        buffers.Save();
        var batch = new TmcaBatch(f.Load("batch.image", backend), f.Load("batch.ids", backend), f.Load("batch.mask", backend),
                                  f.Contains("batch.gt") ? f.Load("batch.gt", backend) : null);
        IStepInspector.Announce(step, batch.Image);
        Trainer.StepValues v;
        using (var tape = new Tape()) v = Trainer.Step(model, opt, tape, batch, guard: true);
        if (v.Finite) return (false, $"step {step} is finite on {backend.Name} (loss {v.Total:0.######}); it failed with: {f.Metadata["diagnosis"]}");
        opt.Unstep();
        buffers.Restore();
        return (true, $"step {step} on {backend.Name}: {Run(model, opt, batch, step, [], buffers)}");
    }

    /// <summary>Two inspectors, <paramref name="first"/> first.</summary>
    private sealed class Both(ITapeInspector first, ITapeInspector second) : ITapeInspector
    {
        public void Recorded(int index, string op, Tensor[] outputs) { first.Recorded(index, op, outputs); second.Recorded(index, op, outputs); }
        public void BeforeBackward(int index, string op, Tensor[] outputs) { first.BeforeBackward(index, op, outputs); second.BeforeBackward(index, op, outputs); }
        public void AfterBackward(int index, string op) { first.AfterBackward(index, op); second.AfterBackward(index, op); }
    }

    private sealed class Watch(List<Parameter> suspects) : ITapeInspector
    {
        public (int Index, string Op, int[] Shape, long Nan, long Inf)? Forward;
        public (int Index, string Op)? FirstGradient;
        public (string Name, int Index, string Op)? Param;

        public void Recorded(int index, string op, Tensor[] outputs)
        {
            if (Forward is not null) return;
            foreach (var o in outputs)
                if (o.DType == DType.F32 && Count(o) is var (nan, inf) && nan + inf > 0) { Forward = (index, op, o.Shape, nan, inf); return; }
        }

        public void BeforeBackward(int index, string op, Tensor[] outputs)
        {
            if (FirstGradient is not null) return;
            foreach (var o in outputs)
                if (o.Grad is { } g && Count(g) is var (nan, inf) && nan + inf > 0) { FirstGradient = (index, op); return; }
        }

        public void AfterBackward(int index, string op)
        {
            if (Param is not null || Forward is not null) return;   // after a forward NaN every gradient downstream is NaN anyway
            foreach (var p in suspects)
                if (p.Value.Grad is { } g && Count(g) is var (nan, inf) && nan + inf > 0) { Param = (p.Name, index, op); return; }
        }
    }

    private static (long Nan, long Inf) Count(Tensor t)
    {
        long nan = 0, inf = 0;
        foreach (var x in t.ToArray<float>()) { if (float.IsNaN(x)) nan++; else if (float.IsInfinity(x)) inf++; }
        return (nan, inf);
    }

    private static List<string> BadSamples(Tensor images, IReadOnlyList<string> ids)
    {
        var x = images.ToArray<float>();
        int b = images.Shape[0], per = x.Length / Math.Max(1, b);
        var bad = new List<string>();
        for (int i = 0; i < b; i++)
            if (!x.AsSpan(i * per, per).ToArray().All(float.IsFinite)) bad.Add(i < ids.Count ? ids[i] : $"#{i}");
        return bad;
    }
}
