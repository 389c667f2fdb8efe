using System.CommandLine;
using Tmca.Cuda;
using Tmca.Cuda.Native;

namespace Tmca.Cli;

/// <summary>`tmca kernels --compile`: compiles every kernels/*.cu with NVRTC, with the run-time options, for each
/// architecture (no GPU needed). Exits non-zero if any kernel fails, or if NVRTC is missing.</summary>
internal static class KernelsCommand
{
    public static Command Build()
    {
        var compile = new Option<bool>("--compile") { Description = "compile every kernel (the CI check)" };
        var arch = new Option<string>("--arch") { Description = "comma-separated compute capabilities", DefaultValueFactory = _ => "80,90" };
        var bench = new Option<bool>("--bench") { Description = "validate every kernel against the CPU, then time it on the GPU (the kernel lab)" };
        var outFile = new Option<string?>("--out") { Description = "write the benchmark table (markdown) to this file" };
        var profile = new Option<bool>("--profile") { Description = "profile every lab kernel on the race-checking, profiling simulator: declared vs measured bytes, sectors per request, bank conflicts, registers, occupancy" };
        var json = new Option<string?>("--json") { Description = "for --profile: write the per-kernel table as JSON to this file" };
        var device = new Option<string>("--device") { Description = "for --bench: cuda (a GPU) or cuda-sim (validation on the simulator; its times are the CPU's, not a GPU's)", DefaultValueFactory = _ => "cuda" };
        var hbm = new Option<double?>("--hbm-gbs") { Description = "for --bench: the memory roofline in GB/s (e.g. measured by `tmca doctor --measure`); default: the device table's" };
        var cmd = new Command("kernels", "list, compile (NVRTC only: no GPU needed), benchmark or profile the CUDA kernels") { compile, arch, bench, profile, json, outFile, device, hbm };
        cmd.SetAction(p =>
        {
            var files = KernelSources.Files;
            if (p.GetValue(profile))
                return Common.Guard(() =>
                {
                    if (p.GetValue(device) is not ("cuda-sim" or "sim" or "cuda"))
                        throw new UsageException($"--device {p.GetValue(device)}: --profile runs on cuda-sim");
                    var rows = KernelProfile.Run(Console.Error.WriteLine);
                    var md = KernelProfile.Markdown(rows);
                    Console.WriteLine(md);
                    if (p.GetValue(outFile) is { } o) Tmca.Engine.AtomicFile.WriteAllText(o, md);
                    if (p.GetValue(json) is { } j) Tmca.Engine.AtomicFile.WriteAllText(j, KernelProfile.Json(rows));
                    return 0;
                });
            if (p.GetValue(bench))
            {
                var dev = p.GetValue(device)!.ToLowerInvariant();
                if (dev is not ("cuda" or "cuda-sim")) { Console.Error.WriteLine($"error: --device {dev}: the kernel lab runs on cuda or cuda-sim"); return 2; }
                var gpu = dev == "cuda" ? CudaBackend.TryCreate(out var reason) : CudaBackend.TryCreateSimulator(out reason);
                // --device cuda that finds no GPU is a failure, never a quiet pass: the device check reads the exit code
                if (gpu is null) { Console.Error.WriteLine($"error: kernel lab: no {(dev == "cuda" ? "GPU" : "CUDA simulator")} ({reason})"); return 3; }
                // the roofline of the device it runs on: measured bandwidth if given, else the table keyed by its name
                var peaks = DevicePeaks.For(gpu.Info.Name);
                double hbmGBs = p.GetValue(hbm) ?? peaks?.HbmGBs ?? double.NaN, fp32 = peaks?.Fp32TFlops ?? double.NaN, tf32 = peaks?.Tf32TFlops ?? double.NaN;
                var rows = KernelLab.Run(gpu, hbmGBs, fp32, tf32, log: Console.WriteLine);
                var md = KernelLab.Markdown(rows, gpu, hbmGBs, fp32, tf32);
                Console.WriteLine(md);
                if (p.GetValue(outFile) is { } o) Tmca.Engine.AtomicFile.WriteAllText(o, md);
                return rows.Any(r => r.Validation.StartsWith("FAIL")) ? 1 : 0;
            }
            if (!p.GetValue(compile))
            {
                foreach (var f in files) Console.WriteLine(f);
                return 0;
            }
            var nv = Nvrtc.TryLoad(out var why);
            if (nv is null) { Console.Error.WriteLine($"error: cannot compile kernels: {why} (Debian: tools/install-nvrtc.sh)"); return 3; }
            var archs = p.GetValue(arch)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
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
            Console.WriteLine(failures == 0 ? $"all {files.Count * archs.Length} compilations passed" : $"{failures} compilation(s) failed");
            return failures == 0 ? 0 : 1;
        });
        return cmd;
    }
}
