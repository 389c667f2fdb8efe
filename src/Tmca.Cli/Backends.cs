using Tmca.Engine;

namespace Tmca.Cli;

/// <summary>A backend that cannot run here (no GPU, no driver, no compiler): the message says why.</summary>
public sealed class BackendUnavailableException(string message) : Exception(message);

/// <summary>Backends by name: cpu, cuda (a GPU through the driver API) and cuda-sim (the same CUDA backend and
/// kernels on the CUDA simulator, which runs them on the CPU).</summary>
internal static class Backends
{
    public const string Names = "cpu, cuda or cuda-sim";

    public static IBackend Get(string name) => name.ToLowerInvariant() switch
    {
        "cpu" => CpuBackend.Instance,
        "cuda" or "gpu" => Cuda(),
        "cuda-sim" or "sim" => Simulator(),
        _ => throw new UsageException($"unknown device '{name}' ({Names})"),   // the option is checked while parsing; a resumed run's options.json is not
    };

    private static Tmca.Cuda.CudaBackend? _cuda, _sim;

    private static IBackend Cuda()
    {
        if (_cuda is not null) return _cuda;
        _cuda = Tmca.Cuda.CudaBackend.TryCreate(out var reason) ?? throw new BackendUnavailableException($"CUDA is not available: {reason} (run `tmca doctor`; --device cuda-sim runs the CUDA kernels on the CPU)");
        _cuda.Tf32 = Environment.GetEnvironmentVariable("TMCA_TF32") == "1";
        return _cuda;
    }

    private static IBackend Simulator()
    {
        if (_sim is not null) return _sim;
        _sim = Tmca.Cuda.CudaBackend.TryCreateSimulator(out var reason) ?? throw new BackendUnavailableException($"the CUDA simulator is not available: {reason} (run `tmca doctor`)");
        _sim.Tf32 = Environment.GetEnvironmentVariable("TMCA_TF32") == "1";
        return _sim;
    }
}
