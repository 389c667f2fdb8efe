using Tmca.Engine;
using Tmca.Training;

namespace Tmca.Cli;

/// <summary>
/// The test hooks a shipped `tmca` installs, each only when its TMCA_* variable is set (the CLI tests, the hard-kill
/// tests and the device check run the real binary with them); without them nothing is installed and a run pays nothing.
/// - TMCA_INJECT_NONFINITE: a <see cref="NonFiniteInjection"/> as this thread's tape inspector (the command runs on it).
/// - TMCA_HOLD_AT: <see cref="HoldAt"/> as the process's <see cref="HoldPoints"/>.
/// - TMCA_DEVICE_FAULT: installed where the CUDA backends are built (<see cref="Backends"/>), under the backend.
/// </summary>
internal static class TestHooks
{
    /// <summary>Installs the hooks <paramref name="settings"/> asks for until disposed.</summary>
    public static IDisposable Install(TmcaSettings settings)
    {
        var installed = new List<IDisposable>();
        if (settings.InjectNonFinite is { } spec) installed.Add(NonFiniteInjection.Install(spec));
        if (settings.HoldAt is { } point) installed.Add(HoldAt.Install(point));
        return new Uninstall(installed);
    }

    private sealed class Uninstall(List<IDisposable> hooks) : IDisposable
    {
        public void Dispose() { for (int i = hooks.Count - 1; i >= 0; i--) hooks[i].Dispose(); }
    }
}

/// <summary>TMCA_HOLD_AT=POINT[:N]: the N-th arrival (default the first) at hold point POINT prints "tmca: holding at POINT"
/// to stderr and waits until the process is killed, or until <see cref="Release"/> (the SIGINT/SIGTERM handler).</summary>
internal sealed class HoldAt(HoldPoint point) : IHoldPoints
{
    private int _arrivals;
    private volatile bool _released;

    public static IDisposable Install(HoldPoint point)
    {
        var previous = HoldPoints.Installed;
        HoldPoints.Installed = new HoldAt(point);
        return new Restore(previous);
    }

    private sealed class Restore(IHoldPoints? previous) : IDisposable { public void Dispose() => HoldPoints.Installed = previous; }

    public void Release() => _released = true;

    public void Reach(string name)
    {
        if (name != point.Point || Interlocked.Increment(ref _arrivals) != point.Arrival) return;
        Console.Out.Flush();
        Console.Error.WriteLine($"tmca: holding at {name} (pid {Environment.ProcessId})");
        Console.Error.Flush();
        while (!_released) Thread.Sleep(10);
    }
}
