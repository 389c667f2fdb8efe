using Tmca.Cuda;
using Xunit;

namespace Tmca.Tests.Cuda;

/// <summary>
/// The CUDA backend the device tests run on: the GPU when this machine has one, else the CUDA simulator (the same
/// kernels and launch code, run on the CPU). Without either the tests skip and say why — except in CI
/// (CI=true), where the simulator is installed by the test script and its absence is a failure, not a skip.
/// TMCA_TEST_DEVICE=cuda-sim forces the simulator on a GPU machine; TMCA_TEST_DEVICE=cuda is the device check's strict
/// mode: the GPU or a failure naming what is missing (driver, GPU, NVRTC, cuBLAS), never a quiet switch to the simulator.
/// </summary>
public static class Device
{
    private static readonly Lazy<(CudaBackend? Backend, string Reason)> Instance = new(() =>
    {
        string why = "";
        if (Environment.GetEnvironmentVariable("TMCA_TEST_DEVICE") != "cuda-sim")
        {
            var gpu = CudaBackend.TryCreate(out why);
            if (gpu is not null) return (gpu, "");
            if (Strict) return (null, $"TMCA_TEST_DEVICE=cuda: no usable GPU ({why})");
        }
        // the switches from the environment: test.sh's second pass sets TMCA_SIM_RACECHECK=1 for this shared simulator
        var sim = CudaBackend.TryCreateSimulator(out var simWhy, Tmca.Cuda.Sim.SimOptions.FromEnvironment());
        return sim is not null ? (sim, "") : (null, $"no GPU ({why}) and no CUDA simulator ({simWhy})");
    });

    public static bool Strict => Environment.GetEnvironmentVariable("TMCA_TEST_DEVICE") == "cuda";

    public static bool InCi => Environment.GetEnvironmentVariable("CI") is "true" or "1";

    public static CudaBackend Require()
    {
        var (b, why) = Instance.Value;
        if (b is null)
        {
            if (Strict) Assert.Fail(why);
            if (InCi) Assert.Fail($"CI must run the device tests: {why} (./test.sh installs g++ for the simulator)");
            Assert.Skip(why);
        }
        b!.Tf32 = false;
        return b;
    }

    /// <summary>A fresh simulator (its own memory and poisoned state), for tests that break it on purpose.</summary>
    public static Tmca.Cuda.Sim.SimRuntime RequireSimulator(Tmca.Cuda.Sim.SimOptions options)
    {
        var rt = Tmca.Cuda.Sim.SimRuntime.TryCreate(out var why, options);
        if (rt is null)
        {
            if (InCi) Assert.Fail($"CI must run the simulator tests: {why}");
            Assert.Skip($"no CUDA simulator: {why}");
        }
        return rt!;
    }
}

/// <summary>Device tests share one backend (and the simulator runs one launch at a time): never in parallel.</summary>
[CollectionDefinition("device", DisableParallelization = true)]
public sealed class DeviceCollection;
