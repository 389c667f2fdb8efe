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
        var cmd = new Command("doctor", "print the GPU, the CUDA driver, NVRTC / cuBLAS / cuDNN versions and the CUDA simulator's compiler (or why each is missing)");
        cmd.SetAction(_ =>
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
            return 0;
        });
        return cmd;
    }
}
