using System.Text.RegularExpressions;
using Tmca.Cli;
using Tmca.Cuda;
using Tmca.Cuda.Native;
using Tmca.Engine;
using Tmca.Tests.Cuda;
using Tmca.Tests.Data;
using Xunit;

namespace Tmca.Tests.Reliability;

/// <summary>
/// Device faults on the CUDA simulator, injected at the runtime seam (TMCA_DEVICE_FAULT) or made real by capping the
/// simulated memory (TMCA_SIM_MEMORY): each ends the run with one line that says what failed and what to do, and
/// exit code 1 — and after a sticky error nothing touches the device again.
/// </summary>
[Collection("child-processes")]
public class DeviceFaultTests : IDisposable
{
    private readonly TempDir _d = new();
    private readonly string _data, _config;
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(4);

    public DeviceFaultTests()
    {
        Device.Require();   // CI must have the simulator (fails there, skips with the reason elsewhere)
        _data = _d["data"];
        DataFixtures.PerId(_data, withVal: true, train: 16, test: 2);
        _config = TestConfigs.WriteTiny(_d["cfg"]);
    }

    public void Dispose() => _d.Dispose();

    private (int Code, string Out, string Err, string Run) Train(int batch, Dictionary<string, string> env)
    {
        string run = _d["run-" + Guid.NewGuid().ToString("N")[..6]];
        var (code, o, e) = ChildProcess.Run(["train", _data, "--config", _config, "--device", "cuda-sim", "--epochs", "1", "--batch", batch.ToString(), "--out", run], Timeout, env);
        return (code, o, e, run);
    }

    [Fact]
    public void OutOfMemoryNamesTheBytesTheOpAndABatchThatFits_AndThatBatchTrains()
    {
        // batch 16 runs out, batch 2 fits: the window moves each time the step needs less (the parameters' gradient
        // buffers and moments are most of it at 32 px)
        var mem = new Dictionary<string, string> { ["TMCA_SIM_MEMORY"] = "9472K" };   // 9.25 MiB
        var (code, _, err, _) = Train(16, mem);
        Assert.True(code == ExitCodes.RuntimeFailure, err);
        Assert.Single(err.Trim().Split('\n'));
        // the tape frees activations as the backward goes, so batch 8's first step may fit and the second (AdamW's
        // moments now allocated) run out instead
        Assert.Matches(@"^error: out of device memory at step [12] \(batch 16, 32 px\)", err);
        Assert.Matches(@"[\d.]+ (bytes|KiB|MiB) requested, [\d.]+ (bytes|KiB|MiB) free of 9\.3 MiB", err);
        // the advice is measured: from the peaks at batch 2 and 4, or (when batch 4 does not fit either) batch 2 alone
        var m = Regex.Match(err, @"(?:the largest batch that fits at 32 px is (\d+) \(measured: a step peaks at [\d.]+ MiB at batch 2 and [\d.]+ MiB at batch 4\)"
                                 + @"|batch (\d+) fits at 32 px and batch 4 does not \(measured: a step at batch 2 peaks at [\d.]+ MiB\)); rerun with --batch (\d+)");
        Assert.True(m.Success, err);
        int fits = int.Parse(m.Groups[3].Value);
        Assert.Equal(fits, int.Parse(m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value));
        Assert.InRange(fits, 2, 15);

        var (code2, o2, err2, run) = Train(fits, mem);
        Assert.True(code2 == 0, $"batch {fits} was said to fit but failed:\n{o2}\n{err2}");

        // evaluation: no gradients or moments, so a much smaller device; the advice is measured the same way
        var small = new Dictionary<string, string> { ["TMCA_SIM_MEMORY"] = "4M" };
        string best = Path.Combine(run, "checkpoints", "best.safetensors");
        string[] Eval(int batch) => ["eval", best, _data, "--split", "train", "--device", "cuda-sim", "--batch", batch.ToString(), "--out", _d[$"eval-{batch}"]];
        var (code3, _, err3) = ChildProcess.Run(Eval(12), Timeout, small);
        Assert.True(code3 == ExitCodes.RuntimeFailure, err3);
        Assert.Contains("error: out of device memory evaluating train (batch 12, 32 px)", err3);
        var e = Regex.Match(err3, @"rerun with --batch (\d+)");
        Assert.True(e.Success, err3);
        var (code4, o4, err4) = ChildProcess.Run(Eval(int.Parse(e.Groups[1].Value)), Timeout, small);
        Assert.True(code4 == 0, $"evaluation at the advised batch failed:\n{o4}\n{err4}");
    }

    [Fact]
    public void AFailedLaunchNamesTheKernelAndItsShapes()
    {
        var (code, _, err, _) = Train(4, new() { ["TMCA_DEVICE_FAULT"] = "launch:*:40" });
        Assert.True(code == ExitCodes.RuntimeFailure, err);
        Assert.Single(err.Trim().Split('\n'));
        // e.g. "error: copy_axis_range_f32 [[2, 16] → [1, 16] axis 0]: cuLaunchKernel: CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: …"
        Assert.Matches(@"^error: [a-z0-9_]+ \[.+\]( in op '[^']+')?: cuLaunchKernel: CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", err);
    }

    [Fact]
    public void AfterAStickyErrorTheProcessStopsWithItsMessage()
    {
        var (code, o, err, run) = Train(4, new() { ["TMCA_DEVICE_FAULT"] = "sticky:*:40" });
        Assert.True(code == ExitCodes.RuntimeFailure, err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Matches(@"^error: [a-z0-9_]+ \[.+\]( in op '[^']+')?: cuLaunchKernel: CUDA_ERROR_ILLEGAL_ADDRESS", err);
        Assert.DoesNotContain("validation", o);   // nothing ran after it
        Assert.False(File.Exists(Path.Combine(run, "checkpoints", "last.safetensors")));
    }

    /// <summary>In process: once a sticky error is seen, every call refuses — launches, allocations, copies — with the
    /// original error, instead of running on a broken context.</summary>
    [Fact]
    public void APoisonedBackendRefusesEveryLaterCall()
    {
        var sim = Device.RequireSimulator(new Tmca.Cuda.Sim.SimOptions());
        using var be = new CudaBackend(new FaultInjectingRuntime(sim, DeviceFault.Parse("sticky:fill_f32:2")));
        var t = Tensor.Zeros([1000]).To(be);
        be.Fill(t, 1.0);   // launch 1 runs
        var first = Assert.Throws<CudaException>(() => be.Fill(t, 2.0));
        Assert.True(first.Sticky);
        Assert.Same(first, be.Poisoned);
        foreach (var call in new Action[] { () => be.Fill(t, 3.0), () => Tensor.Zeros([10]).To(be), () => t.ToArray<float>(), be.Synchronize })
        {
            var e = Assert.Throws<CudaException>(call);
            Assert.Contains("unusable after this error; restart the process", e.Message);
            Assert.Contains("CUDA_ERROR_ILLEGAL_ADDRESS", e.Message);
        }
    }
}
