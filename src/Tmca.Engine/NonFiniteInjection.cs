namespace Tmca.Engine;

/// <summary>
/// Makes a NaN appear where a test asks, to prove that the training step's non-finite guard catches it and names the
/// place: "forward:OP@STEP" (the first output of the first op named OP recorded in step STEP), "backward:OP@STEP" (the
/// gradient reaching that op's output, just before its backward runs, so its backward spreads it) or "data@STEP" (a
/// pixel of the step's images). Armed per thread by a test (<see cref="Arm"/>) or for a whole process with
/// TMCA_INJECT_NONFINITE (the CLI tests). Unarmed it costs one static check per recorded op.
/// </summary>
public static class NonFiniteInjection
{
    public enum Site { Forward, Backward, Data }
    public sealed record Spec(Site Where, string? Op, long Step);

    private static readonly Spec? FromEnvironment = TmcaSettings.Current.InjectNonFinite is { } s ? new Spec((Site)s.Where, s.Op, s.Step) : null;
    [ThreadStatic] private static Spec? _armed;
    [ThreadStatic] private static long _step;
    [ThreadStatic] private static bool _fired;

    public static Spec? Current => _armed ?? FromEnvironment;

    /// <summary>Arms <paramref name="spec"/> on this thread until disposed.</summary>
    public static IDisposable Arm(string spec)
    {
        _armed = Parse(spec) ?? throw new ArgumentException($"bad injection '{spec}' (forward:OP@STEP, backward:OP@STEP or data@STEP)");
        return new Disarm();
    }

    private sealed class Disarm : IDisposable { public void Dispose() => _armed = null; }

    /// <summary>The trainer announces each step (1-based); a step replayed for diagnosis is announced again and fires again.</summary>
    public static void BeginStep(long step)
    {
        _step = step;
        _fired = false;
    }

    /// <summary>True when this step's images should get a NaN (the trainer then calls <see cref="Poison"/>).</summary>
    public static bool DataNow => Current is { Where: Site.Data } s && s.Step == _step;

    internal static void Recorded(string op, Tensor[] outputs)
    {
        if (Current is not { Where: Site.Forward } s || _fired || s.Step != _step || op != s.Op) return;
        _fired = true;
        Poison(outputs[0]);
    }

    internal static void BeforeBackward(string op, Tensor[] outputs)
    {
        if (Current is not { Where: Site.Backward } s || _fired || s.Step != _step || op != s.Op || outputs[0].Grad is not { } g) return;
        _fired = true;
        Poison(g);
    }

    /// <summary>Sets element 0 of <paramref name="t"/> (F32, any backend) to NaN.</summary>
    public static void Poison(Tensor t)
    {
        var host = t.ToArray<float>();
        host[0] = float.NaN;
        t.Backend.Upload(host, t);
    }

    private static Spec? Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        int at = text.LastIndexOf('@');
        if (at < 0 || !long.TryParse(text[(at + 1)..], out var step)) return null;
        var head = text[..at];
        if (head == "data") return new Spec(Site.Data, null, step);
        int colon = head.IndexOf(':');
        if (colon < 0) return null;
        return head[..colon] switch
        {
            "forward" => new Spec(Site.Forward, head[(colon + 1)..], step),
            "backward" => new Spec(Site.Backward, head[(colon + 1)..], step),
            _ => null,
        };
    }
}
