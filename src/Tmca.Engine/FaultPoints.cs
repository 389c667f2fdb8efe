namespace Tmca.Engine;

/// <summary>
/// Named places where a test can freeze the process to kill it there: with TMCA_HOLD_AT=name[:n] the n-th arrival
/// (default the first) at <see cref="Reach"/>(name) prints "tmca: holding at name" to stderr and waits until the
/// process is killed, or until <see cref="Release"/> (a SIGINT handler releases it, so that a test can interrupt a
/// run at an exact step). The hard-kill tests use it to send SIGKILL mid-step, between steps and halfway through a
/// checkpoint write — exactly there, not wherever a timer happens to land. Unset, a reach costs one static read.
/// Points: "step" (after backward, before the optimiser), "between-steps", "safetensors-write" (half the data written).
/// </summary>
public static class FaultPoints
{
    private static readonly (string Name, int Count)? Hold = TmcaSettings.Current.HoldAt is { } h ? (h.Point, h.Arrival) : null;
    private static int _arrivals;
    private static volatile bool _released;

    /// <summary>Lets a held thread go on.</summary>
    public static void Release() => _released = true;

    public static void Reach(string name)
    {
        if (Hold is not { } h || h.Name != name) return;
        if (Interlocked.Increment(ref _arrivals) != h.Count) return;
        Console.Out.Flush();
        Console.Error.WriteLine($"tmca: holding at {name} (pid {Environment.ProcessId})");
        Console.Error.Flush();
        while (!_released) Thread.Sleep(10);
    }

    private static (string, int)? Parse(string? spec)
    {
        if (string.IsNullOrEmpty(spec)) return null;
        var parts = spec.Split(':');
        return (parts[0], parts.Length > 1 && int.TryParse(parts[1], out var n) && n > 0 ? n : 1);
    }
}
