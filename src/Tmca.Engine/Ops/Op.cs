namespace Tmca.Engine;

/// <summary>
/// The one entry point every leaf op goes through, so that its name is passed, not guessed: the forward runs inside
/// the op's profiler region (<paramref name="name"/>), and when <paramref name="record"/> is true (some input wants a
/// gradient, <see cref="Tape.Wants(Tensor?)"/>) the backward is recorded on the tape under that same name and timed as
/// "NAME.backward" when it runs. The tape entry's name is what non-finite diagnoses and fault injection match on.
/// </summary>
public static class Op
{
    /// <summary>One output (see the class summary).</summary>
    public static void Run(string name, IBackend be, Tensor output, bool record, Action forward, Action backward)
        => Run(name, be, [output], record, forward, backward);

    /// <summary>A fused op with several outputs: the backward runs once, after every output's gradient is complete.</summary>
    public static void Run(string name, IBackend be, Tensor[] outputs, bool record, Action forward, Action backward)
    {
        using (Profiler.Time(name, be)) forward();
        if (!record) return;
        Tape.Record(name, outputs, () =>
        {
            using var _ = Profiler.Time(name + ".backward", be);
            backward();
        });
    }
}
