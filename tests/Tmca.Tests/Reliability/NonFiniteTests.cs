using System.Text.Json;
using Tmca.Cli;
using Tmca.Engine;
using Tmca.Model;
using Tmca.Tests.Cuda;
using Tmca.Tests.Data;
using Tmca.Training;
using Xunit;

namespace Tmca.Tests.Reliability;

/// <summary>
/// The non-finite guard: a NaN injected in a forward op, a backward op or the data is caught in the step where it
/// appears, named (op, parameter or samples), and either stops the run with the step saved for `tmca replay` or, with
/// --on-nonfinite skip, skips the step without touching a parameter.
/// </summary>
[Collection("cli")]
public class NonFiniteTests : IDisposable
{
    private readonly TempDir _d = new();
    private readonly string _data, _config;

    public NonFiniteTests()
    {
        _data = _d["data"];
        DataFixtures.PerId(_data, withVal: true, train: 8, test: 2);
        _config = TestConfigs.WriteTiny(_d["cfg"]);
    }

    public void Dispose() => _d.Dispose();

    private (int Code, string Err, string Run) Train(string inject, params string[] extra)
    {
        string run = _d["run-" + Guid.NewGuid().ToString("N")[..6]];
        using var _ = NonFiniteInjection.Arm(inject);
        var (code, err) = Cli.Run(["train", _data, "--config", _config, "--epochs", "2", "--batch", "4", "--out", run, .. extra]);
        return (code, err, run);
    }

    [Fact]
    public void AForwardNanStopsInItsStepNamesTheOpAndSavesAReplay()
    {
        var (code, err, run) = Train("forward:gelu_linear@3");
        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("error: step 3: forward: op #", err);
        Assert.Contains("'gelu_linear' produced the first non-finite output (1 NaN, 0 Inf", err);
        string replay = Path.Combine(run, "nonfinite-step-3.safetensors");
        Assert.True(File.Exists(replay));
        Assert.Contains($"tmca replay {replay}", err);
        // two steps ran before it, and their logs are there; the third is not logged as a normal step
        var steps = File.ReadAllLines(Path.Combine(run, "steps.jsonl"));
        Assert.Equal(2, steps.Length);

        // The replay reproduces it under the same fault, and finds the step finite without it.
        using (NonFiniteInjection.Arm("forward:gelu_linear@3"))
        {
            var (rc, rerr) = Cli.Run("replay", replay);
            Assert.True(rc == ExitCodes.RuntimeFailure, rerr);
        }
        var sw = new StringWriter();
        var prev = Console.Out;
        Console.SetOut(sw);
        int ok;
        try { ok = CliApp.Run("replay", replay); } finally { Console.SetOut(prev); }
        Assert.Equal(0, ok);
        Assert.Contains("not reproduced: step 3 is finite on cpu", sw.ToString());
    }

    [Fact]
    public void ABackwardNanNamesTheFirstParameterItReached()
    {
        var (code, err, _) = Train("backward:layer_norm@2");
        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.Contains("step 2: forward: every op's output is finite", err);
        Assert.Contains("backward: the gradient first turned non-finite at the output of op #", err);
        Assert.Contains("'layer_norm'", err);
        // the parameter named is a layer norm's (its weight or bias): the first the poisoned gradient reaches
        var name = err[(err.IndexOf("first parameter with a non-finite gradient: ", StringComparison.Ordinal) + 44)..].Split(' ')[0];
        var model = new TmcaModel(TestConfigs.Tiny, new TmcaFlags(), seed: 1);
        var p = model.Params.All.SingleOrDefault(x => x.Name == name);
        Assert.True(p is not null, err);
        Assert.Single(p!.Value.Shape);   // a norm's weight or bias
    }

    /// <summary>The fused LGTE op (with its pixel-alignment loss, on in the tiny config's training) is recorded under
    /// its own name: the injection aimed at it fires, and the diagnosis names it — not the last profiler region it opened.</summary>
    [Fact]
    public void TheFusedLgteOpIsNamedByItsOwnName()
    {
        var (code, err, _) = Train("forward:similarity_lgte@2");
        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.Contains("error: step 2: forward: op #", err);
        Assert.Contains("'similarity_lgte' produced the first non-finite output (1 NaN, 0 Inf", err);
        Assert.DoesNotContain("pix_loss", err);
    }

    [Fact]
    public void ANanInTheDataNamesTheSample()
    {
        var (code, err, _) = Train("data@2");
        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.Contains("step 2: the data: the step's images hold 1 NaN and 0 Inf value(s) (sample case_", err);
    }

    [Fact]
    public void SkipModeSkipsTheStepCountsItAndLeavesTheParametersAlone()
    {
        var (code, err, run) = Train("forward:gelu_linear@2", "--on-nonfinite", "skip");
        Assert.True(code == 0, err);
        var steps = File.ReadAllLines(Path.Combine(run, "steps.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(4, steps.Count);
        Assert.True(steps[1].GetProperty("skipped").GetBoolean());
        Assert.Equal(3, steps.Count(s => !s.TryGetProperty("skipped", out _)));
        var epochs = File.ReadAllLines(Path.Combine(run, "epochs.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(1, epochs[^1].GetProperty("skipped_steps").GetInt32());
        var f = SafetensorsFile.Open(Path.Combine(run, "checkpoints", "last.safetensors"));
        var state = JsonDocument.Parse(f.Metadata["train_state"]).RootElement;
        Assert.Equal(3, state.GetProperty("OptimizerStep").GetInt32());   // 4 steps, one skipped
        Assert.Equal(4, state.GetProperty("Step").GetInt64());
        foreach (var n in f.Names) if (f.Entries[n].DType == DType.F32) Assert.All(f.Load(n).ToArray<float>(), x => Assert.True(float.IsFinite(x), n));
    }

    /// <summary>The same faults on the device (the CUDA simulator in CI): found in the same op, skipped without a trace.</summary>
    [Fact]
    public void OnTheDeviceTheSameNanIsNamedAndSkipped()
    {
        Device.Require();
        var (code, err, _) = Train("backward:layer_norm@2", "--device", "cuda-sim");
        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.Contains("step 2: forward: every op's output is finite", err);
        Assert.Contains("'layer_norm'", err);
        var (code2, err2, run) = Train("forward:gelu_linear@3", "--device", "cuda-sim", "--on-nonfinite", "skip");
        Assert.True(code2 == 0, err2);
        var f = SafetensorsFile.Open(Path.Combine(run, "checkpoints", "last.safetensors"));
        Assert.Equal(3, JsonDocument.Parse(f.Metadata["train_state"]).RootElement.GetProperty("OptimizerStep").GetInt32());
        foreach (var n in f.Names) if (f.Entries[n].DType == DType.F32) Assert.All(f.Load(n).ToArray<float>(), x => Assert.True(float.IsFinite(x), n));
    }
}

/// <summary>TMCA_INJECT_NONFINITE on the shipped binary (as the device check's fault stage runs it): the CLI installs the
/// injection, the run stops at that step with one line naming the op, exit 1.</summary>
[Collection("child-processes")]
public class NonFiniteProcessTests
{
    [Fact]
    public void TheEnvironmentVariableInjectsIntoARealRun()
    {
        using var d = new TempDir();
        DataFixtures.PerId(d["data"], withVal: true, train: 8, test: 2);
        string config = TestConfigs.WriteTiny(d["cfg"]), run = d["run"];
        var (code, o, e) = ChildProcess.Run(["train", d["data"], "--config", config, "--epochs", "1", "--batch", "4", "--out", run], TimeSpan.FromMinutes(3),
                                            new Dictionary<string, string> { ["TMCA_INJECT_NONFINITE"] = "backward:layer_norm@2" });
        Assert.True(code == ExitCodes.RuntimeFailure, $"exit {code}:\n{o}\n{e}");
        Assert.Single(e.Trim().Split('\n'));
        Assert.StartsWith("error: step 2: forward: every op's output is finite", e);
        Assert.Contains("backward: the gradient first turned non-finite at the output of op #", e);
        Assert.Contains("'layer_norm'", e);
        Assert.True(File.Exists(Path.Combine(run, "nonfinite-step-2.safetensors")));
    }
}

/// <summary>The guarded AdamW (kernels/adamw.cu and its CPU twin).</summary>
[Collection("device")]
public class GuardedAdamWTests
{
    /// <summary>The guard itself, on the CPU and on the device: a NaN or Inf gradient leaves every parameter and moment
    /// exactly as it was and counts the bad elements; a clean step updates exactly as an unguarded one.</summary>
    [Theory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void TheGuardedAdamWSkipsOnTheDevice(string device)
    {
        IBackend be = device == "cpu" ? CpuBackend.Instance : Device.Require();
        var r = new Rng(5);
        Tensor P(int n) => Tensor.FromArray(Enumerable.Range(0, n).Select(_ => (float)r.Normal()).ToArray(), n).To(be, persistent: true);
        var shapes = new[] { 5000, 37, 9000 };
        var slots = shapes.Select(n => new AdamWSlot(P(n), P(n), P(n), Tensor.FromArray(Enumerable.Range(0, n).Select(_ => (float)r.Uniform(0.1, 1)).ToArray(), n).To(be, persistent: true), true)).ToList();
        float[][] Snapshot() => slots.SelectMany(s => new[] { s.Param, s.M, s.V }).Select(t => t.ToArray<float>()).ToArray();
        var before = Snapshot();
        var grad2 = slots[2].Grad.ToArray<float>();
        grad2[8191] = float.NaN; grad2[4] = float.PositiveInfinity;
        be.Upload(grad2, slots[2].Grad);
        var guard = Tensor.Zeros([1]).To(be);
        be.AdamW(slots, new AdamWStep(1e-2, 0.9, 0.999, 1e-8, 0.01, 1), guard);
        Assert.Equal(2f, guard.ToArray<float>()[0]);
        Assert.Equal(before, Snapshot());

        // clean gradients: guarded = unguarded, to the bit
        grad2[8191] = 0.5f; grad2[4] = -0.25f;
        be.Upload(grad2, slots[2].Grad);
        var clean = Tensor.Zeros([1]).To(be);
        be.AdamW(slots, new AdamWStep(1e-2, 0.9, 0.999, 1e-8, 0.01, 1), clean);
        Assert.Equal(0f, clean.ToArray<float>()[0]);
        var guarded = Snapshot();
        // re-run unguarded from the same start
        for (int i = 0; i < slots.Count; i++)
        {
            be.Upload(before[3 * i], slots[i].Param); be.Upload(before[3 * i + 1], slots[i].M); be.Upload(before[3 * i + 2], slots[i].V);
        }
        be.AdamW(slots, new AdamWStep(1e-2, 0.9, 0.999, 1e-8, 0.01, 1));
        Assert.Equal(Snapshot(), guarded);
        Assert.NotEqual(before, guarded);

        // a NaN seed (a non-finite loss) skips too, even with finite gradients
        var nanSeed = Tensor.FromArray(new[] { float.NaN }, 1).To(be);
        var now = Snapshot();
        be.AdamW(slots, new AdamWStep(1e-2, 0.9, 0.999, 1e-8, 0.01, 2), nanSeed);
        Assert.Equal(now, Snapshot());
    }
}
