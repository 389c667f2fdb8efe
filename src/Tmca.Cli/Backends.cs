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

    private static IBackend Cuda() => throw new BackendUnavailableException("the CUDA backend is not available in this build");
}
