using System.Diagnostics;

namespace Tmca.Engine;

/// <summary>
/// Op-level timing: every leaf op times its forward ("conv2d") and its backward ("conv2d.backward") when
/// enabled; `Tmca.Bench step PRESET BATCH … --profile`
/// (bench/Tmca.Bench) prints the table. Composite ops (attention, Dice, pixel shuffle) are not timed
/// themselves — their leaf ops are — so nothing is counted twice. Device backends are synchronised at each
/// region boundary while profiling, so that asynchronous launches are charged to the op that issued them.
/// Costs a thread-static write and a bool check per region when disabled (the op's name is always kept for errors).
/// </summary>
public static class Profiler
{
    public static bool Enabled { get; set; }
    [ThreadStatic] private static string? _current;
    /// <summary>The innermost op region open on this thread, timed or not: the CUDA backend's launch trace
    /// (TMCA_CUDA_TRACE=1) and its launch errors name the op that asked for each kernel.</summary>
    public static string? CurrentOp => _current;
    private static readonly Dictionary<string, (double Ms, long Calls)> Totals = new();
    private static readonly object Lock = new();

    public static Region Time(string name, IBackend? backend = null)
    {
        var previous = _current;
        _current = name;
        if (!Enabled) return new Region(null, null, 0, previous, true);
        backend?.Synchronize();
        return new Region(name, backend, Stopwatch.GetTimestamp(), previous, true);
    }

    public readonly struct Region : IDisposable
    {
        private readonly string? _name;
        private readonly IBackend? _backend;
        private readonly long _start;
        private readonly string? _previous;
        private readonly bool _labelled;
        internal Region(string? name, IBackend? backend, long start, string? previous, bool labelled)
        {
            _name = name; _backend = backend; _start = start; _previous = previous; _labelled = labelled;
        }

        public void Dispose()
        {
            if (_labelled) _current = _previous;
            if (_name is null) return;
            _backend?.Synchronize();
            double ms = Stopwatch.GetElapsedTime(_start).TotalMilliseconds;
            lock (Lock)
            {
                Totals.TryGetValue(_name, out var t);
                Totals[_name] = (t.Ms + ms, t.Calls + 1);
            }
        }
    }

    public static void Reset() { lock (Lock) Totals.Clear(); }

    public static IReadOnlyList<(string Name, double Ms, long Calls)> Snapshot()
    {
        lock (Lock) return Totals.Select(kv => (kv.Key, kv.Value.Ms, kv.Value.Calls)).OrderByDescending(x => x.Item2).ToList();
    }

    /// <summary>A text table of the totals, largest first, with each op's share.</summary>
    public static string Report(int steps = 1)
    {
        var rows = Snapshot();
        double total = rows.Sum(r => r.Ms);
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"{"op",-28} {"ms/step",9} {"calls/step",10} {"share",7}");
        foreach (var (name, ms, calls) in rows)
            sb.AppendLine($"{name,-28} {ms / steps,9:0.00} {calls / (double)steps,10:0.#} {100 * ms / Math.Max(total, 1e-9),6:0.0}%");
        sb.AppendLine($"{"total (timed ops)",-28} {total / steps,9:0.00}");
        return sb.ToString();
    }
}
