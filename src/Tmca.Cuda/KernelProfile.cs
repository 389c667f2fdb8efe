using System.Globalization;
using System.Text;
using System.Text.Json;
using Tmca.Cuda.Kernels;
using Tmca.Cuda.Native;
using Tmca.Cuda.Sim;

namespace Tmca.Cuda;

/// <summary>One kernel of the lab, profiled: its launches at the lab's shapes summed (declared cost and measured counts).</summary>
public sealed record KernelProfileRow(string Kernel, string File, int Launches, string Block, long DeclaredFlops, long DeclaredBytes, long UniqueBytes,
                                      double SectorsPerLoadRequest, double SectorsPerStoreRequest, double BankConflictsPerRequest, double DivergentWarpOpShare,
                                      int? Registers, int? StaticSharedBytes, double? Occupancy, string? OccupancyLimit, int Races)
{
    /// <summary>Measured unique bytes ÷ declared compulsory bytes (1 when the declaration is the traffic the kernel makes).</summary>
    public double? UniqueOverDeclared => DeclaredBytes > 0 ? (double)UniqueBytes / DeclaredBytes : null;
}

/// <summary>
/// `tmca kernels --profile`: the kernel lab run once on the profiling, race-checking simulator (every load and store of
/// every kernel seen: SimRuntime with <see cref="SimOptions.Profile"/> and <see cref="SimOptions.RaceCheck"/>), each
/// kernel's launches summed: declared FLOPs and bytes (<see cref="KernelCosts"/>) beside the unique bytes it touched,
/// sectors per global request, shared bank conflicts, and — from its NVRTC sm_90 cubin — registers, static shared memory
/// and the theoretical occupancy at the block size it launched with. Counts, not timings.
/// </summary>
public static class KernelProfile
{
    public static List<KernelProfileRow> Run(Action<string>? log = null)
    {
        var rt = SimRuntime.TryCreate(out var reason, new SimOptions(Profile: true, RaceCheck: true))
                 ?? throw new CudaException("kernel profile", $"no CUDA simulator: {reason}");
        using var gpu = new CudaBackend(rt);
        KernelLab.Run(gpu, repeats: 1, log: log);
        var resources = Resources(out var why);
        if (resources is null) log?.Invoke($"registers and occupancy not shown: {why}");
        var rows = new List<KernelProfileRow>();
        foreach (var g in rt.Profiles.GroupBy(p => p.Kernel).OrderBy(g => KernelCosts.Descriptor(g.Key)?.File).ThenBy(g => g.Key, StringComparer.Ordinal))
        {
            var ps = g.ToList();
            ulong lr = Sum(ps, c => c.LoadRequests), ls = Sum(ps, c => c.LoadSectors), sr = Sum(ps, c => c.StoreRequests), ss = Sum(ps, c => c.StoreSectors);
            ulong shReq = Sum(ps, c => c.SharedLoadRequests + c.SharedStoreRequests), shExtra = Sum(ps, c => c.SharedWavefronts - c.SharedIdealWavefronts);
            ulong ops = Sum(ps, c => c.WarpOps), div = Sum(ps, c => c.DivergentWarpOps);
            var block = ps[^1].Block;
            int threads = (int)(block.X * block.Y * block.Z);
            var res = resources?.GetValueOrDefault(g.Key);
            var occ = res is null ? null : Occupancy.Of(90, threads, res.Registers, res.StaticSharedBytes + ps[^1].SharedBytes);
            rows.Add(new KernelProfileRow(g.Key, KernelCosts.Descriptor(g.Key)?.File ?? "?", ps.Count, block.ToString(),
                ps.Sum(p => p.Declared?.UsefulFlops ?? 0), ps.Sum(p => p.Declared?.Bytes ?? 0), ps.Sum(p => p.UniqueBytes),
                lr == 0 ? 0 : (double)ls / lr, sr == 0 ? 0 : (double)ss / sr, shReq == 0 ? 0 : (double)shExtra / shReq, ops == 0 ? 0 : (double)div / ops,
                res?.Registers, res?.StaticSharedBytes, occ?.Fraction, occ?.LimitedBy, Races: 0));
        }
        return rows;
    }

    private static ulong Sum(List<SimProfile> ps, Func<SimCounts, ulong> f) => ps.Aggregate(0UL, (a, p) => a + f(p.Counts));

    /// <summary>Every kernel's sm_90 resources from NVRTC's cubins, or null with the reason (no NVRTC here).</summary>
    public static Dictionary<string, KernelResources>? Resources(out string reason)
    {
        var nv = Nvrtc.TryLoad(out reason);
        if (nv is null) return null;
        var compiler = new KernelCompiler(nv);
        var all = new Dictionary<string, KernelResources>();
        foreach (var f in KernelSources.Files.Concat(KernelSources.LabFiles))
        {
            var r = compiler.Compile(f, 90);
            if (!r.IsCubin) { reason = $"NVRTC {nv.Version} gave PTX, not a cubin, for sm_90"; return null; }
            foreach (var k in CubinResources.Read(r.Image, 90)) all[k.Kernel] = k;
        }
        return all;
    }

    public static string Markdown(IReadOnlyList<KernelProfileRow> rows)
    {
        var ic = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("Counts from the profiling simulator (every access of the kernel lab's launches at its shapes, summed per kernel) and");
        sb.AppendLine("resources from NVRTC's sm_90 cubins; occupancy is sm_90's theoretical one at the launched block size. Not timings.");
        sb.AppendLine();
        sb.AppendLine("| kernel | launches | block | declared MB | unique MB | unique ÷ declared | sectors/load req | sectors/store req | bank conflicts/req | divergent warp ops | registers | static smem | occupancy | races |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in rows)
            sb.AppendLine(string.Create(ic,
                $"| {r.Kernel} | {r.Launches} | {r.Block} | {r.DeclaredBytes / 1e6:0.000} | {r.UniqueBytes / 1e6:0.000} | {(r.UniqueOverDeclared is { } u ? u.ToString("0.00", ic) : "—")} | " +
                $"{r.SectorsPerLoadRequest:0.0} | {r.SectorsPerStoreRequest:0.0} | {r.BankConflictsPerRequest:0.00} | {r.DivergentWarpOpShare * 100:0} % | " +
                $"{r.Registers?.ToString(ic) ?? "—"} | {r.StaticSharedBytes?.ToString(ic) ?? "—"} | {(r.Occupancy is { } o ? $"{o * 100:0} % ({r.OccupancyLimit})" : "—")} | {r.Races} |"));
        return sb.ToString();
    }

    public static string Json(IReadOnlyList<KernelProfileRow> rows) => JsonSerializer.Serialize(rows.Select(r => new
    {
        kernel = r.Kernel, file = r.File, launches = r.Launches, block = r.Block, declared_flops = r.DeclaredFlops, declared_bytes = r.DeclaredBytes,
        unique_bytes = r.UniqueBytes, sectors_per_load_request = r.SectorsPerLoadRequest, sectors_per_store_request = r.SectorsPerStoreRequest,
        bank_conflicts_per_request = r.BankConflictsPerRequest, divergent_warp_op_share = r.DivergentWarpOpShare, registers = r.Registers,
        static_shared_bytes = r.StaticSharedBytes, occupancy = r.Occupancy, occupancy_limited_by = r.OccupancyLimit, races = r.Races,
    }), new JsonSerializerOptions { WriteIndented = true });
}
