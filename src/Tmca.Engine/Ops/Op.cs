namespace Tmca.Engine;

/// <summary>
/// The one entry point every leaf op goes through, so that its name is passed, not guessed: the forward runs inside
/// the op's profiler region (<paramref name="name"/>), and when <paramref name="record"/> is true (some input wants a
/// gradient, <see cref="Tape.Wants(Tensor?)"/>) the backward is recorded on the tape under that same name and timed as
/// "NAME.backward" when it runs. The tape entry's name is what non-finite diagnoses and fault injection match on.
///
/// What the backward reads is declared, so that the tape can free memory as the backward goes (PyTorch's saved
/// tensors): <c>saves</c> are the tensors whose values the backward reads (inputs or outputs; never the outputs'
/// gradients, which the tape hands over), <c>scratch</c> are buffers the op allocated for its backward alone (a layer
/// norm's mean and 1/σ). An output that no backward saves is freed when the backward starts; a saved tensor made by
/// the tape, and every scratch buffer, after the last backward that reads it; each output's gradient once its own
/// backward has consumed it. A tensor read after it was freed throws, so a missing declaration cannot pass silently.
/// </summary>
public static class Op
{
    /// <summary>One output (see the class summary).</summary>
    public static void Run(string name, IBackend be, Tensor output, bool record, Action forward, Action backward,
                           Tensor?[]? saves = null, Tensor?[]? scratch = null)
        => Run(name, be, [output], record, forward, backward, saves, scratch);

    /// <summary>A fused op with several outputs: the backward runs once, after every output's gradient is complete.</summary>
    public static void Run(string name, IBackend be, Tensor[] outputs, bool record, Action forward, Action backward,
                           Tensor?[]? saves = null, Tensor?[]? scratch = null)
    {
        using (Profiler.Time(name, be)) forward();
        if (!record) return;
        Tape.Record(name, outputs, () =>
        {
            using var _ = Profiler.Time(name + ".backward", be);
            backward();
        }, Compact(saves), Compact(scratch));
    }

    private static Tensor[] Compact(Tensor?[]? ts)
    {
        if (ts is null || ts.Length == 0) return [];
        int n = 0;
        foreach (var t in ts) if (t is not null) n++;
        if (n == ts.Length) return ts!;
        var r = new Tensor[n]; int i = 0;
        foreach (var t in ts) if (t is not null) r[i++] = t;
        return r;
    }
}
