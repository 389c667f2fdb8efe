using System.CommandLine;
using Tmca.Cuda;
using Tmca.Cuda.Native;

namespace Tmca.Cli;

/// <summary>`tmca doctor`: what this machine offers — the GPU, driver, NVRTC, cuBLAS and cuDNN versions, or why not.</summary>
internal static class DoctorCommand
{
    public static Command Build()
    {
        var cmd = new Command("doctor", "print the GPU, the CUDA driver and the NVRTC / cuBLAS / cuDNN versions (or that there is no GPU)");
        cmd.SetAction(_ =>
        {
            Console.WriteLine($"tmca on .NET {Environment.Version}, {Environment.ProcessorCount} CPU cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
            var nv = Nvrtc.TryLoad(out var nvWhy);
            Console.WriteLine(nv is null ? $"NVRTC: not found ({nvWhy})" : $"NVRTC: {nv.Version.Major}.{nv.Version.Minor} ({nv.LibraryPath}); targets {string.Join(", ", nv.SupportedArchs().Select(a => "sm_" + a))}");
            var blas = Cublas.TryLoad(out var blasWhy);
            Console.WriteLine(blas is null ? $"cuBLAS: not found ({blasWhy})" : $"cuBLAS: {blas.LibraryPath} (its version needs a GPU context: see the GPU line)");
            var cudnn = Cudnn.TryLoad(out var dnnWhy);
            Console.WriteLine(cudnn is null ? $"cuDNN: not found ({dnnWhy})" : $"cuDNN: {cudnn.Version} ({cudnn.LibraryPath})");
            var be = CudaBackend.TryCreate(out var why);
            if (be is null)
            {
                Console.WriteLine($"GPU: none usable — {why}. Training and evaluation run on the CPU backend.");
                return 0;
            }
            Console.WriteLine($"GPU: {be.Describe()}");
            return 0;
        });
        return cmd;
    }
}
