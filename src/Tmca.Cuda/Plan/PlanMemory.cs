namespace Tmca.Cuda.Plan;

/// <summary>Bytes held by one kind of tensor (or by the tensors one op first used) at the step's memory peak.</summary>
public sealed record MemoryShare(string What, long Bytes, int Blocks);

/// <summary>
/// The step's device-memory peak: the pool's live bytes (size classes included) and cached bytes then, the operation
/// issued next (the one whose outputs had just been allocated), and what the live blocks were — parameters, AdamW
/// moments, gradients, tensors from before the step, and the step's own tensors grouped by the op that first used them
/// (their producer: the planner sees every pointer an operation is given).
/// </summary>
public sealed record PeakMemory(long LiveBytes, long CachedBytes, int BeforeEvent, IReadOnlyList<MemoryShare> Held, IReadOnlyList<MemoryShare> ByFirstUse,
                                IReadOnlyList<LiveBlock> LargestBlocks, IReadOnlyList<LiveBlock> Dead)
{
    public long DeadBytes => Dead.Sum(b => b.Bytes);
}

/// <summary>One of the step's blocks live at the peak: its size, the operation that first used it and the first one after
/// the peak that uses it (−1: none — the block is dead at the peak, held only until it is freed).</summary>
public sealed record LiveBlock(ulong Address, long Bytes, int FirstUse, int NextUse);

/// <summary>What the planner knows of the step's pool: every rent and return (<see cref="PlanningRuntime.PoolChanges"/>),
/// where the step starts in them, and who holds a named block (parameters, moments, gradients: <paramref name="HolderAt"/>),
/// as taken at change <paramref name="HoldersTakenAt"/> (the gradients are freed after the update).</summary>
public sealed record PoolTimeline(IReadOnlyList<PoolChange> Changes, int StepStart, Func<ulong, string?> HolderAt, int HoldersTakenAt);

public static class PlanMemory
{
    public const string FromBefore = "tensors from before the step";
    /// <summary>How many of the largest live blocks the peak lists.</summary>
    public const int LargestShown = 40;

    /// <summary>The pool's live and cached bytes as each of <paramref name="events"/> events is issued.</summary>
    public static (long[] Live, long[] Cached) AtEvents(IReadOnlyList<PoolChange> changes, int events)
    {
        var live = new long[events];
        var cached = new long[events];
        long l = 0, c = 0;
        int j = 0;
        for (int i = 0; i < events; i++)
        {
            while (j < changes.Count && changes[j].BeforeEvent <= i) { l = changes[j].LiveBytes; c = changes[j].CachedBytes; j++; }
            live[i] = l; cached[i] = c;
        }
        return (live, cached);
    }

    /// <summary>The step's peak and what was live at it (null when the step rented nothing).</summary>
    public static PeakMemory? Peak(PoolTimeline t, IReadOnlyList<PlanEvent> events)
    {
        var ch = t.Changes;
        int peak = -1;
        for (int i = t.StepStart; i < ch.Count; i++)
            if (peak < 0 || ch[i].LiveBytes > ch[peak].LiveBytes) peak = i;
        if (peak < 0) return null;

        // the live blocks at the peak, with the change that rented each
        var live = new Dictionary<ulong, (long Size, int RentedAt)>();
        for (int i = 0; i <= peak; i++)
            if (ch[i].Rent) live[ch[i].Ptr] = (ch[i].Size, i);
            else live.Remove(ch[i].Ptr);
        // a block still has the holder found at its address only if it was not returned before the holders were taken
        var returnedBefore = new HashSet<ulong>();
        for (int i = peak + 1; i < Math.Min(t.HoldersTakenAt, ch.Count); i++)
            if (!ch[i].Rent) returnedBefore.Add(ch[i].Ptr);

        var held = new Dictionary<string, (long Bytes, int Blocks)>();
        var step = new List<(ulong Ptr, long Size, int FirstEvent)>();
        foreach (var (ptr, (size, rentedAt)) in live)
        {
            string? who = returnedBefore.Contains(ptr) ? null : t.HolderAt(ptr);
            if (who is null && ch[rentedAt].BeforeEvent < 0) who = FromBefore;
            if (who is not null) Add(held, who, size);
            else step.Add((ptr, size, ch[rentedAt].BeforeEvent));
        }

        // the step's tensors by the first operation (at or after their rent) given a pointer into them
        step.Sort((a, b) => a.Ptr.CompareTo(b.Ptr));
        var starts = step.Select(s => s.Ptr).ToArray();
        var first = new int[step.Count];
        var next = new int[step.Count];
        Array.Fill(first, -1);
        Array.Fill(next, -1);
        int peakEvent = ch[peak].BeforeEvent;
        for (int e = 0; e < events.Count; e++)
            foreach (var p in events[e].Pointers)
            {
                int k = Array.BinarySearch(starts, p);
                if (k < 0) k = ~k - 1;
                if (k < 0 || p >= step[k].Ptr + (ulong)step[k].Size || e < step[k].FirstEvent) continue;
                if (first[k] < 0) first[k] = e;
                if (next[k] < 0 && e >= peakEvent) next[k] = e;
            }
        var byOp = new Dictionary<string, (long Bytes, int Blocks)>();
        for (int k = 0; k < step.Count; k++)
        {
            string op = first[k] < 0 ? "not used by any operation" : events[first[k]].Op ?? events[first[k]].Name;
            Add(byOp, op, step[k].Size);
        }
        long stepBytes = step.Sum(s => s.Size);
        if (step.Count > 0) held["the step's tensors"] = (stepBytes, step.Count);
        var blocks = Enumerable.Range(0, step.Count).Select(k => new LiveBlock(step[k].Ptr, step[k].Size, first[k], next[k])).ToList();
        var largest = blocks.OrderByDescending(b => b.Bytes).ThenBy(b => b.FirstUse).Take(LargestShown).ToList();
        var dead = blocks.Where(b => b.NextUse < 0).OrderByDescending(b => b.Bytes).ThenBy(b => b.FirstUse).ToList();
        return new PeakMemory(ch[peak].LiveBytes, ch[peak].CachedBytes, ch[peak].BeforeEvent, Shares(held), Shares(byOp), largest, dead);
    }

    private static void Add(Dictionary<string, (long Bytes, int Blocks)> d, string key, long bytes)
    {
        d.TryGetValue(key, out var v);
        d[key] = (v.Bytes + bytes, v.Blocks + 1);
    }

    private static List<MemoryShare> Shares(Dictionary<string, (long Bytes, int Blocks)> d) =>
        d.Select(kv => new MemoryShare(kv.Key, kv.Value.Bytes, kv.Value.Blocks)).OrderByDescending(s => s.Bytes).ThenBy(s => s.What, StringComparer.Ordinal).ToList();
}
