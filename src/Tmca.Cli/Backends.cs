using Tmca.Engine;

namespace Tmca.Cli;

/// <summary>A backend that cannot run here (no GPU, no driver): the message says why.</summary>
public sealed class BackendUnavailableException(string message) : Exception(message);

/// <summary>Backends by name.</summary>
internal static class Backends
{
    public static IBackend Get(string name) => name.ToLowerInvariant() switch
    {
        "cpu" => CpuBackend.Instance,
        "cuda" or "gpu" => Cuda(),
        _ => throw new ArgumentException($"unknown device '{name}' (cpu or cuda)"),
    };

    private static Tmca.Cuda.CudaBackend? _cuda;

    private static IBackend Cuda()
    {
        if (_cuda is not null) return _cuda;
        _cuda = Tmca.Cuda.CudaBackend.TryCreate(out var reason) ?? throw new BackendUnavailableException($"CUDA is not available: {reason} (run `tmca doctor`)");
        _cuda.Tf32 = Environment.GetEnvironmentVariable("TMCA_TF32") == "1";
        return _cuda;
    }
}
