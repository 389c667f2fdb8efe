using System.CommandLine;
using Tmca.Cuda;
using Tmca.Cuda.Native;
using Tmca.Cuda.Sim;

namespace Tmca.Cli;

/// <summary>`tmca doctor`: what this machine offers — the GPU, driver, NVRTC, cuBLAS and cuDNN versions (or why not),
/// and whether the CUDA simulator can run (its compiler and version).</summary>
internal static class DoctorCommand
{
    public static Command Build()
    {
        var requireGpu = new Option<bool>("--require-gpu") { Description = "exit 3 with one line naming what is missing (driver, GPU, NVRTC, cuBLAS) unless a GPU is usable (the device check's strict mode)" };
        var measure = new Option<bool>("--measure") { Description = "measure the device-to-device copy bandwidth and print the device's peaks (the GPU; with --device cuda-sim the simulator)" };
        var device = new Option<string>("--device") { Description = "for --measure: cuda or cuda-sim", DefaultValueFactory = _ => "cuda" };
        var cmd = new Command("doctor", "print the GPU, the CUDA driver, NVRTC / cuBLAS / cuDNN versions and the CUDA simulator's compiler (or why each is missing)") { requireGpu, measure, device };
        cmd.SetAction(p =>
        {
            Console.WriteLine($"tmca on .NET {Environment.Version}, {Environment.ProcessorCount} CPU cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
            var nv = Nvrtc.TryLoad(out var nvWhy);
            Console.WriteLine(nv is null ? $"NVRTC: not found ({nvWhy})" : $"NVRTC: {nv.Version.Major}.{nv.Version.Minor} ({nv.LibraryPath}); targets {string.Join(", ", nv.SupportedArchs().Select(a => "sm_" + a))}");
            var blas = Cublas.TryLoad(out var blasWhy);
            Console.WriteLine(blas is null ? $"cuBLAS: not found ({blasWhy})" : $"cuBLAS: {blas.LibraryPath} (its version needs a GPU context: see the GPU line)");
            var cudnn = Cudnn.TryLoad(out var dnnWhy);
            Console.WriteLine(cudnn is null ? $"cuDNN: not found ({dnnWhy})" : $"cuDNN: {cudnn.Version} ({cudnn.LibraryPath})");
            var sim = SimCompiler.TryCreate(out var simWhy);
            Console.WriteLine(sim is null ? $"CUDA simulator: unavailable ({simWhy})"
                                          : $"CUDA simulator: ready (--device cuda-sim): {sim.Compiler} {sim.Version}, builds cached in {sim.CacheDir}");
            var be = CudaBackend.TryCreate(out var why);
            Console.WriteLine(be is null ? $"GPU: none usable — {why}. Training and evaluation run on the CPU backend{(sim is null ? "" : "; the CUDA kernels run on the simulator")}."
                                         : $"GPU: {be.Describe()}");
            if (be is null && p.GetValue(requireGpu)) { Console.Error.WriteLine($"error: no usable GPU: {why}"); return 3; }
            if (!p.GetValue(measure)) return 0;
            var target = p.GetValue(device) == "cuda-sim" ? CudaBackend.TryCreateSimulator(out why) : be;
            if (target is null) { Console.Error.WriteLine($"error: --measure: no {(p.GetValue(device) == "cuda-sim" ? "CUDA simulator" : "GPU")} ({why})"); return 3; }
            long bytes = target.Simulated ? 16L << 20 : 256L << 20;
            double gbs = DevicePeaks.MeasureCopyBandwidth(target.Runtime, bytes);
            var inv = System.Globalization.CultureInfo.InvariantCulture;
            Console.WriteLine(string.Create(inv, $"copy bandwidth: {gbs:0} GB/s measured (device-to-device copy of {bytes >> 20} MiB, best of 5{(target.Simulated ? "; the simulator's: host memcpy, no GPU claim" : "")})"));
            var peaks = DevicePeaks.For(target.Info.Name);
            Console.WriteLine(peaks is null ? $"peaks: '{target.Info.Name}' is not in the device table (no roofline fractions)"
                                            : string.Create(inv, $"peaks (datasheet, '{peaks.Match}'): HBM {peaks.HbmGBs:0} GB/s, FP32 {peaks.Fp32TFlops} TFLOP/s, TF32 {peaks.Tf32TFlops} TFLOP/s (dense)"));
            return 0;
        });
        return cmd;
    }
}
