using Tmca.Cuda;
using Tmca.Cuda.Sim;
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

    private static CudaBackend? _cuda, _sim;

    private static IBackend Cuda()
    {
        if (_cuda is not null) return _cuda;
        var rt = DriverRuntime.TryCreate(out var reason) ?? throw new BackendUnavailableException($"CUDA is not available: {reason} (run `tmca doctor`; --device cuda-sim runs the CUDA kernels on the CPU)");
        return _cuda = On(rt);
    }

    private static IBackend Simulator()
    {
        if (_sim is not null) return _sim;
        var rt = SimRuntime.TryCreate(out var reason) ?? throw new BackendUnavailableException($"the CUDA simulator is not available: {reason} (run `tmca doctor`)");
        return _sim = On(rt);
    }

    /// <summary>The CUDA backend on <paramref name="runtime"/>, TF32 as TMCA_TF32 says. With TMCA_DEVICE_FAULT set (the tests
    /// and the device check) the runtime is wrapped in the fault injector first, under the backend, so that its pool's
    /// allocations meet the injected out-of-memory too.</summary>
    private static CudaBackend On(IDeviceRuntime runtime)
    {
        var s = TmcaSettings.Current;
        return new CudaBackend(s.DeviceFault is { } plan ? new FaultInjectingRuntime(runtime, plan) : runtime) { Tf32 = s.Tf32 };
    }
}
