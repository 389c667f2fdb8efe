namespace Tmca.Engine;

/// <summary>A test's hold on the process at named places (<see cref="HoldPoints"/>): it may block a thread there until
/// <see cref="Release"/>, so that the test can kill or signal the process exactly there.</summary>
public interface IHoldPoints
{
    /// <summary>A thread arrived at <paramref name="name"/>.</summary>
    void Reach(string name);
    /// <summary>A held thread may go on (a SIGINT handler calls it, so that a test can interrupt a run at an exact step).</summary>
    void Release();
}

/// <summary>
/// Named places where a test can freeze the process to kill it there — the hard-kill tests send SIGKILL mid-step, between
/// steps and halfway through a checkpoint write, exactly there and not wherever a timer happens to land. A seam, empty in
/// the product: nothing happens at a point unless a test hook is <see cref="Installed"/> (the CLI installs one only when
/// TMCA_HOLD_AT is set), so a reach costs one static read. Points (<see cref="HoldPoint.Points"/>): "step" (after
/// backward, before the optimiser), "between-steps", "safetensors-write" (half the data written and flushed).
/// </summary>
public static class HoldPoints
{
    /// <summary>The test hook, or null (every run but a test's).</summary>
    public static IHoldPoints? Installed { get; set; }

    public static void Reach(string name) => Installed?.Reach(name);

    /// <summary>Lets a held thread go on.</summary>
    public static void Release() => Installed?.Release();
}
