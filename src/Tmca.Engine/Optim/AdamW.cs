namespace Tmca.Engine;

/// <summary>AdamW hyper-parameters (spec §9 defaults).</summary>
public sealed record AdamWConfig(double Lr = 3e-4, double Beta1 = 0.9, double Beta2 = 0.999, double Eps = 1e-8, double WeightDecay = 0.01);

/// <summary>
/// The AdamW optimiser with PyTorch semantics (see Cpu/AdamW.cs for the update). It owns the two moment
/// tensors per parameter and the step count, all of which go into a training checkpoint so that a resumed
/// run continues bit-for-bit. One backend call updates every parameter (one launch on a GPU).
/// </summary>
public sealed class AdamW
{
    public AdamWConfig Config { get; }
    public IReadOnlyList<Parameter> Params { get; }
    public int Step { get; private set; }
    public double Lr { get; set; }
    private readonly Tensor[] _m, _v;

    public AdamW(IEnumerable<Parameter> parameters, AdamWConfig config)
    {
        Config = config;
        Lr = config.Lr;
        Params = parameters.Where(p => !p.IsBuffer).ToList();
        _m = Params.Select(p => Tensor.ZerosLike(p.Value, persistent: true)).ToArray();
        _v = Params.Select(p => Tensor.ZerosLike(p.Value, persistent: true)).ToArray();
    }

    /// <summary>Frees the moments (the optimiser cannot step afterwards): for the end of a run.</summary>
    public void FreeState()
    {
        foreach (var t in _m) t.Dispose();
        foreach (var t in _v) t.Dispose();
    }

    public void ZeroGrad()
    {
        foreach (var p in Params)
            if (p.Value.Grad is { } g) g.Backend.Fill(g, 0);
    }

    /// <summary>Frees every parameter's gradient (PyTorch's <c>zero_grad(set_to_none=True)</c>): at the start of a training
    /// step, so that the gradients live only from the backward that writes them to the next step, not through its forward
    /// pass (issue 19: on tiny they are 585 MiB). The backward allocates them again from the pool.</summary>
    public void ReleaseGrads()
    {
        foreach (var p in Params)
            if (p.Value.Grad is { } g) { g.Dispose(); p.Value.Grad = null; }
    }

    /// <summary>One update with the current gradients; parameters without a gradient yet count as zero-gradient
    /// (PyTorch skips them; so do we). With a <paramref name="guard"/> the update happens only if no gradient element
    /// is NaN or Inf and guard[0] was 0 (see <see cref="IBackend.AdamW"/>); when the caller later reads a non-zero
    /// guard it calls <see cref="Unstep"/>, so that the skipped step does not count.</summary>
    public void StepOnce(Tensor? guard = null)
    {
        Step++;
        var slots = new List<AdamWSlot>(Params.Count);
        for (int i = 0; i < Params.Count; i++)
        {
            var p = Params[i];
            if (p.Value.Grad is null) continue;
            slots.Add(new AdamWSlot(p.Value, p.Value.Grad, _m[i], _v[i], Decay: !p.IsScalar));
        }
        if (slots.Count == 0) return;
        var be = slots[0].Param.Backend;
        using var _ = Profiler.Time("adamw", be);
        be.AdamW(slots, new AdamWStep(Lr, Config.Beta1, Config.Beta2, Config.Eps, Config.WeightDecay, Step), guard);
    }

    /// <summary>Takes back the step count of an update the guard skipped (the moments were not touched).</summary>
    public void Unstep()
    {
        if (Step == 0) throw new InvalidOperationException("no step to take back");
        Step--;
    }

    /// <summary>The optimiser state as named tensors (for checkpoints): "exp_avg.&lt;name&gt;", "exp_avg_sq.&lt;name&gt;".</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> State()
    {
        for (int i = 0; i < Params.Count; i++)
        {
            yield return new($"exp_avg.{Params[i].Name}", _m[i]);
            yield return new($"exp_avg_sq.{Params[i].Name}", _v[i]);
        }
    }

    /// <summary>Restores moments and the step count saved by <see cref="State"/>.</summary>
    public void LoadState(Func<string, Tensor?> lookup, int step)
    {
        for (int i = 0; i < Params.Count; i++)
        {
            var m = lookup($"exp_avg.{Params[i].Name}") ?? throw new InvalidDataException($"optimiser state for {Params[i].Name} is missing");
            var v = lookup($"exp_avg_sq.{Params[i].Name}") ?? throw new InvalidDataException($"optimiser state for {Params[i].Name} is missing");
            if (m.Numel != _m[i].Numel || v.Numel != _v[i].Numel) throw new InvalidDataException($"optimiser state for {Params[i].Name} has the wrong size");
            _m[i].Backend.Upload(m.ToArray<float>(), _m[i]);
            _v[i].Backend.Upload(v.ToArray<float>(), _v[i]);
        }
        Step = step;
    }
}

/// <summary>Cosine decay from the base rate to a floor over a number of periods (epochs): PyTorch's
/// CosineAnnealingLR, lr(e) = min + (base − min)·(1 + cos(π·e/T))/2.</summary>
public sealed record CosineSchedule(double BaseLr, int Periods, double MinLr = 1e-6)
{
    public double At(int period)
    {
        if (Periods <= 0) return BaseLr;
        int e = Math.Clamp(period, 0, Periods);
        return MinLr + (BaseLr - MinLr) * (1 + Math.Cos(Math.PI * e / Periods)) / 2;
    }
}
