using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Tmca.Cuda.Plan;

/// <summary>
/// A <see cref="StepPlan"/> for people and for tools: a Markdown table per op family with the step's totals, the
/// largest launches (with the pool's live and cached bytes as each was issued), the memory peak and what it holds,
/// and the synchronous copies; JSON with every family and total; and a Chrome trace (Perfetto's JSON format) of the
/// step's operations laid end to end at their bounds, with the pool's bytes as a counter track. Every number is a
/// bound from declared costs, not a timing; the memory is the real DevicePool policy on the real allocation sequence.
/// </summary>
public static class PlanReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static string F(double v, string fmt) => v.ToString(fmt, Inv);
    private static string Mib(long bytes) => F(bytes / 1048576.0, "0.0");

    public static string Markdown(StepPlan p, int top = 10)
    {
        var s = new StringBuilder();
        var d = p.Device;
        s.AppendLine($"plan: {p.Description} on {d.Name} ({d.SmCount} SMs; HBM {F(d.Bandwidth / 1e12, "0.00")} TB/s {d.BandwidthSource}; FP32 {F(d.Fp32Peak / 1e12, "0.#")}, "
                     + $"TF32 {F(d.Tf32Peak / 1e12, "0.#")}, BF16 {F(d.Bf16Peak / 1e12, "0.#")} TFLOP/s dense; launch floor {F(d.LaunchFloor * 1e6, "0.0#")} µs, "
                     + $"{F(d.GraphLaunchFloor * 1e6, "0.0#")} µs in a graph)");
        s.AppendLine("bounds, not timings: each operation takes at least max(FLOPs / its unit's peak, bytes / bandwidth, launch floor)");
        s.AppendLine();
        s.AppendLine("| family | launches | memsets | copies | GFLOP useful | GFLOP executed | GB | bound ms | share | bound by |");
        s.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var f in p.Families)
            s.AppendLine($"| {f.Name} | {f.Launches} | {f.Memsets} | {f.Copies} | {F(f.GflopUseful, "0.0")} | {F(f.GflopExecuted, "0.0")} | {F(f.Gbytes, "0.00")} | "
                         + $"{F(f.BoundMs, "0.000")} | {F(f.Share * 100, "0.0")} % | {f.BoundBy.ToString().ToLowerInvariant()} |");
        s.AppendLine($"| **step** | **{p.Launches}** | **{p.Memsets}** | **{p.Copies}** | **{F(p.GflopUseful, "0.0")}** | **{F(p.GflopExecuted, "0.0")}** | "
                     + $"**{F(p.Gbytes, "0.00")}** | **{F(p.BoundMs, "0.000")}** | 100 % | |");
        s.AppendLine();
        s.AppendLine($"stream operations: {p.Ops.Count} ({p.Launches} launches incl. GEMMs, {p.Memsets} memsets, {p.Copies} copies); "
                     + $"bound {F(p.BoundMs, "0.000")} ms (compute {F(p.ComputeMs, "0.000")}, memory {F(p.MemoryMs, "0.000")} if each op were bound by that alone); "
                     + $"in one CUDA graph {F(p.GraphBoundMs, "0.000")} ms");
        s.AppendLine($"device memory: peak {Mib(p.PeakDeviceBytes)} MiB in live tensors (DevicePool, size classes included), {Mib(p.PeakReservedBytes)} MiB held from the device (live + cached)");
        if (p.Peak is { } pk) s.Append(PeakLines(p, pk));
        var sync = p.SynchronousCopies.ToList();
        s.AppendLine($"synchronous copies (each blocks CUDA graph capture): {sync.Count}"
                     + (sync.Count == 0 ? "" : " — " + string.Join("; ", sync.GroupBy(o => (o.Event.Name, o.Event.Op ?? "-"))
                         .Select(g => $"{g.Count()}× {g.Key.Name} in {g.Key.Item2} ({string.Join(", ", g.Select(o => o.Event.Args).Distinct().Take(3))})"))));
        s.AppendLine();
        s.AppendLine($"the {top} operations with the largest bound:");
        s.AppendLine();
        s.AppendLine("| # | operation | op | grid × block | GFLOP | MB | bound µs | bound by | family | live MiB | cached MiB |");
        s.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var o in Largest(p, top))
        {
            var e = o.Event;
            string geom = e.Kind == PlanEventKind.Launch ? $"{e.Grid} × {e.Block}" : e.Gemm is { } g ? $"m {g.M} n {g.N} k {g.K} ×{g.Batch}" : "";
            s.AppendLine($"| {e.Index} | {e.Name} | {e.Op ?? "-"} | {geom} | {F(e.Cost.ExecutedFlops / 1e9, "0.00")} | {F(e.Cost.Bytes / 1e6, "0.0")} | "
                         + $"{F(o.Seconds * 1e6, "0.0")} | {o.BoundBy.ToString().ToLowerInvariant()} | {o.Family} | {LiveAt(p, e.Index)} | {CachedAt(p, e.Index)} |");
        }
        return s.ToString();
    }

    private static string LiveAt(StepPlan p, int i) => i < p.LiveAtOp.Count ? Mib(p.LiveAtOp[i]) : "-";
    private static string CachedAt(StepPlan p, int i) => i < p.CachedAtOp.Count ? Mib(p.CachedAtOp[i]) : "-";

    /// <summary>Where the peak is and what it holds: the lines under "device memory".</summary>
    private static string PeakLines(StepPlan p, PeakMemory pk)
    {
        var s = new StringBuilder();
        string at = pk.BeforeEvent >= 0 && pk.BeforeEvent < p.Ops.Count
            ? $"reached as operation #{pk.BeforeEvent} ({p.Ops[pk.BeforeEvent].Event.Name} in '{p.Ops[pk.BeforeEvent].Event.Op ?? "-"}') was issued"
            : "reached after the step's last operation";
        s.AppendLine($"memory peak: {Mib(pk.LiveBytes)} MiB live ({Mib(pk.CachedBytes)} MiB cached beside it), {at}; live then: "
                     + string.Join(", ", pk.Held.Select(h => $"{h.What} {Mib(h.Bytes)} MiB ({h.Blocks})"))
                     + $"; of the step's tensors {Mib(pk.DeadBytes)} MiB ({pk.Dead.Count}) are used by no later operation (held only until they are freed)");
        if (pk.ByFirstUse.Count > 0)
        {
            const int shown = 12;
            s.AppendLine($"the step's tensors live at the peak, by the op that first used them (their producer), MiB (blocks): "
                         + string.Join(", ", pk.ByFirstUse.Take(shown).Select(h => $"{h.What} {Mib(h.Bytes)} ({h.Blocks})"))
                         + (pk.ByFirstUse.Count > shown ? $", {pk.ByFirstUse.Count - shown} more ops {Mib(pk.ByFirstUse.Skip(shown).Sum(h => h.Bytes))}" : ""));
        }
        return s.ToString();
    }

    public static IEnumerable<PlannedOp> Largest(StepPlan p, int top) => p.Ops.OrderByDescending(o => o.Seconds).ThenBy(o => o.Event.Index).Take(top);

    public static string Json(StepPlan p, int top = 10)
    {
        var d = p.Device;
        var doc = new
        {
            device = new
            {
                id = d.Id, name = d.Name, sms = d.SmCount, bandwidth_tb_s = d.Bandwidth / 1e12, bandwidth_source = d.BandwidthSource,
                fp32_tflops = d.Fp32Peak / 1e12, tf32_tflops = d.Tf32Peak / 1e12, bf16_tflops = d.Bf16Peak / 1e12,
                launch_floor_us = d.LaunchFloor * 1e6, graph_launch_floor_us = d.GraphLaunchFloor * 1e6, sources = d.Sources,
            },
            description = p.Description,
            stream_operations = p.Ops.Count,
            launches = p.Launches, memsets = p.Memsets, copies = p.Copies,
            synchronous_copies = p.SynchronousCopies.Count(),
            gflop_useful = p.GflopUseful, gflop_executed = p.GflopExecuted, gbytes = p.Gbytes,
            bound_ms = p.BoundMs, graph_bound_ms = p.GraphBoundMs, compute_ms = p.ComputeMs, memory_ms = p.MemoryMs,
            peak_device_bytes = p.PeakDeviceBytes, peak_reserved_bytes = p.PeakReservedBytes,
            peak = p.Peak is not { } pk ? null : new
            {
                live_bytes = pk.LiveBytes, cached_bytes = pk.CachedBytes, before_operation = pk.BeforeEvent, dead_bytes = pk.DeadBytes,
                op = pk.BeforeEvent >= 0 && pk.BeforeEvent < p.Ops.Count ? p.Ops[pk.BeforeEvent].Event.Op : null,
                held = pk.Held.Select(h => new { what = h.What, bytes = h.Bytes, blocks = h.Blocks }),
                by_first_use = pk.ByFirstUse.Select(h => new { op = h.What, bytes = h.Bytes, blocks = h.Blocks }),
                largest_blocks = pk.LargestBlocks.Select(b => Block(p, b)),
                dead_blocks = pk.Dead.Select(b => Block(p, b)),
            },
            families = p.Families.Select(f => new
            {
                name = f.Name, launches = f.Launches, memsets = f.Memsets, copies = f.Copies, gflop_useful = f.GflopUseful, gflop_executed = f.GflopExecuted,
                gbytes = f.Gbytes, bound_ms = f.BoundMs, share = f.Share, bound_by = f.BoundBy.ToString().ToLowerInvariant(),
            }),
            largest = Largest(p, top).Select(o => new
            {
                index = o.Event.Index, name = o.Event.Name, op = o.Event.Op, family = o.Family, grid = o.Event.Grid.ToString(), block = o.Event.Block.ToString(),
                gflop = o.Event.Cost.ExecutedFlops / 1e9, mbytes = o.Event.Cost.Bytes / 1e6, bound_us = o.Seconds * 1e6, bound_by = o.BoundBy.ToString().ToLowerInvariant(),
                live_bytes = o.Event.Index < p.LiveAtOp.Count ? p.LiveAtOp[o.Event.Index] : (long?)null,
                cached_bytes = o.Event.Index < p.CachedAtOp.Count ? p.CachedAtOp[o.Event.Index] : (long?)null,
            }),
        };
        return JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true });
    }

    private static object Block(StepPlan p, LiveBlock b) => new
    {
        address = $"0x{b.Address:x}", bytes = b.Bytes, first_used_by = b.FirstUse, next_used_by = b.NextUse,
        operation = b.FirstUse >= 0 ? p.Ops[b.FirstUse].Event.Name : null, op = b.FirstUse >= 0 ? p.Ops[b.FirstUse].Event.Op : null,
        arguments = b.FirstUse >= 0 ? p.Ops[b.FirstUse].Event.Args : null,
    };

    /// <summary>Chrome trace events ("X", complete events in µs) laid end to end on one stream at their bounds; the name
    /// is the kernel, the category its family, and args carry the op that asked, the geometry and the cost.</summary>
    public static string Trace(StepPlan p)
    {
        var events = new List<object>(p.Ops.Count + 2)
        {
            new { name = "process_name", ph = "M", pid = 1, tid = 1, args = new { name = $"tmca plan: {p.Description} on {p.Device.Name} (bounds, not timings)" } },
            new { name = "thread_name", ph = "M", pid = 1, tid = 1, args = new { name = "stream 0" } },
        };
        double t = 0;
        foreach (var o in p.Ops)
        {
            var e = o.Event;
            double dur = o.Seconds * 1e6;
            events.Add(new
            {
                name = e.Name, cat = o.Family, ph = "X", pid = 1, tid = 1, ts = Math.Round(t, 4), dur = Math.Round(dur, 4),
                args = new
                {
                    op = e.Op ?? "-", grid = e.Grid.ToString(), block = e.Block.ToString(), shared_bytes = e.SharedBytes,
                    gflop_useful = e.Cost.UsefulFlops / 1e9, gflop_executed = e.Cost.ExecutedFlops / 1e9, bytes = e.Cost.Bytes,
                    unit = e.Cost.Unit.ToString(), bound_by = o.BoundBy.ToString().ToLowerInvariant(), arguments = e.Args,
                },
            });
            // the pool's live and cached MiB as a counter track (Perfetto draws it under the stream)
            if (e.Index < p.LiveAtOp.Count && (e.Index == 0 || p.LiveAtOp[e.Index] != p.LiveAtOp[e.Index - 1] || p.CachedAtOp[e.Index] != p.CachedAtOp[e.Index - 1]))
                events.Add(new { name = "device memory MiB", ph = "C", pid = 1, tid = 1, ts = Math.Round(t, 4),
                                 args = new { live = Math.Round(p.LiveAtOp[e.Index] / 1048576.0, 1), cached = Math.Round(p.CachedAtOp[e.Index] / 1048576.0, 1) } });
            t += dur;
        }
        return JsonSerializer.Serialize(new { traceEvents = events, displayTimeUnit = "ms" });
    }
}
