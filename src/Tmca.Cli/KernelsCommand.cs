using System.CommandLine;
using Tmca.Cuda;
using Tmca.Cuda.Native;

namespace Tmca.Cli;

/// <summary>`tmca kernels --compile`: compiles every kernels/*.cu (and the lab's kernels/lab/*.cu) with NVRTC, with the run-time options, for each
/// architecture (no GPU needed); `--bench` the kernel lab, `--profile` the profiling simulator. Runs inside
/// <see cref="Common.Guard"/> like every command: a kernel that fails is exit 1, a missing NVRTC, GPU or simulator
/// exit 2 (<see cref="ExitCodes"/>).</summary>
internal static class KernelsCommand
{
    public static Command Build()
    {
        var compile = new Option<bool>("--compile") { Description = "compile every kernel (the CI check)" };
        var arch = new Option<string?>("--arch") { Description = "comma-separated compute capabilities", DefaultValueFactory = _ => "80,90" }.IntList();
        var bench = new Option<bool>("--bench") { Description = "validate every kernel against the CPU, then time it on the GPU (the kernel lab)" };
        var outFile = new Option<string?>("--out") { Description = "write the benchmark table (markdown) to this file" };
        var profile = new Option<bool>("--profile") { Description = "profile every lab kernel on the race-checking, profiling simulator: declared vs measured bytes, sectors per request, bank conflicts, registers, occupancy" };
        var json = new Option<string?>("--json") { Description = "for --profile: write the per-kernel table as JSON to this file" };
        var device = new Option<string>("--device") { Description = "for --bench: cuda (a GPU) or cuda-sim (validation on the simulator; its times are the CPU's, not a GPU's)", DefaultValueFactory = _ => "cuda" }
            .OneOf("cuda", "cuda-sim", "gpu", "sim");
        var hbm = new Option<double?>("--hbm-gbs") { Description = "for --bench: the memory roofline in GB/s (e.g. measured by `tmca doctor --measure`); default: the device table's" };
        var cmd = new Command("kernels", "list, compile (NVRTC only: no GPU needed), benchmark or profile the CUDA kernels") { compile, arch, bench, profile, json, outFile, device, hbm };
        // the same guard and exit codes as every command: a missing NVRTC or GPU is a machine that lacks what the command
        // line asks for (exit 2, as `--device cuda` elsewhere), a kernel that fails to compile or validate is a failure (1)
        cmd.SetAction(p => Common.Guard(() =>
        {
            string dev = p.GetValue(device)!.ToLowerInvariant() switch { "gpu" => "cuda", "sim" => "cuda-sim", var d => d };
            if (p.GetValue(profile))
            {
                // the profile always runs on the simulator: a GPU asked for by name would be a silent substitution
                if (dev == "cuda" && p.GetResult(device) is { Implicit: false })
                    throw new UsageException($"--device {p.GetValue(device)}: --profile runs on cuda-sim");
                var rows = KernelProfile.Run(Console.Error.WriteLine);
                var md = KernelProfile.Markdown(rows);
                Console.WriteLine(md);
                if (p.GetValue(outFile) is { } o) Tmca.Engine.AtomicFile.WriteAllText(o, md);
                if (p.GetValue(json) is { } j) Tmca.Engine.AtomicFile.WriteAllText(j, KernelProfile.Json(rows));
                return ExitCodes.Ok;
            }
            if (p.GetValue(bench)) return Bench(LabDevice(dev), p.GetValue(hbm), p.GetValue(outFile));
            if (!p.GetValue(compile))
            {
                foreach (var f in KernelSources.Files.Concat(KernelSources.LabFiles)) Console.WriteLine(f);
                return ExitCodes.Ok;
            }
            return Compile(Nvrtc.TryLoad(out var why), why, Validation.Ints(p.GetValue(arch)!, "--arch"));
        }));
        return cmd;
    }

    /// <summary>The backend the kernel lab runs on: --device cuda that finds no GPU is a failure, never a quiet pass (the
    /// device check reads the exit code).</summary>
    internal static CudaBackend LabDevice(string dev) => dev == "cuda"
        ? CudaBackend.TryCreate(out var reason) ?? throw new BackendUnavailableException($"kernel lab: no GPU ({reason}; run `tmca doctor`, or --device cuda-sim to validate on the simulator)")
        : CudaBackend.TryCreateSimulator(out reason) ?? throw new BackendUnavailableException($"kernel lab: no CUDA simulator ({reason}; run `tmca doctor`)");

    private static int Bench(CudaBackend gpu, double? hbmGiven, string? outFile)
    {
        // the roofline of the device it runs on: measured bandwidth if given, else the table keyed by its name
        var peaks = DevicePeaks.For(gpu.Info.Name);
        double hbmGBs = hbmGiven ?? peaks?.HbmGBs ?? double.NaN, fp32 = peaks?.Fp32TFlops ?? double.NaN, tf32 = peaks?.Tf32TFlops ?? double.NaN;
        var rows = KernelLab.Run(gpu, hbmGBs, fp32, tf32, log: Console.WriteLine);
        var md = KernelLab.Markdown(rows, gpu, hbmGBs, fp32, tf32);
        Console.WriteLine(md);
        if (outFile is { } o) Tmca.Engine.AtomicFile.WriteAllText(o, md);
        return rows.Any(r => r.Validation.StartsWith("FAIL")) ? ExitCodes.RuntimeFailure : ExitCodes.Ok;
    }

    /// <summary>Compiles every kernel for every architecture with the NVRTC that loaded (null: none did, and
    /// <paramref name="why"/> says why — this machine lacks what `--compile` needs).</summary>
    internal static int Compile(Nvrtc? nv, string why, IReadOnlyList<int> archs)
    {
        if (nv is null) throw new BackendUnavailableException($"cannot compile kernels: NVRTC not found: {why} (Debian: tools/install-nvrtc.sh)");
        var files = KernelSources.Files.Concat(KernelSources.LabFiles).ToList();   // the lab's v1s must compile too
        var compiler = new KernelCompiler(nv);
        Console.WriteLine($"NVRTC {nv.Version.Major}.{nv.Version.Minor} ({nv.LibraryPath})");
        int failures = 0;
        foreach (var f in files)
            foreach (var a in archs)
            {
                var (options, _) = compiler.OptionsFor(a);
                try
                {
                    var r = compiler.Compile(f, a, useCache: false);
                    Console.WriteLine($"  ok    {f,-18} sm_{a}  {(r.IsCubin ? "cubin" : "ptx"),5} {r.Image.Length,8} bytes  [{string.Join(' ', options)}]{(r.Log.Length > 0 ? "\n        " + r.Log.Replace("\n", "\n        ") : "")}");
                }
                catch (CudaException e)
                {
                    failures++;
                    Console.WriteLine($"  FAIL  {f,-18} sm_{a}\n        {e.Message.Replace("\n", "\n        ")}");
                }
            }
        Console.WriteLine(failures == 0 ? $"all {files.Count * archs.Count} compilations passed" : $"{failures} compilation(s) failed");
        return failures == 0 ? ExitCodes.Ok : ExitCodes.RuntimeFailure;
    }
}
