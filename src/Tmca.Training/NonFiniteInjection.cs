using Tmca.Engine;

namespace Tmca.Training;

/// <summary>A tape inspector that is also told where each training step begins: the trainer announces each step
/// (<see cref="Announce"/>) to the inspector on the thread, if it is one of these.</summary>
public interface IStepInspector : ITapeInspector
{
    /// <summary>Step <paramref name="step"/> (1-based) begins with these <paramref name="images"/>; a step replayed for
    /// diagnosis, or by `tmca replay`, begins again.</summary>
    void BeginStep(long step, Tensor images);

    /// <summary>Tells this thread's <see cref="Tape.Inspector"/> that a step begins (nothing when there is none: normal runs).</summary>
    public static void Announce(long step, Tensor images) => (Tape.Inspector as IStepInspector)?.BeginStep(step, images);
}

/// <summary>
/// Makes a NaN appear where a test asks, to prove that the training step's non-finite guard catches it and names the
/// place (<see cref="NonFiniteSpec"/>): "forward:OP@STEP" (the first output of the first op named OP recorded in step
/// STEP), "backward:OP@STEP" (the gradient reaching that op's output, just before its backward runs, so its backward
/// spreads it) or "data@STEP" (a pixel of the step's images). A test hook, installed as the thread's
/// <see cref="Tape.Inspector"/>: by a test (<see cref="Arm"/>) or by the CLI when TMCA_INJECT_NONFINITE is set (the
/// CLI tests and the device check). The product never installs one, so a normal run pays nothing for it.
/// </summary>
public sealed class NonFiniteInjection(NonFiniteSpec spec) : IStepInspector
{
    private long _step;
    private bool _fired;

    /// <summary>Installs an injection of <paramref name="spec"/> (one of <see cref="NonFiniteSpec.Forms"/>) on this thread until disposed.</summary>
    public static IDisposable Arm(string spec) =>
        Install(NonFiniteSpec.TryParse(spec) ?? throw new ArgumentException($"bad injection '{spec}' ({NonFiniteSpec.Forms})"));

    /// <summary>Makes an injection of <paramref name="spec"/> this thread's tape inspector until disposed (the one before comes back).</summary>
    public static IDisposable Install(NonFiniteSpec spec)
    {
        var previous = Tape.Inspector;
        Tape.Inspector = new NonFiniteInjection(spec);
        return new Restore(previous);
    }

    private sealed class Restore(ITapeInspector? previous) : IDisposable { public void Dispose() => Tape.Inspector = previous; }

    public void BeginStep(long step, Tensor images)
    {
        _step = step;
        _fired = false;
        if (spec is { Where: NonFiniteSite.Data } && spec.Step == step) Poison(images);   // a replayed step's images hold it already: same NaN
    }

    public void Recorded(int index, string op, Tensor[] outputs)
    {
        if (spec.Where != NonFiniteSite.Forward || _fired || spec.Step != _step || op != spec.Op) return;
        _fired = true;
        Poison(outputs[0]);
    }

    public void BeforeBackward(int index, string op, Tensor[] outputs)
    {
        if (spec.Where != NonFiniteSite.Backward || _fired || spec.Step != _step || op != spec.Op || outputs[0].Grad is not { } g) return;
        _fired = true;
        Poison(g);
    }

    public void AfterBackward(int index, string op) { }

    /// <summary>Sets element 0 of <paramref name="t"/> (F32, any backend) to NaN.</summary>
    private static void Poison(Tensor t)
    {
        var host = t.ToArray<float>();
        host[0] = float.NaN;
        t.Backend.Upload(host, t);
    }
}
