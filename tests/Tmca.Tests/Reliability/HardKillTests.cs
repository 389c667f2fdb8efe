using System.Text.Json;
using Tmca.Tests.Data;
using Xunit;

namespace Tmca.Tests.Reliability;

/// <summary>One small dataset, the tiny model and an uninterrupted reference run, shared by the hard-kill tests.</summary>
public sealed class KillFixture : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("tmca-kill-").FullName;
    public string Data => Path.Combine(Root, "data");
    public string Config { get; }
    public string Reference => Path.Combine(Root, "reference");
    public static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    public KillFixture()
    {
        DataFixtures.PerId(Data, withVal: true, train: 12, test: 3);
        Config = TestConfigs.WriteTiny(Root);
        var (code, o, e) = ChildProcess.Run(TrainArgs(Reference), Timeout);
        if (code != 0) throw new InvalidOperationException($"reference run failed ({code}):\n{o}\n{e}");
    }

    /// <summary>3 epochs of 3 steps (12 images, batch 4), augmentation on: the RNG state matters at every step.</summary>
    public string[] TrainArgs(string runDir) =>
        ["train", Data, "--config", Config, "--epochs", "3", "--batch", "4", "--seed", "3", "--patience", "0", "--out", runDir];

    public void Dispose() { try { Directory.Delete(Root, recursive: true); } catch (IOException) { } }
}

/// <summary>
/// SIGKILL at exact points of a training run (a hold point holds the process there, then the test kills it),
/// resume with --resume, and the result must equal the uninterrupted run bit for bit: both checkpoints, every logged
/// loss and Dice, and the test-split evaluation. Signals (SIGINT, SIGTERM) must write a resumable checkpoint first.
/// </summary>
[Collection("child-processes")]
public class HardKillTests(KillFixture fx) : IClassFixture<KillFixture>
{
    public static TheoryData<string> KillPoints => new()
    {
        "step:5",                // mid-step (after backward, before AdamW) in epoch 2
        "between-steps:4",       // mid-epoch: epoch 2, before its third step
        "safetensors-write:2",   // halfway through the first training checkpoint: no checkpoint exists yet
        "safetensors-write:4",   // halfway through a later checkpoint write
    };

    [Theory, MemberData(nameof(KillPoints))]
    public void SigkillThenResumeEqualsAnUninterruptedRun(string point)
    {
        string run = Path.Combine(fx.Root, "kill-" + point.Replace(':', '-'));
        using (var c = ChildProcess.Start(fx.TrainArgs(run), new Dictionary<string, string> { ["TMCA_HOLD_AT"] = point }))
        {
            Assert.True(c.WaitForErr("tmca: holding at", KillFixture.Timeout), $"never reached {point}:\n{c.Out}\n{c.Err}");
            c.Kill();
        }
        var (code, o, e) = ChildProcess.Run(["train", "--resume", run], KillFixture.Timeout);
        Assert.True(code == 0, $"resume failed ({code}):\n{o}\n{e}");
        if (point == "safetensors-write:2") Assert.Contains("starting it again from the beginning", o);
        if (point.StartsWith("safetensors-write")) Assert.Contains("partial file", o);
        SameRun.Assert(fx.Reference, run);
    }

    [Theory]
    [InlineData(2, "between-steps:3")]    // SIGINT in epoch 2 (mid-epoch checkpoint)
    [InlineData(15, "between-steps:1")]   // SIGTERM in the first epoch, before any checkpoint
    public void ASignalWritesAResumableCheckpointAndExits130(int signal, string point)
    {
        string run = Path.Combine(fx.Root, $"signal-{signal}");
        using (var c = ChildProcess.Start(fx.TrainArgs(run), new Dictionary<string, string> { ["TMCA_HOLD_AT"] = point }))
        {
            Assert.True(c.WaitForErr("tmca: holding at", KillFixture.Timeout), c.Err);
            c.Signal(signal);
            int code = c.WaitForExit(KillFixture.Timeout);
            Assert.True(code == 130, $"exit {code}:\n{c.Out}\n{c.Err}");
            Assert.Contains("checkpoint written", c.Err);
            Assert.Contains($"tmca train --resume {run}", c.Err);
        }
        Assert.True(File.Exists(Path.Combine(run, "checkpoints", "last.safetensors")));
        var (code2, o, e) = ChildProcess.Run(["train", "--resume", run], KillFixture.Timeout);
        Assert.True(code2 == 0, $"resume failed ({code2}):\n{o}\n{e}");
        Assert.Contains("inside epoch", o);
        SameRun.Assert(fx.Reference, run);
    }
}

/// <summary>Two runs that must have ended in the same place.</summary>
public static class SameRun
{
    /// <summary>Checkpoints byte for byte, logs without their timings and memory peaks, the evaluation byte for byte.</summary>
    public static void Assert(string expected, string actual)
    {
        foreach (var f in new[] { "checkpoints/last.safetensors", "checkpoints/best.safetensors", "eval-test/per-sample.csv" })
            Xunit.Assert.True(File.ReadAllBytes(Path.Combine(expected, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(actual, f))), $"{f} differs");
        foreach (var f in new[] { "steps.jsonl", "epochs.jsonl" })
            Xunit.Assert.Equal(Untimed(Path.Combine(expected, f)), Untimed(Path.Combine(actual, f)));
        Xunit.Assert.Empty(Directory.GetFiles(actual, "*.tmp", SearchOption.AllDirectories));
    }

    private static List<string> Untimed(string path) => File.ReadAllLines(path).Where(l => l.Length > 0).Select(l =>
    {
        var o = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(l)!;
        o.Remove("seconds"); o.Remove("images_per_s"); o.Remove("memory");   // measurements, not results
        return JsonSerializer.Serialize(o);
    }).ToList();
}
