using Tmca.Cuda.Kernels;

namespace Tmca.Cuda.Plan;

/// <summary>What bounds an operation: its FLOPs on its unit's peak, its bytes at the memory bandwidth, or the launch floor.</summary>
public enum Bound { Compute, Memory, Launch }

/// <summary>One recorded event with its family and its bound on the modelled device (seconds).</summary>
public sealed record PlannedOp(PlanEvent Event, string Family, double ComputeSeconds, double MemorySeconds, double FloorSeconds, double GraphFloorSeconds)
{
    public double Seconds => Math.Max(ComputeSeconds, Math.Max(MemorySeconds, FloorSeconds));
    /// <summary>The bound if the step were captured in a CUDA graph (launch floor per node instead of per enqueue).</summary>
    public double GraphSeconds => Math.Max(ComputeSeconds, Math.Max(MemorySeconds, GraphFloorSeconds));
    public Bound BoundBy => ComputeSeconds >= MemorySeconds && ComputeSeconds >= FloorSeconds ? Bound.Compute
                            : MemorySeconds >= FloorSeconds ? Bound.Memory : Bound.Launch;
}

/// <summary>One family's totals; <see cref="BoundBy"/> is the bound that accounts for most of its time.</summary>
public sealed record FamilyPlan(string Name, int Launches, int Memsets, int Copies, double GflopUseful, double GflopExecuted, double Gbytes,
                                double BoundMs, double Share, Bound BoundBy);

/// <summary>
/// A step's plan: every stream operation bounded on <see cref="Device"/> — max(executed FLOPs / peak of its unit,
/// compulsory bytes / bandwidth, launch floor); host ↔ device copies move their bytes at the host link's bandwidth.
/// These are lower bounds from declared costs, not timings: nothing ran.
/// </summary>
public sealed class StepPlan
{
    public required DeviceModel Device { get; init; }
    public required string Description { get; init; }
    public required IReadOnlyList<PlannedOp> Ops { get; init; }
    public required IReadOnlyList<FamilyPlan> Families { get; init; }
    /// <summary>The pool's peak of bytes in live tensors (size classes included) over the step: DevicePool.PeakBytes.</summary>
    public required long PeakDeviceBytes { get; init; }
    /// <summary>The peak of bytes the caching pool held from the device (live and cached blocks).</summary>
    public required long PeakReservedBytes { get; init; }

    /// <summary>The pool's live and cached bytes as each operation was issued (index: <see cref="PlanEvent.Index"/>;
    /// empty without a pool timeline).</summary>
    public IReadOnlyList<long> LiveAtOp { get; init; } = [];
    public IReadOnlyList<long> CachedAtOp { get; init; } = [];
    /// <summary>The peak and what was live at it (null without a pool timeline).</summary>
    public PeakMemory? Peak { get; init; }

    /// <summary>Kernel launches and GEMMs (what <see cref="CudaBackend.Launches"/> counts).</summary>
    public int Launches => Ops.Count(o => o.Event.Kind is PlanEventKind.Launch or PlanEventKind.Gemm);
    public int Memsets => Ops.Count(o => o.Event.Kind == PlanEventKind.Memset);
    public int Copies => Ops.Count(o => o.Event.Kind is PlanEventKind.CopyToDevice or PlanEventKind.CopyToHost or PlanEventKind.CopyOnDevice);
    /// <summary>Copies the host waits for (host → device from pageable memory, device → host): each blocks graph capture.</summary>
    public IEnumerable<PlannedOp> SynchronousCopies => Ops.Where(o => o.Event.Synchronous);
    public double GflopUseful => Ops.Sum(o => (double)o.Event.Cost.UsefulFlops) / 1e9;
    public double GflopExecuted => Ops.Sum(o => (double)o.Event.Cost.ExecutedFlops) / 1e9;
    public double Gbytes => Ops.Sum(o => (double)o.Event.Cost.Bytes) / 1e9;
    public double BoundMs => Ops.Sum(o => o.Seconds) * 1e3;
    public double GraphBoundMs => Ops.Sum(o => o.GraphSeconds) * 1e3;
    public double ComputeMs => Ops.Sum(o => o.ComputeSeconds) * 1e3;
    public double MemoryMs => Ops.Sum(o => o.MemorySeconds) * 1e3;

    public static StepPlan Build(IReadOnlyList<PlanEvent> events, DeviceModel device, Func<ulong, ParameterOwner?> ownerAt, long peakDeviceBytes,
                                 long peakReservedBytes, string description, PoolTimeline? pool = null)
    {
        var families = PlanFamilies.Classify(events, ownerAt);
        var ops = new List<PlannedOp>(events.Count);
        for (int i = 0; i < events.Count; i++) ops.Add(Bounded(events[i], families[i], device));
        double total = ops.Sum(o => o.Seconds);
        var fams = new List<FamilyPlan>();
        foreach (var name in PlanFamilies.All)
        {
            var f = ops.Where(o => o.Family == name).ToList();
            if (f.Count == 0) continue;
            double s = f.Sum(o => o.Seconds);
            var by = f.GroupBy(o => o.BoundBy).OrderByDescending(g => g.Sum(o => o.Seconds)).First().Key;
            fams.Add(new FamilyPlan(name, f.Count(o => o.Event.Kind is PlanEventKind.Launch or PlanEventKind.Gemm), f.Count(o => o.Event.Kind == PlanEventKind.Memset),
                f.Count(o => o.Event.Kind is PlanEventKind.CopyToDevice or PlanEventKind.CopyToHost or PlanEventKind.CopyOnDevice),
                f.Sum(o => (double)o.Event.Cost.UsefulFlops) / 1e9, f.Sum(o => (double)o.Event.Cost.ExecutedFlops) / 1e9, f.Sum(o => (double)o.Event.Cost.Bytes) / 1e9,
                s * 1e3, total > 0 ? s / total : 0, by));
        }
        var (live, cached) = pool is null ? ([], []) : PlanMemory.AtEvents(pool.Changes, events.Count);
        return new StepPlan
        {
            Device = device, Description = description, Ops = ops, Families = fams, PeakDeviceBytes = peakDeviceBytes, PeakReservedBytes = peakReservedBytes,
            LiveAtOp = live, CachedAtOp = cached, Peak = pool is null ? null : PlanMemory.Peak(pool, events),
        };
    }

    /// <summary>One event's bound: kernels and GEMMs by their unit's peak and the HBM bandwidth; a device → device copy
    /// reads and writes HBM; host ↔ device copies cross the host link.</summary>
    public static PlannedOp Bounded(PlanEvent e, string family, DeviceModel d)
    {
        var c = e.Cost;
        double compute = c.ExecutedFlops / d.Peak(c.Unit);
        double bw = e.Kind is PlanEventKind.CopyToDevice or PlanEventKind.CopyToHost ? d.HostLinkBandwidth : d.Bandwidth;
        return new PlannedOp(e, family, compute, c.Bytes / bw, d.LaunchFloor, d.GraphLaunchFloor);
    }
}
