using Tmca.Cli;
using Tmca.Tests.Cuda;
using Tmca.Tests.Data;
using Xunit;

namespace Tmca.Tests.Reliability;

/// <summary>TMCA_DEVICE_FAULT=oom:N reaches the pool's allocations (the pool once held the unwrapped runtime, and the
/// injected out-of-memory never fired): training on the simulator ends with the out-of-memory line and exit code 1.</summary>
[Collection("child-processes")]
public class InjectedOutOfMemoryTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    [Fact]
    public void AnInjectedOutOfMemoryFiresInTraining()
    {
        Device.Require();
        string data = _d["data"];
        DataFixtures.PerId(data, withVal: true, train: 4, test: 2);
        string cfg = TestConfigs.WriteTiny(_d["cfg"]);
        var (code, o, err) = ChildProcess.Run(["train", data, "--config", cfg, "--device", "cuda-sim", "--epochs", "1", "--batch", "2", "--out", _d["run"]],
                                             TimeSpan.FromMinutes(4), new Dictionary<string, string> { ["TMCA_DEVICE_FAULT"] = "oom:30" });
        Assert.True(code == ExitCodes.RuntimeFailure, $"exit {code}\n{o}\n{err}");
        Assert.Contains("out of device memory", err);
    }
}
